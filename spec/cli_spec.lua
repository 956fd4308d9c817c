-- The command line against lua5.4's: the same options, arg table, exit
-- statuses and error output (the program name aside).

local helper = require('spec.helper')

local quote = helper.quote

local function luvhost(args, input, env)
  return helper.luvhost_exec(args, input, env)
end

local function lua(args, input, env)
  return helper.exec((env or '') .. ' lua5.4 ' .. args, input)
end

-- output with the program name (argv[0]) replaced by PROG
local function normalized(text, progname)
  local escaped = progname:gsub('%p', '%%%0')
  return (text:gsub(escaped, 'PROG'))
end

-- Runs the same arguments under both and expects the same results.
local function same_as_lua(args, input, env)
  local a = luvhost(args, input, env)
  local b = lua(args, input, env)
  assert.are.equal(normalized(b.stdout, 'lua5.4'),
    normalized(a.stdout, helper.luvhost))
  assert.are.equal(normalized(b.stderr, 'lua5.4'),
    normalized(a.stderr, helper.luvhost))
  assert.are.equal(b.code, a.code)
  return a
end

local dir, cleanup

setup(function()
  dir, cleanup = helper.tmpdir()
  helper.write_file(dir .. '/args.lua', [[
local lowest = 0
while arg[lowest - 1] ~= nil do lowest = lowest - 1 end
for i = lowest, #arg do print(i, arg[i]) end
print('...', select('#', ...), ...)
]])
  helper.write_file(dir .. '/fail.lua', 'local x = nil\nreturn x.field\n')
  helper.write_file(dir .. '/mod_x.lua', 'return { name = "mod_x" }\n')
  helper.write_file(dir .. '/init.lua', 'print("from LUA_INIT file")\n')
  helper.write_file(dir .. '/syntax.lua', 'x = = 1\n')
end)

teardown(function() cleanup() end)

describe('luvhost as a Lua interpreter', function()
  it('sets arg and ... like lua for a script with arguments', function()
    local r = luvhost(quote(dir .. '/args.lua') .. ' a "b c" 3')
    assert.are.equal(0, r.code)
    assert.matches('^%-1\t' .. helper.luvhost:gsub('%p', '%%%0') .. '\n', r.stdout)
    same_as_lua('-e "x=1" ' .. quote(dir .. '/args.lua') .. ' a "b c" 3')
  end)

  it('puts options at negative indices', function()
    local r = luvhost('-W -e "y=2" ' .. quote(dir .. '/args.lua') .. ' z')
    assert.matches('\n%-2\t%-e\n', r.stdout)
    assert.matches('\n%-1\ty=2\n', r.stdout)
    assert.matches('\n0\t' .. (dir .. '/args.lua'):gsub('%p', '%%%0') .. '\n',
      r.stdout)
    assert.matches('\n1\tz\n', r.stdout)
  end)

  it('runs -e chunks in order, then the script', function()
    same_as_lua([[-e "print(1)" -e "print(2)" ]] .. quote(dir .. '/args.lua'))
  end)

  it('accepts -e with its argument attached', function()
    same_as_lua([[-e'print(10)']])
  end)

  it('loads modules with -l mod and -l g=mod', function()
    local env = 'LUA_PATH=' .. quote(dir .. '/?.lua;;')
    same_as_lua([[-l mod_x -e "print(mod_x.name)"]], nil, env)
    same_as_lua([[-l m=mod_x -e "print(m.name, mod_x)"]], nil, env)
    same_as_lua([[-lmod_x -e "print(mod_x.name)"]], nil, env)
  end)

  it('reports a missing -l module like lua', function()
    local a = luvhost('-l no_such_module_xyz')
    assert.are.equal(1, a.code)
    assert.matches("module 'no_such_module_xyz' not found", a.stderr)
  end)

  it('runs stdin with -', function()
    same_as_lua('- a b', 'print("stdin", ...)')
  end)

  it('runs stdin when there is no script and stdin is not a terminal', function()
    same_as_lua('', 'print("piped", arg and #arg)')
  end)

  it('treats everything after -- as the script and its arguments', function()
    same_as_lua('-- ' .. quote(dir .. '/args.lua') .. ' -e x')
    same_as_lua('-e "print(arg[0], arg[1])" --')
  end)

  it('runs precompiled bytecode from a file and from stdin', function()
    local src = helper.write_file(dir .. '/bc.lua', 'print("bytecode", ...)\n')
    assert(os.execute('luac5.4 -o ' .. quote(dir .. '/bc.luac') .. ' ' ..
      quote(src)))
    same_as_lua(quote(dir .. '/bc.luac') .. ' q')
    same_as_lua('- q', helper.read_file(dir .. '/bc.luac'))
  end)

  it('runs LUA_INIT, prefers LUA_INIT_5_4, reads @file, and -E skips it', function()
    same_as_lua('-e "print(1)"', nil, [[LUA_INIT='print("init")']])
    same_as_lua('-e ""', nil,
      [[LUA_INIT_5_4='print("init54")' LUA_INIT='print("init")']])
    same_as_lua('-e ""', nil, 'LUA_INIT=@' .. quote(dir .. '/init.lua'))
    same_as_lua('-E -e "print(2)"', nil, [[LUA_INIT='print("init")']])
  end)

  it('stops at an error in LUA_INIT', function()
    same_as_lua('-e "print(3)"', nil, [[LUA_INIT='error("bad")']])
  end)

  it('honours LUA_PATH with ;; and LUA_PATH_5_4 first, unless -E', function()
    same_as_lua('-e "print(package.path)"', nil, "LUA_PATH='/x/?.lua;;'")
    same_as_lua('-e "print(package.path)"', nil,
      'LUA_PATH_5_4=/y/?.lua LUA_PATH=/x/?.lua')
    same_as_lua('-E -e "print(package.path)"', nil, 'LUA_PATH=/x/?.lua')
    same_as_lua('-e "print(package.cpath)"', nil, "LUA_CPATH='/x/?.so;;'")
  end)

  it('turns warnings on with -W', function()
    same_as_lua([[-W -e "warn('w1')"]])
    same_as_lua([[-e "warn('w2')"]])
  end)

  it('loads C modules from Debian packages (cjson, lfs)', function()
    same_as_lua([[-e "print(require('cjson').encode({1,2}))"]])
    same_as_lua([[-e "print(type(require('lfs').currentdir()))"]])
  end)
end)

describe('exit status and error output', function()
  it('exits 0 when the script ends', function()
    same_as_lua('-e "x = 1"')
  end)

  it('prints the error and traceback of the main chunk and exits 1', function()
    local r = same_as_lua([[-e "error('x')"]])
    assert.matches('^' .. helper.luvhost:gsub('%p', '%%%0') ..
      ': %(command line%):1: x\nstack traceback:\n', r.stderr)
    same_as_lua(quote(dir .. '/fail.lua'))
  end)

  it('prints non-string errors as lua does', function()
    same_as_lua([[-e "error({})"]])
    same_as_lua([[-e "error(setmetatable({}, {__tostring = function() return 'TS' end}))"]])
    same_as_lua([[-e "error()"]])
    same_as_lua([[-e "error(42)"]])
  end)

  it('reports syntax errors and missing files without a traceback', function()
    same_as_lua([[-e "x="]])
    same_as_lua(quote(dir .. '/syntax.lua'))
    same_as_lua(quote(dir .. '/missing.lua'))
  end)

  it('rejects bad options with the usage text and status 1', function()
    for _, args in ipairs({ '-x', '-e', '-l', '-e -i', '-vx', '-Ex', '-Wx' }) do
      local a = luvhost(args)
      local b = lua(args)
      assert.are.equal(1, a.code, args)
      assert.are.equal(b.stderr:match('^[^\n]*'):gsub('^lua5%.4', 'PROG'),
        (a.stderr:match('^[^\n]*'):gsub(helper.luvhost:gsub('%p', '%%%0'),
          'PROG')), args)
      assert.matches('usage: ', a.stderr)
    end
    assert.are.equal(1, luvhost('--no-such-option').code)
  end)

  it("says what an option's missing or bad value must be", function()
    local cases = {
      { '--workers', 'a number of processes' },
      { '--workers=many', 'a number of processes' },
      { '--workers -1', 'a number of processes' },
      { '--shutdown-timeout=soon', 'seconds' },
      { '--warn-blocking', 'milliseconds' },
      { '--warn-blocking -5', 'milliseconds' },
      { '--max-blocking=1.5', 'milliseconds' },
    }
    for _, case in ipairs(cases) do
      local r = luvhost(case[1] .. " -e 'print(1)'")
      assert.are.equal(1, r.code, case[1])
      assert.are.equal('', r.stdout, case[1])
      local name = case[1]:match('^[^ ]+')
      assert.matches("'" .. name:gsub('%p', '%%%0') .. "' needs a value: " .. case[2],
        r.stderr, 1, false, case[1])
    end
  end)

  it('exits with os.exit codes, true and false', function()
    same_as_lua('-e "os.exit(3)"')
    same_as_lua('-e "os.exit(true)"')
    same_as_lua('-e "os.exit(false)"')
    same_as_lua('-e "os.exit(0, true)"')
  end)

  it('exits with os.exit from inside a callback, after the exit event', function()
    local r = luvhost([[-e "process:on('exit', function(c) print('exit', c) end)
      setTimeout(function() os.exit(7) end, 5)
      setTimeout(function() print('never') end, 200)"]])
    assert.are.equal(7, r.code)
    assert.are.equal('exit\t7\n', r.stdout)
  end)

  it('exits with os.exit from a place that cannot yield', function()
    local r = luvhost([[-e "setTimeout(function()
        table.sort({3, 2, 1}, function() os.exit(9, true) end)
      end, 1)
      setTimeout(function() print('never') end, 200)"]])
    assert.are.equal(9, r.code)
    assert.are.equal('', r.stdout)
  end)

  it('exits with process.exit and process.exitCode', function()
    assert.are.equal(4, luvhost([[-e "process.exit(4)"]]).code)
    assert.are.equal(5, luvhost([[-e "process.exitCode = 5"]]).code)
    assert.are.equal(6, luvhost([[-e "process.exitCode = 6 process.exit()"]]).code)
  end)

  it('prints version banners with -v and --version', function()
    local v = luvhost('-v')
    assert.are.equal(0, v.code)
    assert.matches('^Lua 5%.4', v.stdout)
    assert.matches('luvhost %d+%.%d+%.%d+ %(libuv %d+%.%d+%.%d+%)', v.stdout)
    local version = luvhost('--version')
    assert.are.equal(0, version.code)
    assert.matches('^luvhost %d+%.%d+%.%d+ %(Lua 5%.4%.%d+, libuv ', version.stdout)
  end)

  it('prints help with --help', function()
    local r = luvhost('--help')
    assert.are.equal(0, r.code)
    assert.matches('usage: ', r.stdout)
    assert.matches('%-e stat', r.stdout)
  end)
end)

describe('Ctrl-C', function()
  -- A child with SIGINT at its default, interrupted after 300 ms.
  local function interrupt(args)
    local script = ([[
import signal, subprocess, sys, time
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
time.sleep(0.3)
p.send_signal(signal.SIGINT)
out, err = p.communicate(timeout=10)
sys.stdout.write(out.decode())
sys.stderr.write(err.decode())
sys.exit(p.returncode if p.returncode >= 0 else 128 - p.returncode)
]])
    local path = helper.write_file(dir .. '/interrupt.py', script)
    return helper.exec('python3 ' .. quote(path) .. ' ' .. quote(helper.luvhost)
      .. ' ' .. args)
  end

  it('interrupts a running Lua loop like lua.c, with a traceback', function()
    local r = interrupt([[-e "while true do end"]])
    assert.are.equal(1, r.code)
    assert.matches('interrupted!', r.stderr)
    assert.matches('stack traceback:', r.stderr)
  end)

  it('interrupts a busy loop inside a timer callback', function()
    local r = interrupt([[-e "setTimeout(function() while true do end end, 1)"]])
    assert.are.equal(1, r.code)
    assert.matches('interrupted!', r.stderr)
  end)

  it('ends a process that is only waiting: a graceful shutdown, status 0', function()
    local r = interrupt([[-e "setTimeout(function() end, 60000)"]])
    assert.are.equal(0, r.code)
  end)

  it('goes to process SIGINT listeners when there are some', function()
    local r = interrupt([[-e "local t = setInterval(function() end, 1000)
      process:on('SIGINT', function(name) print('got', name) clearInterval(t) end)"]])
    assert.are.equal(0, r.code)
    assert.are.equal('got\tSIGINT\n', r.stdout)
  end)
end)

describe('the prompt', function()
  it('runs with -i over piped stdin: values, multi-line chunks, errors, waits', function()
    local r = luvhost('-i', table.concat({
      'x = 20 + 1',
      'x * 2',
      'function twice(a)',
      '  return a * 2',
      'end',
      'twice(x)',
      'error("oops")',
      'require("timers").sleep(20)',
      '"after", 1, { a = 1 }',
      '',
    }, '\n'))
    assert.are.equal(0, r.code)
    assert.matches('^Lua 5%.4', r.stdout)
    assert.matches('\n> > 42\n> >> >> > 42\n> > > "after"\t1\t{ a = 1 }\n> \n$',
      r.stdout)
    assert.matches('stdin:1: oops\nstack traceback:', r.stderr)
    assert.not_matches('repl%.lua', r.stderr)
  end)

  it('keeps the loop running while it waits for input', function()
    local r = luvhost([[-e "setTimeout(function() print('timer fired') end, 10)" -i]])
    assert.matches('timer fired', r.stdout)
  end)

  it('opens on a terminal when there is no script', function()
    local script = [==[
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1]])
def read_until(token, timeout=5):
    out = b''
    end = time.time() + timeout
    while token not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
    return out
out = read_until(b'> ')
os.write(fd, b'6 * 7\n')
out += read_until(b'42')
after = out[out.find(b'42'):]
if b'> ' not in after:  # the next prompt: raw mode again
    out += read_until(b'> ')
os.write(fd, b'\x04')
out += read_until(b'never', 1)
end = time.time() + 10
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done or time.time() > end:
        break
    time.sleep(0.05)
if not done:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    status = 99 << 8
sys.stdout.write(out.decode(errors='replace'))
sys.exit(os.WEXITSTATUS(status))
]==]
    local path = helper.write_file(dir .. '/drive_tty.py', script)
    local r = helper.exec('python3 ' .. quote(path) .. ' ' .. quote(helper.luvhost))
    assert.are.equal(0, r.code)
    assert.matches('Lua 5%.4', r.stdout)
    assert.matches('42', r.stdout)
  end)
end)
