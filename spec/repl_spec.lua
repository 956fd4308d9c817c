-- The prompt, driven through a pseudo-terminal as a user would: keys in,
-- and checks on the output and on the screen a small terminal emulation
-- shows (spec/repl_pty.py). Every wait has a deadline; nothing sleeps to
-- synchronise. HOME and the history file are temporary.

local helper = require('spec.helper')
local json = require('json')

local quote = helper.quote
local format = string.format

local DRIVER = debug.getinfo(1, 'S').source:match('^@(.*)/[^/]*$') ..
  '/repl_pty.py'

local dir, cleanup
setup(function() dir, cleanup = helper.tmpdir() end)
teardown(function() cleanup() end)

local sessions = 0

-- Delays (ms) for timers that must fire after some keys were typed:
-- valgrind slows everything down about twentyfold.
local function later(ms)
  return tostring(helper.wrapper ~= '' and ms * 20 or ms)
end

-- An entry that waits in sleep() and says so (on stderr) once it is
-- parked: a timer cannot fire before the entry yields to the loop.
local function parked(marker)
  return ([[setTimeout(function() io.stderr:write('%s' .. '%s\n') end, ]] ..
    [[20) sleep(10000)]]):format(marker:sub(1, 2), marker:sub(3))
end

-- session(steps [, opts]) -> report: runs luvhost on a pty through the
-- steps (see repl_pty.py); fails with the transcript and the screen when a
-- step does not happen. opts: args (list), env (table), unset (list),
-- colors (keep colours), history (path; default a fresh file), cols,
-- stdout (a file for stdout instead of the terminal).
local function session(steps, opts)
  opts = opts or {}
  sessions = sessions + 1
  local argv = {}
  if opts.stdout then -- stdout to a file: sh runs the rest as "$@"
    argv = { '/bin/sh', '-c', 'exec "$@" > ' .. quote(opts.stdout), 'sh' }
  end
  for word in helper.wrapper:gmatch('%S+') do argv[#argv + 1] = word end
  argv[#argv + 1] = helper.luvhost
  for _, a in ipairs(opts.args or {}) do argv[#argv + 1] = a end
  local env = { HOME = dir, LUVHOST_REPL_HISTORY = opts.history or
    format('%s/history-%d', dir, sessions) }
  if not opts.colors then env.NO_COLOR = '1' end
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local unset = opts.unset or {}
  local file = helper.write_file(format('%s/session-%d.json', dir, sessions),
    json.encode({
      argv = argv, env = env, unset = unset, cols = opts.cols or 80,
      rows = 24, timeout = helper.wrapper ~= '' and 60 or 5, steps = steps,
    }))
  local r = helper.exec('python3 ' .. quote(DRIVER) .. ' ' .. quote(file))
  local ok, report = pcall(json.decode, r.stdout)
  assert(ok and type(report) == 'table',
    'the driver failed: ' .. r.stdout .. r.stderr)
  if not report.ok then
    error(format('step %s %s: %s\n--- screen ---\n%s\n--- output ---\n%q',
      tostring(report.step), tostring(report.step_text),
      tostring(report.why), report.screen, report.output), 2)
  end
  return report
end

-- Step builders.
local function send(s) return { send = s } end
local function expect(s) return { expect = s } end
local function line(s) return { line = s } end
local function screen(s) return { screen = s } end
local function absent(s) return { absent = s } end
local function exit(status) return { exit = status } end
local function pause(ms) return { pause = ms } end

local UP, DOWN, LEFT, RIGHT = '\27[A', '\27[B', '\27[D', '\27[C'
local HOME, END, DEL = '\27[H', '\27[F', '\27[3~'
local function ctrl(c) return string.char(c:byte() - 96) end

-- Flattens step lists (enter() gives two steps).
local function steps(...)
  local list = {}
  local function add(x)
    if x.send or x.expect or x.line or x.screen or x.absent or x.exit or
        x.pause then
      list[#list + 1] = x
    else
      for _, y in ipairs(x) do add(y) end
    end
  end
  for i = 1, select('#', ...) do add((select(i, ...))) end
  return list
end

-- type_line(text): waits for an empty prompt (keys typed while an entry
-- runs meet the terminal's normal mode), sends text, waits until the
-- prompt shows it, presses Enter. A long line wraps: the cursor's row has
-- its last part (80 columns, ASCII).
local function type_line(text)
  local full = '> ' .. text
  return { line('>'), send(text), line(full:sub(#full - #full % 80 + 1)),
    send('\r') }
end

local PROMPT = expect('> ')

-- Ctrl-D at an empty prompt, and a clean exit.
local function quit()
  return { line('>'), send(string.char(4)), exit(0) }
end

describe('the prompt on a terminal', function()
  it('opens with no script, prints expression values in colour, and exits on Ctrl-D', function()
    local r = session(steps(
      expect('Type .help'), PROMPT,
      type_line('1 + 2'), expect('\27[33m3\27[39m'),
      type_line([['a', 2, nil, true]]),
      expect('\27[32m"a"\27[39m\t\27[33m2\27[39m\t\27[1mnil\27[22m\t' ..
        '\27[33mtrue\27[39m'),
      quit()
    ), { colors = true })
    assert.matches('^Lua 5%.4', r.output)
  end)

  it('pretty-prints tables and cycles, shows several values, keeps the last in _', function()
    session(steps(
      PROMPT,
      type_line('t = { 1, 2, name = "x" } t.self = t'), line('>'),
      type_line('t'),
      expect('<ref *1> { 1, 2, name = "x", self = [Circular *1] }'),
      type_line('big = { alpha = ("a"):rep(40), beta = ("b"):rep(40) }'),
      type_line('big'),
      expect('{\r\n  alpha = "' .. ('a'):rep(40) .. '",\r\n  beta = "' ..
        ('b'):rep(40) .. '"\r\n}'),
      type_line('"a", 2, nil'), expect('"a"\t2\tnil'),
      type_line('6 * 7'), expect('42'),
      type_line('_ + 1'), expect('43'),
      type_line('local unused = 1'), line('>'),
      type_line('_'), expect('43'),
      quit()
    ))
  end)

  it('continues unfinished chunks on the next line, and only those', function()
    local r = session(steps(
      PROMPT,
      type_line('function f(a)'), line('>>'),
      send('return a * 2\r'), line('>>'), send('end\r'), line('>'),
      type_line('f(21)'), expect('42'),
      type_line('s = [[one'), line('>>'), send('two]]\r'), line('>'),
      type_line('s'), expect('"one\\ntwo"'),
      type_line('{'), line('>>'), send('1, 2 }\r'), expect('{ 1, 2 }'),
      type_line('x = = 1'), expect("unexpected symbol near '='"), line('>'),
      type_line('if true then'), line('>>'),
      send(ctrl('c')), line('>'),
      type_line('f(2)'), expect('4'),
      quit()
    ))
    assert.not_matches('Uncaught', r.output)
  end)

  it('runs entries on their own coroutine: waiting calls work at the top level', function()
    session(steps(
      PROMPT,
      type_line('coroutine.isyieldable()'), expect('true'),
      -- (libuv's timers count whole milliseconds of its loop clock: a
      -- 100 ms sleep can end up to 1 ms early by a precise clock)
      type_line('t0 = uv.hrtime() sleep(100) return uv.hrtime() - t0 >= 99e6'),
      expect('true'),
      type_line([[srv = http.createServer(function(req, res) ]] ..
        [[res:finish('hello ' .. req.url) end):listen(0, '127.0.0.1')]]),
      line('>'),
      type_line([[body = http.get('http://127.0.0.1:' .. ]] ..
        [[srv:address().port .. '/x'):body()]]),
      line('>'),
      type_line('body'), expect('"hello /x"'),
      type_line([[child_process.exec('echo from-child', function(err, out) ]] ..
        [[io.write('got ', out) end)]]),
      expect('got from-child'),
      type_line('srv:close() return 1'), expect('1'),
      quit()
    ))
  end)

  it('interrupts a waiting or a busy entry with Ctrl-C, not the process', function()
    local r = session(steps(
      PROMPT,
      type_line(parked('parked')), expect('parked'), send(ctrl('c')),
      expect('interrupted!'), expect('timers.sleep'), line('>'),
      type_line([[print('bu' .. 'sy') while true do end]]), expect('busy'),
      send(ctrl('c')),
      expect('interrupted!'), expect('stdin:1: in main chunk'), line('>'),
      -- An entry that catches the interrupt is abandoned at the third.
      type_line([[for i = 1, 10 do setTimeout(function() print('wait' .. i) ]] ..
        [[end, 20) pcall(sleep, 10000) end]]),
      expect('wait1'), send(ctrl('c')), expect('wait2'), send(ctrl('c')),
      expect('wait3'), send(ctrl('c')), expect('abandoned'), line('>'),
      type_line('2 + 2'), expect('4'),
      quit()
    ))
    assert.not_matches('Uncaught', r.output)
  end)

  it('stops a callback that never returns at the second Ctrl-C', function()
    local r = session(steps(
      PROMPT,
      type_line([[setTimeout(function() print('bu' .. 'sy') while true do ]] ..
        [[end end, 50) return nil]]),
      expect('busy'), send(ctrl('c')), pause(100), send(ctrl('c')),
      expect('Uncaught'), expect('interrupted!'), line('>'),
      type_line('1 + 1'), expect('2'), quit()
    ))
    -- Both presses went to the callback: no hint at the prompt.
    assert.not_matches('To exit', r.output, 1, true)
  end)

  it('ends cleanly when a callback exits while a line is half typed', function()
    local r = session(steps(
      PROMPT,
      type_line([[process:on('exit', function(c) print('exit code', c) end) ]] ..
        [[setTimeout(function() process.exit(3) end, ]] .. later(200) ..
        [[) return nil]]),
      line('>'), send('half'), line('> half'), expect('exit code\t3'),
      exit(3)
    ))
    -- The half line made room for the exit listener's output; the
    -- terminal is left without bracketed paste.
    assert.matches('> half\r\27[6C\r\27[Jexit code\t3\r\n\27[?2004l',
      r.output, 1, true)
  end)

  it('clears the line on Ctrl-C, hints at an empty prompt, and exits on the second', function()
    session(steps(
      PROMPT,
      send('abc'), line('> abc'), send(ctrl('c')), screen('> abc^C\n>'),
      line('>'), absent('To exit'),
      send(ctrl('c')), expect('(To exit, press Ctrl+C again or Ctrl+D or type .exit)'),
      line('>'), send(ctrl('c')), exit(0)
    ))
  end)

  it('deletes with Ctrl-D on a line that is not empty', function()
    session(steps(
      PROMPT,
      send('abc' .. LEFT .. LEFT .. ctrl('d')), line('> ac'),
      send(ctrl('u')), line('> c'), send(END .. ctrl('u')), line('>'),
      quit()
    ))
  end)

  it('redraws a half-typed line after output from timers and callbacks', function()
    local r = session(steps(
      PROMPT,
      type_line([[setTimeout(function() print('ti' .. 'ck') ]] ..
        [[io.stderr:write('std' .. 'err\n') ]] ..
        [[process.stdout:write('std' .. 'out\n') end, ]] .. later(300) ..
        [[) return nil]]),
      expect('nil'), line('>'),
      send('x_half = '), line('> x_half ='),
      screen('tick\nstderr\nstdout\n> x_half ='), line('> x_half ='),
      send('2\r'), line('>'),
      type_line([[setTimeout(function() io.write('no-newline') end, ]] ..
        later(200) .. [[) return nil]]),
      line('>'), send('y_half'),
      screen('no-newline\n> y_half'), line('> y_half'),
      send(' = 3\r'), line('>'),
      type_line('x_half + y_half'), expect('5'),
      quit()
    ))
    -- The partial line was taken off the screen before the output, then
    -- drawn again below it.
    assert.matches('x_half = \r\27%[%d+C\r\27%[Jtick', r.output)
  end)

  it('prints errors with a short traceback and goes on', function()
    local r = session(steps(
      PROMPT,
      type_line([[error('boom')]]),
      expect('stdin:1: boom\r\nstack traceback:'), line('>'),
      type_line('error({ code = 7 })'), expect('{ code = 7 }'), line('>'),
      type_line('function r(n) if n == 0 then error("deep") end ' ..
        'return 1 + r(n - 1) end'),
      type_line('r(40)'), expect('deep'), expect('more)'), line('>'),
      type_line([[setTimeout(function() error('late') end, 10) return nil]]),
      expect('Uncaught'), expect('late'), line('>'),
      type_line('3 * 3'), expect('9'),
      quit()
    ))
    assert.not_matches('repl%.lua', r.output)
    assert.not_matches('lineedit%.lua', r.output)
  end)

  it('edits lines: arrows, Home/End, Ctrl-A/E/K/U/W/Y, Alt-B/F, Delete', function()
    session(steps(
      PROMPT,
      send('2 + 3'), send(ctrl('a') .. '10 * '), line('> 10 * 2 + 3'),
      send(ctrl('e') .. ' - 1'), line('> 10 * 2 + 3 - 1'), send('\r'),
      expect('22'), line('>'),
      send('1 + 2' .. HOME .. '(' .. END .. ') * 3'),
      line('> (1 + 2) * 3'), send('\r'), expect('9'), line('>'),
      send('abc def' .. ctrl('w')), line('> abc'),
      send(LEFT .. LEFT .. ctrl('k')), line('> ab'),
      send(ctrl('y')), line('> abc'), send(ctrl('u')), line('>'),
      send('one two three' .. '\27b' .. '\27b' .. ctrl('k')), line('> one'),
      send(ctrl('a') .. '\27f' .. ' X'), line('> one X'),
      send(ctrl('a') .. DEL .. RIGHT .. 'Y'), line('> nYe X'),
      send(ctrl('u')), line('> e X'), send(ctrl('e') .. ctrl('u')), line('>'),
      quit()
    ))
  end)

  it('wraps a line longer than the terminal and edits it in place', function()
    local long = 'x = "' .. ('a'):rep(90) .. '"'
    local r = session(steps(
      PROMPT,
      send(long), line(('a'):rep(17) .. '"'),
      send(HOME .. 'y = 1 '),
      screen('> y = 1 x = "' .. ('a'):rep(67) .. '\n' .. ('a'):rep(23) .. '"'),
      send('\r'), line('>'),
      type_line('#x + y'), expect('91'),
      quit()
    ))
    assert.matches('\27%[1A', r.output) -- the cursor went up a row
  end)

  it('completes globals, require names, fields and methods with Tab', function()
    session(steps(
      PROMPT,
      send('collectg\t'), line('> collectgarbage'), send(ctrl('u')),
      send('string.fo\t'), line('> string.format'), send(ctrl('u')),
      send('s = "x"\r'), line('>'),
      send('s:up\t'), line('> s:upper'), send('()\r'), expect('"X"'),
      line('>'), send('mod = require("chi\t'), line('> mod = require("child_process'),
      send('")\r'), line('>'),
      send('mod.exe\t'), line('> mod.exec'), send(ctrl('u')),
      send('mytab = { alpha = 1, beta = { gamma = 2 } }\r'), line('>'),
      send('mytab.beta.ga\t'), line('> mytab.beta.gamma'), send('\r'),
      expect('2'), line('>'),
      send('htt\t'), line('> http'), send('.createS\t'),
      line('> http.createServer'), send(ctrl('u')),
      send('string.g\t'), screen('gmatch  gsub'), line('> string.g'),
      send(ctrl('u')), quit()
    ))
  end)

  it('keeps a history across sessions, with Up/Down and Ctrl-R', function()
    local hist = dir .. '/shared-history'
    session(steps(
      PROMPT, type_line('hist_marker = 42'), line('>'),
      type_line('1 + 1'), expect('2'), line('>'),
      type_line('.exit'), exit(0)
    ), { history = hist })
    local saved = helper.read_file(hist)
    assert.equal('hist_marker = 42\n1 + 1\n.exit\n', saved)
    session(steps(
      PROMPT,
      send(UP), line('> .exit'), send(UP), line('> 1 + 1'),
      send(UP), line('> hist_marker = 42'), send(UP), line('> hist_marker = 42'),
      send(DOWN .. DOWN .. DOWN), line('>'),
      send(ctrl('r') .. 'marker'),
      line("(reverse-i-search)`marker': hist_marker = 42"),
      send(ctrl('g')), line('>'),
      send(ctrl('r') .. 'mark'), line("(reverse-i-search)`mark': hist_marker = 42"),
      send('\r'), line('>'),
      type_line('hist_marker + 1'), expect('43'),
      line('>'), send(ctrl('r') .. 'zzz'), line("(failed reverse-i-search)`zzz':"),
      send(ctrl('g')), line('>'),
      quit()
    ), { history = hist })
  end)

  it('keeps the history in ~/.luvhost_history, or nowhere when LUVHOST_REPL_HISTORY is empty', function()
    local home = dir .. '/home1'
    assert(os.execute('mkdir -p ' .. quote(home)))
    session(steps(PROMPT, type_line('in_home = 1'), line('>'),
      quit()),
      { env = { HOME = home }, unset = { 'LUVHOST_REPL_HISTORY' } })
    assert.equal('in_home = 1\n', helper.read_file(home .. '/.luvhost_history'))
    local home2 = dir .. '/home2'
    assert(os.execute('mkdir -p ' .. quote(home2)))
    session(steps(PROMPT, type_line('nowhere = 1'), line('>'),
      send(UP), line('> nowhere = 1'), send(ctrl('u') .. ctrl('d')), exit(0)),
      { env = { HOME = home2 }, history = '' })
    assert.is_nil(io.open(home2 .. '/.luvhost_history'))
  end)

  it('has .help, .clear, .load, .save and .editor', function()
    local script = helper.write_file(dir .. '/load_me.lua',
      '#!/usr/bin/env luvhost\n' ..
      'function loaded(x) return x + 100 end\nprint("loading")\n' ..
      'return "loaded ok"\n')
    local saved = dir .. '/saved.lua'
    session(steps(
      PROMPT,
      type_line('.help'), expect('.editor'), expect('.save'), line('>'),
      type_line('.nope'), expect('Invalid command .nope'), line('>'),
      type_line('gone = 5'), line('>'),
      type_line('function pending_fn()'), line('>>'), send('.clear\r'),
      expect('Cleared'), line('>'),
      type_line('gone'), expect('nil'),
      type_line('.load ' .. script), expect('loading'), expect('"loaded ok"'),
      type_line('loaded(1)'), expect('101'),
      type_line('.editor'), expect('editor mode'),
      send('local a = 20\r'), send('local b = 22\r'), send('return a + b'),
      send(ctrl('d')), expect('42'), line('>'),
      type_line('.editor'), expect('editor mode'),
      send('error("never")\r'), send(ctrl('c')), line('>'),
      absent('editor:1'),
      type_line('.save ' .. saved), expect('Session saved'),
      quit()
    ))
    local text = helper.read_file(saved)
    assert.matches('gone = 5\n', text, 1, true)
    assert.matches('function loaded', text, 1, true)
    assert.matches('local a = 20\nlocal b = 22\nreturn a + b\n', text, 1, true)
    assert.not_matches('never', text, 1, true)
  end)

  it('opens after a script with -i, with the script\'s globals', function()
    local script = helper.write_file(dir .. '/before.lua',
      'from_script = "visible"\n' ..
      'setTimeout(function() print("script " .. "timer") end, 50)\n')
    session(steps(
      expect('script timer'), PROMPT,
      type_line('from_script'), expect('"visible"'),
      quit()
    ), { args = { '-i', script } })
  end)
end)

describe('the prompt without a terminal', function()
  it('reads lines with the same evaluator (pipes, -i)', function()
    local r = helper.luvhost_exec('-i', table.concat({
      '{', '1, 2 }', '_[2] * 10', 'sleep(10) return "slept"', '.help', '',
    }, '\n'))
    assert.are.equal(0, r.code, r.stderr)
    assert.matches('{ 1, 2 }\n', r.stdout, 1, true)
    assert.matches('> 20\n', r.stdout, 1, true)
    assert.matches('"slept"', r.stdout, 1, true)
    assert.matches('.editor', r.stdout, 1, true)
    assert.not_matches('\27', r.stdout, 1, true)
  end)

  it('reads lines from a terminal when stdout is not one; Ctrl-C interrupts', function()
    local outfile = dir .. '/lines.out'
    session(steps(
      send('1 + 2\r'),
      send(parked('waiting') .. '\r'),
      expect('waiting'), send(ctrl('c')), expect('^C\r\ninterrupted!'),
      expect('timers.sleep'),
      send([['after']] .. '\r'), send('.exit\r'), exit(0)
    ), { args = { '-i' }, stdout = outfile })
    local text = helper.read_file(outfile)
    assert.matches('> 3\n', text, 1, true)
    assert.matches('"after"\n', text, 1, true)
    assert.not_matches('\27', text, 1, true)
  end)

  it('runs piped stdin as a script when there is no -i', function()
    local r = helper.luvhost_exec('', 'print(1 + 1)\n')
    assert.are.same({ 0, '2\n', '' }, { r.code, r.stdout, r.stderr })
  end)
end)
