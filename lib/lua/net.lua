-- net: TCP and Unix-socket servers and clients, as in Node, with the
-- coroutine style of luvhost streams (see stream.lua).

local uv = require('uv')
local EventEmitter = require('events').EventEmitter
local Stream = require('stream').Stream
local lazy_fields = require('stream').lazy_fields
local errors = require('internal.errors')
local wait = require('internal.wait')
local binding = require('internal.binding')

local error, rawget, select, tonumber, type = error, rawget, select, tonumber,
  type
local co_isyieldable = coroutine.isyieldable
local spawn = binding.spawn

local M = {}

local function family_name(family)
  if family == 'inet6' then return 'IPv6' end
  if family == 'inet' then return 'IPv4' end
  return family
end

local function is_ip(host)
  return type(host) == 'string' and
    (host:match('^%d+%.%d+%.%d+%.%d+$') ~= nil or host:find(':', 1, true) ~= nil)
end

M.isIPv4 = function(s)
  if type(s) ~= 'string' then return false end
  local a, b, c, d = s:match('^(%d+)%.(%d+)%.(%d+)%.(%d+)$')
  if not a then return false end
  for _, part in ipairs({ a, b, c, d }) do
    if #part > 1 and part:sub(1, 1) == '0' or tonumber(part) > 255 then
      return false
    end
  end
  return true
end

M.isIPv6 = function(s)
  return type(s) == 'string' and s:find(':', 1, true) ~= nil and
    uv.getaddrinfo ~= nil and
    (uv.getaddrinfo(s, nil, { numerichost = true, family = 'inet6' }) ~= nil)
end

M.isIP = function(s)
  if M.isIPv4(s) then return 4 end
  if M.isIPv6(s) then return 6 end
  return 0
end

-- Resolves host to a numeric address: the calling coroutine waits for DNS
-- when it is a name.
local function resolve(host, family)
  if is_ip(host) then return host end
  local dns = require('dns')
  local address, err = dns.lookup(host, { family = family or 0 })
  if not address then return nil, err end
  return address
end

-- Socket ----------------------------------------------------------------------

local Socket = Stream:extend('Socket')
M.Socket = Socket

-- The addresses are read from the handle when first asked for.
local function name_field(self, key)
  if rawget(self, '_named') or self._destroyed then return nil end
  self._named = true
  self:_names()
  return rawget(self, key)
end

lazy_fields(Socket, {
  bytesRead = function() return 0 end,
  bytesWritten = function() return 0 end,
  remoteAddress = name_field,
  remotePort = name_field,
  remoteFamily = name_field,
  localAddress = name_field,
  localPort = name_field,
})

-- Socket.new([opts]) makes an unconnected socket (opts.path: a Unix
-- socket); connect() connects it. Socket.new(opts, handle) wraps an
-- accepted handle.
function Socket:init(opts, handle)
  if handle then
    Stream.init(self, handle, opts)
    return
  end
  Stream.init(self, opts and opts.path and uv.new_pipe(false) or uv.new_tcp(),
    opts)
end

-- The server's count of open connections.
function Socket:_onclose()
  local server = self.server
  if server then server:_connectionClosed() end
end

-- While connecting, stream operations wait for the outcome: coroutines
-- park, callbacks and event-style calls are queued in order.
local function after_connect(self, fn)
  local pending = self._pending
  if not pending then
    pending = {}
    self._pending = pending
  end
  pending[#pending + 1] = fn
end

local function connected(self)
  local pending = self._pending
  self._pending = nil
  if pending then
    for i = 1, #pending do pending[i]() end
  end
end

local function park_until_connected(self)
  local w = wait.waiter('socket', 4)
  after_connect(self, function() w:wake() end)
  w:wait()
end

for _, name in ipairs({ 'read', 'write', 'shutdown', 'finish', 'resume' }) do
  local base = Stream[name]
  Socket[name] = function(self, ...)
    if self.connecting then
      local n = select('#', ...)
      local cb = n > 0 and select(n, ...) or nil
      if type(cb) == 'function' or name == 'resume' or not co_isyieldable() then
        local args = table.pack(...)
        after_connect(self, function() base(self, table.unpack(args, 1, args.n)) end)
        if name == 'write' then return cb ~= nil and false or true end
        return self
      end
      park_until_connected(self)
    end
    return base(self, ...)
  end
end

function Socket:_names()
  local handle = self._handle
  if handle:get_type() ~= 'tcp' then return end
  local peer = handle:getpeername()
  if peer then
    self.remoteAddress = peer.ip
    self.remotePort = peer.port
    self.remoteFamily = family_name(peer.family)
  end
  local here = handle:getsockname()
  if here then
    self.localAddress = here.ip
    self.localPort = here.port
  end
end

function Socket:_errinfo()
  if self._path then return { path = self._path } end
  if self.remoteAddress then
    return { address = self.remoteAddress, port = self.remotePort }
  end
  return self._target
end

function Socket:address()
  if self._destroyed then return nil end
  local handle = self._handle
  if handle:get_type() ~= 'tcp' then return { path = self._path } end
  local here = handle:getsockname()
  if not here then return nil end
  return { address = here.ip, family = family_name(here.family), port = here.port }
end

function Socket:setNoDelay(on)
  if not self._destroyed and self._handle:get_type() == 'tcp' then
    self._handle:nodelay(on ~= false)
  end
  return self
end

-- setKeepAlive([enable] [, initialDelay ms])
function Socket:setKeepAlive(enable, delay)
  if not self._destroyed and self._handle:get_type() == 'tcp' then
    enable = enable == true
    self._handle:keepalive(enable, enable and math.max(1, (delay or 0) // 1000) or 0)
  end
  return self
end

-- connect(opts [, cb]) on a socket made with Socket.new(): see net.connect.
function Socket:connect(opts, cb)
  if type(opts) ~= 'table' then
    error('connect: options must be a table', 2)
  end
  local path = opts.path
  local port = tonumber(opts.port)
  if path == nil and (port == nil or port < 0 or port > 65535 or port % 1 ~= 0) then
    error('connect: options.port must be an integer from 0 to 65535', 2)
  end
  if cb ~= nil and type(cb) ~= 'function' then
    error('connect: callback must be a function, got ' .. type(cb), 2)
  end
  if self.connecting or self._connected then
    error('connect: the socket is already connecting or connected', 2)
  end
  self.connecting = true
  local function run()
    local ok, err = self:_connect(path, opts.host or 'localhost', port, opts)
    self.connecting = false
    if ok then
      self._connected = true
      self:emit('connect')
      self:emit('ready')
    elseif not self._destroyed then
      -- A waiting coroutine or a callback gets the error as a value;
      -- otherwise it is the 'error' event's.
      self._err = err
      if not cb and not self._waiter then self:emit('error', err) end
      self:destroy()
    end
    connected(self)
    return ok, err
  end
  if cb then
    cb = wait.traced(cb)
    spawn(function()
      local ok, err = run()
      if ok then cb(nil, self) else cb(err) end
    end)
    return self
  end
  if co_isyieldable() then
    self._waiter = true
    local ok, err = run()
    self._waiter = nil
    if not ok then return nil, err end
    return self
  end
  spawn(run) -- event style: 'connect' or 'error' follows
  return self
end

function Socket:_connect(path, host, port, opts)
  local w = wait.waiter('connect', 4)
  local handle = self._handle
  local req, err
  if path then
    self._path = path
    req, err = handle:connect(path, function(cerr) w:wake(cerr) end)
  else
    local address, rerr = resolve(host, opts.family)
    if not address then return nil, rerr end
    if self._destroyed then return nil, 'closed' end
    self._target = { address = address, port = port }
    if opts.localAddress or opts.localPort then
      local ok, berr = handle:bind(opts.localAddress or '0.0.0.0', opts.localPort or 0)
      if not ok then return nil, errors.uv(berr, 'bind', self._target) end
    end
    req, err = handle:connect(address, port, function(cerr) w:wake(cerr) end)
  end
  if not req then
    return nil, errors.uv(err, 'connect', self:_errinfo())
  end
  local timer
  if opts.timeout then -- bounds the connect itself, then idle time
    timer = uv.new_timer()
    uv.update_time()
    timer:start(opts.timeout, 0, function() w:wake('timeout') end)
  end
  local cerr = w:wait()
  if timer then timer:close() end
  if cerr == 'timeout' then return nil, 'timeout' end
  if cerr then
    return nil, errors.uv(cerr, 'connect', self:_errinfo())
  end
  if self._destroyed then return nil, 'closed' end
  self:_names()
  if opts.noDelay then self:setNoDelay(true) end
  if opts.keepAlive then self:setKeepAlive(true, opts.keepAliveInitialDelay) end
  if opts.timeout then self:setTimeout(opts.timeout) end
  return true
end

-- net.connect(opts | port [, host] [, cb]) / net.createConnection
-- opts: host (default 'localhost'), port, path (Unix socket), family,
-- localAddress, localPort, noDelay, keepAlive, timeout.
-- In a coroutine without cb: waits, returns the connected socket or
-- nil, err. With cb: returns the socket at once; cb(err, socket) follows.
-- Elsewhere: returns the socket; 'connect' or 'error' follows.
function M.connect(opts, host, cb)
  if type(opts) ~= 'table' then
    opts = { port = opts, host = type(host) == 'string' and host or nil }
  end
  if type(host) == 'function' then cb = host end
  return Socket.new(opts):connect(opts, cb)
end

M.createConnection = M.connect

-- Server ----------------------------------------------------------------------

local Server = EventEmitter:extend('Server')
M.Server = Server

-- net.createServer([opts] [, onConnection]) -> Server.
-- onConnection(socket) runs on a coroutine of its own for each connection,
-- so it can read and write in the coroutine style.
-- opts: allowHalfOpen, highWaterMark, noDelay, keepAlive.
function M.createServer(opts, onConnection)
  if type(opts) == 'function' then opts, onConnection = nil, opts end
  local server = Server.new(opts)
  if onConnection then server:on('connection', onConnection) end
  return server
end

function Server:init(opts)
  self._opts = opts or {}
  self._connections = 0
  self.maxConnections = nil
  self.listening = false
end

local function accept(self, err)
  if err then
    self:emit('error', errors.uv(err, 'accept'))
    return
  end
  local listener = self._handle
  local client = self._path and uv.new_pipe(false) or uv.new_tcp()
  local ok, aerr = listener:accept(client)
  if not ok then
    client:close()
    if self:listenerCount('error') > 0 then
      self:emit('error', errors.uv(aerr, 'accept'))
    end
    return
  end
  if self.maxConnections and self._connections >= self.maxConnections then
    client:close()
    return
  end
  local opts = self._opts
  local socket = Socket.new(opts, client)
  socket.server = self
  self._connections = self._connections + 1
  if opts.noDelay then socket:setNoDelay(true) end
  if opts.keepAlive then socket:setKeepAlive(true, opts.keepAliveInitialDelay) end
  -- Each listener on a coroutine of its own: a handler that waits holds
  -- up neither accepting nor the other listeners.
  local listeners = self._events and self._events.connection
  if type(listeners) == 'function' then
    spawn(listeners, socket)
  elseif listeners then
    for i = 1, #listeners do spawn(listeners[i], socket) end
  end
end

-- listen(port [, host] [, backlog] [, cb]) or listen({ port, host, path,
-- backlog, ipv6Only, reusePort } [, cb]) -> server | nil, err.
-- Port 0 picks a free port (see address()). Without host, listens on all
-- IPv6 and IPv4 addresses ('::' dual-stack, else '0.0.0.0'). cb is a
-- 'listening' listener.
function Server:listen(port, host, backlog, cb)
  local opts
  if type(port) == 'table' then
    opts, cb = port, host
  else
    if type(host) == 'function' then host, backlog, cb = nil, nil, host
    elseif type(backlog) == 'function' then backlog, cb = nil, backlog end
    opts = { port = port, host = host, backlog = backlog }
  end
  if cb ~= nil and type(cb) ~= 'function' then
    error('listen: callback must be a function, got ' .. type(cb), 2)
  end
  if self._handle then error('listen: the server is already listening', 2) end
  if opts.path == nil then
    local p = tonumber(opts.port or 0)
    if p == nil or p < 0 or p > 65535 or p % 1 ~= 0 then
      error('listen: port must be an integer from 0 to 65535', 2)
    end
    opts.port = p
  end
  if cb then self:once('listening', cb) end
  local ok, err = self:_listen(opts)
  if not ok then
    self._handle = nil
    if self:listenerCount('error') > 0 then self:emit('error', err) end
    return nil, err
  end
  self.listening = true
  require('internal.shutdown').track(self, false)
  spawn(self.emit, self, 'listening')
  return self
end

function Server:_listen(opts)
  local handle, ok, err
  local info
  if opts.path then
    self._path = opts.path
    info = { path = opts.path }
    handle = uv.new_pipe(false)
    self._handle = handle
    ok, err = handle:bind(opts.path)
  else
    local host = opts.host
    -- Workers of `luvhost --workers N` share their ports.
    local flags = { ipv6only = opts.ipv6Only,
      reuseport = opts.reusePort or process.workerId ~= nil }
    handle = uv.new_tcp()
    self._handle = handle
    if host == nil then
      info = { address = '::', port = opts.port }
      ok, err = handle:bind('::', opts.port, flags)
      if not ok then -- no IPv6 here: all IPv4 addresses
        handle:close()
        handle = uv.new_tcp()
        self._handle = handle
        info.address = '0.0.0.0'
        ok, err = handle:bind('0.0.0.0', opts.port, flags)
      end
    else
      local address, rerr = resolve(host)
      if not address then
        handle:close()
        return nil, rerr
      end
      info = { address = address, port = opts.port }
      ok, err = handle:bind(address, opts.port, flags)
    end
  end
  if ok then
    ok, err = handle:listen(opts.backlog or 511, function(lerr)
      accept(self, lerr)
    end)
  end
  if not ok then
    handle:close()
    return nil, errors.uv(err, 'listen', info)
  end
  return true
end

-- address() -> { address, family = 'IPv4' | 'IPv6', port } or { path }
function Server:address()
  local handle = self._handle
  if not handle or handle:is_closing() then return nil end
  if self._path then return { path = self._path } end
  local name = handle:getsockname()
  if not name then return nil end
  return { address = name.ip, family = family_name(name.family), port = name.port }
end

function Server:_closed()
  if self._closedEmitted then return end
  self._closedEmitted = true
  local callbacks = self._closeCallbacks
  self._closeCallbacks = nil
  if callbacks then
    for i = 1, #callbacks do callbacks[i]() end
  end
  self:emit('close')
end

-- close([cb]): stops accepting; 'close' (and cb) follow once the open
-- connections have ended.
function Server:close(cb)
  local handle = self._handle
  if cb then
    self._closeCallbacks = self._closeCallbacks or {}
    self._closeCallbacks[#self._closeCallbacks + 1] = cb
  end
  if self._closing then return self end
  self._closing = true
  self.listening = false
  require('internal.shutdown').untrack(self)
  if handle and not handle:is_closing() then
    handle:close(function()
      if self._connections == 0 then self:_closed() end
    end)
  elseif self._connections == 0 then
    spawn(function() self:_closed() end)
  end
  return self
end

function Server:_connectionClosed()
  self._connections = self._connections - 1
  if self._closing and self._connections == 0 then self:_closed() end
end

function Server:getConnections(cb)
  if cb then spawn(cb, nil, self._connections) end
  return self._connections
end

function Server:ref()
  if self._handle and not self._handle:is_closing() then self._handle:ref() end
  return self
end

function Server:unref()
  if self._handle and not self._handle:is_closing() then self._handle:unref() end
  return self
end

return M
