-- Parking a coroutine until a callback wakes it. Each wait has its own
-- waiter: a late or second wake (a connect callback after a timeout, a
-- stray coroutine.resume) cannot end a later wait by mistake.

local binding = require('internal.binding')

local error, setmetatable = error, setmetatable
local co_isyieldable, co_running, co_yield =
  coroutine.isyieldable, coroutine.running, coroutine.yield
local resume = binding.resume

local M = {}

-- The running coroutine, or a clear error naming `what` where the caller
-- cannot wait (level: where the error points, as for error()).
function M.current(what, level)
  if not co_isyieldable() then
    error(what .. ': cannot wait here (not inside a coroutine, or inside a ' ..
      'C function such as a metamethod or a table.sort comparator); pass a ' ..
      'callback instead', (level or 2) + 1)
  end
  return co_running()
end

local Waiter = {}
Waiter.__index = Waiter

-- A waiter for the running coroutine (raises where it cannot wait).
function M.waiter(what, level)
  return setmetatable({ co = M.current(what, (level or 2) + 1) }, Waiter)
end

-- Suspends until wake(); returns wake's values. A wake that came first
-- (before wait) is returned at once.
function Waiter:wait()
  if self.woken then return self.a, self.b, self.c end
  self.waiting = true
  while true do
    local tag, a, b, c = co_yield()
    if tag == self then return a, b, c end
  end
end

-- Ends the wait with these values; later wakes do nothing. Errors of the
-- resumed coroutine go to the uncaught route, not to the caller.
function Waiter:wake(a, b, c)
  if self.woken then return false end
  self.woken = true
  if not self.waiting then -- not parked yet: wait() will return these
    self.a, self.b, self.c = a, b, c
    return true
  end
  self.waiting = false
  return resume(self.co, self, a, b, c)
end

return M
