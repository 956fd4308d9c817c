-- uv_tty_t (luv-compatible). The terminal parts run a child luvhost on a
-- pseudo-terminal made by a small Python driver (os.openpty), which sets
-- the window size, checks the terminal's modes with tcgetattr at each step
-- and feeds input; the rest runs in this process on non-terminal fds.

local helper = require('spec.helper')
local uv = require('uv')

local run, quote = helper.run, helper.quote

local dir, cleanup
setup(function() dir, cleanup = helper.tmpdir() end)
teardown(function() cleanup() end)

describe('tty on a pseudo-terminal', function()
  -- The child: stdin, stdout on the pty slave; stderr to a file. Each step
  -- prints a marker, then waits for the driver's next input.
  local child = [[
local uv = require('uv')
local out = uv.new_tty(1, false)
local input = uv.new_tty(0, true)
local function say(s) out:write(s .. '\n') end
say(('guess %s %s'):format(uv.guess_handle(0), uv.guess_handle(1)))
local w, h = out:get_winsize()
local w2, h2 = uv.tty_get_winsize(input)
say(('size %s %s %s %s %s %s'):format(math.type(w), w, h, math.type(h2), w2, h2))
say('raw ' .. input:set_mode('raw'))
local step = 0
input:read_start(function(err, data)
  assert(not err, err)
  if not data then return end
  step = step + 1
  say(('got %d [%s]'):format(step, data))
  if step == 1 then
    say('normal ' .. uv.tty_set_mode(input, 'normal'))
  elseif step == 2 then
    say('raw1 ' .. input:set_mode(1))
  elseif step == 3 then
    say('io ' .. input:set_mode('io'))
  elseif step == 4 then
    say('reset ' .. uv.tty_reset_mode())
    input:read_stop()
    input:close()
    out:write('bye\n', function() out:close() end)
  end
end)
]]

  local driver = [==[
import fcntl, os, select, struct, sys, termios, time
luvhost, script, errfile, outfile = sys.argv[1:5]
wrapper = sys.argv[5:]  # valgrind, when the specs run under it
master, slave = os.openpty()
fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack('HHHH', 31, 97, 0, 0))
def modes():
    lflag = termios.tcgetattr(slave)[3]
    oflag = termios.tcgetattr(slave)[1]
    return '%s %s %s' % ('icanon' if lflag & termios.ICANON else '-icanon',
                         'echo' if lflag & termios.ECHO else '-echo',
                         'opost' if oflag & termios.OPOST else '-opost')

start = 'start ' + modes()
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    os.dup2(slave, 0)
    os.dup2(slave, 1)
    err = os.open(errfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(err, 2)
    os.close(master)
    os.close(slave)
    os.close(err)
    argv = wrapper + [luvhost, script]
    os.execvp(argv[0], argv)

out = b''
timeout = 10 * (4 if wrapper else 1)
def read_until(token):
    global out
    end = time.time() + timeout
    while token not in out and time.time() < end:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
    if token not in out:
        print('missing %r' % token)
        return False
    return True

print(start)  # read before the child could change anything
steps = [(b'raw 0', b'q'), (b'normal 0', b'line\n'), (b'raw1 0', b'z'),
         (b'io 0', b'k'), (b'reset 0', None)]
complete = True
for marker, send in steps:
    if not read_until(marker):
        complete = False
        break
    print('%s: %s' % (marker.decode(), modes()))
    if send is not None:
        os.write(master, send)
def wait_child():
    end = time.time() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.time() > end:
            os.kill(pid, 9)
            end = float('inf')
        time.sleep(0.01)
if complete:
    read_until(b'bye\r\n')
    status = wait_child()  # the child ends by itself
    os.close(master)
else:
    os.close(master)  # hangs the child up
    status = wait_child()
print('exit %d' % (os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1))
with open(outfile, 'wb') as f:
    f.write(out)
]==]

  it('is a tty with a size, modes that change the terminal, and output', function()
    local script = helper.write_file(dir .. '/child.lua', child)
    local py = helper.write_file(dir .. '/drive.py', driver)
    local errf, outf = dir .. '/child.err', dir .. '/master.out'
    local r = helper.exec(('python3 %s %s %s %s %s %s'):format(quote(py),
      quote(helper.luvhost), quote(script), quote(errf), quote(outf),
      helper.wrapper))
    local report = r.stdout
    local output = helper.read_file(outf)
    local context = report .. '\nterminal output: ' .. ('%q'):format(output) ..
      '\nchild stderr:\n' .. helper.read_file(errf) .. '\ndriver stderr:\n' ..
      r.stderr
    assert(r.code == 0, context)
    assert(report:find('\nexit 0\n', 1, true), context)
    -- The driver read the terminal's modes with tcgetattr at each marker.
    local function modes(marker)
      return report:match('\n' .. marker .. ': ([^\n]*)')
    end
    assert.are.equal('icanon echo opost', report:match('^start ([^\n]*)'),
      context)
    assert.are.equal('-icanon -echo opost', modes('raw 0'), context)
    assert.are.equal('icanon echo opost', modes('normal 0'), context)
    assert.are.equal('-icanon -echo opost', modes('raw1 0'), context)
    assert.are.equal('-icanon -echo -opost', modes('io 0'), context)
    assert.are.equal('icanon echo opost', modes('reset 0'), context)

    -- What the child wrote came out on the master side: ONLCR turns \n
    -- into \r\n except in io mode. Raw input arrived byte by byte, without
    -- a newline and without echo; the line in normal mode was echoed.
    assert.are.equal(table.concat({
      'guess tty tty\r\n',
      'size integer 97 31 integer 97 31\r\n',
      'raw 0\r\n',
      'got 1 [q]\r\n',
      'normal 0\r\n',
      'line\r\n', -- the echo
      'got 2 [line\r\n]\r\n',
      'raw1 0\r\n',
      'got 3 [z]\r\n',
      'io 0\n',
      'got 4 [k]\n',
      'reset 0\r\n',
      'bye\r\n',
    }), output, context)
  end)
end)

describe('tty on other fds', function()
  it('opens a pipe fd, which has no window size or modes', function()
    local got = {}
    run(function()
      local fds = uv.pipe({ nonblock = true }, { nonblock = true })
      local t = uv.new_tty(fds.write, false)
      assert.matches('^uv_tty_t: ', tostring(t))
      assert.are.equal('tty', (t:get_type()))
      got.size = { t:get_winsize() }
      got.fsize = { uv.tty_get_winsize(t) }
      got.raw = { t:set_mode('raw') }
      got.normal = t:set_mode('normal') -- already normal: nothing to do
      got.bad = { uv.tty_set_mode(t, 7) }
      assert.has_error(function() t:set_mode('sideways') end)
      assert.has_error(function() t:set_mode() end)
      -- It is a stream: what it writes arrives at the pipe's other end.
      local r = uv.new_pipe()
      r:open(fds.read)
      local parts = {}
      local co = coroutine.running()
      r:read_start(function(_, chunk)
        if chunk then
          parts[#parts + 1] = chunk
        else
          r:close()
          require('internal.binding').resume(co)
        end
      end)
      t:write('through a tty handle', function() t:close() end)
      coroutine.yield()
      got.data = table.concat(parts)
    end)
    assert.is_nil(got.size[1])
    assert.are.equal('ENOTTY', got.size[3])
    assert.are.equal('ENOTTY: inappropriate ioctl for device', got.size[2])
    assert.are.equal('ENOTTY', got.fsize[3])
    assert.are.equal('ENOTTY', got.raw[3])
    assert.are.equal(0, got.normal)
    assert.are.equal('EINVAL', got.bad[3])
    assert.are.equal('through a tty handle', got.data)
  end)

  it('fails for an fd that is not open', function()
    local ok, err, name = uv.new_tty(12345, true)
    assert.is_nil(ok)
    assert.are.equal('EINVAL', name)
    assert.are.equal('EINVAL: invalid argument', err)
  end)

  it('checks its arguments', function()
    assert.has_error(function() uv.new_tty(1) end)
    assert.has_error(function() uv.new_tty('x', false) end)
    assert.has_error(function() uv.tty_get_winsize(uv.new_timer()) end)
  end)

  it('resets the mode with no terminal changed', function()
    assert.are.equal(0, uv.tty_reset_mode())
  end)

  it('has the vterm state calls, which mean something on Windows only',
    function()
      assert.are.equal(0, select('#', uv.tty_set_vterm_state('supported')))
      assert.are.equal(0, select('#', uv.tty_set_vterm_state('unsupported')))
      assert.has_error(function() uv.tty_set_vterm_state('maybe') end)
      local ok, _, name = uv.tty_get_vterm_state()
      assert.is_nil(ok)
      assert.are.equal('ENOTSUP', name)
    end)
end)
