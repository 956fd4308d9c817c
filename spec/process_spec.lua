-- process: identity, argv, env, time, exit, signals, and the globals.

local helper = require('spec.helper')
local uv = require('uv')
local timers = require('timers')

local run = helper.run

local function luvhost(args)
  return helper.luvhost_exec(args)
end

describe('process', function()
  it('is the global process and require("process")', function()
    assert.are.equal(process, require('process'))
  end)

  it('knows who and where it is', function()
    assert.are.equal(uv.os_getpid(), process.pid)
    assert.are.equal(uv.os_getppid(), process.ppid)
    assert.are.equal('linux', process.platform)
    assert.is_string(process.arch)
    assert.matches('^v%d+%.%d+%.%d+$', process.version)
    assert.are.equal('5.4', process.versions.lua)
    assert.are.equal(uv.version_string(), process.versions.uv)
    assert.are.equal(uv.exepath(), process.execPath)
    assert.are.equal(uv.cwd(), process.cwd())
  end)

  it('lays out argv as Node does: execPath, script, arguments', function()
    local dir, cleanup = helper.tmpdir()
    local script = helper.write_file(dir .. '/argv.lua', [[
      print(#process.argv, process.argv[2], process.argv[3], process.argv[4])
      print(#process.execArgv, process.execArgv[1], process.execArgv[2])
      print(process.argv[1] == process.execPath)]])
    local r = luvhost('-W ' .. helper.quote(script) .. ' a b')
    cleanup()
    assert.are.equal(('4\t%s\ta\tb\n1\t-W\tnil\ntrue\n'):format(script),
      r.stdout)
  end)

  it('reads and writes the environment through process.env', function()
    process.env.LUVHOST_SPEC_ENV = 42
    assert.are.equal('42', process.env.LUVHOST_SPEC_ENV)
    assert.are.equal('42', os.getenv('LUVHOST_SPEC_ENV'))
    local seen = false
    for k, v in pairs(process.env) do
      if k == 'LUVHOST_SPEC_ENV' then seen = v end
    end
    assert.are.equal('42', seen)
    process.env.LUVHOST_SPEC_ENV = nil
    assert.is_nil(process.env.LUVHOST_SPEC_ENV)
    assert.is_nil(os.getenv('LUVHOST_SPEC_ENV'))
  end)

  it('changes directory, failing with a value', function()
    local dir, cleanup = helper.tmpdir()
    local old = process.cwd()
    assert.is_true(process.chdir(dir))
    assert.are.equal(dir, process.cwd())
    assert.is_true(process.chdir(old))
    cleanup()
    local ok, err = process.chdir('/no/such/dir')
    assert.is_nil(ok)
    assert.matches('^ENOENT', err)
    assert.has_error(function() process.chdir(1) end)
  end)

  it('measures time with hrtime, hrtime.bigint and uptime', function()
    local t = process.hrtime()
    assert.are.equal(2, #t)
    uv.sleep(2)
    local d = process.hrtime(t)
    assert.is_true(d[1] > 0 or d[2] >= 2e6)
    assert.is_true(math.type(process.hrtime.bigint()) == 'integer')
    assert.is_true(process.uptime() > 0)
  end)

  it('reports memory and CPU usage', function()
    local m = process.memoryUsage()
    assert.is_true(m.rss > 0 and m.heapUsed > 0)
    local c = process.cpuUsage()
    assert.is_number(c.user)
  end)

  it('writes warnings to stderr', function()
    local r = luvhost([[-e "process.emitWarning('careful')"]])
    assert.matches('^%(luvhost:%d+%) Warning: careful\n$', r.stderr)
  end)
end)

describe('process signals', function()
  it('emit the signal name to listeners', function()
    local got = {}
    run(function()
      local function on_usr1(name) got[#got + 1] = name end
      process:on('SIGUSR1', on_usr1)
      assert.is_true(process.kill(process.pid, 'SIGUSR1'))
      timers.sleep(20)
      process:off('SIGUSR1', on_usr1)
      -- no listener left: the handle is closed again (run() checks leaks)
    end)
    assert.same({ 'SIGUSR1' }, got)
  end)

  it('do not keep the process alive', function()
    local r = luvhost([[-e "process:on('SIGHUP', function() end) print('end')"]])
    assert.are.equal(0, r.code)
    assert.are.equal('end\n', r.stdout)
  end)

  it('reject an unknown signal name', function()
    assert.has_error(function() process:on('SIGBOGUS', function() end) end)
    assert.are.equal(0, process:listenerCount('SIGBOGUS'))
  end)

  it('kill returns a value on failure', function()
    local ok, err = process.kill(2 ^ 30, 'SIGTERM')
    assert.is_nil(ok)
    assert.matches('^ESRCH', err)
  end)
end)

describe('globals', function()
  it('are exactly lua5.4\'s plus the documented ones', function()
    local list = [[-e "local t = {} for k in pairs(_G) do t[#t + 1] = k end
      table.sort(t) print(table.concat(t, ' '))"]]
    local mine = luvhost(list).stdout
    local lua = helper.exec('lua5.4 ' .. list).stdout
    local extra = {}
    local base = {}
    for name in lua:gmatch('%S+') do base[name] = true end
    for name in mine:gmatch('%S+') do
      if not base[name] then extra[#extra + 1] = name end
    end
    assert.same({ 'clearImmediate', 'clearInterval', 'clearTimeout', 'p',
      'process', 'setImmediate', 'setInterval', 'setTimeout' }, extra)
  end)

  it('p prints its arguments readably and returns them', function()
    local r = luvhost([[-e "local a, b = p({1, x = 'y'}, 'two') print(a.x, b)"]])
    assert.are.equal('{ 1, x = "y" }\t"two"\ny\ttwo\n', r.stdout)
  end)
end)
