-- The prompt (`luvhost` on a terminal, `luvhost -i`). It lives on the
-- loop: stdin is read by a handle, so servers, timers and child processes
-- go on while it waits. Each entry runs on its own coroutine, so waiting
-- calls work at the top level. host/repl.c draws the prompt and keeps it
-- clear of other output, and routes Ctrl-C here.
--
-- Two front ends share the evaluator: on a terminal (stdin and stdout),
-- internal.lineedit edits lines in raw mode; otherwise lines are read as
-- they come (lua.c's prompt: a pipe, a file, a terminal for input only).

local uv = require('uv')
local internal_uv = require('internal.uv')
local binding = require('internal.binding')

local load, loadfile, next, pcall, rawget, rawset, require, setmetatable,
  tostring, type, xpcall = load, loadfile, next, pcall, rawget, rawset,
  require, setmetatable, tostring, type, xpcall
local getmetatable = debug.getmetatable
local traceback = debug.traceback
local concat, pack, sort = table.concat, table.pack, table.sort
local find, format, gmatch, match, sub = string.find, string.format,
  string.gmatch, string.match, string.sub
local co_close, co_running, co_status = coroutine.close, coroutine.running,
  coroutine.status
local spawn = binding.spawn

local M = {}

-- Built-in modules the prompt knows by name (loaded on first use), as
-- Node's REPL does with its core modules.
local BUILTINS = {
  'child_process', 'coro', 'dgram', 'dns', 'events', 'fs', 'http', 'json',
  'net', 'path', 'process', 'stream', 'timers', 'url', 'util', 'uv',
}
local IS_BUILTIN = {}
for i = 1, #BUILTINS do IS_BUILTIN[BUILTINS[i]] = true end

local KEYWORDS = {
  'and', 'break', 'do', 'else', 'elseif', 'end', 'false', 'for', 'function',
  'goto', 'if', 'in', 'local', 'nil', 'not', 'or', 'repeat', 'return',
  'then', 'true', 'until', 'while',
}
local IS_KEYWORD = {}
for i = 1, #KEYWORDS do IS_KEYWORD[KEYWORDS[i]] = true end

local HELP = [[
.clear    Forget the globals set at the prompt, _ and unfinished input
.editor   Enter several lines; Ctrl-D runs them, Ctrl-C drops them
.exit     Leave (also Ctrl-D on an empty line, or Ctrl-C twice)
.help     Show this help
.load F   Run the file F as an entry
.save F   Save the entries of this session to the file F

An expression prints its values (`_` holds the first); an unfinished
chunk continues on the next line. Each entry runs on its own coroutine:
waiting calls such as sleep(100) or http.get(url):body() work as they
are, and Ctrl-C interrupts the entry. Built-in modules (http, fs, net,
timers, ...) and sleep are known by name here. Keys: arrows, Home/End,
Ctrl-A/E/B/F, Ctrl-K/U/W/Y, Alt-B/F/D, Ctrl-R (search the history),
Ctrl-L (clear the screen), Tab (complete).
]]

local EXIT_HINT = '(To exit, press Ctrl+C again or Ctrl+D or type .exit)'

-- State of the one prompt of the process.
local host -- host/repl.c's functions
local term -- a terminal with the line editor
local tty_in -- stdin is a terminal
local editor, history
local input -- the stdin handle (nil: read as a file)
local env -- the environment entries run in
local defined = {} -- globals set from the prompt
local log = {} -- the entries of this session, for .save
local pending -- the lines of an unfinished chunk
local editing -- the lines of .editor mode
local entry -- the entry that runs or waits: { co, interrupts }
local busy, closed, hinted = false, false, false
local colors = false
local raw = false
local continued -- a signal handle for SIGCONT

local ready -- defined below

-- Output ---------------------------------------------------------------------

local function out(...)
  io.stdout:write(...)
  io.stdout:flush()
end

local function err_out(...)
  io.stdout:flush()
  io.stderr:write(...)
  io.stderr:flush()
end

local function columns()
  if input and term then
    local w = input:get_winsize()
    if w and w > 0 then return w end
  end
  return 80
end

local function inspect(v)
  return require('util').inspect(v, { colors = colors,
    breakLength = columns() })
end

-- The message handler of entries: the message and the entry's part of the
-- traceback (the prompt's machinery cut off), at most MAX_FRAMES frames.
local MAX_FRAMES = 12

local function handler(err)
  local msg
  local t = type(err)
  if t == 'string' or t == 'number' then
    msg = tostring(err)
  else
    local mt = getmetatable(err)
    if type(mt) == 'table' and rawget(mt, '__tostring') then
      local ok, s = pcall(tostring, err)
      if ok and type(s) == 'string' then return s end
    end
    msg = inspect(err)
  end
  local report = traceback(msg, 2)
  local cut = find(report, "\n\t%[C%]: in function 'xpcall'")
  if cut then report = sub(report, 1, cut - 1) end
  local kept, n = {}, 0
  for text in gmatch(report, '[^\n]+') do
    n = n + 1
    if n <= MAX_FRAMES + 2 then kept[n] = text end
  end
  if n > MAX_FRAMES + 2 then
    kept[#kept + 1] = format('\t(...%d more)', n - MAX_FRAMES - 2)
  end
  return concat(kept, '\n')
end

local function show_results(results)
  if not results[1] then
    local report = tostring(results[2])
    -- The terminal echoed ^C (an entry runs in normal mode): the report
    -- starts on a line of its own.
    if tty_in and find(report, '^[^\n]*interrupted!') then
      report = '\n' .. report
    end
    err_out(report, '\n')
    return
  end
  if results.n < 2 then return end
  rawset(env, '_', results[2])
  local parts = {}
  for i = 2, results.n do parts[#parts + 1] = inspect(results[i]) end
  out(concat(parts, '\t'), '\n')
end

-- The environment ------------------------------------------------------------

-- Entries read globals through env: _G first, then what the prompt adds
-- (sleep, the built-in modules by name, `_`). Globals they set go to _G,
-- and the prompt remembers their names for .clear.
local function make_env()
  local extras = { sleep = require('timers').sleep }
  return setmetatable({}, {
    __index = function(_, key)
      local v = _G[key]
      if v ~= nil then return v end
      v = extras[key]
      if v ~= nil then return v end
      if IS_BUILTIN[key] then
        local ok, mod = pcall(require, key)
        if ok then return mod end
      end
    end,
    __newindex = function(_, key, value)
      defined[key] = true
      _G[key] = value
    end,
  })
end

-- Compiling ------------------------------------------------------------------

local function incomplete(err)
  return sub(err, -5) == '<eof>'
end

-- An expression first (as lua.c does), then a statement. Returns the
-- function, or nil and the error, or 'incomplete' when more lines could
-- finish the chunk.
local function compile(source, chunkname)
  local fn, rerr = load('return ' .. source, chunkname, 't', env)
  if fn then return fn end
  local err
  fn, err = load(source, chunkname, 't', env)
  if fn then return fn end
  if incomplete(err) or incomplete(rerr) then return 'incomplete' end
  return nil, err
end

-- Running entries ------------------------------------------------------------

local function run_entry(fn)
  local e = { interrupts = 0 }
  entry, busy = e, true
  if raw then
    raw = false
    host.write('\27[?2004l')
    input:set_mode('normal')
  end
  spawn(function()
    local co = co_running()
    e.co = co
    host.set_entry(co)
    local results = pack(xpcall(fn, handler))
    if entry ~= e then return end
    entry = nil
    host.set_entry(nil)
    show_results(results)
    host.clear_interrupt(co)
    ready()
  end)
end

-- Runs a compiled entry and logs its source (.save), or reports why it
-- did not compile.
local function run_compiled(source, fn, err)
  if not fn then
    err_out(err, '\n')
    return ready()
  end
  log[#log + 1] = source
  return run_entry(fn)
end

-- Ctrl-C while an entry waits: it is resumed with an error raised where it
-- waits ("interrupted!"), so its handlers and to-be-closed variables run.
-- One that catches that twice and waits again is abandoned.
local function interrupt_entry()
  local e = entry
  if not e.co or co_status(e.co) ~= 'suspended' then return end
  e.interrupts = e.interrupts + 1
  if e.interrupts <= 2 and host.interrupt(e.co) then
    binding.resume(e.co)
    return
  end
  entry = nil
  host.set_entry(nil)
  co_close(e.co)
  err_out('interrupted! (the entry did not stop; it was abandoned)\n')
  ready()
end

-- Commands -------------------------------------------------------------------

local function finish()
  if closed then return end
  closed = true
  if input then
    if not input:is_closing() then
      input:read_stop()
      if raw then
        host.write('\27[?2004l')
        input:set_mode('normal')
        raw = false
      end
      input:close()
    end
    input = nil
  end
  if continued then
    continued:close()
    continued = nil
  end
  host.on_sigint(nil)
  host.hide()
  host.guard(false)
  if not term then out('\n') end
end

local function leave()
  finish()
  process.exit()
end

local function read_file(path)
  local f, err = io.open(path, 'rb')
  if not f then return nil, err end
  local data = f:read('a')
  f:close()
  return data
end

local COMMANDS = {}

function COMMANDS.help()
  out(HELP)
  return ready()
end

function COMMANDS.exit()
  return leave()
end

function COMMANDS.clear()
  for name in next, defined do _G[name] = nil end
  defined = {}
  rawset(env, '_', nil)
  pending, editing = nil, nil
  out('Cleared the globals set at the prompt.\n')
  return ready()
end

function COMMANDS.load(path)
  if path == '' then
    err_out('.load: which file?\n')
    return ready()
  end
  -- loadfile skips a first line starting with '#', as scripts have.
  local fn, err = loadfile(path, 't', env)
  local source = fn and read_file(path)
  if not fn then
    err_out('.load: ', err, '\n')
    return ready()
  end
  log[#log + 1] = source
  return run_entry(fn)
end

function COMMANDS.save(path)
  if path == '' then
    err_out('.save: which file?\n')
    return ready()
  end
  local f, err = io.open(path, 'wb')
  if not f then
    err_out('.save: ', err, '\n')
    return ready()
  end
  f:write(concat(log, '\n'), #log > 0 and '\n' or '')
  f:close()
  out('Session saved to ', path, '\n')
  return ready()
end

function COMMANDS.editor()
  editing, pending = {}, nil
  out('-- Entering editor mode (Ctrl-D to finish, Ctrl-C to cancel)\n')
  return ready()
end

-- Runs what was typed in .editor mode.
local function run_editor(last)
  local typed = editing
  editing = nil
  if last and last ~= '' then typed[#typed + 1] = last end
  local source = concat(typed, '\n')
  if find(source, '^%s*$') then return ready() end
  local fn, err = compile(source, '=editor')
  if fn == 'incomplete' then
    fn, err = load(source, '=editor', 't', env)
  end
  return run_compiled(source, fn, err)
end

-- A complete line from either front end.
local function submit(line)
  hinted = false
  if editing then
    editing[#editing + 1] = line
    return ready()
  end
  -- Commands work in an unfinished chunk too (.clear drops it); there a
  -- line like `.field` that is no command is Lua.
  local name, arg = match(line, '^%s*%.(%a+)%s*(.-)%s*$')
  if name then
    local command = COMMANDS[name]
    if command then return command(arg) end
    if pending == nil then
      err_out('Invalid command .', name, ' (.help lists them)\n')
      return ready()
    end
  end
  local source = pending and pending .. '\n' .. line or line
  if find(source, '^%s*$') then
    pending = nil
    return ready()
  end
  local fn, err = compile(source, '=stdin')
  if fn == 'incomplete' then
    pending = source
    return ready()
  end
  pending = nil
  return run_compiled(source, fn, err)
end

local function prompt_text()
  if editing then return '' end
  local p = env[pending and '_PROMPT2' or '_PROMPT']
  if p == nil then return pending and '>> ' or '> ' end
  return tostring(p)
end

-- Completion -----------------------------------------------------------------

local function is_callable(v)
  if type(v) == 'function' then return true end
  local mt = getmetatable(v)
  return type(mt) == 'table' and rawget(mt, '__call') ~= nil
end

-- obj[key] without running code: raw reads along tables and __index
-- tables (a class's metatable when its __index is a function).
local function peek(obj, key)
  if type(obj) == 'string' then return string[key] end
  for _ = 1, 16 do
    if type(obj) == 'table' then
      local v = rawget(obj, key)
      if v ~= nil then return v end
    end
    local mt = getmetatable(obj)
    if type(mt) ~= 'table' then return nil end
    local index = rawget(mt, '__index')
    if type(index) == 'table' then
      obj = index
    elseif type(index) == 'function' then
      obj = mt
    else
      return nil
    end
  end
end

local function names_of(obj, methods, prefix)
  local names, seen = {}, {}
  local function add(t, from_meta)
    for k, v in next, t do
      if type(k) == 'string' and not seen[k] and match(k, '^[%a_][%w_]*$')
          and not IS_KEYWORD[k] and sub(k, 1, #prefix) == prefix
          and not (from_meta and sub(k, 1, 2) == '__')
          and (not methods or is_callable(v)) then
        seen[k] = true
        names[#names + 1] = k
      end
    end
  end
  if type(obj) == 'string' then
    add(string, true)
  else
    local from_meta = false
    for _ = 1, 16 do
      if type(obj) == 'table' then add(obj, from_meta) end
      local mt = getmetatable(obj)
      if type(mt) ~= 'table' then break end
      local index = rawget(mt, '__index')
      if type(index) == 'table' then
        obj = index
      elseif type(index) == 'function' and obj ~= mt then
        obj = mt
      else
        break
      end
      from_meta = true
    end
  end
  sort(names)
  return names
end

local function global_names(prefix)
  local list, seen = {}, {}
  local function add(name)
    if not seen[name] and sub(name, 1, #prefix) == prefix then
      seen[name] = true
      list[#list + 1] = name
    end
  end
  for _, name in next, names_of(_G, false, prefix) do add(name) end
  for name in next, env do
    if type(name) == 'string' then add(name) end
  end
  add('sleep')
  for i = 1, #BUILTINS do add(BUILTINS[i]) end
  for i = 1, #KEYWORDS do add(KEYWORDS[i]) end
  sort(list)
  return list
end

-- Module names for require('...: built-ins, loaded ones, and files on
-- package.path and package.cpath.
local function module_names(prefix)
  local list, seen = {}, {}
  local function add(name)
    if type(name) == 'string' and not seen[name] and
        sub(name, 1, #prefix) == prefix and not find(name, '^internal%.') then
      seen[name] = true
      list[#list + 1] = name
    end
  end
  for i = 1, #BUILTINS do add(BUILTINS[i]) end
  add('luv')
  for name in next, package.loaded do add(name) end
  for name in next, package.preload do add(name) end
  local dir_part = match(prefix, '^(.*)%.') -- 'a.b.c' looks in a/b/
  local sub_dir = dir_part and dir_part:gsub('%.', '/') .. '/' or ''
  local name_prefix = dir_part and dir_part .. '.' or ''
  for _, path in next, { package.path, package.cpath } do
    for template in gmatch(path, '[^;]+') do
      local dir, suffix = match(template, '^(.-)%?(.*)$')
      if dir and (suffix == '.lua' or suffix == '.so' or
          suffix == '/init.lua') then
        local it = uv.fs_scandir((dir == '' and '.' or dir) .. '/' .. sub_dir)
        while it do
          local name, kind = uv.fs_scandir_next(it)
          if not name then break end
          if suffix == '/init.lua' then
            if kind == 'directory' then add(name_prefix .. name) end
          elseif sub(name, -#suffix) == suffix then
            add(name_prefix .. sub(name, 1, -#suffix - 1))
          end
        end
      end
    end
  end
  sort(list)
  return list
end

-- complete(text before the cursor) -> candidates, the word they replace
local function complete(before)
  local partial = match(before, 'require%s*%(?%s*[\'"]([%w_%.%-/]*)$')
  if partial then return module_names(partial), partial end
  local start, chain = match(before, '()([%a_][%w_]*[%w_%.:]*)$')
  if not chain then return {}, '' end
  local prev = sub(before, start - 1, start - 1)
  if prev == '.' or prev == ':' or find(prev, '[%w_]') then return {}, '' end
  local parts, seps = {}, {}
  for sep, name in gmatch('.' .. chain, '([%.:])([%w_]*)') do
    seps[#seps + 1], parts[#parts + 1] = sep, name
  end
  local last = parts[#parts]
  if #parts == 1 then return global_names(last), last end
  for i = 2, #seps - 1 do
    if seps[i] == ':' then return {}, last end
  end
  local obj = rawget(env, parts[1])
  if obj == nil then obj = env[parts[1]] end
  for i = 2, #parts - 1 do
    if obj == nil then return {}, last end
    obj = peek(obj, parts[i])
  end
  if obj == nil then return {}, last end
  return names_of(obj, seps[#seps] == ':', last), last
end

-- The terminal front end -------------------------------------------------------

local function enter_raw()
  if raw or not input then return end
  local data, eof = host.drain_input()
  if data ~= '' then editor:feed(data) end
  if eof then editor:feed('\4') end
  raw = true
  input:set_mode('raw')
  host.keep_isig()
  host.write('\27[?2004h') -- bracketed paste: pasted tabs stay tabs
end

local tty_eof = false

-- Back from Ctrl-Z (SIGTSTP; fg sends SIGCONT): the shell may have
-- changed the terminal's modes meanwhile. libuv skips a mode it thinks
-- is set, hence the detour through normal mode.
local function on_continue()
  if closed or not raw then return end
  input:set_mode('normal')
  input:set_mode('raw')
  host.keep_isig()
  host.write('\27[?2004h')
  if editor.editing then editor:render() end
end

local function on_tty_data(err, data)
  if closed then return end
  if data then return editor:feed(data) end
  -- The end of input. While an entry runs, the terminal is in normal mode
  -- and this is Ctrl-D: it acts once the entry is done, and reading goes
  -- on then. At the prompt (raw mode) it means the terminal is gone.
  if busy then
    tty_eof = true
    return editor:feed('\4')
  end
  return leave()
end

local function on_eof(line)
  if editing then return run_editor(line) end
  if pending then
    pending = nil
    return ready()
  end
  return leave()
end

-- Ctrl-C that is not an interrupt of a running entry.
local function on_sigint()
  if closed then return end
  if entry then return interrupt_entry() end
  local what, touched
  if term then
    what, touched = editor:interrupt()
    if what == nil or what == 'search' then return end
  else
    out('\n')
    what, touched = 'empty', false
  end
  if what == 'line' or pending or editing then
    pending, editing, hinted = nil, nil, false
    return ready()
  end
  if hinted and not touched then return leave() end
  hinted = true
  out(EXIT_HINT, '\n')
  return ready()
end

-- The lines front end ----------------------------------------------------------

local lines = { buf = '', eof = false, reading = false, processing = false }

local want_input, process_lines

local function on_line_data(err, data)
  if data then
    lines.buf = lines.buf .. data
  else
    lines.eof = true
    if input and not input:is_closing() then input:read_stop() end
    lines.reading = false
  end
  process_lines()
end

function want_input()
  if lines.reading or lines.eof or closed then return end
  lines.reading = true
  if input then
    input:read_start(on_line_data)
    return
  end
  uv.fs_read(0, 4096, -1, function(err, data)
    lines.reading = false
    if err or data == nil or data == '' then
      lines.eof = true
    else
      lines.buf = lines.buf .. data
    end
    process_lines()
  end)
end

local function pause_input()
  if input and lines.reading then
    input:read_stop()
    lines.reading = false
  end
end

function process_lines()
  if lines.processing then return end
  lines.processing = true
  while not busy and not closed do
    local nl = find(lines.buf, '\n', 1, true)
    if not nl and not (lines.eof and lines.buf ~= '') then
      if lines.eof then
        if editing then
          run_editor()
        else
          finish()
        end
      else
        want_input()
      end
      break
    end
    local line = sub(lines.buf, 1, (nl or #lines.buf + 1) - 1)
    lines.buf = nl and sub(lines.buf, nl + 1) or ''
    if sub(line, -1) == '\r' then line = sub(line, 1, -2) end
    pause_input()
    submit(line)
  end
  lines.processing = false
end

-- Start ------------------------------------------------------------------------

function ready()
  busy = false
  if closed then return end
  if term then
    enter_raw()
    if tty_eof and input then
      tty_eof = false
      input:read_start(on_tty_data)
    end
    return editor:start(prompt_text(), { eof_anywhere = editing ~= nil })
  end
  out(prompt_text())
  return process_lines()
end

local function history_path()
  local path = os.getenv('LUVHOST_REPL_HISTORY')
  if path then return path ~= '' and path or nil end
  local home = os.getenv('HOME')
  if home and home ~= '' then return home .. '/.luvhost_history' end
end

-- Errors nobody handles print here and the prompt goes on (Node's REPL
-- does the same); after the prompt, they are fatal again.
local function on_uncaught(err, report)
  if process:listenerCount('uncaughtException') > 0 then
    return process:emit('uncaughtException', err, report)
  end
  if closed then return binding.fatal(report) end
  err_out('Uncaught ', report, '\n')
end

-- start(host): opens the prompt on stdin; returns at once.
function M.start(h)
  host = h
  env = make_env()
  binding.set_hooks({ uncaught = on_uncaught })
  local kind = uv.guess_handle(0)
  tty_in = kind == 'tty'
  term = tty_in and uv.guess_handle(1) == 'tty' and
    os.getenv('TERM') ~= 'dumb'
  colors = uv.guess_handle(1) == 'tty' and os.getenv('NO_COLOR') == nil
  if kind == 'tty' then
    input = uv.new_tty(0, true)
  elseif kind == 'pipe' or kind == 'tcp' then
    input = uv.new_pipe(false)
    if input and not input:open(0) then
      input:close()
      input = nil
    end
  end
  if input then internal_uv.hide(input) end
  host.on_sigint(on_sigint)
  if not term then return ready() end
  history = require('internal.lineedit').history(history_path())
  editor = require('internal.lineedit').new({
    host = host,
    columns = columns,
    history = history,
    complete = complete,
    on_line = function(line)
      if not editing then history:add(line) end
      return submit(line)
    end,
    on_eof = on_eof,
  })
  editor.on_interrupt = on_sigint
  host.guard(true)
  continued = uv.new_signal()
  if continued then
    internal_uv.hide(continued)
    continued:start('sigcont', on_continue)
    continued:unref()
  end
  out('Type .help for help; Ctrl-D or .exit leaves.\n')
  input:read_start(on_tty_data)
  return ready()
end

return M
