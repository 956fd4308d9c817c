-- http client: http.request, http.get and Agent against the luvhost server,
-- raw net servers that misbehave on purpose, and a Node http server
-- started as a child process.

local helper = require('spec.helper')
local http = require('http')
local net = require('net')
local coro = require('coro')
local timers = require('timers')
local cp = require('child_process')

local run = helper.run

-- A luvhost server on 127.0.0.1 with handler; returns it and its base URL.
local function serve(handler, opts)
  local server = http.createServer(opts or {}, handler)
  assert(server:listen(0, '127.0.0.1'))
  return server, 'http://127.0.0.1:' .. server:address().port
end

-- A raw TCP server: on_conn(sock, n) runs for the n-th connection.
local function raw_server(on_conn)
  local n = 0
  local server = net.createServer(function(sock)
    n = n + 1
    on_conn(sock, n)
  end)
  assert(server:listen(0, '127.0.0.1'))
  return server, server:address().port
end

-- Reads from sock until the bytes so far contain pattern (plain); returns
-- them.
local function read_until(sock, pattern, buf)
  buf = buf or ''
  while not buf:find(pattern, 1, true) do
    local chunk = sock:read()
    if not chunk then return buf end
    buf = buf .. chunk
  end
  return buf
end

-- Bytes that are not all the same, so a shifted or lost piece shows.
local function pattern_bytes(n)
  local piece = {}
  for i = 0, 255 do piece[#piece + 1] = string.char((i * 7 + 3) % 256) end
  piece = table.concat(piece)
  return (piece:rep(n // #piece + 1)):sub(1, n)
end

local function agent(opts)
  return http.Agent.new(opts)
end

-- A gate one coroutine waits at until another opens it (or has opened
-- it): orders events between a server and the client without sleeping.
local function gate()
  local g = { opened = false }
  function g.wait()
    if g.opened then return end
    g.waiter = require('internal.wait').waiter('gate')
    g.waiter:wait()
  end
  function g.open()
    g.opened = true
    if g.waiter then g.waiter:wake() end
  end
  return g
end

describe('http client against the luvhost server', function()
  it('GETs a response: status, headers, raw headers, body', function()
    run(function()
      local server, base = serve(function(req, res)
        res:setHeader('X-Path', req.url)
        res:setHeader('Set-Cookie', { 'a=1', 'b=2' })
        res:finish('hello ' .. req.method)
      end)
      local a = agent()
      local res, err = http.get(base .. '/some/where?q=1', { agent = a })
      assert.is_nil(err)
      assert.are.equal(200, res.statusCode)
      assert.are.equal('OK', res.statusMessage)
      assert.are.equal('1.1', res.httpVersion)
      assert.are.equal('/some/where?q=1', res.headers['x-path'])
      assert.are.same({ 'a=1', 'b=2' }, res.headers['set-cookie'])
      assert.are.equal('9', res.headers['content-length'])
      local raw = {}
      for i = 1, #res.rawHeaders, 2 do raw[res.rawHeaders[i]] = true end
      assert.is_true(raw['X-Path'])
      assert.are.equal('hello GET', res:body())
      assert.is_true(res.complete)
      a:destroy()
      server:close()
    end)
  end)

  it('reads a body chunk by chunk with read(), and as events', function()
    run(function()
      local server, base = serve(function(_, res)
        for i = 1, 5 do
          res:write('part' .. i .. ';')
          timers.sleep(1)
        end
        res:finish()
      end)
      local a = agent()
      local res = assert(http.get(base, { agent = a }))
      assert.are.equal('chunked', res.headers['transfer-encoding'])
      local parts = {}
      while true do
        local chunk, err = res:read()
        assert.is_nil(err)
        if not chunk then break end
        parts[#parts + 1] = chunk
      end
      assert.are.equal('part1;part2;part3;part4;part5;', table.concat(parts))
      -- The same with a callback and 'data'/'end' events.
      local got, ended = {}, false
      local w = require('internal.wait').waiter('test')
      http.get(base, { agent = a }, function(res2)
        res2:on('data', function(chunk) got[#got + 1] = chunk end)
        res2:on('end', function()
          ended = true
          w:wake()
        end)
      end)
      w:wait()
      assert.is_true(ended)
      assert.are.equal('part1;part2;part3;part4;part5;', table.concat(got))
      a:destroy()
      server:close()
    end)
  end)

  it('sends HEAD and reads no body, then reuses the connection', function()
    run(function()
      local ports = {}
      local server, base = serve(function(req, res)
        ports[#ports + 1] = req.socket.remotePort
        res:setHeader('Content-Length', 1000)
        res:finish(req.method == 'HEAD' and '' or ('x'):rep(1000))
      end)
      local a = agent()
      local req = http.request(base, { method = 'HEAD', agent = a })
      req:finish()
      local res = assert(req:response())
      assert.are.equal(200, res.statusCode)
      assert.are.equal('1000', res.headers['content-length'])
      assert.are.equal('', res:body())
      res = assert(http.get(base, { agent = a }))
      assert.are.equal(1000, #res:body())
      assert.are.equal(2, #ports)
      assert.are.equal(ports[1], ports[2])
      a:destroy()
      server:close()
    end)
  end)

  it('POSTs a whole body with Content-Length', function()
    run(function()
      local seen
      local server, base = serve(function(req, res)
        seen = { cl = req.headers['content-length'],
          te = req.headers['transfer-encoding'], body = req:body(),
          method = req.method, type = req.headers['content-type'] }
        res:finish('ok')
      end)
      local a = agent()
      local req = http.request(base .. '/form', { method = 'post', agent = a,
        headers = { ['Content-Type'] = 'text/plain' } })
      req:finish('name=value')
      local res = assert(req:response())
      assert.are.equal('ok', res:body())
      assert.are.same({ cl = '10', body = 'name=value', method = 'POST',
        type = 'text/plain' }, seen)
      -- An empty POST still says its length.
      req = http.request(base, { method = 'POST', agent = a })
      req:finish()
      assert(req:response()):body()
      assert.are.same({ cl = '0', body = '', method = 'POST' }, seen)
      a:destroy()
      server:close()
    end)
  end)

  it('streams a chunked request body and reads a chunked answer', function()
    run(function()
      local seen
      local server, base = serve(function(req, res)
        seen = { cl = req.headers['content-length'],
          te = req.headers['transfer-encoding'] }
        while true do
          local chunk = req:read()
          if not chunk then break end
          res:write(chunk:upper())
        end
        res:finish()
      end)
      local a = agent()
      local req = http.request(base, { method = 'PUT', agent = a })
      for i = 1, 10 do assert.is_true(req:write('piece ' .. i .. '\n')) end
      req:finish('last')
      local res = assert(req:response())
      assert.are.equal('chunked', res.headers['transfer-encoding'])
      local want = {}
      for i = 1, 10 do want[i] = 'PIECE ' .. i .. '\n' end
      assert.are.equal(table.concat(want) .. 'LAST', res:body())
      assert.are.same({ te = 'chunked' }, seen)
      a:destroy()
      server:close()
    end)
  end)

  it('round-trips 8 MiB both ways byte for byte, streamed and whole', function()
    run(function()
      -- Under valgrind 8 MiB through Lua takes minutes: 1 MiB there.
      local size = helper.wrapper ~= '' and 1024 * 1024 or 8 * 1024 * 1024
      local data = pattern_bytes(size + 123)
      local server, base = serve(function(req, res)
        if req.url == '/echo' then -- streamed back as it comes
          while true do
            local chunk = req:read()
            if not chunk then break end
            assert(res:write(chunk))
          end
          res:finish()
        else
          res:finish(data)
        end
      end)
      local a = agent()
      -- Upload streamed in uneven pieces (chunked), download chunked.
      local req = http.request(base .. '/echo', { method = 'POST', agent = a })
      local pos, step = 1, 100000
      while pos <= #data do
        assert.is_true(req:write(data:sub(pos, pos + step - 1)))
        pos = pos + step
        step = step == 100000 and 70001 or 100000
      end
      req:finish()
      local res = assert(req:response())
      local back = res:body()
      assert.are.equal(#data, #back)
      assert.is_true(back == data)
      -- Upload whole (Content-Length), download with a Content-Length.
      req = http.request(base .. '/echo', { method = 'POST', agent = a })
      req:finish(data)
      back = assert(req:response()):body()
      assert.is_true(back == data)
      res = assert(http.get(base .. '/file', { agent = a }))
      assert.are.equal(tostring(#data), res.headers['content-length'])
      back = res:body()
      assert.is_true(back == data)
      a:destroy()
      server:close()
    end, { timeout = 120000 })
  end)

  it('holds back a body read slowly: bounded buffering, then all of it', function()
    run(function()
      local data = pattern_bytes(16 * 1024 * 1024)
      local server, base = serve(function(_, res)
        res:setHeader('Content-Length', #data)
        for pos = 1, #data, 65536 do
          assert(res:write(data:sub(pos, pos + 65535)))
        end
        res:finish()
      end)
      local a = agent()
      local res = assert(http.get(base, { agent = a }))
      local parts, reads, max_queued = {}, 0, 0
      while true do
        local chunk, err = res:read()
        assert.is_nil(err)
        if not chunk then break end
        parts[#parts + 1] = chunk
        reads = reads + 1
        max_queued = math.max(max_queued, res._size)
        if reads % 16 == 0 then timers.sleep(1) end -- a slow reader
      end
      assert.is_true(table.concat(parts) == data)
      -- The socket stops reading past the mark (64 KiB): what waits in
      -- the client is at most the mark and one read.
      assert.is_true(max_queued <= 2 * 65536,
        ('%d bytes waited unread'):format(max_queued))
      a:destroy()
      server:close()
    end, { timeout = 60000 })
  end)

  it('keeps one connection alive for sequential requests', function()
    run(function()
      local ports = {}
      local server, base = serve(function(req, res)
        ports[#ports + 1] = req.socket.remotePort
        res:finish(req.url)
      end)
      local a = agent()
      for i = 1, 5 do
        local req = http.request(base .. '/' .. i, { agent = a })
        req:finish()
        local res = assert(req:response())
        assert.are.equal('/' .. i, res:body())
        assert.are.equal(i > 1, req.reusedSocket)
      end
      assert.are.equal(5, #ports)
      for i = 2, 5 do assert.are.equal(ports[1], ports[i]) end
      assert.are.equal(1, #a.freeSockets['127.0.0.1:' .. server:address().port])
      -- The global agent pools too.
      ports = {}
      for _ = 1, 3 do assert(http.get(base)):body() end
      assert.are.equal(ports[1], ports[3])
      http.globalAgent:destroy()
      assert.is_nil(next(http.globalAgent.freeSockets))
      -- Still usable after destroy(), as in Node.
      assert.are.equal('/', assert(http.get(base)):body())
      http.globalAgent:destroy()
      server:close()
    end)
  end)

  it('does not pool with agent = false or keepAlive = false', function()
    run(function()
      local ports, conns = {}, {}
      local server, base = serve(function(req, res)
        ports[#ports + 1] = req.socket.remotePort
        conns[#conns + 1] = req.headers.connection
        res:finish()
      end)
      assert(http.get(base, { agent = false })):body()
      assert(http.get(base, { agent = false })):body()
      local a = agent({ keepAlive = false })
      assert(http.get(base, { agent = a })):body()
      assert.are_not.equal(ports[1], ports[2])
      assert.are_not.equal(ports[2], ports[3])
      assert.are.same({ 'close', 'close', 'close' }, conns)
      assert.is_nil(next(a.freeSockets))
      server:close()
    end)
  end)

  it('limits connections per host with maxSockets, queueing the rest', function()
    run(function()
      local active, max_active, ports = 0, 0, {}
      local server, base = serve(function(req, res)
        active = active + 1
        max_active = math.max(max_active, active)
        ports[req.socket.remotePort] = true
        timers.sleep(5) -- each request takes a while: they overlap
        active = active - 1
        res:finish(req.url)
      end)
      local a = agent({ maxSockets = 2 })
      local name = '127.0.0.1:' .. server:address().port
      local reqs = {}
      for i = 1, 5 do
        reqs[i] = http.request(base .. '/' .. i, { agent = a })
        reqs[i]:finish()
      end
      assert.are.equal(2, #a.sockets[name])
      assert.are.equal(3, #a.requests[name])
      for i = 1, 5 do
        local res = assert(reqs[i]:response())
        assert.are.equal('/' .. i, res:body())
      end
      local n = 0
      for _ in pairs(ports) do n = n + 1 end
      assert.are.equal(2, n)
      assert.are.equal(2, max_active)
      assert.are.equal(2, #a.freeSockets[name])
      assert.is_nil(a.requests[name])
      -- maxFreeSockets: what is beyond it closes.
      local b = agent({ maxFreeSockets = 1 })
      local r1 = http.request(base, { agent = b })
      local r2 = http.request(base, { agent = b })
      r1:finish()
      r2:finish()
      assert(r1:response()):body()
      assert(r2:response()):body()
      assert.are.equal(1, #b.freeSockets[name])
      a:destroy()
      b:destroy()
      server:close()
    end)
  end)

  it('serves 300 concurrent requests through 10 pooled connections', function()
    run(function()
      local ports, n = {}, 0
      local server, base = serve(function(req, res)
        if not ports[req.socket.remotePort] then
          ports[req.socket.remotePort] = true
          n = n + 1
        end
        res:finish(req.url)
      end)
      local a = agent({ maxSockets = 10 })
      local tasks = {}
      for i = 1, 300 do
        tasks[i] = coro.spawn(function()
          local res = assert(http.get(base .. '/' .. i, { agent = a }))
          return res:body()
        end)
      end
      local results = assert(coro.all(tasks))
      for i = 1, 300 do assert.are.equal('/' .. i, results[i][1]) end
      assert.are.equal(10, n)
      -- A request destroyed while it waits for a connection leaves the
      -- queue; the others go on.
      local name = '127.0.0.1:' .. server:address().port
      local reqs = {}
      for i = 1, 12 do
        reqs[i] = http.request(base .. '/q' .. i, { agent = a })
        reqs[i]:finish()
      end
      assert.are.equal(2, #a.requests[name])
      reqs[11]:destroy()
      assert.are.equal(1, #a.requests[name])
      local res, err = reqs[11]:response()
      assert.is_nil(res)
      assert.are.equal('ECONNRESET', err.code)
      for _, i in ipairs({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12 }) do
        assert.are.equal('/q' .. i, assert(reqs[i]:response()):body())
      end
      a:destroy()
      server:close()
    end, { timeout = 30000 })
  end)

  it('returns 3xx as is: redirects are not followed', function()
    run(function()
      local urls = {}
      local server, base = serve(function(req, res)
        urls[#urls + 1] = req.url
        if req.url == '/old' then
          res:writeHead(302, { Location = '/new' })
          res:finish('moved')
        else
          res:finish('new')
        end
      end)
      local a = agent()
      local res = assert(http.get(base .. '/old', { agent = a }))
      assert.are.equal(302, res.statusCode)
      assert.are.equal('Found', res.statusMessage)
      assert.are.equal('/new', res.headers.location)
      assert.are.equal('moved', res:body())
      assert.are.same({ '/old' }, urls)
      a:destroy()
      server:close()
    end)
  end)

  it('answers Expect: 100-continue: the body follows the 100', function()
    run(function()
      local order = {}
      local server, base = serve(function(req, res)
        order[#order + 1] = 'handler'
        local body = req:body() -- asking for the body sends the 100
        res:finish('got ' .. body)
      end)
      local a = agent()
      local req = http.request(base, { method = 'POST', agent = a,
        headers = { Expect = '100-continue', ['Content-Length'] = 4 } })
      local infos = {}
      req:on('information', function(info) infos[#infos + 1] = info.statusCode end)
      req:on('continue', function()
        order[#order + 1] = 'continue'
        req:finish('data')
      end)
      req:flushHeaders()
      local res = assert(req:response())
      assert.are.equal('got data', res:body())
      assert.are.same({ 'handler', 'continue' }, order)
      assert.are.same({ 100 }, infos)
      a:destroy()
      server:close()
    end)
  end)

  it('times out a response that does not come (ETIMEDOUT)', function()
    run(function()
      local release
      local server, base = serve(function(_, res)
        release = require('internal.wait').waiter('handler')
        release:wait() -- no answer before the client gave up
        res:finish('too late')
      end)
      local a = agent()
      local timeouts = 0
      local req = http.request(base, { agent = a, timeout = 50 })
      req:on('timeout', function() timeouts = timeouts + 1 end)
      req:finish()
      local res, err = req:response()
      assert.is_nil(res)
      assert.are.equal('ETIMEDOUT', err.code)
      assert.is_true(req.destroyed)
      assert.are.equal(1, timeouts)
      local name = '127.0.0.1:' .. server:address().port
      assert.is_nil(a.sockets[name])
      assert.is_nil(a.freeSockets[name])
      release:wake()
      -- The timeout bounds silence, not the whole exchange.
      server:close()
      server, base = serve(function(_, res)
        for _ = 1, 12 do
          res:write('.')
          timers.sleep(25)
        end
        res:finish()
      end)
      res = assert(http.get(base, { agent = a, timeout = 150 }))
      assert.are.equal(('.'):rep(12), res:body())
      a:destroy()
      server:close()
    end)
  end)

  it('closes idle pooled connections after freeSocketTimeout', function()
    run(function()
      local server, base = serve(function(_, res) res:finish('x') end,
        { keepAliveTimeout = 60000 })
      local a = agent({ freeSocketTimeout = 30 })
      local res = assert(http.get(base, { agent = a }))
      assert.are.equal('x', res:body())
      local name = '127.0.0.1:' .. server:address().port
      local sock = a.freeSockets[name][1]
      -- Pooled sockets keep nothing alive: handle and timer are unref'd.
      assert.is_false(sock._handle:has_ref())
      assert.is_false(sock._timer:has_ref())
      local w = require('internal.wait').waiter('test')
      sock:on('close', function() w:wake() end)
      w:wait()
      assert.is_nil(a.freeSockets[name])
      server:close()
    end)
  end)

  it('fails with header CR/LF and bad names or paths (raises)', function()
    run(function()
      local a = agent()
      local req = http.request({ host = '127.0.0.1', port = 9, agent = a })
      assert.has_error(function() req:setHeader('X-Evil', 'a\r\nInjected: 1') end,
        "invalid character in the value of header 'X-Evil'")
      assert.has_error(function() req:setHeader('X-Evil', 'a\nb') end)
      assert.has_error(function() req:setHeader('X-Evil', 'a\0b') end)
      assert.has_error(function() req:setHeader('Bad Name', 'x') end)
      assert.has_error(function() req:setHeader('Bad\r\nName', 'x') end)
      assert.has_error(function() req:setHeader('X', { 'ok', 'no\r\n' }) end)
      assert.has_no_error(function() req:setHeader('X-Tab', 'a\tb') end)
      assert.has_error(function()
        http.request({ host = '127.0.0.1', port = 9, agent = a,
          headers = { ['X-A'] = 'x\r\ny' } })
      end)
      assert.has_error(function()
        http.request({ host = '127.0.0.1', port = 9, path = '/a b', agent = a })
      end, 'request path contains unescaped characters')
      assert.has_error(function()
        http.request({ host = '127.0.0.1', port = 9, method = 'GE T', agent = a })
      end)
      assert.has_error(function() http.get('https://example.com/') end)
      req:destroy()
      a:destroy()
    end)
  end)

  it('returns connection refused as a value, or emits it with a callback', function()
    run(function()
      local probe = net.createServer()
      assert(probe:listen(0, '127.0.0.1'))
      local port = probe:address().port
      local closed = gate()
      probe:close(closed.open)
      closed.wait()
      local a = agent()
      local res, err = http.get('http://127.0.0.1:' .. port .. '/', { agent = a })
      assert.is_nil(res)
      assert.are.equal('ECONNREFUSED', err.code)
      assert.are.equal('connect', err.syscall)
      -- Callback style: the request emits 'error'.
      local w = require('internal.wait').waiter('test')
      local req = http.get({ host = '127.0.0.1', port = port, agent = a },
        function() error('no response expected') end)
      req:on('error', function(e) w:wake(e) end)
      local e = w:wait()
      assert.are.equal('ECONNREFUSED', e.code)
      -- A failure inside http.request() itself (binding a local address
      -- that is not ours) still reaches a listener added after it.
      w = require('internal.wait').waiter('test')
      req = http.get({ host = '127.0.0.1', port = port, agent = a,
        localAddress = '192.0.2.1' }, function() error('no response expected') end)
      req:on('error', function(e2) w:wake(e2) end)
      e = w:wait()
      assert.are.equal('EADDRNOTAVAIL', e.code)
      -- A name that does not resolve.
      res, err = http.get('http://no-such-host.invalid/', { agent = a })
      assert.is_nil(res)
      assert.is_truthy(err.code)
      a:destroy()
    end)
  end)
end)

describe('http client against misbehaving servers', function()
  it('reports a server that closes before answering (socket hang up)', function()
    run(function()
      local server, port = raw_server(function(sock)
        read_until(sock, '\r\n\r\n')
        sock:destroy()
      end)
      local res, err = http.get({ host = '127.0.0.1', port = port, agent = false })
      assert.is_nil(res)
      assert.are.equal('ECONNRESET', err.code)
      assert.are.equal('socket hang up', err.message)
      server:close()
    end)
  end)

  it('reports a server that closes in the middle of the body', function()
    run(function()
      local server, port = raw_server(function(sock)
        read_until(sock, '\r\n\r\n')
        sock:write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b')
        sock:finish()
      end)
      local a = agent()
      local res = assert(http.get({ host = '127.0.0.1', port = port, agent = a }))
      assert.are.equal(200, res.statusCode)
      local aborted = 0
      res:on('aborted', function() aborted = aborted + 1 end)
      local body, err = res:body()
      assert.is_nil(body)
      assert.are.equal('ECONNRESET', err.code)
      assert.are.equal('aborted', err.message)
      assert.is_false(res.complete)
      assert.are.equal(1, aborted)
      assert.is_nil(next(a.sockets))
      assert.is_nil(next(a.freeSockets))
      -- The same while a chunked body is being read with read().
      server:close()
      local got_hello = gate()
      server, port = raw_server(function(sock)
        read_until(sock, '\r\n\r\n')
        sock:write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' ..
          '5\r\nhello\r\n')
        got_hello.wait()
        sock:destroy()
      end)
      res = assert(http.get({ host = '127.0.0.1', port = port, agent = a }))
      assert.are.equal('hello', res:read())
      got_hello.open()
      local chunk, rerr = res:read()
      assert.is_nil(chunk)
      assert.are.equal('ECONNRESET', rerr.code)
      a:destroy()
      server:close()
    end)
  end)

  it('returns a malformed response as an HPE_ error', function()
    run(function()
      local replies = {
        'HTTX/1.1 200 OK\r\n\r\n',
        'HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n',
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
        'HTTP/1.1 2x0 OK\r\n\r\n',
        'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
        'HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n',
      }
      local server, port = raw_server(function(sock, n)
        read_until(sock, '\r\n\r\n')
        sock:write(replies[n])
        read_until(sock, 'never') -- until the client closes
        sock:destroy()
      end)
      local codes = {}
      for i = 1, #replies do
        local res, err = http.get({ host = '127.0.0.1', port = port, agent = false })
        if res then -- the head was fine: the body fails
          res, err = res:body()
        end
        assert.is_nil(res)
        assert.is_truthy(err.code:match('^HPE_'), tostring(err.code))
        assert.is_truthy(err.message:match('^Parse Error: '))
        codes[i] = err.code
      end
      assert.are.same({ 'HPE_INVALID_CONSTANT', 'HPE_INVALID_CONTENT_LENGTH',
        'HPE_INVALID_CHUNK_SIZE', 'HPE_INVALID_STATUS',
        'HPE_UNEXPECTED_CONTENT_LENGTH', 'HPE_LF_EXPECTED' }, codes)
      server:close()
    end)
  end)

  it('limits the size of a response head (HPE_HEADER_OVERFLOW)', function()
    run(function()
      local server, port = raw_server(function(sock)
        read_until(sock, '\r\n\r\n')
        sock:write('HTTP/1.1 200 OK\r\nX-Big: ' .. ('a'):rep(2000) .. '\r\n\r\n')
        read_until(sock, 'never')
        sock:destroy()
      end)
      local res, err = http.get({ host = '127.0.0.1', port = port, agent = false,
        maxHeaderSize = 1024 })
      assert.is_nil(res)
      assert.are.equal('HPE_HEADER_OVERFLOW', err.code)
      server:close()
    end)
  end)

  it('reads a close-delimited HTTP/1.0 body, and does not reuse it', function()
    run(function()
      local conns = 0
      local server, port = raw_server(function(sock)
        conns = conns + 1
        read_until(sock, '\r\n\r\n')
        sock:write('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n')
        sock:write('first part, ')
        timers.sleep(2)
        sock:finish('second part')
      end)
      local a = agent()
      for _ = 1, 2 do
        local res = assert(http.get({ host = '127.0.0.1', port = port, agent = a }))
        assert.are.equal('1.0', res.httpVersion)
        assert.are.equal('first part, second part', res:body())
        assert.is_true(res.complete)
      end
      assert.are.equal(2, conns)
      assert.is_nil(next(a.freeSockets))
      a:destroy()
      server:close()
    end)
  end)

  it('reports 1xx responses as information and returns the final one', function()
    run(function()
      local server, port = raw_server(function(sock)
        read_until(sock, '\r\n\r\n')
        sock:write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n' ..
          'HTTP/1.1 102 Processing\r\n\r\n')
        timers.sleep(2)
        sock:finish('HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndone')
      end)
      local infos = {}
      local req = http.request({ host = '127.0.0.1', port = port, agent = false })
      req:on('information', function(info)
        infos[#infos + 1] = info.statusCode .. ' ' .. info.statusMessage ..
          (info.headers.link and ' ' .. info.headers.link or '')
      end)
      req:finish()
      local res = assert(req:response())
      assert.are.equal(200, res.statusCode)
      assert.are.equal('done', res:body())
      assert.are.same({ '103 Early Hints </style.css>; rel=preload',
        '102 Processing' }, infos)
      server:close()
    end)
  end)

  it('retries an idempotent request once when a pooled connection was stale', function()
    run(function()
      local conns, requests = 0, 0
      local server, port = raw_server(function(sock, n)
        conns = conns + 1
        local buf = ''
        while true do
          buf = read_until(sock, '\r\n\r\n', buf)
          local head_end = buf:find('\r\n\r\n', 1, true)
          if not head_end then break end
          buf = buf:sub(head_end + 4)
          requests = requests + 1
          if n == 1 and requests == 2 then
            sock:destroy() -- read the request, then closed: a stale socket
            return
          end
          sock:write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n' .. n)
        end
        sock:destroy()
      end)
      local a = agent()
      local opts = { host = '127.0.0.1', port = port, agent = a }
      assert.are.equal('1', assert(http.get(opts)):body())
      local req = http.request(opts)
      req:finish()
      local res, err = req:response()
      assert.is_nil(err)
      assert.are.equal('2', res:body())
      assert.is_false(req.reusedSocket) -- it went out again on a new one
      assert.are.equal(2, conns)
      assert.are.equal(3, requests)
      a:destroy()
      server:close()
    end)
  end)

  it('does not retry a POST on a stale connection', function()
    run(function()
      local server, port = raw_server(function(sock)
        local buf = read_until(sock, '\r\n\r\n')
        sock:write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
        read_until(sock, '\r\n\r\n', buf:sub(buf:find('\r\n\r\n', 1, true) + 4))
        sock:destroy()
      end)
      local a = agent()
      local opts = { host = '127.0.0.1', port = port, agent = a }
      assert.are.equal('ok', assert(http.get(opts)):body())
      local req = http.request(opts, { method = 'POST' })
      req:finish('payload')
      local res, err = req:response()
      assert.is_nil(res)
      assert.are.equal('ECONNRESET', err.code)
      assert.is_true(req.reusedSocket)
      a:destroy()
      server:close()
    end)
  end)

  it('drops a pooled connection the server closes', function()
    run(function()
      local pooled = gate()
      local server, port = raw_server(function(sock)
        read_until(sock, '\r\n\r\n')
        sock:write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
        pooled.wait()
        sock:destroy()
      end)
      local a = agent()
      assert.are.equal('ok', assert(http.get({ host = '127.0.0.1', port = port,
        agent = a })):body())
      local name = '127.0.0.1:' .. port
      local sock = a.freeSockets[name][1]
      local w = require('internal.wait').waiter('test')
      sock:on('close', function() w:wake() end)
      pooled.open()
      w:wait()
      assert.is_nil(a.freeSockets[name])
      server:close()
    end)
  end)

  it('hands the socket over on 101 Switching Protocols', function()
    run(function()
      local server, port = raw_server(function(sock)
        read_until(sock, '\r\n\r\n')
        sock:write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n' ..
          'Connection: Upgrade\r\n\r\nhi')
        while true do
          local chunk = sock:read()
          if not chunk then break end
          sock:write(chunk)
        end
        sock:destroy()
      end)
      local a = agent()
      local req = http.request({ host = '127.0.0.1', port = port, agent = a,
        headers = { Upgrade = 'echo', Connection = 'Upgrade' } })
      local w = require('internal.wait').waiter('test')
      req:on('upgrade', function(res, sock, head) w:wake(res, sock, head) end)
      req:finish()
      local res, sock, head = w:wait()
      assert.are.equal(101, res.statusCode)
      assert.are.equal('hi', head)
      sock:write('ping')
      assert.are.equal('ping', sock:read())
      sock:destroy()
      assert.is_nil(next(a.sockets))
      a:destroy()
      server:close()
    end)
  end)
end)

-- Node -------------------------------------------------------------------------

local NODE_SERVER = [[
const http = require('http');
const conns = new Set();
let active = 0, maxActive = 0;
const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  active++; maxActive = Math.max(maxActive, active);
  const done = () => { active--; };
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const info = { method: req.method, url: req.url, headers: req.headers,
      port: req.socket.remotePort, length: body.length, maxActive };
    switch (u.pathname) {
    case '/echo':
      res.setHeader('X-Request-TE', String(req.headers['transfer-encoding']));
      for (let i = 0; i < body.length; i += 65536) res.write(body.subarray(i, i + 65536));
      res.end(); done(); break;
    case '/info':
      res.setHeader('Content-Type', 'application/json');
      setTimeout(() => { res.end(JSON.stringify(info)); done(); },
        Number(u.searchParams.get('delay') || 0));
      break;
    case '/big': {
      const n = Number(u.searchParams.get('n'));
      const buf = Buffer.alloc(n);
      for (let i = 0; i < n; i++) buf[i] = (i * 7 + 3) % 256;
      res.setHeader('Content-Length', n); res.end(buf); done(); break;
    }
    case '/redirect':
      res.writeHead(301, { Location: '/elsewhere' }); res.end(); done(); break;
    case '/hints':
      res.writeEarlyHints({ link: '</a.css>; rel=preload' });
      res.end('after hints'); done(); break;
    default:
      res.end('hello from node'); done();
    }
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(server.address().port + '\n');
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
]]

local node = nil
do
  local r = helper.exec('command -v node')
  if r.code == 0 and r.stdout:match('%S') then node = r.stdout:match('(%S+)') end
end

-- Runs body(base_url) against a fresh Node server, stopped after.
local function with_node(body)
  local child = assert(cp.spawn(node, { '-e', NODE_SERVER }))
  local line = ''
  while not line:find('\n') do
    local chunk = child.stdout:read()
    if not chunk then break end
    line = line .. chunk
  end
  local port = assert(tonumber(line:match('%d+')), 'node printed no port')
  local ok, err = pcall(body, 'http://127.0.0.1:' .. port)
  child.stdin:finish() -- Node exits when its stdin ends
  child:wait()
  if not ok then error(err, 0) end
end

local json = require('json')

local describe_node = node and describe or function(name, fn)
  describe(name .. ' (node is missing: pending)', function()
    pending('node is not installed', fn)
  end)
end

describe_node('http client against a Node http server', function()
  it('GETs, HEADs and follows no redirect', function()
    run(function()
      with_node(function(base)
        local a = agent()
        local res = assert(http.get(base .. '/', { agent = a }))
        assert.are.equal(200, res.statusCode)
        assert.are.equal('hello from node', res:body())
        local req = http.request(base .. '/', { method = 'HEAD', agent = a })
        req:finish()
        res = assert(req:response())
        assert.are.equal(200, res.statusCode)
        assert.are.equal('', res:body())
        res = assert(http.get(base .. '/redirect', { agent = a }))
        assert.are.equal(301, res.statusCode)
        assert.are.equal('/elsewhere', res.headers.location)
        assert.are.equal('', res:body())
        -- The request head as Node parsed it.
        res = assert(http.get(base .. '/info?x=1', { agent = a,
          headers = { ['X-Multi'] = { 'a', 'b' }, Accept = 'text/plain' } }))
        local info = json.decode(res:body())
        assert.are.equal('GET', info.method)
        assert.are.equal('/info?x=1', info.url)
        assert.are.equal('a, b', info.headers['x-multi'])
        assert.are.equal('text/plain', info.headers.accept)
        assert.are.equal('keep-alive', info.headers.connection)
        assert.is_truthy(info.headers.host:match('^127%.0%.0%.1:%d+$'))
        a:destroy()
      end)
    end, { timeout = 30000 })
  end)

  it('POSTs with Content-Length and chunked, 8 MiB round trips', function()
    run(function()
      with_node(function(base)
        local a = agent()
        local data = pattern_bytes(8 * 1024 * 1024 + 7)
        local req = http.request(base .. '/echo', { method = 'POST', agent = a })
        req:finish(data)
        local res = assert(req:response())
        assert.are.equal('undefined', res.headers['x-request-te'])
        assert.are.equal('chunked', res.headers['transfer-encoding'])
        assert.is_true(res:body() == data)
        req = http.request(base .. '/echo', { method = 'POST', agent = a })
        for i = 1, #data, 300000 do
          assert.is_true(req:write(data:sub(i, i + 299999)))
        end
        req:finish()
        res = assert(req:response())
        assert.are.equal('chunked', res.headers['x-request-te'])
        assert.is_true(res:body() == data)
        res = assert(http.get(base .. '/big?n=' .. #data, { agent = a }))
        assert.are.equal(tostring(#data), res.headers['content-length'])
        assert.is_true(res:body() == data)
        a:destroy()
      end)
    end, { timeout = 120000 })
  end)

  it('reuses one connection and limits them with maxSockets', function()
    run(function()
      with_node(function(base)
        local a = agent()
        local ports = {}
        for i = 1, 4 do
          local req = http.request(base .. '/info', { agent = a })
          req:finish()
          local res = assert(req:response())
          ports[i] = json.decode(res:body()).port
          assert.are.equal(i > 1, req.reusedSocket)
        end
        for i = 2, 4 do assert.are.equal(ports[1], ports[i]) end
        a:destroy()
        local b = agent({ maxSockets = 2 })
        local tasks = {}
        for i = 1, 5 do
          tasks[i] = coro.spawn(function()
            local res = assert(http.get(base .. '/info?delay=10', { agent = b }))
            return json.decode(res:body())
          end)
        end
        local results = assert(coro.all(tasks))
        local seen, n = {}, 0
        for i = 1, 5 do
          local info = results[i][1]
          if not seen[info.port] then
            seen[info.port] = true
            n = n + 1
          end
          assert.is_true(info.maxActive <= 2)
        end
        assert.are.equal(2, n)
        b:destroy()
      end)
    end, { timeout = 30000 })
  end)

  it('gets 103 Early Hints as information, then the response', function()
    run(function()
      with_node(function(base)
        local req = http.request(base .. '/hints', { agent = false })
        local hints = {}
        req:on('information', function(info)
          hints[#hints + 1] = info.statusCode .. ' ' .. tostring(info.headers.link)
        end)
        req:finish()
        local res = assert(req:response())
        assert.are.equal('after hints', res:body())
        assert.are.same({ '103 </a.css>; rel=preload' }, hints)
      end)
    end, { timeout = 30000 })
  end)

  it('sends Expect: 100-continue bodies after Node says continue', function()
    run(function()
      with_node(function(base)
        local req = http.request(base .. '/echo', { method = 'PUT', agent = false,
          headers = { Expect = '100-continue' } })
        local continued = false
        req:on('continue', function()
          continued = true
          req:write('after ')
          req:finish('continue')
        end)
        req:flushHeaders()
        local res = assert(req:response())
        assert.are.equal('after continue', res:body())
        assert.is_true(continued)
      end)
    end, { timeout = 30000 })
  end)

  it('lets a script exit while connections wait in the pool', function()
    run(function()
      with_node(function(base)
        local script = ([[
          local http = require('http')
          local a = http.Agent.new({ freeSocketTimeout = 0 })
          local res = assert(http.get('%s/', { agent = a }))
          print(res:body(), #a.freeSockets['127.0.0.1:' .. %d])
        ]]):format(base, tonumber(base:match(':(%d+)$')))
        local child = assert(cp.spawn(helper.luvhost, { '-e', script }))
        local out = helper.read_all(child.stdout)
        -- Node keeps idle connections for 60 s: only an unref'd pooled
        -- socket lets the child end before that (the spec's deadline).
        local code = child:wait()
        assert.are.equal(0, code)
        assert.are.equal('hello from node\t1\n', out)
      end)
    end, { timeout = 30000 })
  end)
end)
