-- dgram: Node's UDP sockets, coroutine-first. A Socket is an EventEmitter
-- ('listening', 'message', 'connect', 'error', 'close') over one uv_udp_t.
-- Calls that may wait (bind to a name, send, connect, receive) take an
-- optional trailing callback; without one, inside a coroutine, they
-- suspend it and return the outcome (value, or nil and an error).

local uv = require('uv')
local dns = require('dns')
local EventEmitter = require('events').EventEmitter
local binding = require('internal.binding')
local errors = require('internal.errors')
local wait = require('internal.wait')
local setImmediate = require('timers').setImmediate

local error, setmetatable, tostring, type = error, setmetatable, tostring, type
local format = string.format
local remove = table.remove
local tointeger = math.tointeger
local co_isyieldable = coroutine.isyieldable
local spawn = binding.spawn

local M = {}

-- Datagrams kept for receive() when nobody listens for 'message'; past
-- this the socket stops reading and the kernel's buffer takes over.
local RECEIVE_QUEUE_MAX = 64

local ANY = { inet = '0.0.0.0', inet6 = '::' }
local LOOPBACK = { inet = '127.0.0.1', inet6 = '::1' }
local FAMILY = { inet = 'IPv4', inet6 = 'IPv6' }

-- Errors -----------------------------------------------------------------------

-- A Node-shaped error from a libuv error name: "send ECONNREFUSED
-- 127.0.0.1:9".
local function sys_error(name, syscall, address, port)
  return errors.uv(name, syscall, { address = address, port = port })
end

-- Helpers ----------------------------------------------------------------------

local is_callable, check_callback = wait.is_callable, wait.check_callback

local function check_port(port, who, min)
  local p = tointeger(port)
  if p == nil or p < min or p > 65535 then
    error(format('%s: port must be an integer from %d to 65535, got %s',
      who, min, tostring(port)), 3)
  end
  return p
end

local function check_address(address, who)
  if address ~= nil and type(address) ~= 'string' then
    error(who .. ': address must be a string, got ' .. type(address), 3)
  end
end

-- Runs fn() on a coroutine of its own and hands its results to
-- report(...), never before the caller got control back (Node calls
-- callbacks asynchronously). A result known at once waits for the loop's
-- check phase (process.nextTick would not run under a uv.run called from
-- Lua until that returns).
local function in_background(fn, report)
  local returned = false
  spawn(function()
    local a, b = fn()
    if returned then
      report(a, b)
    else
      setImmediate(report, a, b)
    end
  end)
  returned = true
end

local function rinfo_of(addr, size)
  return {
    address = addr.ip,
    family = FAMILY[addr.family] or addr.family,
    port = addr.port,
    size = size,
  }
end

-- Socket -----------------------------------------------------------------------

local Socket = EventEmitter:extend('Socket')
M.Socket = Socket

-- State: _state 'unbound' | 'binding' | 'bound' | 'closed'; _connect nil |
-- 'connecting' | 'connected'.
function Socket:init(opts)
  local family = opts.type == 'udp6' and 'inet6' or 'inet'
  local handle, err = uv.new_udp(family)
  if not handle then error('dgram.createSocket: ' .. err, 3) end
  self.type = opts.type
  self._family = family
  self._flags = { reuseaddr = opts.reuseAddr == true,
    ipv6only = opts.ipv6Only == true }
  self._handle = handle
  self._state = 'unbound'
  self._bindWaiters = {}
  self._receivers = {}
  self._queue = {}
  self._reading = false
end

-- createSocket(type | opts [, onMessage]) -> Socket
-- type: 'udp4' | 'udp6'; opts: { type =, reuseAddr =, ipv6Only = }
function M.createSocket(opts, onMessage)
  if type(opts) == 'string' then opts = { type = opts } end
  if type(opts) ~= 'table' or (opts.type ~= 'udp4' and opts.type ~= 'udp6')
  then
    error("dgram.createSocket: type must be 'udp4' or 'udp6'", 2)
  end
  check_callback(onMessage, 'dgram.createSocket')
  local sock = Socket.new(opts)
  if onMessage then sock:on('message', onMessage) end
  return sock
end

local function check_open(self, who)
  if self._state == 'closed' then
    error(who .. ': the socket is closed', 3)
  end
  return self._handle
end

-- A numeric host as it is; a name resolved for the socket's family (waits
-- in the calling coroutine).
local function resolve(self, host)
  if dns.isIP(host) ~= 0 then return host end
  local address, err = dns.lookup(host,
    { family = self._family == 'inet6' and 6 or 4 })
  if not address then return nil, err end
  return address
end

-- Receiving ----------------------------------------------------------------------

local function on_recv(self, err, data, addr)
  if err then
    local e = sys_error(err, 'recvmsg')
    local receiver = remove(self._receivers, 1)
    if receiver then return receiver(e) end
    return self:emit('error', e)
  end
  if data == nil then return end -- nothing more to read for now
  local rinfo = rinfo_of(addr, #data)
  local listened = self:listenerCount('message') > 0
  if listened then self:emit('message', data, rinfo) end
  local receiver = remove(self._receivers, 1)
  if receiver then
    receiver(nil, data, rinfo)
  elseif not listened and self._state ~= 'closed' then
    local queue = self._queue
    queue[#queue + 1] = { data, rinfo }
    if #queue >= RECEIVE_QUEUE_MAX and self._reading then
      self._handle:recv_stop()
      self._reading = false
    end
  end
end

local function start_reading(self)
  if self._reading or self._state ~= 'bound' then return end
  local recv = self._onrecv
  if not recv then
    recv = function(err, data, addr) on_recv(self, err, data, addr) end
    self._onrecv = recv
  end
  self._handle:recv_start(recv)
  self._reading = true
end

-- Binding ------------------------------------------------------------------------

local function bind_done(self, err)
  local waiters = self._bindWaiters
  self._bindWaiters = {}
  for i = 1, #waiters do waiters[i](err) end
end

-- Binds the handle to a numeric address now: true | nil, err.
local function bind_now(self, ip, port)
  local ok, _, name = self._handle:bind(ip, port, self._flags)
  if not ok then return nil, sys_error(name, 'bind', ip, port) end
  self._state = 'bound'
  start_reading(self)
  process.nextTick(function()
    if self._state == 'bound' then self:emit('listening') end
  end)
  bind_done(self, nil)
  return true
end

-- Makes sure the socket is bound, in the calling coroutine: binds it to
-- any address and a random port if nobody did (as Node does before a send
-- or connect), or waits for a bind under way. true | nil, err.
local function ensure_bound(self)
  local state = self._state
  if state == 'bound' then return true end
  if state == 'closed' then return nil, 'closed' end
  if state == 'unbound' then return bind_now(self, ANY[self._family], 0) end
  local wake, park = wait.parking('bind', 2)
  local waiters = self._bindWaiters
  waiters[#waiters + 1] = wake
  local err = park()
  if err then return nil, err end
  return true
end

-- bind([port] [, address] [, cb]) / bind(opts [, cb]) -> self | nil, err
function Socket:bind(port, address, cb)
  if type(port) == 'table' then
    port, address, cb = port.port, port.address, address
  elseif is_callable(port) then
    port, address, cb = nil, nil, port
  elseif is_callable(address) then
    address, cb = nil, address
  end
  port = check_port(port or 0, 'bind', 0)
  check_address(address, 'bind')
  check_callback(cb, 'bind')
  check_open(self, 'bind')
  if self._state ~= 'unbound' then
    error('bind: the socket is already bound', 2)
  end
  self._state = 'binding'
  address = address or ANY[self._family]
  if cb then self:once('listening', cb) end
  local function run()
    local ip, err = resolve(self, address)
    if self._state == 'closed' then return nil, 'closed' end
    if ip then
      local ok
      ok, err = bind_now(self, ip, port)
      if ok then return self end
    end
    self._state = 'unbound'
    bind_done(self, err)
    return nil, err
  end
  if cb == nil and co_isyieldable() then return run() end
  in_background(run, function(ok, err)
    if not ok and err ~= 'closed' then self:emit('error', err) end
  end)
  return self
end

-- address() -> { address, family, port }; raises unless bound.
function Socket:address()
  local handle = check_open(self, 'address')
  if self._state ~= 'bound' then
    error('address: the socket is not bound', 2)
  end
  local addr = handle:getsockname()
  return { address = addr.ip, family = FAMILY[addr.family], port = addr.port }
end

-- Sending ------------------------------------------------------------------------

-- Sends one datagram from the calling coroutine: true | nil, err. With
-- fast, a datagram the kernel takes at once needs no wait.
local function send_now(self, data, port, address, fast)
  local ok, err = ensure_bound(self)
  if not ok then return nil, err end
  local ip
  if port ~= nil then
    ip, err = resolve(self, address)
    if not ip then return nil, err end
  end
  if self._state == 'closed' then return nil, 'closed' end
  local handle = self._handle
  if fast then
    local n, _, name = handle:try_send(data, ip, port)
    if n then return true end
    if name ~= 'EAGAIN' then return nil, sys_error(name, 'send', ip, port) end
  end
  local wake, park = wait.parking('send', 2)
  local req, _, name = handle:send(data, ip, port, wake)
  if not req then return nil, sys_error(name, 'send', ip, port) end
  local status = park()
  if status then return nil, sys_error(status, 'send', ip, port) end
  return true
end

local function size_of(data)
  if type(data) == 'string' then return #data end
  local n = 0
  for i = 1, #data do n = n + #data[i] end
  return n
end

-- send(msg, [offset, length,] port [, address] [, cb]); on a connected
-- socket send(msg, [offset, length] [, cb]). msg: a string or an array of
-- strings (one datagram). In a coroutine without cb: true | nil, err. With
-- cb: returns nothing and calls cb(err, bytes). Elsewhere: errors are
-- emitted as 'error'.
function Socket:send(msg, offset, length, port, address, cb)
  check_open(self, 'send')
  if self._connect ~= 'connected' then
    if address == nil and (port == nil or is_callable(port)) then
      cb, port, address, offset, length = port, offset, length, nil, nil
    end
    if is_callable(address) then address, cb = nil, address end
    port = check_port(port, 'send', 1)
    check_address(address, 'send')
    address = address or LOOPBACK[self._family]
  else
    if type(length) == 'number' then
      if is_callable(port) then port, cb = nil, port end
    elseif type(offset) == 'number' or length ~= nil then
      port = offset -- send(msg, port [, address]): not for this socket
    else
      offset, cb = nil, offset
    end
    if port ~= nil or address ~= nil then
      error('send: the socket is connected; pass no port or address', 2)
    end
  end
  check_callback(cb, 'send')
  cb = wait.traced(cb)
  local data = msg
  if offset ~= nil or length ~= nil then
    if type(msg) ~= 'string' then
      error('send: offset and length need a string message', 2)
    end
    local first, n = tointeger(offset), tointeger(length)
    if first == nil or n == nil or first < 0 or n < 0 or first + n > #msg then
      error('send: offset and length must lie within the message', 2)
    end
    data = msg:sub(first + 1, first + n)
  elseif type(msg) ~= 'string' and type(msg) ~= 'table' then
    error('send: message must be a string or an array of strings, got ' ..
      type(msg), 2)
  end
  if cb == nil and co_isyieldable() then
    return send_now(self, data, port, address, true)
  end
  in_background(function()
    return send_now(self, data, port, address, false)
  end, function(ok, err)
    if cb then
      if ok then return cb(nil, size_of(data)) end
      return cb(err)
    end
    if not ok and err ~= 'closed' then self:emit('error', err) end
  end)
end

-- receive([cb]) -> msg, rinfo | nil, err: the next datagram (queued ones
-- first). With cb: returns nothing and calls cb(err, msg, rinfo).
function Socket:receive(cb)
  check_callback(cb, 'receive')
  cb = wait.traced(cb)
  local queue = self._queue
  if #queue > 0 then
    local item = remove(queue, 1)
    if not self._reading and #queue < RECEIVE_QUEUE_MAX then
      start_reading(self)
    end
    if cb then
      setImmediate(cb, nil, item[1], item[2])
      return
    end
    return item[1], item[2]
  end
  if self._state == 'closed' then
    if cb then
      setImmediate(cb, 'closed')
      return
    end
    return nil, 'closed'
  end
  if self._state == 'unbound' then
    error('receive: the socket is not bound (bind or send first)', 2)
  end
  local receivers = self._receivers
  if cb then
    receivers[#receivers + 1] = cb
    return
  end
  local wake, park = wait.parking('receive', 2)
  receivers[#receivers + 1] = wake
  local err, data, rinfo = park()
  if err then return nil, err end
  return data, rinfo
end

-- Connecting ---------------------------------------------------------------------

-- connect(port [, address] [, cb]) -> self | nil, err: sends go to this
-- peer only, and only its datagrams arrive. cb(err) or 'connect'.
function Socket:connect(port, address, cb)
  if is_callable(address) then address, cb = nil, address end
  port = check_port(port, 'connect', 1)
  check_address(address, 'connect')
  check_callback(cb, 'connect')
  cb = wait.traced(cb)
  check_open(self, 'connect')
  if self._connect then
    error('connect: the socket is already connected', 2)
  end
  self._connect = 'connecting'
  address = address or LOOPBACK[self._family]
  local function run()
    local ok, err = ensure_bound(self)
    local ip
    if ok then ip, err = resolve(self, address) end
    if self._state == 'closed' then return nil, 'closed' end
    if ip then
      local _, name
      ok, _, name = self._handle:connect(ip, port)
      if ok then
        self._connect = 'connected'
        return self
      end
      err = sys_error(name, 'connect', ip, port)
    end
    self._connect = nil
    return nil, err
  end
  if cb == nil and co_isyieldable() then
    local ok, err = run()
    if not ok then return nil, err end
    process.nextTick(function() self:emit('connect') end)
    return self
  end
  in_background(run, function(ok, err)
    if ok then
      self:emit('connect')
      if cb then cb(nil) end
    elseif cb then
      cb(err)
    elseif err ~= 'closed' then
      self:emit('error', err)
    end
  end)
  return self
end

-- disconnect() -> self; raises unless connected.
function Socket:disconnect()
  local handle = check_open(self, 'disconnect')
  if self._connect ~= 'connected' then
    error('disconnect: the socket is not connected', 2)
  end
  handle:connect(nil, nil)
  self._connect = nil
  return self
end

-- remoteAddress() -> { address, family, port }; raises unless connected.
function Socket:remoteAddress()
  local handle = check_open(self, 'remoteAddress')
  if self._connect ~= 'connected' then
    error('remoteAddress: the socket is not connected', 2)
  end
  local addr = handle:getpeername()
  return { address = addr.ip, family = FAMILY[addr.family], port = addr.port }
end

-- Closing ------------------------------------------------------------------------

-- close([cb]) -> self: 'close' follows once the handle is closed; waiting
-- receivers get nil, 'closed' and queued sends ECANCELED.
function Socket:close(cb)
  check_callback(cb, 'close')
  local handle = check_open(self, 'close')
  if cb then self:once('close', cb) end
  self._state = 'closed'
  self._connect = nil
  self._queue = {}
  handle:close(function() self:emit('close') end)
  local receivers = self._receivers
  self._receivers = {}
  for i = 1, #receivers do receivers[i]('closed') end
  bind_done(self, 'closed')
  return self
end

-- Options ------------------------------------------------------------------------

local function option(who, method, result)
  return function(self, value, ...)
    local handle = check_open(self, who)
    local ok, _, name = handle[method](handle, value, ...)
    if not ok then return nil, sys_error(name, who) end
    if result then return result(value) end
    return true
  end
end

local function same(value) return value end

local function checked_boolean(who, fn)
  return function(self, flag)
    if type(flag) ~= 'boolean' then
      error(who .. ': flag must be a boolean, got ' .. type(flag), 2)
    end
    return fn(self, flag)
  end
end

local function checked_ttl(who, fn)
  return function(self, ttl)
    if tointeger(ttl) == nil then
      error(who .. ': ttl must be an integer, got ' .. tostring(ttl), 2)
    end
    return fn(self, tointeger(ttl))
  end
end

-- setBroadcast(flag) -> true | nil, err
Socket.setBroadcast = checked_boolean('setBroadcast',
  option('setBroadcast', 'set_broadcast'))
-- setTTL(ttl) -> ttl | nil, err (1 to 255)
Socket.setTTL = checked_ttl('setTTL', option('setTTL', 'set_ttl', same))
-- setMulticastTTL(ttl) -> ttl | nil, err (0 to 255)
Socket.setMulticastTTL = checked_ttl('setMulticastTTL',
  option('setMulticastTTL', 'set_multicast_ttl', same))
-- setMulticastLoopback(flag) -> flag | nil, err
Socket.setMulticastLoopback = checked_boolean('setMulticastLoopback',
  option('setMulticastLoopback', 'set_multicast_loop', same))
-- setMulticastInterface(address) -> true | nil, err
Socket.setMulticastInterface = option('setMulticastInterface',
  'set_multicast_interface')

local function membership(who, action)
  return function(self, group, iface)
    if type(group) ~= 'string' then
      error(who .. ': multicast address must be a string', 2)
    end
    local handle = check_open(self, who)
    local ok, _, name = handle:set_membership(group, iface, action)
    if not ok then return nil, sys_error(name, who, group) end
    return true
  end
end

-- addMembership(group [, iface]) / dropMembership(group [, iface])
-- -> true | nil, err
Socket.addMembership = membership('addMembership', 'join')
Socket.dropMembership = membership('dropMembership', 'leave')

local function source_membership(who, action)
  return function(self, source, group, iface)
    if type(source) ~= 'string' or type(group) ~= 'string' then
      error(who .. ': source and group addresses must be strings', 2)
    end
    local handle = check_open(self, who)
    local ok, _, name = handle:set_source_membership(group, iface, source,
      action)
    if not ok then return nil, sys_error(name, who, group) end
    return true
  end
end

Socket.addSourceSpecificMembership =
  source_membership('addSourceSpecificMembership', 'join')
Socket.dropSourceSpecificMembership =
  source_membership('dropSourceSpecificMembership', 'leave')

-- ref() / unref() -> self: whether the socket keeps the process alive.
function Socket:ref()
  if self._state ~= 'closed' then self._handle:ref() end
  return self
end

function Socket:unref()
  if self._state ~= 'closed' then self._handle:unref() end
  return self
end

return M
