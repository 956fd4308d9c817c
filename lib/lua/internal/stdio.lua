-- process.stdin, process.stdout and process.stderr, made on first use, as
-- Node chooses them: a TTY or pipe handle (a stream.Stream), or, for a
-- regular file, synchronous reads and writes through the C library.
-- Output is synchronous in every case (Node does the same on Linux), so
-- nothing written is lost when the process exits right after.

local uv = require('uv')
local internal_uv = require('internal.uv')
local EventEmitter = require('events').EventEmitter
local Stream = require('stream').Stream

local error, type = error, type
local binding = require('internal.binding')
local spawn, before_output = binding.spawn, binding.before_output
local wait = require('internal.wait')

local M = {}

-- A file (or /dev/null) as stdio: plain blocking C stdio, which is fast for
-- files and keeps the order with print() and io.write().
local FileStream = EventEmitter:extend('FileStream')

function FileStream:init(file, fd)
  self._file = file
  self.fd = fd
  self.bytesRead = 0
  self.bytesWritten = 0
end

function FileStream:read(cb)
  if cb ~= nil then
    wait.in_background(self, self.read, cb)
    return
  end
  if self._closed then return nil, 'closed' end
  local chunk = self._file:read(65536)
  if chunk then self.bytesRead = self.bytesRead + #chunk end
  return chunk
end

function FileStream:write(data, cb)
  local t = type(data)
  if t ~= 'string' and t ~= 'table' then
    error('write: data must be a string or an array of strings, got ' .. t, 2)
  end
  if t == 'table' then data = table.concat(data) end
  local ok, err = self._file:write(data)
  if ok then
    self._file:flush()
    self.bytesWritten = self.bytesWritten + #data
  end
  if cb then spawn(cb, ok and nil or err) end
  if not ok then return nil, err end
  return true
end

function FileStream:on(name, listener)
  EventEmitter.on(self, name, listener)
  if name == 'data' and not self._flowing then
    self._flowing = true
    spawn(function()
      while true do
        local chunk = self:read()
        if not chunk then break end
        self:emit('data', chunk)
      end
      self:emit('end')
    end)
  end
  return self
end

function FileStream:finish(data, cb)
  if type(data) == 'function' then data, cb = nil, data end
  if data ~= nil then self:write(data) end
  if cb then spawn(cb) end
  return self
end

function FileStream:shutdown(cb) return self:finish(nil, cb) end
function FileStream:destroy() self._closed = true return self end
function FileStream:close(cb) self._closed = true if cb then spawn(cb) end return self end
function FileStream:setTimeout() return self end
function FileStream:ref() return self end
function FileStream:unref() return self end
function FileStream:pause() return self end
function FileStream:resume() return self end
function FileStream:writeQueueSize() return 0 end

local FILES = { [0] = io.stdin, [1] = io.stdout, [2] = io.stderr }

-- A Stream whose writes first flush what print() and io.write() buffered,
-- so the two kinds of output keep their order. On a terminal, an open
-- prompt steps aside first (host/repl.c redraws it after).
local StdioStream = Stream:extend('StdioStream')

function StdioStream:write(data, cb)
  io.stdout:flush()
  if self.isTTY then before_output(data) end
  return Stream.write(self, data, cb)
end

local function open(fd)
  local kind = uv.guess_handle(fd)
  local handle
  if kind == 'tty' then
    handle = uv.new_tty(fd, fd == 0)
  elseif kind == 'pipe' then
    handle = uv.new_pipe(false)
    if handle and not handle:open(fd) then
      handle:close()
      handle = nil
    end
  elseif kind == 'tcp' then
    handle = uv.new_tcp()
    if handle and not handle:open(fd) then
      handle:close()
      handle = nil
    end
  end
  if not handle then
    return FileStream.new(FILES[fd], fd)
  end
  internal_uv.hide(handle) -- the runtime's: closed at exit, not a leak
  if fd ~= 0 then
    handle:set_blocking(true)
    handle:unref()
  end
  local stream = StdioStream.new(handle, { allowHalfOpen = true })
  stream.fd = fd
  stream.isTTY = kind == 'tty' or nil
  if kind == 'tty' and fd ~= 0 then
    local width, height = handle:get_winsize()
    stream.columns, stream.rows = width, height
  end
  return stream
end

M.open = open

return M
