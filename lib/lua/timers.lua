-- timers: Node's setTimeout/setInterval/setImmediate and their clear*,
-- plus sleep(ms) for coroutines. Each timeout owns one uv timer, closed as
-- soon as it has fired or is cleared, so finished timers leave nothing
-- behind. Immediates run in the loop's check phase, in order.

local uv = require('uv')
local internal_uv = require('internal.uv')
local binding = require('internal.binding')

local error, getmetatable, rawget, select, setmetatable, tonumber, type =
  error, getmetatable, rawget, select, setmetatable, tonumber, type
local floor = math.floor
local pack, unpack = table.pack, table.unpack
local co_isyieldable, co_running, co_yield =
  coroutine.isyieldable, coroutine.running, coroutine.yield
local resume = binding.resume

local M = {}

local TIMEOUT_MAX = 2147483647

local function is_callable(f)
  if type(f) == 'function' then return true end
  local mt = getmetatable(f)
  return type(mt) == 'table' and rawget(mt, '__call') ~= nil
end

local function check_callback(fn, who)
  if not is_callable(fn) then
    error(who .. ': callback must be a function, got ' .. type(fn), 3)
  end
end

-- Node's rule: a delay that is not a number in [1, 2^31-1] becomes 1.
local function delay_of(ms)
  ms = tonumber(ms)
  if ms == nil or ms ~= ms or ms < 1 or ms > TIMEOUT_MAX then return 1 end
  return floor(ms)
end

local function args_of(...)
  if select('#', ...) == 0 then return nil end
  return pack(...)
end

local Timeout = {}
Timeout.__index = Timeout
Timeout.__name = 'Timeout'

local function fire(self)
  if not self._repeat then
    -- A fired timeout is finished: its handle goes now, refresh() can
    -- make a new one.
    self._handle:close()
    self._handle = nil
  end
  local args = self._args
  if args then
    self._callback(unpack(args, 1, args.n))
  else
    self._callback()
  end
end

-- libuv measures delays from the loop's cached time, which is stale after
-- long synchronous work (or before the loop first runs): refresh it, as
-- Node does, so a delay counts from the call.
local update_time = uv.update_time

local function start(self)
  update_time()
  local handle = uv.new_timer()
  self._handle = handle
  handle:start(self._delay, self._repeat and self._delay or 0, function()
    fire(self)
  end)
  if self._unref then handle:unref() end
end

local function new_timeout(fn, ms, is_repeat, ...)
  local self = setmetatable({
    _callback = fn,
    _delay = delay_of(ms),
    _repeat = is_repeat,
    _args = args_of(...),
    _unref = false,
  }, Timeout)
  start(self)
  return self
end

function M.setTimeout(fn, ms, ...)
  check_callback(fn, 'setTimeout')
  return new_timeout(fn, ms, false, ...)
end

function M.setInterval(fn, ms, ...)
  check_callback(fn, 'setInterval')
  return new_timeout(fn, ms, true, ...)
end

local function clear(t)
  if getmetatable(t) ~= Timeout then return end
  local handle = t._handle
  if handle then
    t._handle = nil
    handle:close()
  end
  t._cleared = true
end

M.clearTimeout = clear
M.clearInterval = clear

-- The process may exit while this timer is still pending.
function Timeout:unref()
  self._unref = true
  if self._handle then self._handle:unref() end
  return self
end

function Timeout:ref()
  self._unref = false
  if self._handle then self._handle:ref() end
  return self
end

function Timeout:hasRef()
  return not self._unref
end

-- Restarts the countdown from now; revives a timeout that already fired.
function Timeout:refresh()
  if self._cleared then return self end
  if self._handle then
    update_time()
    self._handle:stop()
    self._handle:start(self._delay, self._repeat and self._delay or 0,
      function() fire(self) end)
  else
    start(self)
  end
  return self
end

function Timeout:close()
  clear(self)
  return self
end

-- Immediates ---------------------------------------------------------------

local Immediate = {}
Immediate.__index = Immediate
Immediate.__name = 'Immediate'

local queue, head, tail = {}, 1, 0
local refed = 0 -- queued immediates that keep the loop alive
local check, idle -- created on first use, hidden from uv.walk
local check_started = false
local spawn = binding.spawn

local function update_watchers()
  if head > tail and check_started then
    check:stop()
    check_started = false
  end
  -- The idle watcher keeps the loop from blocking (and alive) while
  -- referenced immediates wait.
  if refed > 0 then
    idle:start(function() end)
  else
    idle:stop()
  end
end

local function run_immediates()
  -- Only those queued before this turn; new ones wait for the next.
  local last = tail
  while head <= last do
    local item = queue[head]
    queue[head] = nil
    head = head + 1
    if not item._cleared then
      item._queued = false
      if not item._unref then refed = refed - 1 end
      local args = item._args
      if args then
        spawn(item._callback, unpack(args, 1, args.n))
      else
        spawn(item._callback)
      end
    end
  end
  if head > tail then head, tail = 1, 0 end
  update_watchers()
end

local function ensure_watchers()
  if check then return end
  check = uv.new_check()
  internal_uv.hide(check)
  check:unref()
  idle = uv.new_idle()
  internal_uv.hide(idle)
end

function M.setImmediate(fn, ...)
  check_callback(fn, 'setImmediate')
  ensure_watchers()
  local item = setmetatable({
    _callback = fn,
    _args = args_of(...),
    _unref = false,
    _queued = true,
  }, Immediate)
  tail = tail + 1
  queue[tail] = item
  refed = refed + 1
  if not check_started then
    check:start(run_immediates)
    check_started = true
  end
  update_watchers()
  return item
end

function M.clearImmediate(item)
  if getmetatable(item) ~= Immediate or item._cleared then return end
  item._cleared = true
  if item._queued then
    item._queued = false
    if not item._unref then refed = refed - 1 end
    update_watchers()
  end
end

function Immediate:unref()
  if not self._unref then
    self._unref = true
    if self._queued then
      refed = refed - 1
      update_watchers()
    end
  end
  return self
end

function Immediate:ref()
  if self._unref then
    self._unref = false
    if self._queued then
      refed = refed + 1
      update_watchers()
    end
  end
  return self
end

function Immediate:hasRef()
  return not self._unref
end

-- sleep ----------------------------------------------------------------------

-- sleep(ms [, cb]): suspends the calling coroutine for ms milliseconds;
-- with a callback it returns at once and calls cb() later instead.
function M.sleep(ms, cb)
  if cb ~= nil then
    check_callback(cb, 'sleep')
    return M.setTimeout(cb, ms)
  end
  if not co_isyieldable() or binding.exit_emitted() then
    require('internal.wait').cannot_wait('timers.sleep', 2,
      'pass a callback, sleep(ms, cb), or use setTimeout(fn, ms)')
  end
  local co = co_running()
  local fired = false
  update_time()
  local handle = uv.new_timer()
  handle:start(delay_of(ms), 0, function()
    fired = true
    handle:close()
    resume(co)
  end)
  repeat co_yield() until fired
end

return M
