-- Parking a coroutine until a callback wakes it. Each wait has its own
-- waiter: a late or second wake (a connect callback after a timeout, a
-- stray coroutine.resume) cannot end a later wait by mistake.

local binding = require('internal.binding')

local error, getmetatable, rawget, setmetatable, type =
  error, getmetatable, rawget, setmetatable, type
local pack, unpack = table.pack, table.unpack
local co_isyieldable, co_running, co_yield =
  coroutine.isyieldable, coroutine.running, coroutine.yield
local resume = binding.resume

local M = {}

function M.is_callable(f)
  if type(f) == 'function' then return true end
  local mt = getmetatable(f)
  return type(mt) == 'table' and rawget(mt, '__call') ~= nil
end

-- Raises (at the caller's caller) unless cb is nil or callable.
function M.check_callback(cb, who)
  if cb ~= nil and not M.is_callable(cb) then
    error(who .. ': callback must be a function, got ' .. type(cb), 3)
  end
end

local ADVICE = {
  require = 'wait in a function the module returns, called after require, ' ..
    'or pass a callback',
  exit = 'do the work synchronously (the *Sync calls), or before exit',
}
local DEFAULT_ADVICE = 'pass a callback instead, or run the waiting code ' ..
  'in a task of its own: coro.spawn(fn)'

-- The message for a waiting call `what` made where its coroutine cannot be
-- suspended: where that is and what to do instead.
-- (advice: what to do instead, if the call has a better way than the
-- default's.)
function M.cannot_wait_message(what, advice)
  if binding.exit_emitted() then
    return what .. ": cannot wait here, in an 'exit' listener (the event " ..
      'loop has stopped: nothing would wake it); ' .. ADVICE.exit
  end
  local where, kind = binding.unyieldable()
  return what .. ': cannot wait here, ' .. where .. '; ' ..
    (ADVICE[kind] or advice or DEFAULT_ADVICE)
end

-- Raises that message (level: where the error points, as for error()).
function M.cannot_wait(what, level, advice)
  error(M.cannot_wait_message(what, advice), (level or 2) + 1)
end

-- The running coroutine, or a clear error naming `what` where the caller
-- cannot wait (level: where the error points, as for error()).
function M.current(what, level)
  if not co_isyieldable() or binding.exit_emitted() then
    M.cannot_wait(what, (level or 2) + 1)
  end
  return co_running()
end

-- --trace-errors: cb itself, or a stand-in that checks, before cb gets an
-- error, whether cb ever reads its first parameter (says so on stderr if
-- not). Without the flag, cb unchanged.
local trace_errback = binding.trace_errors() and binding.trace_errback
function M.traced(cb)
  if not trace_errback or cb == nil then return cb end
  return function(err, ...)
    if err ~= nil and err ~= false then trace_errback(cb, err) end
    return cb(err, ...)
  end
end

local Waiter = {}
Waiter.__index = Waiter

-- A waiter for the running coroutine (raises where it cannot wait).
function M.waiter(what, level)
  return setmetatable({ co = M.current(what, (level or 2) + 1) }, Waiter)
end

-- Suspends until wake(...); returns wake's values. A wake that came first
-- (before wait) is returned at once.
function Waiter:wait()
  local values = self.values
  if not values then
    self.waiting = true
    repeat
      local tag, got = co_yield()
      if tag == self then values = got end
    until values
  end
  return unpack(values, 1, values.n)
end

-- Ends the wait with these values; later wakes do nothing. Errors of the
-- resumed coroutine go to the uncaught route, not to the caller.
function Waiter:wake(...)
  if self.values then return false end
  self.values = pack(...)
  if not self.waiting then return true end -- wait() will return them
  self.waiting = false
  return resume(self.co, self, self.values)
end

-- A waiter as two functions, wake(...) and park() -> ..., for passing wake
-- as a callback.
function M.parking(what, level)
  local w = M.waiter(what, (level or 2) + 1)
  return function(...) return w:wake(...) end, function() return w:wait() end
end

-- The common shape of a waiting call: start(done) begins the work and
-- done(err, ...) reports it. With cb: returns at once and cb(err, ...)
-- follows, never before run returns (an answer known at once waits for
-- the next check phase). Without: suspends the caller and returns ...,
-- or nil, err.
function M.run(who, cb, start)
  if cb then
    cb = M.traced(cb)
    local sync = true
    start(function(...)
      if sync then
        require('timers').setImmediate(cb, ...)
      else
        cb(...)
      end
    end)
    sync = false
    return
  end
  local w = M.waiter(who, 3)
  start(function(...) w:wake(...) end)
  local function finish(err, ...)
    if err ~= nil then return nil, err end
    return ...
  end
  return finish(w:wait())
end

-- The callback form of a coroutine-style method: runs method(self) on a
-- coroutine of its own and hands its `value | nil, err` to cb(err, value).
function M.in_background(self, method, cb)
  cb = M.traced(cb)
  binding.spawn(function()
    local value, err = method(self)
    if err then cb(err) else cb(nil, value) end
  end)
end

return M
