-- child_process: running other programs, as in Node. A child's stdin,
-- stdout and stderr are stream.Streams (coroutine read/write, events);
-- child:wait() suspends the caller until the child exits.

local uv = require('uv')
local EventEmitter = require('events').EventEmitter
local Stream = require('stream').Stream
local errors = require('internal.errors')
local wait = require('internal.wait')
local internal_uv = require('internal.uv')

local error, next, pairs, tostring, type = error, next, pairs, tostring, type
local concat = table.concat
local spawn_co = require('internal.binding').spawn

local M = {}

local ChildProcess = EventEmitter:extend('ChildProcess')
M.ChildProcess = ChildProcess

local STDIO_NAMES = { 'stdin', 'stdout', 'stderr' }

-- opts.stdio: 'pipe' (default), 'inherit', 'ignore', or an array with one
-- entry per descriptor: 'pipe', 'inherit', 'ignore', nil (ignore), an fd
-- number, or a stream (its handle is shared with the child).
local function stdio_plan(stdio)
  if stdio == nil or type(stdio) == 'string' then
    local kind = stdio or 'pipe'
    stdio = { kind, kind, kind }
  end
  if type(stdio) ~= 'table' then
    error('spawn: options.stdio must be a string or an array', 3)
  end
  local n = #stdio
  if n < 3 then n = 3 end
  local plan, pipes = {}, {}
  for i = 1, n do
    local entry = stdio[i]
    if entry == nil then entry = (i <= 3) and 'pipe' or 'ignore' end
    if entry == 'pipe' then
      local pipe = uv.new_pipe(false)
      plan[i] = pipe
      pipes[i] = pipe
    elseif entry == 'inherit' then
      plan[i] = i - 1
    elseif entry == 'ignore' then
      plan[i] = nil
    elseif type(entry) == 'number' then
      plan[i] = entry
    elseif type(entry) == 'table' and entry._handle then
      plan[i] = entry._handle
    else
      for _, pipe in pairs(pipes) do pipe:close() end
      error('spawn: options.stdio[' .. i .. '] must be \'pipe\', ' ..
        '\'inherit\', \'ignore\', an fd or a stream, got ' .. tostring(entry), 3)
    end
  end
  return plan, pipes, n
end

local function env_array(env)
  if env == nil then return nil end
  if type(env) ~= 'table' then
    error('spawn: options.env must be a table', 3)
  end
  local list = {}
  for k, v in pairs(env) do
    list[#list + 1] = tostring(k) .. '=' .. tostring(v)
  end
  return list
end

local function maybe_close(self)
  if self._closeEmitted or self.exitCode == nil and self.signalCode == nil then
    return
  end
  for i = 1, #STDIO_NAMES do
    local s = self[STDIO_NAMES[i]]
    if s and not s._destroyed then return end
  end
  self._closeEmitted = true
  self:emit('close', self.exitCode, self.signalCode)
end

-- spawn(command [, args] [, opts]) -> child | nil, err
-- opts: cwd, env (a table of name = value; default: this process's),
-- stdio (see above), detached, uid, gid, shell (true or a shell path: run
-- command through it), argv0. A program that cannot be started is an
-- error value (err.code 'ENOENT', 'EACCES', ...), not an exception.
function M.spawn(command, args, opts)
  if type(args) == 'table' and args[1] == nil and next(args) ~= nil and
      opts == nil then
    args, opts = nil, args
  end
  if type(command) ~= 'string' then
    error('spawn: command must be a string, got ' .. type(command), 2)
  end
  if args ~= nil and type(args) ~= 'table' then
    error('spawn: args must be an array of strings, got ' .. type(args), 2)
  end
  opts = opts or {}
  local file, argv = command, { opts.argv0 or command }
  if opts.shell then
    file = type(opts.shell) == 'string' and opts.shell or '/bin/sh'
    local line = command
    if args and #args > 0 then line = line .. ' ' .. concat(args, ' ') end
    argv = { file, '-c', line }
  elseif args then
    for i = 1, #args do argv[#argv + 1] = tostring(args[i]) end
  end
  local plan, pipes, n = stdio_plan(opts.stdio)
  local self = ChildProcess.new()
  self.spawnfile = file
  self.spawnargs = argv
  local handle, pid = uv.spawn(file, {
    args = { table.unpack(argv, 2) },
    stdio = { table.unpack(plan, 1, n) },
    env = env_array(opts.env),
    cwd = opts.cwd,
    uid = opts.uid,
    gid = opts.gid,
    detached = opts.detached,
  }, function(code, signal)
    self:_exited(code, signal)
  end)
  if not handle then
    for _, pipe in pairs(pipes) do pipe:close() end
    local e = errors.uv(pid, 'spawn ' .. file) -- Node: "spawn nope ENOENT"
    e.path, e.spawnargs = file, argv
    return nil, e
  end
  self._handle = handle
  self.pid = pid
  for i = 1, n do
    local pipe = pipes[i]
    if pipe then
      local s = Stream.new(pipe, { allowHalfOpen = true })
      if i == 1 then
        self.stdin = s
      elseif i <= 3 then
        self[STDIO_NAMES[i]] = s
        s:once('end', function() s:destroy() end)
      end
      s:once('close', function() maybe_close(self) end)
      self.stdio = self.stdio or {}
      self.stdio[i] = s
    end
  end
  spawn_co(self.emit, self, 'spawn')
  return self
end

-- Node's shape: a signal ends a child with exitCode nil, signalCode name.
function ChildProcess:_exited(code, signal)
  if signal ~= 0 then
    local name = internal_uv.signal_name(signal)
    self.signalCode = name and name:upper() or signal
  else
    self.exitCode = code
  end
  local handle = self._handle
  if handle and not handle:is_closing() then handle:close() end
  -- Nobody can read our stdin now; what the child wrote stays readable
  -- while its pipes drain and close.
  if self.stdin then self.stdin:destroy() end
  if self.stdout then self.stdout:_readToEnd() end
  if self.stderr then self.stderr:_readToEnd() end
  local waiters = self._waiters
  self._waiters = nil
  self:emit('exit', self.exitCode, self.signalCode)
  if waiters then
    for i = 1, #waiters do waiters[i](self.exitCode, self.signalCode) end
  end
  maybe_close(self)
end

-- wait([cb]) -> code, signal: suspends the caller until the child exits
-- (code nil and signal a name such as 'SIGTERM' when a signal ended it).
-- With cb: returns at once; cb(code, signal) follows.
function ChildProcess:wait(cb)
  if self.exitCode ~= nil or self.signalCode ~= nil then
    if cb then
      spawn_co(cb, self.exitCode, self.signalCode)
      return
    end
    return self.exitCode, self.signalCode
  end
  self._waiters = self._waiters or {}
  if cb then
    wait.check_callback(cb, 'wait')
    self._waiters[#self._waiters + 1] = cb
    return
  end
  local wake, park = wait.parking('wait', 2)
  self._waiters[#self._waiters + 1] = wake
  return park()
end

-- kill([signal]) -> true | false: sends signal (default 'SIGTERM').
function ChildProcess:kill(sig)
  local handle = self._handle
  if not handle or handle:is_closing() then return false end
  local ok = handle:kill(sig or 'sigterm')
  if ok then self.killed = true end
  return ok ~= nil
end

function ChildProcess:ref()
  if self._handle and not self._handle:is_closing() then self._handle:ref() end
  return self
end

function ChildProcess:unref()
  if self._handle and not self._handle:is_closing() then self._handle:unref() end
  return self
end

-- exec and execFile -----------------------------------------------------------

local MAX_BUFFER = 1024 * 1024

-- Runs a child to completion, collecting its output.
local function collect(file, args, opts, cb, who)
  opts = opts or {}
  wait.check_callback(cb, who)
  return wait.run(who, cb, function(done)
    local child, err = M.spawn(file, args, {
      cwd = opts.cwd, env = opts.env, shell = opts.shell, uid = opts.uid,
      gid = opts.gid, stdio = { 'pipe', 'pipe', 'pipe' },
    })
    if not child then return done(err) end
    local max = opts.maxBuffer or MAX_BUFFER
    local out, errout, size, overflow = {}, {}, 0, false
    local function drain(stream, into)
      spawn_co(function()
        while true do
          local chunk = stream:read()
          if not chunk then break end
          size = size + #chunk
          if size > max then
            overflow = true
            child:kill(opts.killSignal or 'SIGTERM')
            stream:destroy()
            break
          end
          into[#into + 1] = chunk
        end
      end)
    end
    drain(child.stdout, out)
    drain(child.stderr, errout)
    if opts.input then
      child.stdin:write(opts.input)
    end
    child.stdin:finish()
    local timer
    if opts.timeout and opts.timeout > 0 then
      timer = uv.new_timer()
      uv.update_time()
      timer:start(opts.timeout, 0, function()
        child._timedOut = true
        child:kill(opts.killSignal or 'SIGTERM')
      end)
    end
    child:once('close', function(code, signal)
      if timer then timer:close() end
      if child._timedOut then
        return done('timeout')
      elseif overflow then
        return done(errors.new('ERR_CHILD_PROCESS_STDIO_MAXBUFFER',
          'stdout or stderr maxBuffer exceeded'))
      end
      done(nil, concat(out), concat(errout), code, signal)
    end)
  end)
end

-- exec(command [, opts] [, cb]) -> stdout, stderr, code, signal | nil, err
-- Runs command through /bin/sh. A non-zero exit is not an error: look at
-- code (and signal). err is for a shell that cannot start, 'timeout'
-- (opts.timeout ms passed; the child was killed) or maxBuffer (default
-- 1 MiB of output) exceeded. opts: cwd, env, timeout, maxBuffer,
-- killSignal, input (written to the child's stdin), shell (path).
-- With cb: cb(err, stdout, stderr, code, signal).
function M.exec(command, opts, cb)
  if type(opts) == 'function' then opts, cb = nil, opts end
  if type(command) ~= 'string' then
    error('exec: command must be a string, got ' .. type(command), 2)
  end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.shell = o.shell or true
  return collect(command, nil, o, cb, 'exec')
end

-- execFile(file [, args] [, opts] [, cb]): as exec, without a shell.
function M.execFile(file, args, opts, cb)
  if type(args) == 'function' then args, opts, cb = nil, nil, args
  elseif type(opts) == 'function' then opts, cb = nil, opts end
  if type(args) == 'table' and args[1] == nil and next(args) ~= nil then
    args, opts = nil, args
  end
  if type(file) ~= 'string' then
    error('execFile: file must be a string, got ' .. type(file), 2)
  end
  return collect(file, args, opts, cb, 'execFile')
end

return M
