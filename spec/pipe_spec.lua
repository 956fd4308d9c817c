-- uv_pipe_t (luv-compatible): Unix domain sockets, anonymous pipes, and
-- handles passed over ipc pipes, within one process and between two.

local helper = require('spec.helper')
local uv = require('uv')
local resume = require('internal.binding').resume

local run, quote = helper.run, helper.quote

-- A queue a callback puts values in and the spec body waits on: get()
-- suspends the body until something arrives (no sleeping to synchronise).
local function channel()
  local ch = { items = {}, waiter = nil }
  function ch.put(...)
    ch.items[#ch.items + 1] = table.pack(...)
    local co = ch.waiter
    if co then
      ch.waiter = nil
      resume(co)
    end
  end
  function ch.get()
    while #ch.items == 0 do
      ch.waiter = coroutine.running()
      coroutine.yield()
    end
    local v = table.remove(ch.items, 1)
    return table.unpack(v, 1, v.n)
  end
  return ch
end

-- Reads a stream to its end; the channel gets (nil, data) or (err).
local function read_all(stream, ch)
  local parts = {}
  stream:read_start(function(err, chunk)
    if err then
      ch.put(err)
    elseif chunk then
      parts[#parts + 1] = chunk
    else
      ch.put(nil, table.concat(parts))
    end
  end)
end

local dir, cleanup
setup(function() dir, cleanup = helper.tmpdir() end)
teardown(function() cleanup() end)

local n = 0
local function sockpath()
  n = n + 1
  return ('%s/s%d.sock'):format(dir, n)
end

describe('pipe over a Unix socket', function()
  it('echoes in function form, with names on both sides', function()
    local path = sockpath()
    local got = {}
    run(function()
      local conns = channel()
      local server = uv.new_pipe(false)
      assert.are.equal(0, uv.pipe_bind(server, path))
      assert.are.equal(path, uv.pipe_getsockname(server))
      assert.are.equal(0, uv.listen(server, 128, function(err)
        assert.is_nil(err)
        local conn = uv.new_pipe(false)
        assert.are.equal(0, uv.accept(server, conn))
        conns.put(conn)
      end))

      local connected = channel()
      local client = uv.new_pipe(false)
      local req = uv.pipe_connect(client, path, connected.put)
      assert.matches('^uv_connect_t: ', tostring(req))
      assert.is_nil(connected.get())
      local conn = conns.get()

      got.client_sock = uv.pipe_getsockname(client)
      got.client_peer = uv.pipe_getpeername(client)
      got.conn_sock = uv.pipe_getsockname(conn)
      got.server_peer = { uv.pipe_getpeername(server) }

      uv.read_start(conn, function(err, chunk)
        assert.is_nil(err)
        if chunk then
          uv.write(conn, chunk)
        else
          uv.close(conn)
        end
      end)
      local echoed = channel()
      read_all(client, echoed)
      local written = channel()
      assert.matches('^uv_write_t: ', tostring(uv.write(client, 'hello ', written.put)))
      uv.write(client, { 'pipe', ' world' })
      assert.is_nil(written.get())
      local shut = channel()
      uv.shutdown(client, shut.put)
      assert.is_nil(shut.get())
      local err, data = echoed.get()
      assert.is_nil(err)
      got.echo = data
      uv.close(client)
      uv.close(server)
    end)
    assert.are.equal('hello pipe world', got.echo)
    assert.are.equal('', got.client_sock) -- an unbound client has no name
    assert.are.equal(path, got.client_peer)
    assert.are.equal(path, got.conn_sock)
    assert.is_nil(got.server_peer[1])
    assert.are.equal('ENOTCONN', got.server_peer[3])
    -- libuv removes the socket file when the bound pipe closes.
    assert.is_nil(io.open(path, 'rb'))
  end)

  it('echoes in method form', function()
    local path = sockpath()
    local echo, names
    run(function()
      local server = uv.new_pipe()
      assert.are.equal(0, server:bind(path))
      assert.are.equal(0, server:listen(4, function(err)
        assert.is_nil(err)
        local conn = uv.new_pipe()
        assert.are.equal(0, server:accept(conn))
        conn:read_start(function(_, chunk)
          if chunk then
            conn:write(chunk:upper())
          else
            conn:close()
          end
        end)
      end))
      local connected = channel()
      local client = uv.new_pipe()
      client:connect(path, connected.put)
      assert.is_nil(connected.get())
      assert.is_true(client:is_readable())
      assert.is_true(client:is_writable())
      names = { server:getsockname(), client:getpeername() }
      local echoed = channel()
      read_all(client, echoed)
      client:write('shout')
      client:shutdown()
      local _, data = echoed.get()
      echo = data
      client:close()
      server:close()
    end)
    assert.are.equal('SHOUT', echo)
    assert.same({ path, path }, names)
  end)

  it('reports ENOENT to the callback for a missing path', function()
    local path = dir .. '/missing.sock'
    local err
    run(function()
      local done = channel()
      local client = uv.new_pipe()
      assert.is_userdata(uv.pipe_connect(client, path, done.put))
      err = done.get()
      client:close()
    end)
    assert.are.equal('ENOENT', err)
  end)

  it('reports ECONNREFUSED for a bound socket nobody listens on', function()
    local path = sockpath()
    local err
    run(function()
      local bound = uv.new_pipe()
      assert.are.equal(0, bound:bind(path))
      local done = channel()
      local client = uv.new_pipe()
      client:connect(path, done.put)
      err = done.get()
      client:close()
      bound:close()
    end)
    assert.are.equal('ECONNREFUSED', err)
  end)

  it('returns the fail triple for names it cannot give', function()
    local path = sockpath()
    run(function()
      local p = uv.new_pipe()
      local ok, msg, name = p:getsockname() -- no socket yet
      assert.is_nil(ok)
      assert.are.equal('EBADF', name)
      assert.matches('^EBADF: ', msg)
      assert.are.equal(0, p:bind(path))
      ok, msg, name = p:bind(path) -- already bound
      assert.is_nil(ok)
      assert.are.equal('EINVAL: invalid argument', msg)
      assert.are.equal('EINVAL', name)
      p:close()

      local other = uv.new_pipe()
      ok, _, name = other:bind((path:gsub('[^/]+$', 'no/such/dir.sock')))
      assert.is_nil(ok)
      assert.are.equal('EACCES', name) -- libuv's name for ENOENT here
      other:close()
    end)
  end)
end)

describe('pipe settings', function()
  it('has pending counts and types, and pending_instances returns nothing',
    function()
      run(function()
        local p = uv.new_pipe(true)
        assert.are.equal(0, select('#', uv.pipe_pending_instances(p, 4)))
        assert.are.equal(0, select('#', p:pending_instances(1)))
        assert.are.equal(0, p:pending_count())
        assert.are.equal(0, uv.pipe_pending_count(p))
        assert.are.equal(0, select('#', p:pending_type())) -- none pending
        assert.are.equal(0, select('#', uv.pipe_pending_type(p)))
        p:close()
      end)
    end)

  it('chmods the socket file for other users', function()
    local path = sockpath()
    local function mode()
      local f = assert(io.popen('stat -c %a ' .. quote(path)))
      local m = f:read('l')
      f:close()
      return m
    end
    local modes = {}
    run(function()
      local p = uv.new_pipe()
      local ok, _, name = p:chmod('rw') -- not bound: no socket yet
      assert.is_nil(ok)
      assert.are.equal('EBADF', name)
      assert.are.equal(0, p:bind(path))
      assert(os.execute('chmod 700 ' .. quote(path)))
      modes[#modes + 1] = mode()
      assert.are.equal(0, p:chmod('r'))
      modes[#modes + 1] = mode()
      assert.are.equal(0, uv.pipe_chmod(p, 'w'))
      modes[#modes + 1] = mode()
      assert(os.execute('chmod 700 ' .. quote(path)))
      assert.are.equal(0, p:chmod('wr'))
      modes[#modes + 1] = mode()
      assert(os.execute('chmod 700 ' .. quote(path)))
      assert.are.equal(0, p:chmod('rw'))
      modes[#modes + 1] = mode()
      assert.has_error(function() p:chmod('x') end)
      p:close()
    end)
    assert.same({ '700', '744', '766', '766', '766' }, modes)
  end)

  it('checks its arguments', function()
    run(function()
      assert.has_error(function() uv.new_pipe('yes') end)
      assert.has_error(function() uv.pipe('nonblock') end)
      assert.has_error(function() uv.pipe(nil, 1) end)
      local t = uv.new_timer()
      assert.has_error(function() uv.pipe_bind(t, '/tmp/x') end)
      t:close()
      local p = uv.new_pipe()
      assert.has_error(function() p:bind() end)
      assert.has_error(function() p:connect(dir .. '/x.sock', 'not a function') end)
      p:close()
      local ok, err = pcall(p.bind, p, dir .. '/x.sock')
      assert.is_false(ok)
      assert.matches('attempt to use a closing pipe handle', err)
    end)
  end)
end)

describe('uv.pipe', function()
  it('gives a pair of fds that carry data when opened as pipes', function()
    local got, info
    run(function()
      local fds = uv.pipe({ nonblock = true }, { nonblock = true })
      assert.is_table(fds)
      info = { math.type(fds.read), math.type(fds.write),
        uv.guess_handle(fds.read), uv.guess_handle(fds.write) }
      local r, w = uv.new_pipe(), uv.new_pipe()
      assert.are.equal(0, uv.pipe_open(r, fds.read))
      assert.are.equal(0, w:open(fds.write))
      assert.is_true(r:is_readable())
      assert.is_false(r:is_writable())
      assert.is_true(w:is_writable())
      local ch = channel()
      read_all(r, ch)
      w:write('one ')
      w:write({ 'two ', 'three' }, function(err)
        assert.is_nil(err)
        w:close() -- the reader then sees the end
      end)
      local err
      err, got = ch.get()
      assert.is_nil(err)
      r:close()
    end)
    assert.are.equal('one two three', got)
    assert.same({ 'integer', 'integer', 'pipe', 'pipe' }, info)
  end)

  it('works with the default (blocking) fds as well', function()
    local got
    run(function()
      local fds = uv.pipe()
      local r, w = uv.new_pipe(), uv.new_pipe()
      r:open(fds.read)
      w:open(fds.write)
      local ch = channel()
      read_all(r, ch)
      w:write('x', function() w:close() end)
      local _, data = ch.get()
      got = data
      r:close()
    end)
    assert.are.equal('x', got)
  end)
end)

-- A TCP server on 127.0.0.1 and one client connected to it; returns
-- server, client and the server's side of the connection.
local function tcp_pair()
  local server = uv.new_tcp()
  assert.are.equal(0, server:bind('127.0.0.1', 0))
  local accepted = channel()
  assert.are.equal(0, server:listen(8, function(err)
    assert.is_nil(err)
    local conn = uv.new_tcp()
    assert.are.equal(0, server:accept(conn))
    accepted.put(conn)
  end))
  local client = uv.new_tcp()
  local connected = channel()
  client:connect('127.0.0.1', server:getsockname().port, connected.put)
  assert.is_nil(connected.get())
  return server, client, accepted.get()
end

describe('ipc pipes', function()
  it('pass a TCP handle between the ends of a socketpair', function()
    local got = {}
    run(function()
      local fds = uv.socketpair('stream', 0, { nonblock = true },
        { nonblock = true })
      local a, b = uv.new_pipe(true), uv.new_pipe(true)
      assert.are.equal(0, a:open(fds[1]))
      assert.are.equal(0, b:open(fds[2]))
      local server, client, conn = tcp_pair()

      local received = channel()
      b:read_start(function(err, data)
        assert.is_nil(err)
        if not data then return end
        got.data = data
        got.count = b:pending_count()
        got.type = b:pending_type()
        local h = uv['new_' .. got.type]()
        got.accept = uv.accept(b, h)
        got.after = b:pending_count()
        received.put(h)
      end)

      local sent = channel()
      assert.matches('^uv_write_t: ', tostring(uv.write2(a, 'tcp!', conn, sent.put)))
      assert.is_nil(sent.get())
      conn:close() -- the copy in this end is no longer needed
      local h = received.get()

      -- The received handle is the same connection: its peer is the client.
      got.same = h:getpeername().port == client:getsockname().port
      local ch = channel()
      read_all(client, ch)
      h:write('through the passed handle', function() h:close() end)
      local err, data = ch.get()
      assert.is_nil(err)
      got.reply = data

      -- Accepting when nothing is pending fails with EAGAIN.
      local t = uv.new_tcp()
      got.again = { uv.accept(b, t) }
      for _, handle in ipairs({ t, client, server, a, b }) do handle:close() end
    end)
    assert.are.equal('tcp!', got.data)
    assert.are.equal(1, got.count)
    assert.are.equal('tcp', got.type)
    assert.are.equal(0, got.accept)
    assert.are.equal(0, got.after)
    assert.is_true(got.same)
    assert.are.equal('through the passed handle', got.reply)
    assert.is_nil(got.again[1])
    assert.are.equal('EAGAIN', got.again[3])
  end)

  it('pass a pipe handle too', function()
    local got
    run(function()
      local fds = uv.socketpair('stream', 0, { nonblock = true },
        { nonblock = true })
      local a, b = uv.new_pipe(true), uv.new_pipe(true)
      a:open(fds[1])
      b:open(fds[2])
      local pfds = uv.pipe({ nonblock = true }, { nonblock = true })
      local r, w = uv.new_pipe(), uv.new_pipe()
      r:open(pfds.read)
      w:open(pfds.write)
      local received = channel()
      b:read_start(function(_, data)
        if data and b:pending_count() > 0 then
          local h = uv['new_' .. b:pending_type()]()
          assert.are.equal(0, b:accept(h))
          received.put(h)
        end
      end)
      a:write2('p', w, function() w:close() end)
      local w2 = received.get()
      local ch = channel()
      read_all(r, ch)
      w2:write('via a passed pipe', function() w2:close() end)
      got = select(2, ch.get())
      for _, h in ipairs({ r, a, b }) do h:close() end
    end)
    assert.are.equal('via a passed pipe', got)
  end)

  -- The child connects to a socket this process listens on, receives the
  -- server side of a TCP connection this process made, and answers on it
  -- after this process closed its own copy: only the child can answer.
  local child_script = [[
local uv = require('uv')
local path = arg[1]
local guard = uv.new_timer()
guard:start(tonumber(arg[2]), 0, function()
  io.stderr:write('child: timed out\n')
  os.exit(3)
end)
guard:unref()
local ipc = uv.new_pipe(true)
ipc:connect(path, function(err)
  assert(not err, err)
  ipc:write('pid ' .. uv.os_getpid())
  ipc:read_start(function(rerr, data)
    assert(not rerr, rerr)
    if not data then
      ipc:close()
      guard:close()
      return
    end
    while ipc:pending_count() > 0 do
      local kind = ipc:pending_type()
      local h = uv['new_' .. kind]()
      assert(ipc:accept(h) == 0)
      h:read_start(function(herr, chunk)
        assert(not herr, herr)
        if chunk then
          h:write(('pong %d %s %s'):format(uv.os_getpid(), kind, chunk))
          h:shutdown(function() h:close() end)
        end
      end)
    end
  end)
end)
]]

  -- After the child exits, a second (plain) luvhost reports its exit status
  -- on another socket, so a child that dies early fails the spec at once.
  local status_script = [[
local uv = require('uv')
local p = uv.new_pipe()
p:connect(os.getenv('LH_STATUS_PATH'), function(err)
  if not err then p:write(os.getenv('LH_STATUS')) end
  p:close()
end)
]]

  it('pass a TCP handle to another luvhost process', function()
    local path, status_path = sockpath(), sockpath()
    local script = helper.write_file(dir .. '/ipc_child.lua', child_script)
    local reporter = helper.write_file(dir .. '/status.lua', status_script)
    local errf = dir .. '/child.err'
    -- Generous bounds for valgrind runs; a passing run takes milliseconds.
    local slow = helper.wrapper ~= '' and 4 or 1
    local got = {}
    local function child_failed(what)
      error(('%s\nchild stderr:\n%s'):format(what, helper.read_file(errf)), 0)
    end
    local ok, failure = pcall(run, function()
      local events = channel()
      local status_server = uv.new_pipe()
      assert.are.equal(0, status_server:bind(status_path))
      assert.are.equal(0, status_server:listen(1, function(err)
        assert.is_nil(err)
        local conn = uv.new_pipe()
        assert.are.equal(0, status_server:accept(conn))
        local parts = {}
        conn:read_start(function(_, chunk)
          if chunk then
            parts[#parts + 1] = chunk
          else
            conn:close()
            events.put('exit', tonumber(table.concat(parts)))
          end
        end)
      end))
      local server = uv.new_pipe(false)
      assert.are.equal(0, server:bind(path))
      assert.are.equal(0, server:listen(1, function(err)
        assert.is_nil(err)
        local conn = uv.new_pipe(true)
        assert.are.equal(0, server:accept(conn))
        events.put('ipc', conn)
      end))
      -- In the background: os.execute returns once the shell started it.
      local child = helper.command(quote(script) .. ' ' .. quote(path) .. ' ' ..
        8000 * slow) .. ' </dev/null >/dev/null 2>' .. quote(errf)
      local report = ('LH_STATUS=$? LH_STATUS_PATH=%s %s %s'):format(
        quote(status_path), quote(helper.luvhost), quote(reporter))
      assert(os.execute(('(%s; %s) </dev/null >/dev/null 2>&1 &'):format(
        child, report)))

      local what, ipc = events.get()
      server:close()
      if what ~= 'ipc' then
        status_server:close()
        error(('the child exited with status %s before connecting'):format(
          tostring(ipc)), 0)
      end

      local from_child = channel()
      ipc:read_start(function(err, data)
        if err then from_child.put(err) else from_child.put(nil, data or false) end
      end)
      local err, hello = from_child.get()
      assert.is_nil(err)
      assert.is_string(hello)
      got.pid = tonumber(hello:match('^pid (%d+)$'))

      local tcp_server, client, conn = tcp_pair()
      tcp_server:close()
      local sent = channel()
      ipc:write2('handle', conn, sent.put)
      assert.is_nil(sent.get())
      conn:close() -- from here on, only the child holds the server side

      local ch = channel()
      read_all(client, ch)
      client:write('ping')
      err, got.reply = ch.get()
      client:close()
      assert.is_nil(err)

      ipc:shutdown() -- the child closes its end when it sees ours end
      err, got.eof = from_child.get()
      assert.is_nil(err)
      ipc:close()
      what, got.status = events.get()
      status_server:close()
      assert.are.equal('exit', what)
    end, { timeout = 15000 * slow })
    if not ok then child_failed(failure) end
    if got.status ~= 0 then
      child_failed('the child exited with status ' .. tostring(got.status))
    end
    assert.is_number(got.pid)
    assert.are_not.equal(uv.os_getpid(), got.pid)
    assert.are.equal(('pong %d tcp ping'):format(got.pid), got.reply)
    assert.is_false(got.eof) -- the child closed the ipc pipe: end of stream
  end)
end)
