-- process: the global `process` object, an EventEmitter as in Node.
-- Events: 'exit' (code), 'uncaughtException' (err, report), and signal
-- names ('SIGINT', 'SIGTERM', ...), whose listeners are backed by uv signal
-- handles that do not keep the loop alive.

local uv = require('uv')
local internal_uv = require('internal.uv')
local binding = require('internal.binding')
local EventEmitter = require('events').EventEmitter

local error, getmetatable, rawget, select, setmetatable, tonumber, tostring,
  type = error, getmetatable, rawget, select, setmetatable, tonumber, tostring,
  type
local pack, unpack = table.pack, table.unpack
local collectgarbage = collectgarbage

-- process.stdin/stdout/stderr are made on first use.
local Process = EventEmitter:extend('Process')
local STDIO = { stdin = 0, stdout = 1, stderr = 2 }
Process.__index = function(self, key)
  local value = Process[key]
  if value ~= nil then return value end
  local fd = STDIO[key]
  if fd then
    value = require('internal.stdio').open(fd)
    rawset(self, key, value)
    return value
  end
end

local process = Process.new()

-- Identity -------------------------------------------------------------------

local uname = uv.os_uname() or {}
local ARCHES = { x86_64 = 'x64', aarch64 = 'arm64', i686 = 'ia32',
  i386 = 'ia32', armv7l = 'arm', ppc64le = 'ppc64', s390x = 's390x' }

process.pid = uv.os_getpid()
process.ppid = uv.os_getppid()
process.platform = (uname.sysname or 'unknown'):lower()
process.arch = ARCHES[uname.machine] or uname.machine
process.execPath = uv.exepath() or binding.progname()
process.version = 'v0.1.0'
process.versions = {
  luvhost = '0.1.0',
  lua = _VERSION:match('%d+%.%d+'),
  uv = uv.version_string(),
}
process.title = 'luvhost'
-- 1..N in a worker of `luvhost --workers N`, nil otherwise.
process.workerId = tonumber(uv.os_getenv('LUVHOST_WORKER_ID') or '')
process.exitCode = nil

-- argv as Node lays it out, 1-based: { execPath, script, args... };
-- execArgv holds the options that came before the script.
do
  local arg = rawget(_G, 'arg')
  local argv, execArgv = { process.execPath }, {}
  if type(arg) == 'table' then
    local lowest = 0
    while arg[lowest - 1] ~= nil do lowest = lowest - 1 end
    for i = lowest + 1, -1 do execArgv[#execArgv + 1] = arg[i] end
    if arg[0] ~= nil and lowest < 0 then argv[2] = arg[0] end
    for i = 1, #arg do argv[#argv + 1] = arg[i] end
  end
  process.argv = argv
  process.execArgv = execArgv
end

-- env: reads and writes go straight to the environment.
process.env = setmetatable({}, {
  __index = function(_, name)
    if type(name) ~= 'string' then return nil end
    return (uv.os_getenv(name))
  end,
  __newindex = function(_, name, value)
    if type(name) ~= 'string' then
      error('process.env: names are strings', 2)
    end
    if value == nil then
      uv.os_unsetenv(name)
    else
      uv.os_setenv(name, tostring(value))
    end
  end,
  __pairs = function()
    return next, uv.os_environ() or {}, nil
  end,
})

function process.cwd()
  return uv.cwd()
end

-- chdir(dir) -> true, or nil, err
function process.chdir(dir)
  if type(dir) ~= 'string' then
    error('process.chdir: directory must be a string, got ' .. type(dir), 2)
  end
  local ok, err = uv.chdir(dir)
  if not ok then return nil, err end
  return true
end

-- exit([code]): emits 'exit' and ends the process (code defaults to
-- process.exitCode, then 0).
function process.exit(code)
  if code == nil then code = process.exitCode or 0 end
  return binding.exit(tonumber(code) or 1)
end

function process.abort()
  uv.kill(process.pid, 'sigabrt')
end

-- process.kill(pid [, signal]) -> true, or nil, err
function process.kill(pid, sig)
  local ok, err = uv.kill(pid, sig or 'sigterm')
  if not ok then return nil, err end
  return true
end

-- hrtime([previous]) -> { seconds, nanoseconds }; hrtime.bigint() -> ns
local function hrtime(_, previous)
  local now = uv.hrtime()
  if previous ~= nil then
    now = now - (previous[1] * 1000000000 + previous[2])
  end
  return { now // 1000000000, now % 1000000000 }
end

process.hrtime = setmetatable({ bigint = uv.hrtime }, { __call = hrtime })

local started = uv.hrtime()

function process.uptime()
  return (uv.hrtime() - started) / 1e9
end

function process.memoryUsage()
  local lua_bytes = math.floor(collectgarbage('count') * 1024)
  return {
    rss = uv.resident_set_memory() or 0,
    heapTotal = lua_bytes,
    heapUsed = lua_bytes,
    external = 0,
  }
end

function process.cpuUsage()
  local usage = uv.getrusage()
  return {
    user = usage.utime.sec * 1000000 + usage.utime.usec,
    system = usage.stime.sec * 1000000 + usage.stime.usec,
  }
end

-- loopStats() -> { turns, elapsed, luaTime, idleTime, stalls, samples,
-- minDelay, maxDelay, meanDelay, p50Delay, p99Delay } since the last call
-- (times in ms; a turn's delay is how long the loop was busy before it
-- waited again).
process.loopStats = binding.loop_stats

-- blockingLimits([{ warn = ms, max = ms }]) -> the limits before the call,
-- as such a table: --warn-blocking and --max-blocking, changed while the
-- process runs (0 turns one off; a missing field keeps it).
function process.blockingLimits(limits)
  if limits ~= nil and type(limits) ~= 'table' then
    error('process.blockingLimits: expected a table, got ' .. type(limits), 2)
  end
  limits = limits or {}
  local ms = {}
  for i, field in ipairs({ 'warn', 'max' }) do
    local v = limits[field]
    if v ~= nil and (type(v) ~= 'number' or not (v >= 0 and v <= 86400000)) then
      error(('process.blockingLimits: %s must be a number of ms from 0 to ' ..
        '86400000, got %s'):format(field, tostring(v)), 2)
    end
    ms[i] = v and math.floor(v)
  end
  local ok, warn, max = pcall(binding.blocking_limits, ms[1], ms[2])
  if not ok then error('process.blockingLimits: ' .. warn, 2) end
  return { warn = warn, max = max }
end

function process.emitWarning(warning, kind)
  local text = type(warning) == 'table' and (warning.message or tostring(warning))
    or tostring(warning)
  if process:listenerCount('warning') > 0 then
    process:emit('warning', { name = kind or 'Warning', message = text })
    return
  end
  io.stderr:write(('(luvhost:%d) %s: %s\n'):format(process.pid,
    kind or 'Warning', text))
end

-- nextTick -------------------------------------------------------------------

local ticks, tick_head, tick_tail = {}, 1, 0
local tick_pending = false
local spawn = binding.spawn

local function is_callable(f)
  if type(f) == 'function' then return true end
  local mt = getmetatable(f)
  return type(mt) == 'table' and rawget(mt, '__call') ~= nil
end

-- nextTick(fn, ...): fn runs right after the current callback, before the
-- loop goes on to anything else.
function process.nextTick(fn, ...)
  if not is_callable(fn) then
    error('process.nextTick: callback must be a function, got ' .. type(fn), 2)
  end
  tick_tail = tick_tail + 1
  ticks[tick_tail] = select('#', ...) > 0 and { fn, pack(...) } or { fn }
  if not tick_pending then
    tick_pending = true
    binding.tick_pending(true)
  end
end

-- Each tick runs on its own coroutine: one that waits or fails does not
-- hold up or drop the others.
local function run_ticks()
  while tick_head <= tick_tail do
    local item = ticks[tick_head]
    ticks[tick_head] = nil
    tick_head = tick_head + 1
    local args = item[2]
    if args then
      spawn(item[1], unpack(args, 1, args.n))
    else
      spawn(item[1])
    end
  end
  tick_head, tick_tail = 1, 0
  tick_pending = false
  binding.tick_pending(false)
end

-- Signals --------------------------------------------------------------------

local signal_handles = {}

local function is_signal(name)
  return type(name) == 'string' and name:match('^SIG[A-Z0-9]+$') ~= nil
end

process:on('newListener', function(name)
  if not is_signal(name) or signal_handles[name] then return end
  local handle = uv.new_signal()
  internal_uv.hide(handle)
  local ok, err = pcall(handle.start, handle, name:lower(), function()
    process:emit(name, name)
  end)
  if not ok then
    handle:close()
    error(err, 0)
  end
  handle:unref()
  signal_handles[name] = handle
end)

process:on('removeListener', function(name)
  local handle = signal_handles[name]
  if handle and process:listenerCount(name) == 0 then
    signal_handles[name] = nil
    handle:close()
  end
end)

-- Runtime hooks ----------------------------------------------------------------

binding.set_hooks({
  tick = run_ticks,
  shutdown = function(signame, timeout)
    require('internal.shutdown').start(signame, timeout)
  end,
  why_alive = function(reason)
    require('internal.diagnostics').print_report(reason)
  end,
  uncaught = function(err, report)
    if process:listenerCount('uncaughtException') > 0 then
      process:emit('uncaughtException', err, report)
    else
      binding.fatal(report)
    end
  end,
  exit = function(code, forced)
    if forced then process.exitCode = code end
    local final = process.exitCode or 0
    process._exiting = true
    process:emit('exit', final)
    binding.set_exit_code(tonumber(process.exitCode) or final)
  end,
})

return process
