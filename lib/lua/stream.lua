-- stream: a duplex byte stream over a libuv stream handle (TCP, pipe, TTY),
-- the base of net.Socket, process.stdin/stdout and child process pipes.
--
-- Two styles on one object:
-- * coroutine: chunk = s:read(), s:write(data) suspend the caller; reads
--   pull (the handle reads from the kernel only while someone waits or
--   listens) and writes wait while the queue is above the high-water mark;
-- * events: 'data', 'end', 'close', 'error', 'drain', 'timeout', as in Node.

local uv = require('uv')
local EventEmitter = require('events').EventEmitter
local errors = require('internal.errors')
local wait = require('internal.wait')

local error, rawget, tostring, type = error, rawget, tostring, type
local co_isyieldable, co_yield = coroutine.isyieldable, coroutine.yield
local binding = require('internal.binding')
local spawn, resume = binding.spawn, binding.resume

local M = {}

local HIGH_WATER_MARK = 64 * 1024

local Stream = EventEmitter:extend('Stream')
M.Stream = Stream
M.HIGH_WATER_MARK = HIGH_WATER_MARK

-- Fields an idle connection does not need are computed on first read:
-- a class's __index looks up methods, then calls class._getters[key].
-- (Memory per idle connection is what lets a server hold many.)
function M.lazy_fields(class, getters)
  class._getters = getters
  class.__index = function(self, key)
    local value = class[key]
    if value ~= nil then return value end
    local getter = class._getters[key]
    if getter then return getter(self, key) end
  end
end

local function zero() return 0 end

M.lazy_fields(Stream, { bytesRead = zero, bytesWritten = zero })

-- A parked reader or writer is its coroutine in self._reader/_writer; the
-- wake carries the tag, so a stray resume from elsewhere is ignored. The
-- field is cleared before waking: no second wake can follow.
local READ, WRITE = {}, {}

local function park(self, field, tag)
  self[field] = coroutine.running()
  while true do
    local got, a, b = co_yield()
    if got == tag then return a, b end
  end
end

local function wake_reader(self, a, b)
  local co = self._reader
  if co then
    self._reader = nil
    resume(co, READ, a, b)
    return true
  end
end

local function wake_writer(self, a, b)
  local co = self._writer
  if co then
    self._writer = nil
    resume(co, WRITE, a, b)
    return true
  end
end

-- opts: highWaterMark (bytes), allowHalfOpen (keep writing after the peer
-- ended; default false, as in Node).
function Stream:init(handle, opts)
  self._handle = handle
  if opts then
    self._hwm = opts.highWaterMark
    self._allowHalfOpen = opts.allowHalfOpen
  end
end

local function hwm(self)
  return self._hwm or HIGH_WATER_MARK
end

local function has(self, name)
  local events = self._events
  return events ~= nil and events[name] ~= nil
end

-- Errors ----------------------------------------------------------------------

-- A failure of the stream itself: parked coroutines get it as a value; the
-- 'error' event fires when someone listens or nobody got it otherwise
-- (then, as in Node, an unheard 'error' is an uncaught error).
local function fail(self, err, syscall, delivered)
  if self._err or self._destroyed then return end
  local e = errors.uv(err, syscall, self._errinfo and self:_errinfo())
  self._err = e
  if wake_reader(self, nil, e) then delivered = true end
  if wake_writer(self, nil, e) then delivered = true end
  if not delivered or has(self, 'error') then self:emit('error', e) end
  self:destroy()
end

-- Reading ---------------------------------------------------------------------

local on_read

-- The handle, unless it is closed or closing (the script may close the
-- raw handle itself).
local function live(self)
  local handle = self._handle
  if self._destroyed or handle:is_closing() then return nil end
  return handle
end

local function start_reading(self)
  if self._reading or self._eof then return end
  local handle = live(self)
  if not handle then return end
  -- A fresh closure per start (starts are rare: reading goes on while a
  -- reader keeps coming back) rather than one more field per stream.
  local ok, err = handle:read_start(function(rerr, chunk)
    on_read(self, rerr, chunk)
  end)
  if not ok then return fail(self, err, 'read') end
  self._reading = true
end

local function stop_reading(self)
  if not self._reading then return end
  self._reading = false
  local handle = live(self)
  if handle then handle:read_stop() end
end

local function touch(self)
  local timer = self._timer
  if timer then timer:again() end
end

local function maybe_auto_end(self)
  if self._eof and not self._allowHalfOpen and not self._shut and
      not self._writer then
    self:shutdown()
  end
end

on_read = function(self, err, chunk)
  if err then
    stop_reading(self)
    return fail(self, err, 'read')
  end
  if chunk == nil then -- the peer ended its side
    stop_reading(self)
    self._eof = true
    wake_reader(self, nil)
    self:emit('end')
    if self._shut and not self._writer then
      self:destroy()
    else
      maybe_auto_end(self)
    end
    return
  end
  self.bytesRead = (rawget(self, 'bytesRead') or 0) + #chunk
  touch(self)
  local flowing = self._flowing
  if flowing then self:emit('data', chunk) end
  if self._reader then
    wake_reader(self, chunk)
  elseif not flowing then
    local queue = self._queue
    if not queue then
      queue = {}
      self._queue = queue
    end
    queue[#queue + 1] = chunk
  end
  -- Pull: keep reading only while someone still waits or listens, or,
  -- after our side ended, to see the peer end (what nobody asks for
  -- past the high-water mark is dropped then).
  if not self._reader and not self._flowing and not self._toEnd then
    if not self._shut then
      stop_reading(self)
    else
      local queue, size = self._queue, 0
      for i = 1, queue and #queue or 0 do size = size + #queue[i] end
      if size > hwm(self) then table.remove(queue, 1) end
    end
  end
end

local function take_queued(self)
  local queue = self._queue
  if not queue then return nil end
  local chunk = table.remove(queue, 1)
  if #queue == 0 then self._queue = nil end
  return chunk
end

-- The coroutine form of read.
local function read_wait(self)
  local chunk = take_queued(self)
  if chunk then return chunk end
  if self._eof then return nil end
  if self._err then return nil, self._err end
  if self._destroyed then return nil, 'closed' end
  if self._reader then return nil, 'socket busy reading' end
  wait.current('read', 3)
  start_reading(self)
  return park(self, '_reader', READ)
end

-- read([cb]) -> chunk | nil at the end | nil, err: the next chunk of data.
-- Suspends the calling coroutine until data arrives; with a callback it
-- returns at once and calls cb(err, chunk) later (chunk nil at the end).
function Stream:read(cb)
  if cb == nil then return read_wait(self) end
  if type(cb) ~= 'function' then
    error('read: callback must be a function, got ' .. type(cb), 2)
  end
  cb = wait.traced(cb)
  spawn(function()
    local chunk, err = read_wait(self)
    if err ~= nil then cb(err) else cb(nil, chunk) end
  end)
end

-- Reads whatever is left into the queue until the end, whoever asks: for
-- the output of a child that has exited, so the pipe can close while the
-- data stays readable.
function Stream:_readToEnd()
  self._toEnd = true
  start_reading(self)
end

-- Flowing mode: 'data' listeners get every chunk as it arrives.
function Stream:resume()
  self._flowing = true
  local queue = self._queue
  if queue then
    self._queue = nil
    for i = 1, #queue do self:emit('data', queue[i]) end
  end
  start_reading(self)
  return self
end

function Stream:pause()
  self._flowing = false
  if not self._reader then stop_reading(self) end
  return self
end

function Stream:isPaused()
  return not self._flowing
end

for _, method in ipairs({ 'on', 'addListener', 'once', 'prependListener',
  'prependOnceListener' }) do
  local base = EventEmitter[method]
  Stream[method] = function(self, name, listener)
    base(self, name, listener)
    if name == 'data' and self._flowing == nil then self:resume() end
    return self
  end
end

-- Writing -------------------------------------------------------------------

local function on_written(self, err, cb)
  if err and err ~= 'ECANCELED' then
    fail(self, err, 'write', cb ~= nil)
    if cb then cb(self._err or err) end
    return
  end
  if cb then cb(nil) end
  if self._destroyed then return end
  touch(self)
  if self._handle:get_write_queue_size() <= hwm(self) then
    if self._writer then
      wake_writer(self, true)
    elseif self._needDrain then
      self._needDrain = false
      self:emit('drain')
    end
    maybe_auto_end(self)
  end
end

local function write_error(self, why, cb)
  local e = errors.new('ERR_STREAM_DESTROYED', why)
  if cb then
    spawn(cb, e)
    return false
  end
  return nil, e
end

-- write(data [, cb]): data is a string or an array of strings.
-- Coroutine form (no cb): queues the data and returns true once the queue
-- is below the high-water mark (suspending the caller until then), or
-- nil, err. Callback form: returns whether the queue is below the mark
-- (Node's boolean) and calls cb(err) when the data is written.
function Stream:write(data, cb)
  local t = type(data)
  if t ~= 'string' and t ~= 'table' then
    error('write: data must be a string or an array of strings, got ' .. t, 2)
  end
  if cb ~= nil and type(cb) ~= 'function' then
    error('write: callback must be a function, got ' .. type(cb), 2)
  end
  cb = wait.traced(cb)
  if self._err then return write_error(self, tostring(self._err), cb) end
  if self._destroyed then
    return write_error(self, 'write after the stream was closed', cb)
  end
  if self._shut then return write_error(self, 'write after end', cb) end
  local size = 0
  if t == 'string' then
    size = #data
  else
    for i = 1, #data do size = size + #data[i] end
  end
  local done = cb and function(err) on_written(self, err, cb) end
    or self._write_cb
  if not done then
    done = function(err) on_written(self, err, nil) end
    self._write_cb = done
  end
  local req, err = self._handle:write(data, done)
  if not req then
    fail(self, err, 'write', true)
    if cb then
      spawn(cb, self._err)
      return false
    end
    return nil, self._err
  end
  self.bytesWritten = (rawget(self, 'bytesWritten') or 0) + size
  local below = self._handle:get_write_queue_size() <= hwm(self)
  if cb ~= nil or below then
    if not below then self._needDrain = true end
    return cb == nil or below
  end
  -- Over the mark: wait for the queue to drain (backpressure).
  if not co_isyieldable() then
    self._needDrain = true
    return false
  end
  if self._writer then return nil, 'socket busy writing' end
  local ok, werr = park(self, '_writer', WRITE)
  if ok then return true end
  return nil, werr or self._err or 'closed'
end

function Stream:writeQueueSize()
  if self._destroyed then return 0 end
  return self._handle:get_write_queue_size()
end

-- shutdown([cb]): ends the writing side after the queued writes (a FIN for
-- sockets). cb(err) follows.
function Stream:shutdown(cb)
  cb = wait.traced(cb)
  if self._shut or self._destroyed then
    if cb then spawn(cb, nil) end
    return self
  end
  self._shut = true
  local req, err = self._handle:shutdown(function(serr)
    if serr and serr ~= 'ECANCELED' and serr ~= 'ENOTCONN' then
      fail(self, serr, 'shutdown', cb ~= nil)
    end
    if cb then cb(serr) end
    self:emit('finish')
    local handle = live(self)
    if not handle then return end
    if self._eof or not handle:is_readable() then
      self:destroy()
    else
      start_reading(self) -- to see the peer end, then close
    end
  end)
  if not req then
    if cb then spawn(cb, err) end
    self:destroy()
  end
  return self
end

-- finish([data] [, cb]): writes the last data, then shuts down (Node's
-- end()).
function Stream:finish(data, cb)
  if type(data) == 'function' then data, cb = nil, data end
  if data ~= nil then self:write(data) end
  return self:shutdown(cb)
end

-- Closing -------------------------------------------------------------------

-- destroy([err]) / close(): closes now, without waiting for queued writes.
-- Parked coroutines resume with nil, 'closed' (or the error).
function Stream:destroy(err)
  if self._destroyed then return self end
  if err ~= nil and not self._err then
    self._err = err
    if has(self, 'error') then self:emit('error', err) end
  end
  self._destroyed = true
  self._reading = false
  local why = self._err or 'closed'
  wake_reader(self, nil, why)
  wake_writer(self, nil, why)
  local timer = self._timer
  if timer then
    self._timer = nil
    timer:close()
  end
  local handle = self._handle
  if handle and not handle:is_closing() then
    handle:close(function()
      if self._onclose then self:_onclose() end
      self:emit('close', self._err ~= nil)
    end)
  end
  return self
end

function Stream:close(cb)
  if cb then self:once('close', function() cb() end) end
  return self:destroy()
end

-- Timeouts --------------------------------------------------------------------

-- setTimeout(ms [, cb]): after ms without activity, emits 'timeout' (cb is
-- a 'timeout' listener) and parked reads and writes return nil,
-- 'timeout'. The stream stays open. 0 turns it off.
function Stream:setTimeout(ms, cb)
  if type(ms) ~= 'number' or ms < 0 then
    error('setTimeout: ms must be a non-negative number', 2)
  end
  if cb then self:once('timeout', cb) end
  local timer = self._timer
  if ms == 0 then
    if timer then
      self._timer = nil
      timer:close()
    end
    return self
  end
  if self._destroyed then return self end
  if not timer then
    timer = uv.new_timer()
    self._timer = timer
  end
  uv.update_time()
  timer:start(ms, ms, function()
    self:emit('timeout')
    wake_reader(self, nil, 'timeout')
    wake_writer(self, nil, 'timeout')
  end)
  return self
end

-- Handles -------------------------------------------------------------------

function Stream:ref()
  if not self._destroyed then self._handle:ref() end
  return self
end

function Stream:unref()
  if not self._destroyed then self._handle:unref() end
  return self
end

-- pipe(dest): copies everything read to dest with backpressure, then
-- finishes dest (unless opts.finish == false). Returns dest.
function Stream:pipe(dest, opts)
  spawn(function()
    while true do
      local chunk, err = self:read()
      if not chunk then
        if err and err ~= 'timeout' then dest:destroy(err) return end
        break
      end
      if not dest:write(chunk) then return end
    end
    if not (opts and opts.finish == false) then dest:finish() end
  end)
  return dest
end

return M
