-- The HTTP/1.1 client behind http.request, http.get and http.Agent.
--
-- A connection is a net.Socket with an llhttp response parser
-- (internal.http_parser) and a few private fields; an Agent pools them
-- per host:port. A request writes its head and body to the socket
-- assigned to it; the socket's 'data' listener feeds the parser and hands
-- what it found (heads, body pieces, the end) to the request and its
-- response. Everything the user hears (listeners, parked coroutines) runs
-- on a coroutine of its own, so a listener that waits never holds up the
-- parsing of the bytes after it.

local uv = require('uv')
local net = require('net')
local EventEmitter = require('events').EventEmitter
local errors = require('internal.errors')
local wait = require('internal.wait')
local binding = require('internal.binding')
local parse_url = require('url').parse
local new_parser = require('internal.http_parser').new
local set_immediate = require('timers').setImmediate

local error, ipairs, pairs, setmetatable, tonumber, tostring, type =
  error, ipairs, pairs, setmetatable, tonumber, tostring, type
local concat, remove = table.concat, table.remove
local format = string.format
local huge = math.huge
local spawn, resume = binding.spawn, binding.resume
local co_isyieldable, co_running, co_yield =
  coroutine.isyieldable, coroutine.running, coroutine.yield

local M = {}

local HWM = 65536

-- Methods that carry no body unless the script writes one (Node's
-- useChunkedEncodingByDefault = false), and those safe to send twice.
local NO_BODY = { GET = true, HEAD = true, DELETE = true, OPTIONS = true,
  TRACE = true, CONNECT = true }
local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true,
  OPTIONS = true, TRACE = true }

local function hang_up() return errors.new('ECONNRESET', 'socket hang up') end
local function aborted() return errors.new('ECONNRESET', 'aborted') end

-- Emits on a coroutine of its own (a listener may wait), and only when
-- someone listens; 'error' always (unheard, it is an uncaught error).
local function emit(obj, name, ...)
  if name == 'error' or obj:listenerCount(name) > 0 then
    spawn(obj.emit, obj, name, ...)
  end
end

-- Header checks (misuse raises) ---------------------------------------------

local function check_token(what, s, level)
  if type(s) ~= 'string' or s == '' or s:find("[^%w!#$%%&'*+%-.^_`|~]") then
    error(format('invalid %s %q', what, tostring(s)), level + 1)
  end
end

local function header_value(name, v, level)
  local t = type(v)
  if t == 'number' then return tostring(v) end
  if t ~= 'string' then
    error(format("invalid value for header '%s': %s", name, t), level + 1)
  end
  if v:find('[%z\1-\8\10-\31\127]') then
    error(format("invalid character in the value of header '%s'", name),
      level + 1)
  end
  return v
end

local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local d1, d2 = n >> 18, (n >> 12) & 63
    local d3, d4 = (n >> 6) & 63, n & 63
    out[#out + 1] = B64:sub(d1 + 1, d1 + 1) .. B64:sub(d2 + 1, d2 + 1) ..
      (b and B64:sub(d3 + 1, d3 + 1) or '=') ..
      (c and B64:sub(d4 + 1, d4 + 1) or '=')
  end
  return concat(out)
end

-- Sockets ---------------------------------------------------------------------
-- Private fields on a net.Socket the client owns:
--   _parser       the response parser
--   _agent, _name its pool (nil without one) and the pool's key
--   _httpMessage  the request it carries now (nil when free)
--   _gotBytes     a byte of the current response arrived
--   _timer        idle timer (request timeout, or free-socket timeout)

local on_timer

-- (Re)starts the socket's idle timer; it never keeps the process alive.
local function arm(sock, ms)
  local t = sock._timer
  if not t then
    t = uv.new_timer()
    t:unref()
    sock._timer = t
  end
  uv.update_time()
  t:start(ms, ms, function() on_timer(sock) end)
  sock._timerOn = true
end

local function disarm(sock)
  if sock._timerOn then
    sock._timerOn = false
    sock._timer:stop()
  end
end

-- Restarts the idle timer after activity (from now, not from the loop's
-- cached time, which may be late after a long callback).
local function touch(sock)
  if sock._timerOn then
    uv.update_time()
    sock._timer:again()
  end
end

local function list_remove(t, key, item)
  local list = t[key]
  if not list then return false end
  for i = 1, #list do
    if list[i] == item then
      remove(list, i)
      if #list == 0 then t[key] = nil end
      return true
    end
  end
  return false
end

local function list_add(t, key, item)
  local list = t[key]
  if not list then
    list = {}
    t[key] = list
  end
  list[#list + 1] = item
end

-- Takes the socket out of its agent's books (it is closing or leaving).
local function forget(sock)
  local agent = sock._agent
  if not agent then return end
  sock._agent = nil
  if not list_remove(agent.sockets, sock._name, sock) then
    list_remove(agent.freeSockets, sock._name, sock)
  end
end

local function count(agent, name)
  local busy, free = agent.sockets[name], agent.freeSockets[name]
  return (busy and #busy or 0) + (free and #free or 0)
end

local new_socket, attach, fail, abort_response, dispatch

-- A queued request of this pool gets a new connection when there is room.
local function next_request(agent, name)
  local queue = agent.requests[name]
  if not queue or agent._destroyed then return end
  if count(agent, name) < agent.maxSockets then
    local req = remove(queue, 1)
    if #queue == 0 then agent.requests[name] = nil end
    req._queuedName = nil
    new_socket(agent, name, req)
  end
end

local function destroy_socket(sock)
  local agent, name = sock._agent, sock._name
  sock._httpMessage = nil
  disarm(sock)
  forget(sock)
  sock:destroy()
  if agent then next_request(agent, name) end
end

-- The exchange on sock is over: the socket goes to the next request of
-- its pool, waits in the pool, or closes.
local function release(sock, reusable)
  sock._httpMessage = nil
  disarm(sock)
  local agent, name = sock._agent, sock._name
  if not reusable or not agent or agent._destroyed or not agent.keepAlive or
      sock._destroyed then
    return destroy_socket(sock)
  end
  if sock._paused then
    sock._paused = false
    sock:resume()
  end
  local queue = agent.requests[name]
  if queue then
    local req = remove(queue, 1)
    if #queue == 0 then agent.requests[name] = nil end
    req._queuedName = nil
    return attach(req, sock, true)
  end
  local free = agent.freeSockets[name]
  if free and #free >= agent.maxFreeSockets then
    return destroy_socket(sock)
  end
  list_remove(agent.sockets, name, sock)
  list_add(agent.freeSockets, name, sock)
  sock:unref()
  if agent.freeSocketTimeout > 0 then arm(sock, agent.freeSocketTimeout) end
  emit(agent, 'free', sock)
end

-- The socket ended or failed while req still used it: a stale pooled
-- connection (closed by the server before it answered) is retried once
-- on a new one when the request can be sent again; otherwise req fails.
local function socket_lost(sock, req, err)
  sock._httpMessage = nil
  if req._resDone then return end
  if req.reusedSocket and not sock._gotBytes and req._wire and
      IDEMPOTENT[req.method] and not req._retried and not req.destroyed then
    req._retried = true
    req._ready = false
    req.socket = nil
    req._outq = { req._wire[1], req._wire[2] }
    local agent = sock._agent or req.agent
    if agent then
      new_socket(agent, agent:getName(req), req)
    else
      new_socket(nil, nil, req)
    end
    return
  end
  if req.res then
    abort_response(req, err or aborted())
  else
    fail(req, err or hang_up())
  end
end

local function on_data(sock, chunk)
  local req = sock._httpMessage
  if not req then -- bytes on a free socket: nothing asked for them
    return destroy_socket(sock)
  end
  sock._gotBytes = true
  req._wire = nil -- an answer came: the request is not sent again
  touch(sock)
  local events, n, code, reason = sock._parser:execute(chunk)
  dispatch(sock, req, events, n, code, reason)
end

local function on_end(sock)
  local req = sock._httpMessage
  if not req then return destroy_socket(sock) end
  -- A body that runs to the end of the connection is complete now; any
  -- other ends too early (socket_lost below tells how).
  local events, n, code, reason = sock._parser:finish()
  if code == 'HPE_INVALID_EOF_STATE' then code = nil end
  dispatch(sock, req, events, n, code, reason)
  if sock._httpMessage == req then
    destroy_socket(sock) -- first: whoever socket_lost wakes sees it gone
    socket_lost(sock, req, nil)
  end
end

local function on_close(sock)
  disarm(sock)
  local timer = sock._timer
  if timer then
    sock._timer = nil
    timer:close()
  end
  sock._parser:close()
  local agent, name = sock._agent, sock._name
  forget(sock)
  local req = sock._httpMessage
  if req then socket_lost(sock, req, sock._lastErr) end
  if agent then next_request(agent, name) end
end

on_timer = function(sock)
  local req = sock._httpMessage
  if not req then return destroy_socket(sock) end -- idle too long in the pool
  emit(req, 'timeout')
  req:destroy(errors.new('ETIMEDOUT',
    format('request timed out after %d ms', req.timeout),
    { syscall = 'request' }))
end

-- A new connection for req (agent nil: not pooled).
new_socket = function(agent, name, req)
  local sock = net.Socket.new()
  sock._agent, sock._name = agent, name
  sock._parser = new_parser(req._maxHeaderSize)
  if agent then list_add(agent.sockets, name, sock) end
  attach(req, sock, false)
  -- Listeners after connect() started: a 'data' listener on a socket not
  -- yet connecting would read at once.
  sock:connect({ host = req.host, port = req.port, family = req.family,
    localAddress = req.localAddress }, function(err)
    local owner = sock._httpMessage
    if err then
      if owner then fail(owner, err) end
      return destroy_socket(sock)
    end
    sock:setNoDelay(true)
    if agent and agent.keepAlive then
      sock:setKeepAlive(true, agent.keepAliveMsecs)
    end
    if owner then
      owner:_start()
    else
      release(sock, true) -- its request went away meanwhile
    end
  end)
  local listeners = {
    data = function(chunk) on_data(sock, chunk) end,
    ['end'] = function() on_end(sock) end,
    close = function() on_close(sock) end,
    error = function(err) sock._lastErr = err end,
  }
  sock._listeners = listeners
  for event, fn in pairs(listeners) do sock:on(event, fn) end
end

-- Requests --------------------------------------------------------------------

local ClientRequest = EventEmitter:extend('ClientRequest')
M.ClientRequest = ClientRequest

local IncomingMessage = EventEmitter:extend('IncomingMessage')
M.IncomingMessage = IncomingMessage

-- req uses sock from now on (reused: it served an earlier request).
attach = function(req, sock, reused)
  sock._httpMessage = req
  sock._gotBytes = false
  req.socket = sock
  req.reusedSocket = reused
  if req.method == 'HEAD' then sock._parser:expectNoBody() end
  if req.timeout then arm(sock, req.timeout) end
  emit(req, 'socket', sock)
  if reused then
    sock:ref()
    req:_start()
  end
end

local function wake_all(list, ...)
  if not list then return end
  for i = 1, #list do list[i]:wake(...) end
end

-- The request failed before its response: every waiter gets err as a
-- value; the 'error' event goes to listeners, or to the callback style
-- (a 'response' listener, as given to http.request) where nobody got it.
fail = function(req, err)
  if req._err or req._resDone then return end
  req._err = err
  req.destroyed = true
  local waiters = req._resWaiters
  req._resWaiters = nil
  local ready = req._readyWaiter
  req._readyWaiter = nil
  if ready then ready:wake(err) end
  wake_all(waiters, nil, err)
  local delivered = waiters ~= nil or ready ~= nil
  local function report()
    if req:listenerCount('error') > 0 or
        (not delivered and req:listenerCount('response') > 0) then
      req:emit('error', err)
    end
    req:emit('close')
  end
  if req._creating then -- inside http.request(): the caller has not had
    set_immediate(report) -- the chance to listen yet
  else
    spawn(report)
  end
end

function ClientRequest:init(opts)
  self._order = {} -- header keys in the order set
  self._headers = {} -- lower-case name -> { name, value }
  local method = (opts.method or 'GET'):upper()
  check_token('method', method, 5)
  self.method = method
  local path = opts.path or '/'
  if type(path) ~= 'string' or path:find('[%z\1-\32\127]') then
    error('request path contains unescaped characters', 5)
  end
  self.path = path
  local host = opts.hostname or opts.host or 'localhost'
  if host:sub(1, 1) == '[' then host = host:sub(2, -2) end
  self.host = host
  local port = tonumber(opts.port or 80)
  if not port or port < 1 or port > 65535 or port % 1 ~= 0 then
    error('request: port must be an integer from 1 to 65535', 5)
  end
  self.port = port
  self.protocol = 'http:'
  self.family = opts.family
  self.localAddress = opts.localAddress
  self.timeout = opts.timeout
  self._maxHeaderSize = opts.maxHeaderSize
  local headers = opts.headers
  if headers then
    if headers[1] ~= nil then -- a flat list: name, value, name, value ...
      for i = 1, #headers, 2 do self:setHeader(headers[i], headers[i + 1]) end
    else
      for k, v in pairs(headers) do self:setHeader(k, v) end
    end
  end
  if opts.auth and not self._headers.authorization then
    self:setHeader('Authorization', 'Basic ' .. base64(opts.auth))
  end
  self._setHost = opts.setHost ~= false
  local agent = opts.agent
  if agent == nil then agent = M.globalAgent end
  self.agent = agent or nil
  if agent then
    if type(agent) ~= 'table' or not agent.getName then
      error('request: options.agent must be an Agent or false', 5)
    end
    self.shouldKeepAlive = agent.keepAlive
  else
    self.shouldKeepAlive = false
  end
end

-- setHeader(name, value) -> req. value: a string, a number or an array of
-- them (one line each). Raises for a bad name or a value with CR, LF or
-- another control character, and once the head was sent.
function ClientRequest:setHeader(name, value)
  check_token('header name', name, 2)
  if self._head then error('cannot set headers after they are sent', 2) end
  if type(value) == 'table' then
    local list = {}
    for i = 1, #value do list[i] = header_value(name, value[i], 2) end
    value = list
  else
    value = header_value(name, value, 2)
  end
  local key = name:lower()
  if not self._headers[key] then self._order[#self._order + 1] = key end
  self._headers[key] = { name, value }
  return self
end

function ClientRequest:getHeader(name)
  local h = self._headers[name:lower()]
  return h and h[2]
end

function ClientRequest:hasHeader(name)
  return self._headers[name:lower()] ~= nil
end

function ClientRequest:removeHeader(name)
  if self._head then error('cannot remove headers after they are sent', 2) end
  local key = name:lower()
  if self._headers[key] then
    self._headers[key] = nil
    local order = self._order
    for i = 1, #order do
      if order[i] == key then
        remove(order, i)
        break
      end
    end
  end
end

function ClientRequest:getHeaderNames()
  local names = {}
  for i, key in ipairs(self._order) do names[i] = key end
  return names
end

-- Builds the head. body: the whole body's length when finish() knows it,
-- or nil when the body is streamed (chunked, unless the script set a
-- length) or absent (flushHeaders on a GET).
local function make_head(self, length, flushing)
  local h = self._headers
  local lines = { self.method, ' ', self.path, ' HTTP/1.1\r\n' }
  local function add(name, value)
    lines[#lines + 1] = name
    lines[#lines + 1] = ': '
    lines[#lines + 1] = value
    lines[#lines + 1] = '\r\n'
  end
  if self._setHost and not h.host then
    local host = self.host
    if host:find(':', 1, true) then host = '[' .. host .. ']' end
    add('Host', self.port == 80 and host or host .. ':' .. self.port)
  end
  for _, key in ipairs(self._order) do
    local name, value = h[key][1], h[key][2]
    if type(value) == 'table' then
      for i = 1, #value do add(name, value[i]) end
    else
      add(name, value)
    end
  end
  local te = h['transfer-encoding']
  if te then
    local v = te[2]
    if type(v) == 'table' then v = v[#v] end
    self._chunked = v:lower():find('chunked%s*$') ~= nil
  elseif not h['content-length'] then
    if length then
      if length > 0 or not NO_BODY[self.method] then
        add('Content-Length', length)
      end
    elseif flushing and NO_BODY[self.method] then
      self._noBody = true
    else
      add('Transfer-Encoding', 'chunked')
      self._chunked = true
    end
  end
  local conn = h.connection
  if conn then
    local v = conn[2]
    if type(v) == 'table' then v = concat(v, ', ') end
    if v:lower():find('close', 1, true) then self.shouldKeepAlive = false end
  else
    add('Connection', self.shouldKeepAlive and 'keep-alive' or 'close')
  end
  lines[#lines + 1] = '\r\n'
  self._head = concat(lines)
  self.headersSent = true
  return self._head
end

local function frame(self, chunk, out)
  if self._chunked then
    out[#out + 1] = format('%x\r\n', #chunk)
    out[#out + 1] = chunk
    out[#out + 1] = '\r\n'
  else
    out[#out + 1] = chunk
  end
end

local function ignore() end

local maybe_release

local function finished(self)
  if not self._finishEmitted then
    self._finishEmitted = true
    emit(self, 'finish')
  end
end

-- Writes what waited for the socket. In a coroutine (wait = true) it
-- returns once the connection's queue is below the mark; cb-style writes
-- that were queued hear of the outcome.
local function flush(self, waits)
  local q, cbs, ended = self._outq, self._outcbs, self._ending
  self._outq, self._outcbs = nil, nil
  local sock = self.socket
  local function done(err)
    if cbs then
      for i = 1, #cbs do cbs[i](err) end
    end
    if ended and not err then finished(self) end
  end
  local ok, err = true, nil
  if not q then
    done(nil)
  elseif waits then
    ok, err = sock:write(q)
    touch(sock)
    done(not ok and (self._err or err) or nil)
  else
    sock:write(q, done)
  end
  if ended then maybe_release(self) end
  if not ok then return nil, self._err or err end
  return true
end

-- The socket is connected (or reused): what waited goes out.
function ClientRequest:_start()
  if self.destroyed then return end
  self._ready = true
  local w = self._readyWaiter
  if w then -- a writer waits: it sends the queue itself (with backpressure)
    self._readyWaiter = nil
    w:wake()
  elseif self._outq then
    flush(self, false)
  end
end

-- Sends pieces now or when the socket is ready. In a coroutine without
-- cb, waits for the socket and for the write queue to go below the mark.
local function send(self, pieces, cb)
  local sock = self._ready and self.socket
  if sock then
    if cb then return sock:write(pieces, cb) end
    if not co_isyieldable() then return sock:write(pieces, ignore) end
    local ok, err = sock:write(pieces)
    touch(sock)
    if not ok then return nil, self._err or err end
    return true
  end
  local q = self._outq
  if not q then
    q = {}
    self._outq = q
  end
  for i = 1, #pieces do q[#q + 1] = pieces[i] end
  if cb or not co_isyieldable() or self._readyWaiter then
    if cb and cb ~= ignore then
      local cbs = self._outcbs
      if not cbs then
        cbs = {}
        self._outcbs = cbs
      end
      cbs[#cbs + 1] = cb
    end
    return true
  end
  local w = wait.waiter('write', 3)
  self._readyWaiter = w
  local err = w:wait()
  if err then return nil, err end
  return flush(self, true)
end

-- write(chunk [, cb]) -> true | nil, err. The first write sends the head:
-- Transfer-Encoding: chunked unless a Content-Length was set. In a
-- coroutine without cb it returns once the data is queued on the
-- connection and the queue is below the high-water mark (waiting for the
-- connection and for a slow server); with cb, at once, and cb(err)
-- follows when the data is written.
function ClientRequest:write(chunk, cb)
  if type(chunk) == 'table' then chunk = concat(chunk) end
  if type(chunk) ~= 'string' then
    error('write: chunk must be a string, got ' .. type(chunk), 2)
  end
  wait.check_callback(cb, 'write')
  cb = wait.traced(cb)
  if self._ending then error('write after finish', 2) end
  if self._err then
    if cb then spawn(cb, self._err) return false end
    return nil, self._err
  end
  local out = {}
  if not self._head then out[1] = make_head(self, nil, false) end
  if self._noBody then
    error('write: the head went out without a body length; set ' ..
      'Content-Length or Transfer-Encoding before flushHeaders()', 2)
  end
  if #chunk > 0 then frame(self, chunk, out) end
  if #out == 0 then
    if cb then spawn(cb, nil) end
    return true
  end
  return send(self, out, cb)
end

-- flushHeaders(): sends the head now (for Expect: 100-continue, or to
-- start the exchange before the body is known).
function ClientRequest:flushHeaders()
  if self._head or self._err then return end
  send(self, { make_head(self, nil, true) }, ignore)
end

-- finish([data] [, cb]) -> req: the last of the request. With the whole
-- body known and nothing sent yet, it goes out with a Content-Length in
-- one write. Never waits; cb(err) or 'finish' follow once written.
function ClientRequest:finish(data, cb)
  if type(data) == 'function' then data, cb = nil, data end
  if type(data) == 'table' then data = concat(data) end
  if data ~= nil and type(data) ~= 'string' then
    error('finish: data must be a string, got ' .. type(data), 2)
  end
  wait.check_callback(cb, 'finish')
  if self._ending then
    if cb then spawn(cb, nil) end
    return self
  end
  if cb then self:once('finish', function() cb(nil) end) end
  if self._err then return self end
  local out
  if not self._head then
    -- The whole request in one write, kept to be sent again should the
    -- pooled connection it goes out on turn out stale.
    out = { make_head(self, data and #data or 0, false) }
    if data and #data > 0 then out[2] = data end
    self._wire = out
  else
    out = {}
    if data and #data > 0 then
      if self._noBody then
        error('finish: the head went out without a body length', 2)
      end
      frame(self, data, out)
    end
    if self._chunked then out[#out + 1] = '0\r\n\r\n' end
  end
  self._ending = true
  self.finished = true
  if not self._ready then
    if #out > 0 then send(self, out, ignore) end
  elseif #out == 0 then
    finished(self)
    maybe_release(self)
  else
    self.socket:write(out, function(err)
      if not err then finished(self) end
    end)
    maybe_release(self)
  end
  return self
end
ClientRequest['end'] = ClientRequest.finish

-- response([cb]) -> res | nil, err: waits for the response head (after
-- any 1xx). With cb: returns at once; cb(err, res) follows.
function ClientRequest:response(cb)
  wait.check_callback(cb, 'response')
  if cb then
    cb = wait.traced(cb)
    spawn(function()
      local res, err = self:response()
      cb(err, res)
    end)
    return
  end
  if self.res then return self.res end
  if self._err then return nil, self._err end
  local w = wait.waiter('response', 2)
  local list = self._resWaiters
  if not list then
    list = {}
    self._resWaiters = list
  end
  list[#list + 1] = w
  return w:wait()
end

-- destroy([err]) -> req: drops the request and its connection. Waiters
-- get err (default ECONNRESET 'socket hang up', or 'aborted' once the
-- response started).
function ClientRequest:destroy(err)
  if self.destroyed and not self.res then return self end
  local sock = self.socket
  if sock and sock._httpMessage == self then destroy_socket(sock) end
  local agent = self.agent
  if agent and self._queuedName then
    list_remove(agent.requests, self._queuedName, self)
  end
  if self.res then
    if not self._resDone then abort_response(self, err or aborted()) end
    self.destroyed = true
  else
    fail(self, err or hang_up())
  end
  return self
end

-- setTimeout(ms [, cb]) -> req: the connection may stay silent for ms
-- before the request fails with ETIMEDOUT (cb: a 'timeout' listener).
function ClientRequest:setTimeout(ms, cb)
  if type(ms) ~= 'number' or ms < 0 then
    error('setTimeout: ms must be a non-negative number', 2)
  end
  if cb then self:once('timeout', cb) end
  self.timeout = ms > 0 and ms or nil
  local sock = self.socket
  if sock and sock._httpMessage == self then
    if self.timeout then arm(sock, ms) else disarm(sock) end
  end
  return self
end

-- Responses -------------------------------------------------------------------

local READ = {}

local function maybe_end(res)
  if res._ended and not res._endEmitted and not res._err and
      res._qh > res._qt and (res._flowing or res:listenerCount('end') > 0) then
    res._endEmitted = true
    emit(res, 'end')
  end
end

-- Reading from the socket goes on while the queued body is small.
local function pause_socket(res)
  local sock = res.socket
  if sock._httpMessage == res.req and not sock._paused then
    sock._paused = true
    disarm(sock) -- the wait is ours now, not the server's
    sock:pause()
  end
end

local function resume_socket(res)
  local sock = res.socket
  if sock._paused and sock._httpMessage == res.req then
    sock._paused = false
    local req = res.req
    if req.timeout then arm(sock, req.timeout) end
    sock:resume()
  end
end

local function on_body(res, chunk)
  if res._flowing then
    emit(res, 'data', chunk)
    return
  end
  local co = res._reader
  if co then
    res._reader = nil
    resume(co, READ, chunk)
    return
  end
  local t = res._qt + 1
  res._qt = t
  res[t] = chunk
  res._size = res._size + #chunk
  if res._size > HWM then pause_socket(res) end
end

local function end_response(res, err)
  res._ended = true
  res._err = err
  if err then emit(res, 'aborted') end
  local co = res._reader
  if co then
    res._reader = nil
    resume(co, READ, nil, err)
  end
  if err then
    if res:listenerCount('error') > 0 then emit(res, 'error', err) end
  else
    maybe_end(res)
  end
  emit(res, 'close')
end

-- The connection died or the parser failed in the middle of the body.
abort_response = function(req, err)
  if req._resDone then return end
  req._resDone = true
  end_response(req.res, err)
  emit(req, 'close')
end

maybe_release = function(req)
  if not req._resDone or not req._ending or req._outq then return end
  local sock = req.socket
  if sock and sock._httpMessage == req then
    release(sock, req._keepAlive and req.shouldKeepAlive)
  end
end

local function new_response(head, req, sock)
  local res = setmetatable(head, IncomingMessage)
  res.req = req
  res.socket = sock
  res.complete = false
  res._qh, res._qt, res._size = 1, 0, 0
  return res
end

local function on_head(sock, req, head)
  local res = new_response(head, req, sock)
  req.res = res
  if head.upgrade then return end -- its socket is handed over at 'upgrade'
  local waiters = req._resWaiters
  req._resWaiters = nil
  wake_all(waiters, res)
  emit(req, 'response', res)
end

local function on_info(req, head)
  local info = {
    statusCode = head.statusCode, statusMessage = head.statusMessage,
    httpVersion = head.httpVersion, headers = head.headers,
    rawHeaders = head.rawHeaders,
  }
  emit(req, 'information', info)
  if head.statusCode == 100 then emit(req, 'continue') end
end

local function on_done(sock, req, keep_alive)
  local res = req.res
  req._resDone = true
  req._keepAlive = keep_alive
  res.complete = true
  -- The socket goes back first: a reader woken below may at once start
  -- the next request, which should find it in the pool.
  maybe_release(req)
  end_response(res, nil)
  emit(req, 'close')
end

-- 101 Switching Protocols: the socket leaves the client for the script.
local function on_upgrade(sock, req, rest)
  local res = req.res
  req._resDone = true
  res.complete = true
  sock._httpMessage = nil
  disarm(sock)
  forget(sock)
  for event, fn in pairs(sock._listeners) do sock:removeListener(event, fn) end
  sock:pause()
  local timer = sock._timer
  if timer then
    sock._timer = nil
    timer:close()
  end
  sock._parser:close()
  res.upgradeHead = rest
  -- Handed over once the socket's 'data' event is over: a reader that
  -- started inside it would get this same chunk again.
  set_immediate(function()
    local waiters = req._resWaiters
    req._resWaiters = nil
    if req:listenerCount('upgrade') > 0 then
      req:emit('upgrade', res, sock, rest)
    elseif waiters then
      wake_all(waiters, res)
    else
      sock:destroy()
    end
  end)
end

-- Hands what the parser found to the request and its response.
dispatch = function(sock, req, events, n, code, reason)
  for i = 1, n do
    local kind, value = events[2 * i - 1], events[2 * i]
    if kind == 'body' then
      on_body(req.res, value)
    elseif kind == 'head' then
      on_head(sock, req, value)
    elseif kind == 'done' then
      if req.res.upgrade then
        -- the 'upgrade' event follows
      else
        on_done(sock, req, value and i == n and not code)
        if i < n or code then -- bytes nobody asked for: not reusable
          if sock._httpMessage == nil and not sock._destroyed then
            sock:destroy()
          end
          return
        end
      end
    elseif kind == 'info' then
      on_info(req, value)
    elseif kind == 'upgrade' then
      return on_upgrade(sock, req, value)
    end
    if sock._httpMessage ~= req then return end -- destroyed meanwhile
  end
  if code then
    local err = errors.new(code, 'Parse Error: ' .. tostring(reason),
      { reason = reason })
    if sock._httpMessage == req then destroy_socket(sock) end
    if req.res then abort_response(req, err) else fail(req, err) end
  end
end

function IncomingMessage:read(cb)
  if cb then
    wait.check_callback(cb, 'read')
    wait.in_background(self, self.read, cb)
    return
  end
  local h = self._qh
  if h <= self._qt then
    local chunk = self[h]
    self[h] = nil
    self._qh = h + 1
    self._size = self._size - #chunk
    if self._size <= HWM then resume_socket(self) end
    return chunk
  end
  if self._ended then
    maybe_end(self)
    return nil, self._err
  end
  if self._reader then return nil, 'response busy reading' end
  wait.current('read', 2)
  self._reader = co_running()
  resume_socket(self)
  while true do
    local tag, chunk, err = co_yield()
    if tag == READ then return chunk, err end
  end
end

-- res:body([cb]) -> the whole body | nil, err: http.lua gives responses
-- the server request's body(), the same loop over read().

-- resume() -> res: the body flows to 'data' listeners (and is dropped
-- when there are none: Node's way to discard a response).
function IncomingMessage:resume()
  self._flowing = true
  for i = self._qh, self._qt do
    local chunk = self[i]
    self[i] = nil
    emit(self, 'data', chunk)
  end
  self._qh, self._qt, self._size = 1, 0, 0
  resume_socket(self)
  maybe_end(self)
  return self
end

function IncomingMessage:pause()
  self._flowing = false
  return self
end

function IncomingMessage:on(name, listener)
  EventEmitter.on(self, name, listener)
  if name == 'data' and not self._flowing then
    self:resume()
  elseif name == 'end' then
    maybe_end(self)
  end
  return self
end
IncomingMessage.addListener = IncomingMessage.on

function IncomingMessage:once(name, listener)
  local fired = false
  local function wrapper(...)
    if fired then return end
    fired = true
    self:removeListener(name, wrapper)
    return listener(...)
  end
  return self:on(name, wrapper)
end

function IncomingMessage:destroy(err)
  self.req:destroy(err)
  return self
end

function IncomingMessage:setTimeout(ms, cb)
  self.req:setTimeout(ms, cb)
  return self
end

-- Agents ------------------------------------------------------------------------

local Agent = EventEmitter:extend('Agent')
M.Agent = Agent

-- Agent.new([opts]): a pool of keep-alive connections per host:port.
-- opts: keepAlive (true), keepAliveMsecs (1000: TCP keep-alive delay),
-- maxSockets (per host:port, unlimited), maxFreeSockets (per host:port,
-- 256), freeSocketTimeout (ms an idle connection stays, 4000; 0: no
-- limit), maxHeaderSize.
function Agent:init(opts)
  opts = opts or {}
  self.keepAlive = opts.keepAlive ~= false
  self.keepAliveMsecs = opts.keepAliveMsecs or 1000
  self.maxSockets = opts.maxSockets or huge
  self.maxFreeSockets = opts.maxFreeSockets or 256
  self.freeSocketTimeout = opts.freeSocketTimeout or 4000
  if type(self.maxSockets) ~= 'number' or self.maxSockets < 1 then
    error('Agent: maxSockets must be a positive number', 4)
  end
  self.sockets = {} -- name -> sockets in use (or connecting)
  self.freeSockets = {} -- name -> idle sockets, the last one used first
  self.requests = {} -- name -> requests waiting for a socket
end

-- getName(opts) -> the pool key: 'host:port[:localAddress]'
function Agent:getName(opts)
  local name = (opts.host or 'localhost') .. ':' .. (opts.port or 80)
  if opts.localAddress then name = name .. ':' .. opts.localAddress end
  return name
end

function Agent:_acquire(req)
  local name = self:getName(req)
  local free = self.freeSockets[name]
  while free do
    local sock = remove(free)
    if #free == 0 then
      self.freeSockets[name] = nil
      free = nil
    end
    if not sock._destroyed then
      list_add(self.sockets, name, sock)
      return attach(req, sock, true)
    end
  end
  if count(self, name) < self.maxSockets then
    return new_socket(self, name, req)
  end
  req._queuedName = name
  list_add(self.requests, name, req)
end

-- destroy(): closes every connection; requests still in flight or
-- waiting fail (ECONNRESET). The agent stays usable, as in Node.
function Agent:destroy()
  self._destroyed = true -- no new connections for what fails below
  for _, list in pairs(self.requests) do
    for _, req in ipairs(list) do fail(req, hang_up()) end
  end
  self.requests = {}
  local all = {}
  for _, t in ipairs({ self.freeSockets, self.sockets }) do
    for _, list in pairs(t) do
      for _, sock in ipairs(list) do all[#all + 1] = sock end
    end
  end
  for _, sock in ipairs(all) do
    local req = sock._httpMessage
    destroy_socket(sock)
    if req then
      if req.res then abort_response(req, hang_up()) else fail(req, hang_up()) end
    end
  end
  self._destroyed = nil
end

M.globalAgent = Agent.new()

-- Entry points ------------------------------------------------------------------

local function options(input, opts, level)
  local t = type(input)
  if t == 'string' then
    local u = parse_url(input)
    if u.protocol and u.protocol ~= 'http:' then
      error(format("protocol '%s' not supported (only http:)", u.protocol),
        level + 1)
    end
    local o = { hostname = u.hostname, port = u.port, path = u.path,
      auth = u.auth }
    if o.hostname == '' then o.hostname = nil end
    if type(opts) == 'table' then
      for k, v in pairs(opts) do o[k] = v end
    end
    return o
  elseif t == 'table' then
    if type(opts) ~= 'table' then return input end
    local o = {}
    for k, v in pairs(input) do o[k] = v end
    for k, v in pairs(opts) do o[k] = v end
    return o
  end
  error('request: expected a URL string or an options table, got ' .. t,
    level + 1)
end

-- request(url | opts [, opts] [, cb]) -> ClientRequest. Nothing is sent
-- before write(), finish() or flushHeaders(); cb is a 'response' listener.
function M.request(input, opts, cb)
  if type(opts) == 'function' then opts, cb = nil, opts end
  wait.check_callback(cb, 'request')
  local o = options(input, opts, 2)
  local req = ClientRequest.new(o)
  if cb then req:on('response', cb) end
  local agent = req.agent
  req._creating = true
  if agent then
    agent:_acquire(req)
  else
    new_socket(nil, nil, req)
  end
  req._creating = nil
  return req
end

-- get(url | opts [, opts] [, cb]): a GET request, finished at once. In a
-- coroutine without cb: returns the response (or nil, err). Otherwise it
-- returns the request ('response' and 'error' events, or cb).
function M.get(input, opts, cb)
  if type(opts) == 'function' then opts, cb = nil, opts end
  wait.check_callback(cb, 'get')
  local o = options(input, opts, 2)
  if o.method and o.method:upper() ~= 'GET' then
    local copy = {}
    for k, v in pairs(o) do copy[k] = v end
    copy.method = 'GET'
    o = copy
  end
  local req = M.request(o, cb)
  req:finish()
  if cb or not co_isyieldable() then return req end
  return req:response()
end

return M
