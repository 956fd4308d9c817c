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

local error, tostring, type = error, tostring, type
local co_isyieldable = coroutine.isyieldable
local spawn = require('internal.binding').spawn

local M = {}

local HIGH_WATER_MARK = 64 * 1024

local Stream = EventEmitter:extend('Stream')
M.Stream = Stream
M.HIGH_WATER_MARK = HIGH_WATER_MARK

-- opts: highWaterMark (bytes), allowHalfOpen (keep writing after the peer
-- ended; default false, as in Node).
function Stream:init(handle, opts)
  self._handle = handle
  if opts then
    self._hwm = opts.highWaterMark
    self._allowHalfOpen = opts.allowHalfOpen
  end
  self.bytesRead = 0
  self.bytesWritten = 0
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
  local reader, writer = self._reader, self._writer
  self._reader, self._writer = nil, nil
  if reader then reader:wake(nil, e) delivered = true end
  if writer then writer:wake(nil, e) delivered = true end
  if not delivered or has(self, 'error') then self:emit('error', e) end
  self:destroy()
end

-- Reading ---------------------------------------------------------------------

local on_read

local function start_reading(self)
  if self._reading or self._eof or self._destroyed then return end
  local handle = self._handle
  local cb = self._read_cb
  if not cb then
    cb = function(err, chunk) on_read(self, err, chunk) end
    self._read_cb = cb
  end
  local ok, err = handle:read_start(cb)
  if not ok then return fail(self, err, 'read') end
  self._reading = true
end

local function stop_reading(self)
  if not self._reading then return end
  self._reading = false
  if not self._destroyed then self._handle:read_stop() end
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
    local reader = self._reader
    self._reader = nil
    if reader then reader:wake(nil) end
    self:emit('end')
    if self._shut and not self._writer then
      self:destroy()
    else
      maybe_auto_end(self)
    end
    return
  end
  self.bytesRead = self.bytesRead + #chunk
  touch(self)
  local flowing = self._flowing
  if flowing then self:emit('data', chunk) end
  local reader = self._reader
  if reader then
    self._reader = nil
    reader:wake(chunk)
  elseif not flowing then
    local queue = self._queue
    if not queue then
      queue = {}
      self._queue = queue
    end
    queue[#queue + 1] = chunk
  end
  -- Pull: keep reading only while someone still waits or listens.
  if not self._reader and not self._flowing then stop_reading(self) end
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
  local w = wait.waiter('read', 3)
  self._reader = w
  start_reading(self)
  local data, err = w:wait()
  if self._reader == w then self._reader = nil end
  return data, err
end

-- read([cb]) -> chunk | nil at the end | nil, err: the next chunk of data.
-- Suspends the calling coroutine until data arrives; with a callback it
-- returns at once and calls cb(err, chunk) later (chunk nil at the end).
function Stream:read(cb)
  if cb == nil then return read_wait(self) end
  if type(cb) ~= 'function' then
    error('read: callback must be a function, got ' .. type(cb), 2)
  end
  spawn(function()
    local chunk, err = read_wait(self)
    if err ~= nil then cb(err) else cb(nil, chunk) end
  end)
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
    local writer = self._writer
    if writer then
      self._writer = nil
      writer:wake(true)
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
  self.bytesWritten = self.bytesWritten + size
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
  local w = wait.waiter('write', 2)
  self._writer = w
  local ok, werr = w:wait()
  if self._writer == w then self._writer = nil end
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
    if self._eof or not self._handle:is_readable() then self:destroy() end
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
  local reader, writer = self._reader, self._writer
  self._reader, self._writer = nil, nil
  local why = self._err or 'closed'
  if reader then reader:wake(nil, why) end
  if writer then writer:wake(nil, why) end
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
    local reader, writer = self._reader, self._writer
    self._reader, self._writer = nil, nil
    if reader then reader:wake(nil, 'timeout') end
    if writer then writer:wake(nil, 'timeout') end
    self:emit('timeout')
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
