-- net and stream: servers and clients in both styles, backpressure,
-- half-close, errors as values, timeouts, Unix sockets.

local helper = require('spec.helper')
local net = require('net')
local coro = require('coro')
local timers = require('timers')
local uv = require('uv')

local run = helper.run

-- An echo server on 127.0.0.1 (or host), coroutine style.
local function echo_server(host)
  local server = net.createServer(function(sock)
    while true do
      local chunk = sock:read()
      if not chunk then break end
      sock:write(chunk)
    end
    sock:finish()
  end)
  assert(server:listen(0, host or '127.0.0.1'))
  return server, server:address().port
end

describe('net, coroutine style', function()
  it('echoes over IPv4', function()
    run(function()
      local server, port = echo_server()
      local sock = assert(net.connect({ host = '127.0.0.1', port = port }))
      assert.are.equal('127.0.0.1', sock.remoteAddress)
      assert.are.equal(port, sock.remotePort)
      assert.is_true(sock:write('hello'))
      assert.are.equal('hello', sock:read())
      sock:shutdown()
      assert.is_nil(sock:read())
      sock:close()
      server:close()
    end)
  end)

  it('echoes over IPv6', function()
    run(function()
      local server, port = echo_server('::1')
      assert.are.equal('IPv6', server:address().family)
      local sock = assert(net.connect({ host = '::1', port = port }))
      assert.are.equal('IPv6', sock.remoteFamily)
      sock:write({ 'a', 'b', 'c' })
      local got = ''
      while #got < 3 do got = got .. sock:read() end
      assert.are.equal('abc', got)
      sock:close()
      server:close()
    end)
  end)

  it('resolves localhost and gives a free port for port 0', function()
    run(function()
      local server = net.createServer(function(sock) sock:finish('hi') end)
      assert(server:listen(0, 'localhost'))
      local port = server:address().port
      assert.is_true(port > 0)
      local sock = assert(net.connect({ host = 'localhost', port = port }))
      assert.are.equal('hi', sock:read())
      assert.is_nil(sock:read())
      sock:close()
      server:close()
    end)
  end)

  it('listens on all addresses when no host is given', function()
    run(function()
      local server = net.createServer(function(sock) sock:finish('any') end)
      assert(server:listen(0))
      local port = server:address().port
      local sock = assert(net.connect({ host = '127.0.0.1', port = port }))
      assert.are.equal('any', sock:read())
      sock:close()
      server:close()
    end)
  end)

  it('serves 1,000 concurrent clients', function()
    run(function()
      local server, port = echo_server()
      local tasks = {}
      for i = 1, 1000 do
        tasks[i] = coro.spawn(function()
          local sock = assert(net.connect({ host = '127.0.0.1', port = port }))
          local msg = 'client ' .. i
          assert(sock:write(msg))
          local got = ''
          while #got < #msg do
            local chunk = assert(sock:read())
            got = got .. chunk
          end
          sock:close()
          return got
        end)
      end
      local results = assert(coro.all(tasks))
      for i = 1, 1000 do
        assert.are.equal('client ' .. i, results[i][1])
      end
      server:close()
    end, { timeout = 30000 })
  end)

  it('bounds the write queue when the reader is slow (64 MiB)', function()
    run(function()
      local total = 64 * 1024 * 1024
      local piece = string.rep('x', 256 * 1024)
      local hwm = require('stream').HIGH_WATER_MARK
      local max_queue, received = 0, 0
      local server = net.createServer(function(sock)
        local sent = 0
        while sent < total do
          assert(sock:write(piece))
          sent = sent + #piece
          max_queue = math.max(max_queue, sock:writeQueueSize())
        end
        sock:finish()
      end)
      assert(server:listen(0, '127.0.0.1'))
      local sock = assert(net.connect({ host = '127.0.0.1',
        port = server:address().port }))
      local reads = 0
      while true do
        local chunk = sock:read()
        if not chunk then break end
        received = received + #chunk
        reads = reads + 1
        if reads % 64 == 0 then timers.sleep(1) end -- a slow reader
      end
      sock:close()
      server:close()
      assert.are.equal(total, received)
      -- The writer waits while the queue is above the mark, so it never
      -- holds more than the mark plus one write.
      assert.is_true(max_queue <= hwm + #piece,
        ('queue reached %d bytes'):format(max_queue))
    end, { timeout = 60000 })
  end)

  it('supports half-close: the server answers after the client ended', function()
    run(function()
      local server = net.createServer({ allowHalfOpen = true }, function(sock)
        local request = ''
        while true do
          local chunk = sock:read()
          if not chunk then break end
          request = request .. chunk
        end
        sock:finish('got: ' .. request)
      end)
      assert(server:listen(0, '127.0.0.1'))
      local sock = assert(net.connect({ host = '127.0.0.1',
        port = server:address().port }))
      sock:write('question')
      sock:shutdown()
      local answer = ''
      while true do
        local chunk = sock:read()
        if not chunk then break end
        answer = answer .. chunk
      end
      assert.are.equal('got: question', answer)
      sock:close()
      server:close()
    end)
  end)

  it('returns connection refused as a value', function()
    run(function()
      local probe = net.createServer()
      assert(probe:listen(0, '127.0.0.1'))
      local port = probe:address().port
      probe:close()
      timers.sleep(1)
      local sock, err = net.connect({ host = '127.0.0.1', port = port })
      assert.is_nil(sock)
      assert.are.equal('ECONNREFUSED', err.code)
      assert.are.equal('connect', err.syscall)
      assert.are.equal('connect ECONNREFUSED 127.0.0.1:' .. port, tostring(err))
    end)
  end)

  it('returns an unreachable address as a value', function()
    run(function()
      -- 2001:db8::/32 is for documentation: no route leads there.
      local sock, err = net.connect({ host = '2001:db8::1', port = 9, timeout = 2000 })
      assert.is_nil(sock)
      if err ~= 'timeout' then
        assert.is_true(({ EHOSTUNREACH = true, ENETUNREACH = true,
          EADDRNOTAVAIL = true, EACCES = true })[err.code], tostring(err))
      end
    end)
  end)

  it('reports a port in use as a value', function()
    run(function()
      local a = net.createServer()
      assert(a:listen(0, '127.0.0.1'))
      local b = net.createServer()
      local ok, err = b:listen(a:address().port, '127.0.0.1')
      assert.is_nil(ok)
      assert.are.equal('EADDRINUSE', err.code)
      a:close()
    end)
  end)

  it('times reads out without closing the socket', function()
    run(function()
      local release = false
      local server = net.createServer(function(sock)
        while not release do timers.sleep(5) end
        sock:finish('late')
      end)
      assert(server:listen(0, '127.0.0.1'))
      local sock = assert(net.connect({ host = '127.0.0.1',
        port = server:address().port }))
      local timeouts = 0
      sock:on('timeout', function() timeouts = timeouts + 1 end)
      sock:setTimeout(30)
      local chunk, err = sock:read()
      assert.is_nil(chunk)
      assert.are.equal('timeout', err)
      assert.is_true(timeouts >= 1)
      sock:setTimeout(0)
      release = true
      assert.are.equal('late', sock:read())
      sock:close()
      server:close()
    end)
  end)

  it('allows one reader at a time', function()
    run(function()
      local server, port = echo_server()
      local sock = assert(net.connect({ host = '127.0.0.1', port = port }))
      local first = coro.spawn(function() return sock:read() end)
      local chunk, err = sock:read()
      assert.is_nil(chunk)
      assert.are.equal('socket busy reading', err)
      sock:write('x')
      local ok, got = first:join()
      assert.is_true(ok)
      assert.are.equal('x', got)
      sock:close()
      server:close()
    end)
  end)

  it('gives a reset connection as an error value', function()
    run(function()
      local server = net.createServer(function(sock)
        sock:read()
        sock._handle:close_reset()
      end)
      assert(server:listen(0, '127.0.0.1'))
      local sock = assert(net.connect({ host = '127.0.0.1',
        port = server:address().port }))
      sock:write('x')
      local chunk, err = sock:read()
      assert.is_nil(chunk)
      assert.are.equal('ECONNRESET', err.code)
      local ok, werr = sock:write('y')
      assert.is_nil(ok)
      assert.is_not_nil(werr)
      server:close()
    end)
  end)

  it('refuses writes after finish', function()
    run(function()
      local server, port = echo_server()
      local sock = assert(net.connect({ host = '127.0.0.1', port = port }))
      sock:finish('bye')
      local ok, err = sock:write('more')
      assert.is_nil(ok)
      assert.are.equal('ERR_STREAM_DESTROYED', err.code)
      sock:close()
      server:close()
    end)
  end)

  it('connects over Unix sockets', function()
    run(function()
      local dir, cleanup = helper.tmpdir()
      local path = dir .. '/echo.sock'
      local server = net.createServer(function(sock)
        sock:finish('unix: ' .. sock:read())
      end)
      assert(server:listen({ path = path }))
      assert.are.equal(path, server:address().path)
      local sock = assert(net.connect({ path = path }))
      sock:write('ping')
      assert.are.equal('unix: ping', sock:read())
      sock:close()
      server:close(function() cleanup() end)
      timers.sleep(5)
    end)
  end)

  it('closes the server once its connections end', function()
    local order = {}
    run(function()
      local server, port = echo_server()
      local sock = assert(net.connect({ host = '127.0.0.1', port = port }))
      sock:write('a')
      sock:read()
      server:close(function() order[#order + 1] = 'server closed' end)
      timers.sleep(10)
      order[#order + 1] = 'client closing'
      sock:close()
      timers.sleep(20)
      assert.is_false(server.listening)
      assert.are.equal(0, server:getConnections())
    end)
    assert.same({ 'client closing', 'server closed' }, order)
  end)
end)

describe('net, event style', function()
  it('echoes with data/end/close events and callbacks', function()
    local log = {}
    run(function()
      local server = net.createServer(function(sock)
        sock:on('data', function(chunk) sock:write(chunk:upper()) end)
        sock:on('end', function() sock:finish() end)
      end)
      server:listen(0, '127.0.0.1', function() log[#log + 1] = 'listening' end)
      local done = false
      local client = net.connect(server:address().port, '127.0.0.1', function(err, sock)
        assert.is_nil(err)
        log[#log + 1] = 'connected'
        sock:write('event', function(werr) log[#log + 1] = 'written ' .. tostring(werr) end)
        sock:shutdown()
      end)
      local received = ''
      client:on('data', function(chunk) received = received .. chunk end)
      client:on('end', function() log[#log + 1] = 'end' end)
      client:on('close', function(had_error)
        log[#log + 1] = 'close ' .. tostring(had_error)
        done = true
      end)
      while not done do timers.sleep(2) end
      assert.are.equal('EVENT', received)
      server:close()
    end)
    assert.same({ 'listening', 'connected', 'written nil', 'end', 'close false' }, log)
  end)

  it('emits error then close for a refused connection', function()
    local log = {}
    run(function()
      local probe = net.createServer()
      assert(probe:listen(0, '127.0.0.1'))
      local port = probe:address().port
      probe:close()
      local done = false
      string.gsub('x', 'x', function() -- a place that cannot wait: event style
        local sock = net.connect({ host = '127.0.0.1', port = port })
        sock:on('error', function(err) log[#log + 1] = err.code end)
        sock:on('close', function() log[#log + 1] = 'close' done = true end)
      end)
      while not done do timers.sleep(2) end
    end)
    assert.same({ 'ECONNREFUSED', 'close' }, log)
  end)

  it('queues writes made while connecting', function()
    run(function()
      local server, port = echo_server()
      local sock
      string.gsub('x', 'x', function()
        sock = net.connect({ host = '127.0.0.1', port = port })
        assert.is_true(sock.connecting)
        sock:write('early')
      end)
      assert.are.equal('early', sock:read())
      sock:close()
      server:close()
    end)
  end)

  it('pauses and resumes flowing data', function()
    run(function()
      local server, port = echo_server()
      local sock = assert(net.connect({ host = '127.0.0.1', port = port }))
      local got = {}
      sock:on('data', function(chunk) got[#got + 1] = chunk end)
      sock:pause()
      assert.is_true(sock:isPaused())
      sock:write('one')
      timers.sleep(20)
      assert.are.equal(0, #got)
      sock:resume()
      timers.sleep(20)
      assert.are.equal('one', table.concat(got))
      sock:close()
      server:close()
    end)
  end)

  it('pipes one stream into another', function()
    run(function()
      local sink = {}
      local target = net.createServer(function(sock)
        while true do
          local chunk = sock:read()
          if not chunk then break end
          sink[#sink + 1] = chunk
        end
        sock:close()
      end)
      assert(target:listen(0, '127.0.0.1'))
      local source = net.createServer(function(sock)
        sock:finish(string.rep('p', 100000))
      end)
      assert(source:listen(0, '127.0.0.1'))
      local from = assert(net.connect({ host = '127.0.0.1', port = source:address().port }))
      local to = assert(net.connect({ host = '127.0.0.1', port = target:address().port }))
      local closed = false
      to:on('close', function() closed = true end)
      from:pipe(to)
      while not closed do timers.sleep(5) end
      assert.are.equal(100000, #table.concat(sink))
      from:close()
      source:close()
      target:close()
    end)
  end)
end)

describe('process stdio', function()
  it('reads stdin piped from a file', function()
    local dir, cleanup = helper.tmpdir()
    local file = helper.write_file(dir .. '/in.txt', string.rep('line\n', 20000))
    local r = helper.exec(helper.command([[-e "local n = 0
      while true do local c = process.stdin:read() if not c then break end n = n + #c end
      print(n)"]]) .. ' <' .. helper.quote(file))
    cleanup()
    assert.are.equal('100000\n', r.stdout)
  end)

  it('reads stdin piped from a process', function()
    local r = helper.exec('yes line | head -n 20000 | ' .. helper.command([[-e "
      local n = 0
      process.stdin:on('data', function(c) n = n + #c end)
      process.stdin:on('end', function() print(n) end)"]]))
    assert.are.equal('100000\n', r.stdout)
  end)

  it('does not lose stdout written right before exit', function()
    for _, target in ipairs({ ' | wc -c', ' >/dev/null; echo ok' }) do
      local r = helper.exec(helper.command([[-e "
        process.stdout:write(string.rep('z', 1000000)) os.exit(0)"]]) .. target)
      if target == ' | wc -c' then
        assert.are.equal('1000000', r.stdout:match('%d+'))
      else
        assert.are.equal('ok\n', r.stdout)
      end
    end
  end)

  it('keeps the order of print and process.stdout:write', function()
    local r = helper.exec(helper.command([[-e "
      print('one') process.stdout:write('two\n') print('three')"]]) .. ' | cat')
    assert.are.equal('one\ntwo\nthree\n', r.stdout)
  end)

  it('makes stdio streams that are not leaks', function()
    run(function()
      assert.is_not_nil(process.stdout)
      assert.is_not_nil(process.stderr)
      assert.are.equal(1, process.stdout.fd)
      assert.is_table(uv)
    end)
  end)
end)
