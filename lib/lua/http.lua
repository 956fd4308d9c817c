-- http: an HTTP/1.1 server (the engine is C: bindings/http_server.c) and
-- client, in Node's shape with Lua spelling. A handler runs on a coroutine
-- of its own for each request, so it may wait: read the body with
-- req:read() or req:body(), write with res:write() (which waits while the
-- client is slow), finish with res:finish(body).

local uv = require('uv')
local engine = require('internal.http')
local EventEmitter = require('events').EventEmitter
local url = require('url')
local wait = require('internal.wait')
local binding = require('internal.binding')

local error, getmetatable, ipairs, pairs, pcall, tonumber, tostring, type =
  error, getmetatable, ipairs, pairs, pcall, tonumber, tostring, type
local concat = table.concat
local spawn, resume = binding.spawn, binding.resume
local co_running, co_yield = coroutine.running, coroutine.yield

local M = {}

M.METHODS = {
  'ACL', 'BIND', 'CHECKOUT', 'CONNECT', 'COPY', 'DELETE', 'GET', 'HEAD',
  'LINK', 'LOCK', 'M-SEARCH', 'MERGE', 'MKACTIVITY', 'MKCALENDAR', 'MKCOL',
  'MOVE', 'NOTIFY', 'OPTIONS', 'PATCH', 'POST', 'PROPFIND', 'PROPPATCH',
  'PURGE', 'PUT', 'QUERY', 'REBIND', 'REPORT', 'SEARCH', 'SOURCE',
  'SUBSCRIBE', 'TRACE', 'UNBIND', 'UNLINK', 'UNLOCK', 'UNSUBSCRIBE',
}

M.STATUS_CODES = {}
for _, code in ipairs({ 100, 101, 102, 103, 200, 201, 202, 203, 204, 205,
  206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402,
  403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417,
  418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503,
  504, 505, 506, 507, 508, 509, 510, 511 }) do
  M.STATUS_CODES[code] = engine.status_text(code)
end

-- Requests ----------------------------------------------------------------------

local Request, Getters, Response = {}, {}, {}

for _, name in ipairs({ 'on', 'addListener', 'once', 'off', 'removeListener',
  'removeAllListeners', 'emit', 'listenerCount', 'listeners',
  'prependListener' }) do
  Request[name] = EventEmitter[name]
  Response[name] = EventEmitter[name]
end

function Getters.path(req)
  local u = req.url
  return u:match('^[^?#]*')
end

function Getters.query(req)
  local q = req.url:match('%?([^#]*)')
  return url.parseQuery(q or '')
end

-- req.socket: the connection's addresses (the engine owns the socket).
function Getters.socket(req)
  local peer, here = req:_peer()
  local family = peer and (peer.family == 'inet6' and 'IPv6' or 'IPv4')
  return {
    remoteAddress = peer and peer.ip,
    remotePort = peer and peer.port,
    remoteFamily = family,
    localAddress = here and here.ip,
    localPort = here and here.port,
  }
end

local READ = {}

-- The body state of a request: chunks not yet read, the reader waiting.
local function body_of(req)
  local st = req._body
  if st then return st end
  st = { head = 1, tail = 0, size = 0 }
  req._body = st
  local queued, more = req:_want()
  if queued then
    st.tail = 1
    st[1] = queued
    st.size = #queued
  end
  if not more then st.ended = true end
  return st
end

local HWM = 65536

local function on_body(req, chunk)
  local st = req._body
  if not st then return end
  local co = st.reader
  if req._flowing then req:emit('data', chunk) end
  if co then
    st.reader = nil
    resume(co, READ, chunk)
    return
  end
  if req._flowing then return end
  st.tail = st.tail + 1
  st[st.tail] = chunk
  st.size = st.size + #chunk
  if st.size > HWM and not st.paused then
    st.paused = true
    req:_flow(true) -- nobody reads: the client waits
  end
end

local function on_end(req, why)
  local st = req._body
  if not st then return end
  st.ended = true
  st.err = why
  local co = st.reader
  if co then
    st.reader = nil
    resume(co, READ, nil, why)
  end
  if not why then req:emit('end') end
end

-- read([cb]) -> chunk | nil at the end | nil, err ('closed')
function Request:read(cb)
  if cb then
    wait.check_callback(cb, 'read')
    wait.in_background(self, self.read, cb)
    return
  end
  local st = body_of(self)
  if st.head <= st.tail then
    local chunk = st[st.head]
    st[st.head] = nil
    st.head = st.head + 1
    st.size = st.size - #chunk
    if st.paused and st.size <= HWM then
      st.paused = false
      self:_flow(false)
    end
    return chunk
  end
  if st.ended then
    if st.err then return nil, st.err end
    return nil
  end
  if st.reader then return nil, 'request busy reading' end
  wait.current('read', 2)
  st.reader = co_running()
  while true do
    local tag, chunk, err = co_yield()
    if tag == READ then return chunk, err end
  end
end

-- body([cb]) -> the whole body (a string) | nil, err. The server's
-- maxBodySize bounds it (larger bodies get 413 before this returns).
function Request:body(cb)
  if cb then
    wait.check_callback(cb, 'body')
    wait.in_background(self, self.body, cb)
    return
  end
  local parts = {}
  while true do
    local chunk, err = self:read()
    if not chunk then
      if err then return nil, err end
      break
    end
    parts[#parts + 1] = chunk
  end
  return concat(parts)
end

-- 'data' listeners make the body flow as events.
function Request:on(name, listener)
  EventEmitter.on(self, name, listener)
  if (name == 'data' or name == 'end') and not self._flowing then
    self._flowing = true
    local st = body_of(self)
    while st.head <= st.tail do
      local chunk = st[st.head]
      st[st.head] = nil
      st.head = st.head + 1
      self:emit('data', chunk)
    end
    st.size = 0
    if st.paused then
      st.paused = false
      self:_flow(false)
    end
    if st.ended then spawn(self.emit, self, 'end') end
  end
  return self
end
Request.addListener = Request.on

-- Responses ------------------------------------------------------------------------

local DRAIN = {}

-- write(chunk [, cb]) -> true | nil, err. Without cb: returns once the
-- connection's queue is below its high-water mark (waiting while the
-- client is slow). With cb: returns whether it is below, and calls cb(err)
-- once written (queued).
function Response:write(chunk, cb)
  if type(chunk) ~= 'string' then
    if type(chunk) == 'table' then chunk = concat(chunk)
    else error('write: chunk must be a string, got ' .. type(chunk), 2) end
  end
  cb = wait.traced(cb)
  local below, err = self:_write(chunk)
  if below == nil then
    if cb then spawn(cb, err) return false end
    return nil, err
  end
  if cb then
    spawn(cb, nil)
    return below
  end
  if below or not coroutine.isyieldable() then return true end
  if not self:_wantDrain() then return true end
  self._drainer = co_running()
  while true do
    local tag, werr = co_yield()
    if tag == DRAIN then
      if werr then return nil, werr end
      return true
    end
  end
end

function Response:setHeaders(headers)
  for k, v in pairs(headers) do self:setHeader(k, v) end
  return self
end

function Response:getHeaderNames()
  local names = {}
  for k in pairs(self:getHeaders()) do names[#names + 1] = k end
  table.sort(names)
  return names
end

function Response:on(name, listener)
  EventEmitter.on(self, name, listener)
  if name == 'finish' then self:_wantFinish()
  elseif name == 'close' then self:_wantClose() end
  return self
end
Response.addListener = Response.on

function Response:once(name, listener)
  EventEmitter.once(self, name, listener)
  if name == 'finish' then self:_wantFinish()
  elseif name == 'close' then self:_wantClose() end
  return self
end

local MIME = {
  html = 'text/html; charset=utf-8', htm = 'text/html; charset=utf-8',
  txt = 'text/plain; charset=utf-8', css = 'text/css; charset=utf-8',
  js = 'text/javascript; charset=utf-8', json = 'application/json',
  png = 'image/png', jpg = 'image/jpeg', jpeg = 'image/jpeg',
  gif = 'image/gif', svg = 'image/svg+xml', ico = 'image/x-icon',
  pdf = 'application/pdf', wasm = 'application/wasm', xml = 'application/xml',
}

-- sendFile(path [, opts]) -> true | nil, err: streams the file as the
-- body (Content-Length and Content-Type set unless already set), waiting
-- for the client as it goes. A file that cannot be opened returns nil,
-- err before anything is sent, so the handler can answer (404, ...).
function Response:sendFile(path, opts)
  local fs = require('fs')
  local st, err = fs.stat(path)
  if not st then return nil, err end
  if not st:isFile() then return nil, fs.error('EISDIR', 'open', path) end
  local fd, oerr = fs.open(path, 'r')
  if not fd then return nil, oerr end
  if not self:hasHeader('content-length') then
    self:setHeader('Content-Length', st.size)
  end
  if not self:hasHeader('content-type') then
    local ext = path:match('%.([%w]+)$')
    self:setHeader('Content-Type', MIME[ext and ext:lower()] or
      (opts and opts.type) or 'application/octet-stream')
  end
  local pos, size = 0, st.size
  local ok, werr = true, nil
  while pos < size do
    local chunk, rerr = fs.read(fd, math.min(65536, size - pos), pos)
    if not chunk or chunk == '' then werr = rerr break end
    pos = pos + #chunk
    ok, werr = self:write(chunk)
    if not ok then break end
  end
  fs.close(fd)
  if werr then
    self:_destroy()
    return nil, werr
  end
  self:finish()
  return true
end

engine.set_methods(Request, Getters, Response)

local function on_event(obj, name, data)
  if name == 'body' then
    on_body(obj, data)
  elseif name == 'end' then
    on_end(obj, nil)
  elseif name == 'close' then
    if obj._body then on_end(obj, 'closed') end
    local co = obj._drainer
    if co then
      obj._drainer = nil
      resume(co, DRAIN, 'closed')
    end
    obj:emit('close')
  elseif name == 'drain' then
    local co = obj._drainer
    if co then
      obj._drainer = nil
      resume(co, DRAIN)
    end
    obj:emit('drain')
  elseif name == 'finish' then
    obj:emit('finish')
  end
end

-- Servers ------------------------------------------------------------------------

local Server = EventEmitter:extend('Server')
M.Server = Server

local function log(msg)
  io.stderr:write('luvhost: ', msg, '\n')
end

-- A handler raised (the engine caught it, with its traceback): 500 if the
-- head is not out yet, else the connection goes; the server keeps serving.
-- req and res are nil when the exchange was already over.
local function handler_failed(server, report, req, res)
  if server:listenerCount('handlerError') > 0 then
    server:emit('handlerError', report, req, res)
  elseif req then
    log('error in HTTP request handler for ' .. tostring(req.method) .. ' ' ..
      tostring(req.url) .. ': ' .. tostring(report))
  else
    log('error in HTTP request handler: ' .. tostring(report))
  end
  if not res then return end
  if not res.headersSent then
    pcall(function()
      res.statusCode = 500
      res:setHeader('Content-Type', 'text/plain; charset=utf-8')
      res:finish('Internal Server Error\n')
    end)
  elseif not res.finished then
    res:_destroy()
  end
end

local function not_found(_, res)
  res.statusCode = 404
  res:finish()
end

-- The engine calls one function per request: the lone 'request' listener
-- itself (no wrapper on the hot path), or one that calls each in turn.
local function sync_handler(server)
  local eng = server._engine
  if not eng then return end
  local listeners = server._events and server._events.request
  if listeners == nil then
    eng:handler(not_found)
  elseif type(listeners) ~= 'table' or getmetatable(listeners) then
    eng:handler(listeners)
  else
    eng:handler(function(req, res)
      for i = 1, #listeners do listeners[i](req, res) end
    end)
  end
end

-- http.createServer([opts] [, handler]) -> Server.
-- opts (Node's names and defaults): maxHeaderSize (16384), maxHeadersCount
-- (2000), maxBodySize (64 MiB), headersTimeout (60000 ms), requestTimeout
-- (300000), keepAliveTimeout (5000), maxConnections, autoContinue
-- (answer Expect: 100-continue at once instead of when the body is read),
-- highWaterMark (65536).
function M.createServer(opts, handler)
  if type(opts) == 'function' then opts, handler = nil, opts end
  opts = opts or {}
  local server = Server.new()
  server.listening = false
  server._engine = engine.server(opts, not_found, on_event, nil, log,
    function(report, req, res) handler_failed(server, report, req, res) end)
  if handler then server:on('request', handler) end
  return server
end

-- Listener changes on 'request' reach the engine.
for _, name in ipairs({ 'prependListener', 'once', 'prependOnceListener',
  'removeListener', 'removeAllListeners' }) do
  local base = EventEmitter[name]
  Server[name] = function(self, event, ...)
    base(self, event, ...)
    if event == 'request' or event == nil then sync_handler(self) end
    return self
  end
end
Server.off = Server.removeListener

function Server:on(name, listener)
  EventEmitter.on(self, name, listener)
  if name == 'request' then sync_handler(self) end
  if name == 'upgrade' and self._engine then
    self._engine:upgrades(function(req, handle, head)
      local net = require('net')
      local socket = net.Socket.new({ allowHalfOpen = true }, handle)
      if self:listenerCount('upgrade') == 0 then
        socket:destroy()
        return
      end
      self:emit('upgrade', req, socket, head)
    end)
  end
  return self
end
Server.addListener = Server.on

-- listen(port [, host] [, backlog] [, cb]) or listen({ port, host,
-- backlog, ipv6Only, reusePort } [, cb]) -> server | nil, err. Port 0
-- picks a free port (see address()); no host means all addresses.
function Server:listen(port, host, backlog, cb)
  local opts
  if type(port) == 'table' then
    opts, cb = port, host
  else
    if type(host) == 'function' then host, backlog, cb = nil, nil, host
    elseif type(backlog) == 'function' then backlog, cb = nil, backlog end
    opts = { port = port, host = host, backlog = backlog }
  end
  local p = tonumber(opts.port or 0)
  if p == nil or p < 0 or p > 65535 or p % 1 ~= 0 then
    error('listen: port must be an integer from 0 to 65535', 2)
  end
  wait.check_callback(cb, 'listen')
  if cb then self:once('listening', cb) end
  -- Workers of `luvhost --workers N` share their ports.
  local flags = { ipv6only = opts.ipv6Only,
    reuseport = opts.reusePort or process.workerId ~= nil }
  local eng = self._engine
  local ok, err, name
  local host_ = opts.host
  if host_ == nil then
    ok, err, name = eng:listen('::', p, opts.backlog, flags)
    if not ok then ok, err, name = eng:listen('0.0.0.0', p, opts.backlog, flags) end
    host_ = '::'
  else
    local address = host_
    if not host_:match('^[%d.]+$') and not host_:find(':', 1, true) then
      local dns = require('dns')
      local a, derr = dns.lookup(host_)
      if not a then
        if self:listenerCount('error') > 0 then self:emit('error', derr) end
        return nil, derr
      end
      address = a
    end
    ok, err, name = eng:listen(address, p, opts.backlog, flags)
    host_ = address
  end
  if not ok then
    local e = require('internal.errors').uv(name or err, 'listen',
      { address = host_, port = p })
    if self:listenerCount('error') > 0 then self:emit('error', e) end
    return nil, e
  end
  self.listening = true
  require('internal.shutdown').track(self, true)
  spawn(self.emit, self, 'listening')
  return self
end

-- address() -> { address, family = 'IPv4' | 'IPv6', port } | nil
function Server:address()
  local a = self._engine:address()
  if not a then return nil end
  return { address = a.ip, family = a.family == 'inet6' and 'IPv6' or 'IPv4',
    port = a.port }
end

-- close([cb]) -> server: stops accepting; idle keep-alive connections
-- close now, busy ones after their response (which says Connection:
-- close); 'close' and cb follow when none is left.
function Server:close(cb)
  wait.check_callback(cb, 'close')
  if cb then self:once('close', cb) end
  if self._closing then return self end
  self._closing = true
  self.listening = false
  require('internal.shutdown').untrack(self)
  self._engine:close(function() self:emit('close') end)
  return self
end

function Server:getConnections(cb)
  local n = self._engine:connections()
  if cb then spawn(cb, nil, n) end
  return n
end

function Server:ref()
  self._engine:ref(true)
  return self
end

function Server:unref()
  self._engine:ref(false)
  return self
end

-- The client: lib/lua/internal/http_client.lua
local client = require('internal.http_client')
M.request, M.get = client.request, client.get
M.Agent, M.globalAgent = client.Agent, client.globalAgent
M.ClientRequest, M.IncomingMessage = client.ClientRequest, client.IncomingMessage
client.IncomingMessage.body = Request.body -- the whole body, over read()

return M
