-- uv_process_t (luv-compatible): uv.spawn with args, stdio, env, cwd,
-- uid/gid and detached; killing children; exit codes and signals; spawn
-- failures; luvhost spawning itself.

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

-- Reads a stream to its end, then closes it; the channel gets (nil, data)
-- or (err).
local function read_all(stream, ch)
  local parts = {}
  stream:read_start(function(err, chunk)
    if err then
      stream:close()
      ch.put(err)
    elseif chunk then
      parts[#parts + 1] = chunk
    else
      stream:close()
      ch.put(nil, table.concat(parts))
    end
  end)
end

-- Spawns a child whose on_exit closes its handle (as luv requires) and
-- puts (code, signal) in the returned channel.
local function spawn(path, options)
  local exited = channel()
  local handle, pid
  handle, pid = uv.spawn(path, options, function(code, signal)
    handle:close()
    exited.put(code, signal)
  end)
  assert(handle, pid)
  return handle, pid, exited
end

-- The child's stdout (and optionally stderr) as strings, and its exit.
local function capture(path, options)
  local out, err = uv.new_pipe(), uv.new_pipe()
  options.stdio = options.stdio or { nil, out, err }
  local _, _, exited = spawn(path, options)
  local got_out, got_err = channel(), channel()
  read_all(out, got_out)
  read_all(err, got_err)
  local _, stdout = got_out.get()
  local _, stderr = got_err.get()
  local code, signal = exited.get()
  return { stdout = stdout, stderr = stderr, code = code, signal = signal }
end

-- Process group and session of a process, from /proc/<pid>/stat.
local function pgrp_session(pid)
  local stat = helper.read_file('/proc/' .. pid .. '/stat')
  local pgrp, session = stat:match('^%d+ %b() %S+ %-?%d+ (%d+) (%d+)')
  return tonumber(pgrp), tonumber(session)
end

local function status_field(text, name)
  return text:match('\n' .. name .. ':%s*(%x+)')
end

describe('uv.spawn', function()
  it('runs a program with args and reads its stdout through a pipe', function()
    local got = {}
    run(function()
      local out = uv.new_pipe()
      local exited, closed = channel(), channel()
      local handle, pid
      handle, pid = uv.spawn('/bin/echo', {
        args = { 'hello', 'world' },
        stdio = { nil, out },
      }, function(code, signal)
        exited.put(code, signal)
        handle:close(closed.put)
      end)
      got.pid = pid
      got.get_pid = handle:get_pid()
      got.fn_pid = uv.process_get_pid(handle)
      got.name = tostring(handle)
      got.type = handle:get_type()
      got.active = handle:is_active()
      local data = channel()
      read_all(out, data)
      got.out = select(2, data.get())
      got.exit = table.pack(exited.get())
      closed.get()
      got.handle = handle
    end)
    got.closed = tostring(got.handle)
    assert.are.equal('hello world\n', got.out)
    assert.are.equal(0, got.exit[1])
    assert.are.equal(0, got.exit[2])
    assert.are.equal(2, got.exit.n)
    assert.is_true(math.type(got.pid) == 'integer' and got.pid > 0)
    assert.are.equal(got.pid, got.get_pid)
    assert.are.equal(got.pid, got.fn_pid)
    assert.matches('^uv_process_t: 0x%x+$', got.name)
    assert.matches('^uv_process_t: 0x%x+ %(closed%)$', got.closed)
    assert.are.equal('process', got.type)
    assert.is_true(got.active)
  end)

  it('runs /bin/sh with stdout and stderr on separate pipes', function()
    local r
    run(function()
      r = capture('/bin/sh', { args = { '-c', 'echo out; echo err >&2; exit 3' } })
    end)
    assert.are.equal('out\n', r.stdout)
    assert.are.equal('err\n', r.stderr)
    assert.are.equal(3, r.code)
    assert.are.equal(0, r.signal)
  end)

  it('writes to the stdin of cat and reads it back', function()
    local got = {}
    run(function()
      local stdin, stdout = uv.new_pipe(), uv.new_pipe()
      local _, _, exited = spawn('/bin/cat', { stdio = { stdin, stdout } })
      -- luv's directions: the child reads fd 0 and writes fd 1.
      got.flags = {
        stdin:is_writable(), stdin:is_readable(),
        stdout:is_readable(), stdout:is_writable(),
      }
      local data = channel()
      read_all(stdout, data)
      local written = channel()
      stdin:write('hello ', written.put)
      stdin:write({ 'from', ' cat' })
      got.write_err = written.get()
      local shut = channel()
      stdin:shutdown(shut.put)
      got.shutdown_err = shut.get()
      stdin:close()
      got.out = select(2, data.get())
      got.code = exited.get()
    end)
    assert.same({ true, false, true, false }, got.flags)
    assert.is_nil(got.write_err)
    assert.is_nil(got.shutdown_err)
    assert.are.equal('hello from cat', got.out)
    assert.are.equal(0, got.code)
  end)

  it('gives fds above 2 a two-way pipe and counts nil holes', function()
    local got = {}
    run(function()
      local extra = uv.new_pipe()
      local _, _, exited = spawn('/bin/sh', {
        args = { '-c', 'echo hello >&3; read line <&3; echo "got $line" >&3' },
        stdio = { nil, nil, nil, extra },
      })
      got.flags = { extra:is_readable(), extra:is_writable() }
      local lines = {}
      local done = channel()
      extra:read_start(function(err, chunk)
        if err or not chunk then
          extra:close()
          done.put(err)
          return
        end
        lines[#lines + 1] = chunk
        if chunk:find('hello') then extra:write('ping\n') end
      end)
      got.err = done.get()
      got.out = table.concat(lines)
      got.code = exited.get()
    end)
    assert.same({ true, true }, got.flags)
    assert.is_nil(got.err)
    assert.are.equal('hello\ngot ping\n', got.out)
    assert.are.equal(0, got.code)
  end)

  it('lets the child inherit an integer fd', function()
    local got = {}
    run(function()
      local fds = assert(uv.pipe())
      local _, _, exited = spawn('/bin/sh', {
        args = { '-c', 'echo inherited' },
        stdio = { nil, fds.write },
      })
      -- Our copy of the write end: wrap it to close it.
      local w = uv.new_pipe()
      assert.are.equal(0, w:open(fds.write))
      w:close()
      local r = uv.new_pipe()
      assert.are.equal(0, r:open(fds.read))
      local data = channel()
      read_all(r, data)
      got.out = select(2, data.get())
      got.code = exited.get()
    end)
    assert.are.equal('inherited\n', got.out)
    assert.are.equal(0, got.code)
  end)

  it('lets the child inherit an open stream handle', function()
    local got = {}
    run(function()
      local fds = assert(uv.pipe())
      local w, r = uv.new_pipe(), uv.new_pipe()
      assert.are.equal(0, w:open(fds.write))
      assert.are.equal(0, r:open(fds.read))
      -- w is open: the child gets its fd (not a new pipe), so the output
      -- arrives at the other end of the pipe we made.
      local _, _, exited = spawn('/bin/echo', {
        args = { 'through', 'the', 'stream' },
        stdio = { nil, w, 2 },
      })
      w:close()
      local data = channel()
      read_all(r, data)
      got.out = select(2, data.get())
      got.code = exited.get()
    end)
    assert.are.equal('through the stream\n', got.out)
    assert.are.equal(0, got.code)
  end)

  it('honours env and cwd', function()
    local dir, cleanup = helper.tmpdir()
    local real = helper.exec('cd ' .. quote(dir) .. ' && pwd -P').stdout
    local r
    run(function()
      r = capture('/bin/sh', {
        args = { '-c', 'echo "$FOO"; echo "${HOME-unset}"; pwd -P' },
        env = { 'FOO=bar baz', 'OTHER=1' },
        cwd = dir,
      })
    end)
    cleanup()
    assert.are.equal('bar baz\nunset\n' .. real, r.stdout)
    assert.are.equal('', r.stderr)
    assert.are.equal(0, r.code)
  end)

  it('inherits the environment and cwd without env or cwd', function()
    local r
    run(function()
      r = capture('/bin/sh', { args = { '-c', 'echo "$PATH"; pwd -P' } })
    end)
    local cwd = helper.exec('pwd -P').stdout
    assert.are.equal(os.getenv('PATH') .. '\n' .. cwd, r.stdout)
  end)

  it('reports exit codes, with numbers in args converted', function()
    local codes = {}
    run(function()
      local a = capture('/bin/sh', { args = { '-c', 'exit 3' } })
      local b = capture('/bin/true', {})
      local c = capture('/bin/false', {})
      -- sh -c 'exit $0' 42: the number becomes the string "42".
      local d = capture('/bin/sh', { args = { '-c', 'exit $0', 42 } })
      codes = { a.code, b.code, c.code, d.code, a.signal, d.signal }
    end)
    assert.same({ 3, 0, 1, 42, 0, 0 }, codes)
  end)

  it('runs on_exit after the script let go of the handle', function()
    local got = {}
    run(function()
      local exited = channel()
      do
        -- No Lua value keeps the handle: it stays pinned while open.
        local pid = select(2, uv.spawn('/bin/sh', { args = { '-c', 'exit 5' } },
          function(code, signal) exited.put(code, signal) end))
        got.pid = pid
      end
      collectgarbage()
      collectgarbage()
      got.code, got.signal = exited.get()
      -- Still open, no longer active: find it and close it.
      uv.walk(function(h)
        if h:get_type() == 'process' then
          got.walked = h:get_pid()
          got.active = h:is_active()
          h:close()
        end
      end)
    end)
    assert.are.equal(5, got.code)
    assert.are.equal(0, got.signal)
    assert.are.equal(got.pid, got.walked)
    assert.is_false(got.active)
  end)

  it('returns ENOENT for a missing program and leaks nothing', function()
    local got = {}
    run(function()
      local out = uv.new_pipe()
      local called = 0
      got.alive_before = uv.loop_alive()
      got.fail = table.pack(uv.spawn('/no/such/program', {
        args = { 'x' },
        stdio = { nil, out },
      }, function() called = called + 1 end))
      -- The failed handle is closing, not the script's: walk skips it.
      got.walked = 0
      uv.walk(function() got.walked = got.walked + 1 end)
      got.alive_during = uv.loop_alive()
      out:close()
      local closed = channel()
      local t = uv.new_timer()
      t:start(20, 0, function() t:close(closed.put) end)
      closed.get()
      got.called = called
      got.cwd = table.pack(uv.spawn('/bin/true', { cwd = '/no/such/dir' }))
    end)
    assert.are.equal(3, got.fail.n)
    assert.is_nil(got.fail[1])
    assert.are.equal('ENOENT: no such file or directory', got.fail[2])
    assert.are.equal('ENOENT', got.fail[3])
    assert.is_false(got.alive_before)
    assert.are.equal(1, got.walked) -- only the pipe
    assert.is_true(got.alive_during) -- the closing process handle
    assert.are.equal(0, got.called)
    assert.same({ n = 3, nil, 'ENOENT: no such file or directory', 'ENOENT' },
      got.cwd)
  end)

  it('closes the handle of a failed spawn (a script of its own)', function()
    local r = helper.luvhost_exec([[-e "local uv = require('uv')
      print(uv.loop_alive())
      print(uv.spawn('/no/such/program', {}))
      print(uv.loop_alive())
      uv.run('nowait')
      print(uv.loop_alive())"]])
    assert.are.equal('false\nnil\tENOENT: no such file or directory\tENOENT\n' ..
      'true\nfalse\n', r.stdout)
    assert.are.equal(0, r.code)
  end)

  it('switches uid and gid (EPERM unless root)', function()
    local r, fail
    run(function()
      local opts = { args = { '-c', 'id -u; id -g; id -G' }, uid = 65534, gid = 65534 }
      if uv.os_get_passwd().uid == 0 then
        r = capture('/bin/sh', opts)
      else
        -- Not root: setgid fails in the child and spawn reports it.
        fail = table.pack(uv.spawn('/bin/sh', opts))
      end
    end)
    if r then
      assert.are.equal('65534\n65534\n65534\n', r.stdout)
      assert.are.equal(0, r.code)
    else
      assert.is_nil(fail[1])
      assert.are.equal('EPERM', fail[3])
    end
  end)

  it('starts children with default signal dispositions and none blocked', function()
    local r
    run(function()
      r = capture('/bin/grep', { args = { '-E', '^Sig(Ign|Blk):', '/proc/self/status' } })
    end)
    -- luvhost itself ignores SIGPIPE; its children must not.
    local own = helper.read_file('/proc/self/status')
    assert.are_not.equal(0, tonumber(status_field(own, 'SigIgn'), 16) & (1 << 12))
    -- Signals 32 and 33 belong to glibc (thread cancellation, setxid); some
    -- runtimes (sanitizers, valgrind) set them up their own way and libuv
    -- resets only 1 to 31. None of the others may be ignored or blocked.
    local internal = (1 << 31) | (1 << 32)
    assert.are.equal(0, tonumber(status_field('\n' .. r.stdout, 'SigIgn'), 16)
      & ~internal)
    assert.are.equal(0, tonumber(status_field('\n' .. r.stdout, 'SigBlk'), 16)
      & ~internal)
  end)

  it('validates its arguments', function()
    local errs = {}
    run(function()
      local closed = uv.new_pipe()
      closed:close()
      local tcp, timer = uv.new_tcp(), uv.new_timer()
      local cases = {
        function() uv.spawn() end,
        function() uv.spawn('/bin/true') end,
        function() uv.spawn('/bin/true', {}, 42) end,
        function() uv.spawn('/bin/true', { args = 'x' }) end,
        function() uv.spawn('/bin/true', { args = { {} } }) end,
        function() uv.spawn('/bin/true', { stdio = { 'x' } }) end,
        function() uv.spawn('/bin/true', { stdio = { closed } }) end,
        function() uv.spawn('/bin/true', { stdio = { -1 } }) end,
        function() uv.spawn('/bin/true', { stdio = { timer } }) end,
        function() uv.spawn('/bin/true', { env = { 'A=1', false } }) end,
        function() uv.spawn('/bin/true', { cwd = 1 }) end,
        function() uv.spawn('/bin/true', { uid = 'root' }) end,
        function() uv.spawn('/bin/true', { gid = -1 }) end,
        function() uv.spawn('/bin/true', { stdio = { [5000] = 1 } }) end,
      }
      for i, case in ipairs(cases) do
        local ok, err = pcall(case)
        errs[i] = not ok and err or 'no error'
      end
      -- A TCP handle that is not open cannot become a pipe: libuv's EINVAL.
      errs.tcp = table.pack(uv.spawn('/bin/true', { stdio = { nil, tcp } }))
      tcp:close()
      timer:close()
    end)
    local want = {
      "bad argument #1 to 'spawn' %(string expected, got no value%)",
      "bad argument #2 to 'spawn' %(table expected, got no value%)",
      "bad argument #3 to 'spawn' %(callable expected, got number%)",
      'options.args must be a table or nil',
      'options.args%[1%] must be a string',
      'options.stdio%[1%] must be nil, an integer fd or a stream handle',
      'options.stdio%[1%] is closed',
      'options.stdio%[1%] is not a valid fd',
      'options.stdio%[1%] must be nil',
      'options.env%[2%] must be a string',
      'options.cwd must be a string or nil',
      'options.uid must be a number or nil',
      'options.gid is not a valid id',
      'too many stdio entries',
    }
    for i, pattern in ipairs(want) do
      assert.matches(pattern, errs[i])
    end
    assert.is_nil(errs.tcp[1])
    assert.are.equal('EINVAL', errs.tcp[3])
  end)

  it('has luv\'s function forms', function()
    for _, name in ipairs({ 'spawn', 'process_kill', 'process_get_pid',
        'disable_stdio_inheritance', 'kill' }) do
      assert.is_function(uv[name], name)
    end
  end)
end)

describe('killing a child', function()
  it('sends SIGTERM by default, numbers and names otherwise', function()
    local got = {}
    run(function()
      local ways = {
        function(h) return h:kill() end,
        function(h) return uv.process_kill(h, 'sigint') end,
        function(h) return h:kill(9) end,
        function(h) return h:kill('SIGHUP') end,
        function(h) return h:kill('usr1') end,
        function(h) return uv.process_kill(h, uv.constants.SIGQUIT) end,
      }
      for i, way in ipairs(ways) do
        local handle, _, exited = spawn('/bin/sleep', { args = { '30' } })
        local r = way(handle)
        local code, signal = exited.get()
        got[i] = { r, code, signal }
      end
    end)
    assert.same({
      { 0, 0, 15 }, { 0, 0, 2 }, { 0, 0, 9 }, { 0, 0, 1 }, { 0, 0, 10 },
      { 0, 0, 3 },
    }, got)
  end)

  it('reaches a child by pid with uv.kill', function()
    local got = {}
    run(function()
      local _, pid, exited = spawn('/bin/sleep', { args = { '30' } })
      got.r = uv.kill(pid, 'sigterm')
      got.code, got.signal = exited.get()
    end)
    assert.are.equal(0, got.r)
    assert.are.equal(0, got.code)
    assert.are.equal(15, got.signal)
  end)

  it('gives ESRCH once the child has exited, and raises on bad names', function()
    local got = {}
    run(function()
      local exited = channel()
      local handle = uv.spawn('/bin/true', {}, function(...) exited.put(...) end)
      exited.get()
      got.after = table.pack(handle:kill('sigterm'))
      got.bad = select(2, pcall(handle.kill, handle, 'sigwhatever'))
      handle:close()
      got.closed = select(2, pcall(handle.kill, handle))
    end)
    assert.same({ n = 3, nil, 'ESRCH: no such process', 'ESRCH' }, got.after)
    assert.matches("unknown signal 'sigwhatever'", got.bad)
    assert.matches('attempt to use a closing process handle', got.closed)
  end)
end)

describe('detached children', function()
  it('lead their own session and process group', function()
    local got = {}
    run(function()
      local own_pgrp, own_session = pgrp_session('self')
      got.own = { own_pgrp, own_session }
      -- cut prints fields 5 and 6 of its own stat: pgrp and session.
      local cut_args = { '-d', ' ', '-f', '5,6', '/proc/self/stat' }
      got.plain = capture('/usr/bin/cut', { args = cut_args }).stdout
      local out = uv.new_pipe()
      local _, pid, exited = spawn('/usr/bin/cut', {
        args = cut_args,
        stdio = { nil, out },
        detached = true,
      })
      got.pid = pid
      local data = channel()
      read_all(out, data)
      got.detached = select(2, data.get())
      exited.get()
    end)
    assert.are.equal(got.own[1] .. ' ' .. got.own[2] .. '\n', got.plain)
    assert.are.equal(got.pid .. ' ' .. got.pid .. '\n', got.detached)
  end)

  it('outlive a parent that unreferenced them', function()
    local r = helper.luvhost_exec([[-e "local uv = require('uv')
      local p, pid = uv.spawn('/bin/sleep', { args = { '30' }, detached = true },
        function() end)
      p:unref()
      print(p:has_ref(), pid)"]])
    assert.are.equal(0, r.code)
    local pid = tonumber(r.stdout:match('^false\t(%d+)\n$'))
    assert.is_number(pid)
    -- The parent is gone; the child still runs, in its own session.
    assert.are.equal(0, uv.kill(pid, 0))
    local _, session = pgrp_session(pid)
    assert.are.equal(pid, session)
    assert.are.equal(0, uv.kill(pid, 'sigkill'))
  end)
end)

describe('SIGCHLD', function()
  it('reaches a script\'s own signal handle while on_exit still runs', function()
    local got = {}
    run(function()
      local sig = uv.new_signal()
      local seen = channel()
      sig:start('sigchld', function(name)
        sig:close()
        seen.put(name)
      end)
      local r = capture('/bin/sh', { args = { '-c', 'exit 4' } })
      got.code = r.code
      got.name = seen.get()
    end)
    assert.are.equal(4, got.code)
    assert.are.equal('sigchld', got.name)
  end)
end)

describe('luvhost as a child', function()
  -- The luvhost under test, behind the valgrind wrapper when there is one.
  local function luvhost_command(args)
    local words = {}
    for w in helper.wrapper:gmatch('%S+') do words[#words + 1] = w end
    words[#words + 1] = helper.luvhost
    for _, a in ipairs(args) do words[#words + 1] = a end
    return table.remove(words, 1), words
  end

  it('runs, reads stdin and spawns a child of its own', function()
    local r
    run(function()
      local stdin, stdout, stderr = uv.new_pipe(), uv.new_pipe(), uv.new_pipe()
      local path, args = luvhost_command({ '-e', [[
        local uv = require('uv')
        io.write(io.read('a'):upper(), '\n')
        io.stdout:flush()
        io.stderr:write('to stderr\n')
        local p
        p = uv.spawn('/bin/echo', { args = { 'nested' }, stdio = { nil, 1, 2 } },
          function(code, signal)
            p:close()
            print('nested exit', code, signal)
            process.exitCode = 7
          end)]] })
      local _, _, exited = spawn(path, { args = args, stdio = { stdin, stdout, stderr } })
      local out, err = channel(), channel()
      read_all(stdout, out)
      read_all(stderr, err)
      stdin:write('from the parent')
      stdin:shutdown(function() stdin:close() end)
      r = {
        stdout = select(2, out.get()),
        stderr = select(2, err.get()),
        code = exited.get(),
      }
    end)
    assert.are.equal('FROM THE PARENT\nnested\nnested exit\t0\t0\n', r.stdout)
    assert.are.equal('to stderr\n', r.stderr)
    assert.are.equal(7, r.code)
  end)

  it('keeps inherited fds from its children after disable_stdio_inheritance', function()
    local r
    run(function()
      local stdout, extra = uv.new_pipe(), uv.new_pipe()
      local path, args = luvhost_command({ '-e', [==[
        local uv = require('uv')
        local function probe(tag, after)
          local p
          p = uv.spawn('/bin/sh', {
            args = { '-c', '[ -e /proc/self/fd/3 ] && echo $0 yes || echo $0 no', tag },
            stdio = { nil, 1, 2 },
          }, function()
            p:close()
            if after then after() end
          end)
        end
        probe('before', function()
          assert(select('#', uv.disable_stdio_inheritance()) == 0)
          probe('after')
        end)]==] })
      local _, _, exited = spawn(path, { args = args, stdio = { nil, stdout, 2, extra } })
      extra:close() -- the child keeps its end as fd 3
      local out = channel()
      read_all(stdout, out)
      r = { stdout = select(2, out.get()), code = exited.get() }
    end)
    assert.are.equal('before yes\nafter no\n', r.stdout)
    assert.are.equal(0, r.code)
  end)
end)
