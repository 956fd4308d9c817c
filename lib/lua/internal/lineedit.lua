-- The prompt's line editor, for a terminal in raw mode: keys in, the line
-- drawn through host/repl.c (which also takes it off the screen while
-- other output passes, and puts it back after). Emacs keys as in readline,
-- history with reverse search, completion through a callback.
--
--   local ed = lineedit.new({ host = host, columns = fn, history = h,
--     complete = fn(before) -> list, word, on_line = fn(line),
--     on_eof = fn(line) })
--   ed:start('> ')      -- edit a new line
--   ed:feed(bytes)      -- what the terminal sent; kept while not editing

local byte, find, format, gmatch, match, rep, sub =
  string.byte, string.find, string.format, string.gmatch, string.match,
  string.rep, string.sub
local concat, insert, remove, sort = table.concat, table.insert,
  table.remove, table.sort
local max, min, ceil = math.max, math.min, math.ceil
local utf8len, codepoint, charpattern = utf8.len, utf8.codepoint,
  utf8.charpattern
local setmetatable, pcall, type = setmetatable, pcall, type

local M = {}

-- Keys ---------------------------------------------------------------------

local CTRL = {
  [1] = 'home', [2] = 'left', [3] = 'interrupt', [4] = 'eof', [5] = 'end',
  [6] = 'right', [7] = 'cancel', [8] = 'backspace', [9] = 'tab',
  [10] = 'enter', [11] = 'kill_end', [12] = 'clear_screen', [13] = 'enter',
  [14] = 'down', [16] = 'up', [18] = 'search', [20] = 'transpose',
  [21] = 'kill_start', [23] = 'kill_word_back', [25] = 'yank',
  [127] = 'backspace',
}

local SEQUENCES = {
  ['\27[A'] = 'up', ['\27[B'] = 'down', ['\27[C'] = 'right',
  ['\27[D'] = 'left', ['\27OA'] = 'up', ['\27OB'] = 'down',
  ['\27OC'] = 'right', ['\27OD'] = 'left',
  ['\27[H'] = 'home', ['\27[F'] = 'end', ['\27OH'] = 'home',
  ['\27OF'] = 'end', ['\27[1~'] = 'home', ['\27[4~'] = 'end',
  ['\27[7~'] = 'home', ['\27[8~'] = 'end', ['\27[3~'] = 'delete',
  ['\27[1;5C'] = 'word_right', ['\27[1;5D'] = 'word_left',
  ['\27[1;3C'] = 'word_right', ['\27[1;3D'] = 'word_left',
  ['\27b'] = 'word_left', ['\27f'] = 'word_right', ['\27d'] = 'kill_word',
  ['\27\127'] = 'kill_word_back_alnum', ['\27\8'] = 'kill_word_back_alnum',
  ['\27[200~'] = 'paste_start', ['\27[201~'] = 'paste_end',
}

-- Next key in buf at i: kind ('key' or 'char'), value, next index; nil
-- when buf ends inside a sequence (the rest comes with the next read).
local function decode(buf, i)
  local b = byte(buf, i)
  if b == nil then return nil end
  if b == 27 then
    local b2 = byte(buf, i + 1)
    if b2 == nil then return 'key', 'escape', i + 1 end
    if b2 == 91 then -- ESC [ parameters final
      local j = i + 2
      while true do
        local c = byte(buf, j)
        if c == nil then return nil end
        if c >= 0x40 and c <= 0x7e then break end
        j = j + 1
      end
      return 'key', SEQUENCES[sub(buf, i, j)] or 'unknown', j + 1
    elseif b2 == 79 then -- ESC O x
      if byte(buf, i + 2) == nil then return nil end
      return 'key', SEQUENCES[sub(buf, i, i + 2)] or 'unknown', i + 3
    end
    return 'key', SEQUENCES[sub(buf, i, i + 1)] or 'unknown', i + 2
  end
  if b < 32 or b == 127 then return 'key', CTRL[b] or 'unknown', i + 1 end
  local n = b >= 0xf0 and 4 or b >= 0xe0 and 3 or b >= 0xc0 and 2 or 1
  if i + n - 1 > #buf then return nil end
  local c = sub(buf, i, i + n - 1)
  if not utf8len(c) then return 'key', 'unknown', i + 1 end
  return 'char', c, i + n
end

-- Columns --------------------------------------------------------------------

local WIDE = {
  { 0x1100, 0x115f }, { 0x2e80, 0x303e }, { 0x3041, 0x33ff },
  { 0x3400, 0x4dbf }, { 0x4e00, 0x9fff }, { 0xa000, 0xa4cf },
  { 0xac00, 0xd7a3 }, { 0xf900, 0xfaff }, { 0xfe30, 0xfe4f },
  { 0xff00, 0xff60 }, { 0xffe0, 0xffe6 }, { 0x1f300, 0x1f64f },
  { 0x1f900, 0x1f9ff }, { 0x20000, 0x3fffd },
}

-- Columns one character of the line takes (a tab shows as two spaces).
local function char_width(c)
  if c == '\t' then return 2 end
  if #c == 1 then return 1 end
  local cp = codepoint(c)
  if cp >= 0x300 and cp <= 0x36f then return 0 end -- combining marks
  for i = 1, #WIDE do
    local r = WIDE[i]
    if cp >= r[1] and cp <= r[2] then return 2 end
  end
  return 1
end

-- Columns of a string: colour and other escape sequences take none.
local function text_width(s)
  s = s:gsub('\27%[[%d;?]*[%a~]', '')
  local w = 0
  for c in gmatch(s, charpattern) do w = w + char_width(c) end
  return w
end
M.width = text_width

local function split(s)
  local chars = {}
  for c in gmatch(s, charpattern) do chars[#chars + 1] = c end
  return chars
end

local function is_word(c)
  return find(c, '^[%w_]') ~= nil or #c > 1
end

local function common_prefix(list)
  local prefix = list[1]
  for i = 2, #list do
    local s = list[i]
    local n = 0
    while n < #prefix and n < #s and byte(prefix, n + 1) == byte(s, n + 1) do
      n = n + 1
    end
    prefix = sub(prefix, 1, n)
  end
  -- Never end inside a UTF-8 character.
  while #prefix > 0 and not utf8len(prefix) do prefix = sub(prefix, 1, -2) end
  return prefix
end

-- History ------------------------------------------------------------------

local History = {}
History.__index = History

-- history(path [, max]): the lines of the file (nil: in memory only);
-- new lines are appended to it as they are entered.
function M.history(path, limit)
  local self = setmetatable({ lines = {}, path = path, max = limit or 1000 },
    History)
  if not path then return self end
  local f = io.open(path, 'rb')
  if not f then return self end
  local all = {}
  for line in f:lines() do
    if line ~= '' then all[#all + 1] = line end
  end
  f:close()
  local first = max(1, #all - self.max + 1)
  for i = first, #all do self.lines[#self.lines + 1] = all[i] end
  if #all > 2 * self.max then -- keep the file from growing for ever
    local out = io.open(path, 'wb')
    if out then
      out:write(concat(self.lines, '\n'), '\n')
      out:close()
    end
  end
  return self
end

function History:add(line)
  if find(line, '^%s*$') or find(line, '\n', 1, true) then return end
  if self.lines[#self.lines] == line then return end
  self.lines[#self.lines + 1] = line
  if #self.lines > self.max then remove(self.lines, 1) end
  if not self.path then return end
  local uv = require('uv')
  local fd = uv.fs_open(self.path, 'a', 384) -- 0600: it may hold secrets
  if fd then
    uv.fs_write(fd, line .. '\n', -1)
    uv.fs_close(fd)
  end
end

-- The editor -----------------------------------------------------------------

local Editor = {}
Editor.__index = Editor

function M.new(opts)
  return setmetatable({
    host = opts.host,
    columns = opts.columns,
    history = opts.history or M.history(nil),
    complete = opts.complete,
    on_line = opts.on_line,
    on_eof = opts.on_eof,
    inbuf = '',
    inpos = 1,
    chars = {},
    pos = 0,
    prompt = '> ',
    editing = false,
    feeding = false,
    dirty = false,
    end_at_col0 = false,
  }, Editor)
end

-- start(prompt [, opts]): edits a new line. opts.eof_anywhere: Ctrl-D ends
-- the input even on a line that is not empty.
function Editor:start(prompt, opts)
  self.prompt = prompt
  self.chars, self.pos = {}, 0
  self.editing = true
  self.hist_pos, self.hist_saved = nil, nil
  self.search = nil
  self.paste = false
  self.touched = false
  self.eof_anywhere = opts and opts.eof_anywhere or false
  self:render()
  if not self.feeding and self.inpos <= #self.inbuf then self:feed('') end
end

function Editor:feed(data)
  if data ~= '' then self.inbuf = self.inbuf .. data end
  if self.feeding or not self.editing then return end
  self.feeding = true
  local ok, err = pcall(function()
    local buf = self.inbuf
    while self.editing do
      local kind, value, nexti = decode(buf, self.inpos)
      if kind == nil then break end
      self.inpos = nexti
      self:key(kind, value)
      if self.inbuf ~= buf then buf = self.inbuf end
    end
    if self.inpos > #self.inbuf then
      self.inbuf, self.inpos = '', 1
    elseif self.inpos > 4096 then
      self.inbuf, self.inpos = sub(self.inbuf, self.inpos), 1
    end
    if self.editing and self.dirty then self:render() end
  end)
  self.feeding = false
  if not ok then error(err, 0) end
end

-- Drawing --------------------------------------------------------------------

function Editor:render()
  self.dirty = false
  local cols = max((self.columns and self.columns()) or 80, 8)
  local prompt = self.prompt
  local s = self.search
  if s then
    prompt = format("(%sreverse-i-search)`%s': ", s.failed and 'failed ' or '',
      s.query)
  end
  local out = { prompt }
  local total = text_width(prompt)
  local cursor
  local chars = self.chars
  for i = 1, #chars do
    if i == self.pos + 1 then cursor = total end
    local c = chars[i]
    out[#out + 1] = c == '\t' and '  ' or c
    total = total + char_width(c)
  end
  cursor = cursor or total
  local end_row, end_col = total // cols, total % cols
  -- A line that fills its last row exactly: move to the next row, so the
  -- cursor is not left in the terminal's pending-wrap state.
  self.end_at_col0 = end_col == 0 and total > 0
  if self.end_at_col0 then out[#out + 1] = '\r\n' end
  local row, col = cursor // cols, cursor % cols
  if end_row > row then out[#out + 1] = '\27[' .. (end_row - row) .. 'A' end
  out[#out + 1] = '\r'
  if col > 0 then out[#out + 1] = '\27[' .. col .. 'C' end
  local erase = '\r' .. (row > 0 and '\27[' .. row .. 'A' or '') .. '\27[J'
  self.host.draw(concat(out), erase)
end

-- What ends the line on the screen: the cursor is at its end.
function Editor:newline()
  return self.end_at_col0 and '\r' or '\r\n'
end

-- Leaves the line on the screen, the cursor after its end and s after
-- that; no longer editing.
function Editor:commit(s)
  if self.pos ~= #self.chars or self.dirty then
    self.pos = #self.chars
    self:render()
  end
  self.host.commit(s, true)
  self.editing = false
end

function Editor:bell()
  self.host.write('\7')
end

function Editor:line()
  return concat(self.chars)
end

function Editor:set_line(s, pos)
  self.chars = split(s)
  self.pos = pos or #self.chars
  self.dirty = true
end

-- Editing ------------------------------------------------------------------

function Editor:insert(s)
  for c in gmatch(s, charpattern) do
    if c == '\n' or c == '\r' then c = ' ' end
    insert(self.chars, self.pos + 1, c)
    self.pos = self.pos + 1
  end
  self.dirty = true
end

-- Removes chars [from, to] (indices), keeps them for Ctrl-Y.
function Editor:kill(from, to)
  if to < from then return end
  self.killed = concat(self.chars, '', from, to)
  for _ = from, to do remove(self.chars, from) end
  if self.pos >= to then
    self.pos = self.pos - (to - from + 1)
  elseif self.pos >= from then
    self.pos = from - 1
  end
  self.dirty = true
end

function Editor:word_start(alnum)
  local i, chars = self.pos, self.chars
  local function inword(c)
    if alnum then return is_word(c) end
    return not find(c, '^%s')
  end
  while i > 0 and not inword(chars[i]) do i = i - 1 end
  while i > 0 and inword(chars[i]) do i = i - 1 end
  return i
end

function Editor:word_end()
  local i, chars = self.pos, self.chars
  while i < #chars and not is_word(chars[i + 1]) do i = i + 1 end
  while i < #chars and is_word(chars[i + 1]) do i = i + 1 end
  return i
end

function Editor:history_move(delta)
  local lines = self.history.lines
  local at = self.hist_pos or #lines + 1
  local to = at + delta
  if to < 1 or to > #lines + 1 then return self:bell() end
  if self.hist_pos == nil then self.hist_saved = self:line() end
  if to == #lines + 1 then
    self.hist_pos = nil
    self:set_line(self.hist_saved or '')
  else
    self.hist_pos = to
    self:set_line(lines[to])
  end
end

function Editor:show_list(list)
  local cols = max((self.columns and self.columns()) or 80, 8)
  local limit = 200
  local shown = min(#list, limit)
  local w = 0
  for i = 1, shown do w = max(w, text_width(list[i])) end
  local per_row = max(1, (cols - 1) // (w + 2))
  local rows = ceil(shown / per_row)
  local lines = {}
  for r = 1, rows do
    local cells = {}
    for c = 0, per_row - 1 do
      local item = list[c * rows + r]
      if item and c * rows + r <= shown then
        cells[#cells + 1] = item .. rep(' ', w + 2 - text_width(item))
      end
    end
    lines[#lines + 1] = (concat(cells):gsub('%s+$', ''))
  end
  if #list > shown then
    lines[#lines + 1] = format('... and %d more', #list - shown)
  end
  local pos = self.pos
  self:commit(self:newline() .. concat(lines, '\r\n') .. '\r\n')
  self.pos = pos
  self.editing = true
  self:render()
end

function Editor:tab()
  local before = concat(self.chars, '', 1, self.pos)
  if find(before, '^%s*$') or not self.complete then
    return self:insert('  ')
  end
  local ok, list, word = pcall(self.complete, before)
  if not ok or type(list) ~= 'table' or #list == 0 then return self:bell() end
  word = word or ''
  local function replace(with)
    local n = utf8len(word) or #word
    self:kill(self.pos - n + 1, self.pos)
    self:insert(with)
  end
  if #list == 1 then return replace(list[1]) end
  local prefix = common_prefix(list)
  if #prefix > #word then return replace(prefix) end
  sort(list)
  self:show_list(list)
end

-- Reverse search -------------------------------------------------------------

-- Looks for query in history lines from index i down; shows the match.
function Editor:search_from(i)
  local s = self.search
  local lines = self.history.lines
  for j = min(i, #lines), 1, -1 do
    local at = s.query ~= '' and find(lines[j], s.query, 1, true)
    if at then
      s.index, s.failed = j, false
      self:set_line(lines[j], utf8len(sub(lines[j], 1, at - 1)))
      return true
    end
  end
  s.failed = s.query ~= ''
  self.dirty = true
  return false
end

function Editor:search_key(kind, value)
  local s = self.search
  if kind == 'char' then
    s.query = s.query .. value
    self:search_from(s.index)
    return true
  elseif value == 'backspace' then
    local last = match(s.query, charpattern .. '$') or ''
    s.query = sub(s.query, 1, #s.query - #last)
    if s.query == '' then
      self:set_line(s.saved, s.saved_pos)
      s.index, s.failed = #self.history.lines + 1, false
    else
      self:search_from(#self.history.lines)
    end
    return true
  elseif value == 'search' then
    if s.query == '' and self.last_query then s.query = self.last_query end
    self:search_from(s.failed and s.index or s.index - 1)
    return true
  elseif value == 'cancel' or value == 'escape' then
    self:set_line(s.saved, s.saved_pos)
    self.search = nil
    return true
  end
  -- Any other key takes the match as the line and does its usual job.
  self.last_query = s.query ~= '' and s.query or self.last_query
  self.search = nil
  self.dirty = true
  return false
end

-- Keys -----------------------------------------------------------------------

local ACTIONS = {}

function ACTIONS.left(self) if self.pos > 0 then self.pos = self.pos - 1 end end
function ACTIONS.right(self)
  if self.pos < #self.chars then self.pos = self.pos + 1 end
end
function ACTIONS.home(self) self.pos = 0 end
ACTIONS['end'] = function(self) self.pos = #self.chars end
function ACTIONS.word_left(self) self.pos = self:word_start(true) end
function ACTIONS.word_right(self) self.pos = self:word_end() end
function ACTIONS.backspace(self)
  if self.pos > 0 then
    remove(self.chars, self.pos)
    self.pos = self.pos - 1
  end
end
function ACTIONS.delete(self)
  if self.pos < #self.chars then remove(self.chars, self.pos + 1) end
end
function ACTIONS.eof(self)
  if #self.chars == 0 or self.eof_anywhere then
    local line = self:line()
    self:commit(self:newline())
    return self.on_eof(line)
  end
  ACTIONS.delete(self)
end
function ACTIONS.kill_end(self) self:kill(self.pos + 1, #self.chars) end
function ACTIONS.kill_start(self) self:kill(1, self.pos) end
function ACTIONS.kill_word_back(self)
  self:kill(self:word_start(false) + 1, self.pos)
end
function ACTIONS.kill_word_back_alnum(self)
  self:kill(self:word_start(true) + 1, self.pos)
end
function ACTIONS.kill_word(self) self:kill(self.pos + 1, self:word_end()) end
function ACTIONS.yank(self)
  if self.killed then self:insert(self.killed) end
end
function ACTIONS.transpose(self)
  local chars, p = self.chars, self.pos
  if p == 0 or #chars < 2 then return self:bell() end
  if p == #chars then p = p - 1 end
  chars[p], chars[p + 1] = chars[p + 1], chars[p]
  self.pos = p + 1
end
function ACTIONS.up(self) self:history_move(-1) end
function ACTIONS.down(self) self:history_move(1) end
function ACTIONS.tab(self)
  if self.paste then return self:insert('\t') end
  self:tab()
end
function ACTIONS.enter(self)
  local line = self:line()
  self:commit(self:newline())
  return self.on_line(line)
end
function ACTIONS.clear_screen(self)
  self.host.commit('\27[H\27[2J', true)
  self.editing = true
end
function ACTIONS.search(self)
  self.search = { query = '', index = #self.history.lines + 1,
    saved = self:line(), saved_pos = self.pos, failed = false }
end
function ACTIONS.interrupt(self)
  if self.on_interrupt then return self.on_interrupt() end
end
function ACTIONS.paste_start(self) self.paste = true end
function ACTIONS.paste_end(self) self.paste = false end

function Editor:key(kind, value)
  self.touched = true
  self.dirty = true
  if self.search and self:search_key(kind, value) then return end
  if kind == 'char' then return self:insert(value) end
  local action = ACTIONS[value]
  if action then return action(self) end
end

-- Ctrl-C while editing: ends a search, or leaves the line on the screen
-- with ^C after it. Returns nil (not editing), 'search', 'line' (there was
-- text) or 'empty', and whether any key came since start().
function Editor:interrupt()
  if not self.editing then return nil end
  if self.search then
    self:search_key('key', 'cancel')
    self:render()
    return 'search', true
  end
  local had = #self.chars > 0
  self:commit('^C\r\n')
  return had and 'line' or 'empty', self.touched
end

return M
