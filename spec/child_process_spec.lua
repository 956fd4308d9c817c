-- child_process: spawn with every stdio kind, slow readers, exit codes,
-- signals, exec/execFile, and signals sent to luvhost itself.

local helper = require('spec.helper')
local cp = require('child_process')
local timers = require('timers')
local uv = require('uv')

local run = helper.run

local read_all = helper.read_all

describe('child_process.spawn', function()
  it('pipes stdin, stdout and stderr', function()
    run(function()
      local child = assert(cp.spawn('sh', { '-c', 'cat; echo oops >&2; exit 3' }))
      assert.is_true(child.pid > 0)
      assert(child.stdin:write('round trip'))
      child.stdin:finish()
      assert.are.equal('round trip', read_all(child.stdout))
      assert.are.equal('oops\n', read_all(child.stderr))
      local code, signal = child:wait()
      assert.are.equal(3, code)
      assert.is_nil(signal)
      assert.are.equal(3, child.exitCode)
    end)
  end)

  it('inherits descriptors and ignores streams as asked', function()
    local dir, cleanup = helper.tmpdir()
    local out = dir .. '/out.txt'
    local r = helper.luvhost_exec(([[-e "
      local cp = require('child_process')
      local c = cp.spawn('sh', {'-c', 'echo inherited; echo ignored >&2'},
        { stdio = {'ignore', 'inherit', 'ignore'} })
      print(c.stdout, c.stderr, (c:wait()))"]]) .. ' >' .. helper.quote(out))
    local text = helper.read_file(out)
    cleanup()
    assert.are.equal(0, r.code)
    assert.are.equal('', r.stderr)
    assert.are.equal('inherited\nnil\tnil\t0\n', text)
  end)

  it('passes an fd number and a stream as stdio', function()
    run(function()
      local fds = uv.pipe({ nonblock = true }, { nonblock = true })
      local reader = uv.new_pipe(false)
      reader:open(fds.read)
      local child = assert(cp.spawn('sh', { '-c', 'echo to-fd-3 >&3' },
        { stdio = { 'ignore', 'ignore', 'ignore', fds.write } }))
      local ours = uv.new_pipe(false) -- close our copy of the write end
      ours:open(fds.write)
      ours:close()
      local stream = require('stream').Stream.new(reader)
      assert.are.equal('to-fd-3\n', read_all(stream))
      child:wait()
      stream:close()
    end)
  end)

  it('runs with cwd, env and a shell', function()
    run(function()
      local dir, cleanup = helper.tmpdir()
      local child = assert(cp.spawn('echo "$GREETING from $(pwd)"', nil, {
        shell = true, cwd = dir, env = { GREETING = 'hi', PATH = os.getenv('PATH') },
      }))
      local out = read_all(child.stdout)
      child:wait()
      cleanup()
      assert.are.equal('hi from ' .. dir .. '\n', out)
    end)
  end)

  it('lets a slow reader take 10 MiB without losing any of it', function()
    run(function()
      local child = assert(cp.spawn('head', { '-c', tostring(10 * 1024 * 1024),
        '/dev/zero' }))
      local total, reads = 0, 0
      while true do
        local chunk = child.stdout:read()
        if not chunk then break end
        total = total + #chunk
        reads = reads + 1
        if reads % 32 == 0 then timers.sleep(1) end
      end
      assert.are.equal(0, (child:wait()))
      assert.are.equal(10 * 1024 * 1024, total)
    end, { timeout = 60000 })
  end)

  it('kills with a signal and reports it', function()
    run(function()
      local child = assert(cp.spawn('sleep', { '30' }))
      local exits = {}
      child:on('exit', function(code, signal) exits[#exits + 1] = { code, signal } end)
      assert.is_true(child:kill('SIGKILL'))
      local code, signal = child:wait()
      assert.is_nil(code)
      assert.are.equal('SIGKILL', signal)
      assert.is_true(child.killed)
      assert.same({ { nil, 'SIGKILL' } }, exits)
      assert.is_false(child:kill())
    end)
  end)

  it('emits close after exit and the end of its streams', function()
    local order = {}
    run(function()
      local child = assert(cp.spawn('sh', { '-c', 'echo out' }))
      child:on('exit', function() order[#order + 1] = 'exit' end)
      child:on('close', function(code) order[#order + 1] = 'close ' .. code end)
      child.stdout:on('data', function() end)
      child:wait()
      while #order < 2 do timers.sleep(2) end
    end)
    assert.same({ 'exit', 'close 0' }, order)
  end)

  it('returns a missing program as an error value', function()
    run(function()
      local child, err = cp.spawn('/no/such/program', { 'x' })
      assert.is_nil(child)
      assert.are.equal('ENOENT', err.code)
      assert.are.equal('spawn /no/such/program', err.syscall)
      assert.are.equal('/no/such/program', err.path)
      assert.are.equal('spawn /no/such/program ENOENT', tostring(err))
    end)
  end)

  it('rejects bad arguments', function()
    assert.has_error(function() cp.spawn(42) end)
    assert.has_error(function() cp.spawn('ls', 'notatable') end)
    assert.has_error(function() cp.spawn('ls', {}, { stdio = { 'bogus' } }) end)
  end)

  it('waits with a callback too', function()
    local got
    run(function()
      local child = assert(cp.spawn('sh', { '-c', 'exit 7' }))
      child:wait(function(code) got = code end)
      while got == nil do timers.sleep(2) end
    end)
    assert.are.equal(7, got)
  end)
end)

describe('exec and execFile', function()
  it('collect output and the exit code', function()
    run(function()
      local out, err, code, signal = cp.exec('echo one; echo two >&2; exit 5')
      assert.are.equal('one\n', out)
      assert.are.equal('two\n', err)
      assert.are.equal(5, code)
      assert.is_nil(signal)
      out, err, code = cp.execFile('printf', { '%s-%s', 'a', 'b' })
      assert.are.equal('a-b', out)
      assert.are.equal(0, code)
    end)
  end)

  it('feed input and honour a timeout', function()
    run(function()
      assert.are.equal('fed', (cp.exec('cat', { input = 'fed' })))
      local ok, err = cp.exec('sleep 5', { timeout = 50 })
      assert.is_nil(ok)
      assert.are.equal('timeout', err)
    end)
  end)

  it('stop at maxBuffer', function()
    run(function()
      local ok, err = cp.exec('head -c 100000 /dev/zero', { maxBuffer = 1000 })
      assert.is_nil(ok)
      assert.are.equal('ERR_CHILD_PROCESS_STDIO_MAXBUFFER', err.code)
    end)
  end)

  it('return a program that cannot start as an error, also with a callback', function()
    local got
    run(function()
      local ok, err = cp.execFile('/no/such/program')
      assert.is_nil(ok)
      assert.are.equal('ENOENT', err.code)
      cp.exec('echo cb', function(e, out, _, code) got = { e, out, code } end)
      while not got do timers.sleep(2) end
    end)
    assert.same({ nil, 'cb\n', 0 }, got)
  end)
end)

describe('signals sent to luvhost', function()
  it('run the script\'s handler (SIGTERM to a child luvhost)', function()
    run(function()
      local child = assert(cp.spawn(helper.luvhost, { '-e', [[
        local t = setInterval(function() end, 1000)
        process:on('SIGTERM', function(name)
          print('handled ' .. name)
          clearInterval(t)
          process.exitCode = 4
        end)
        print('ready')
        io.stdout:flush()]] }))
      assert.are.equal('ready\n', child.stdout:read())
      assert.is_true(process.kill(child.pid, 'SIGTERM'))
      assert.are.equal('handled SIGTERM\n', read_all(child.stdout))
      assert.are.equal(4, (child:wait()))
    end)
  end)

  it('end a child luvhost that does not listen, by default', function()
    run(function()
      local child = assert(cp.spawn(helper.luvhost, { '-e',
        'setInterval(function() end, 1000) print("ready") io.stdout:flush()' }))
      assert.are.equal('ready\n', child.stdout:read())
      child:kill('SIGHUP')
      local code, signal = child:wait()
      assert.is_nil(code)
      assert.are.equal('SIGHUP', signal)
    end)
  end)
end)
