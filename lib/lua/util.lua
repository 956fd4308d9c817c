-- util: inspect, format and small helpers, in the spirit of Node's `util`.
--
-- inspect never raises on a value: tables are walked with raw access (no
-- __index, __pairs, __len, __lt), and the only user code it runs is a
-- metatable's __inspect or a userdata's __tostring, each under pcall.

local type, select, next, pcall, error, require, tonumber, setmetatable =
  type, select, next, pcall, error, require, tonumber, setmetatable
local rawget = rawget
local getmetatable = debug.getmetatable -- ignores __metatable on purpose
local getinfo = debug.getinfo
local format, rep, byte, sub, gsub, find, match =
  string.format, string.rep, string.byte, string.sub, string.gsub,
  string.find, string.match
local concat, sort = table.concat, table.sort
local mtype, huge, floor, min = math.type, math.huge, math.floor, math.min
local utf8len = utf8.len
local io = io -- io.stderr is looked up per warning, so it can be redirected

local M = {}

-- ANSI SGR pairs (on, off), Node's default inspect styles.
local STYLES = {
  number = { 33, 39 }, -- yellow
  boolean = { 33, 39 },
  string = { 32, 39 }, -- green
  ['nil'] = { 1, 22 }, -- bold
  special = { 36, 39 }, -- cyan: functions, threads, userdata, markers
}

local function stylize(ctx, s, style)
  if not ctx.colors then return s end
  local c = STYLES[style]
  return '\27[' .. c[1] .. 'm' .. s .. '\27[' .. c[2] .. 'm'
end

-- Columns a string takes on a terminal: without colour codes, in UTF-8
-- characters when it is valid UTF-8.
local function width(s)
  s = gsub(s, '\27%[[%d;]*m', '')
  return utf8len(s) or #s
end

-- Like Lua's own tostring for numbers, without consulting a metatable that
-- debug.setmetatable may have given to numbers.
local function numberToString(n)
  if mtype(n) == 'integer' then return format('%d', n) end
  local s = format('%.14g', n)
  -- Lua marks integral floats with '.0' so 1.0 and 1 read differently.
  if not find(s, '[^%d%-]') then s = s .. '.0' end
  return s
end

local ESCAPES = {
  ['\a'] = '\\a', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n',
  ['\r'] = '\\r', ['\t'] = '\\t', ['\v'] = '\\v', ['\\'] = '\\\\',
  ['"'] = '\\"',
}

-- A double-quoted Lua literal. Control bytes become \ddd, padded to three
-- digits when a digit follows (so "\0012" is byte 1 then '2'). Bytes >= 128
-- stay readable unless the string is not valid UTF-8.
local function quote(s)
  local pattern = utf8len(s) and '([%c"\\])()' or '([%c"\\\128-\255])()'
  local body = gsub(s, pattern, function(c, after)
    local e = ESCAPES[c]
    if e then return e end
    local nb = byte(s, after)
    if nb and nb >= 48 and nb <= 57 then return format('\\%03d', byte(c)) end
    return '\\' .. byte(c)
  end)
  return '"' .. body .. '"'
end

local function formatString(ctx, s)
  local max = ctx.maxStringLength
  if #s <= max then return stylize(ctx, quote(s), 'string') end
  local cut = max
  -- Do not split a UTF-8 sequence (back off at most 3 continuation bytes).
  for _ = 1, 3 do
    local b = byte(s, cut + 1)
    if cut == 0 or b < 0x80 or b >= 0xC0 then break end
    cut = cut - 1
  end
  local more = #s - cut
  return stylize(ctx, quote(sub(s, 1, cut)), 'string') .. '... ' .. more
    .. (more == 1 and ' more byte' or ' more bytes')
end

local function formatFunction(ctx, f)
  local info = getinfo(f, 'S')
  local s
  if info.what == 'C' then
    s = '<function: builtin>'
  else
    s = '<function: ' .. info.short_src .. ':' .. info.linedefined .. '>'
  end
  return stylize(ctx, s, 'special')
end

local RESERVED = {}
for w in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch('%a+') do
  RESERVED[w] = true
end

-- Key order for non-sequence keys: numbers ascending, then strings, then the
-- other types by type name (false before true; others by address).
local TYPE_RANK = { number = 1, string = 2 }

local function keyLess(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    local ra, rb = TYPE_RANK[ta] or 3, TYPE_RANK[tb] or 3
    if ra ~= rb then return ra < rb end
    return ta < tb
  end
  if ta == 'number' or ta == 'string' then return a < b end
  if ta == 'boolean' then return b and not a end
  return format('%p', a) < format('%p', b)
end

-- Nesting shown even with depth = math.huge. Deeper output would cost
-- quadratic time and memory (indentation), and Lua's parser could not read a
-- literal nested this deep anyway (LUAI_MAXCCALLS is 200).
local MAX_NESTING = 200

-- The options handed to an __inspect metamethod: depth is what is left.
local function customOptions(ctx, level)
  return {
    depth = ctx.depth - level,
    colors = ctx.colors,
    breakLength = ctx.breakLength,
    sorted = ctx.sorted,
    maxArrayLength = ctx.maxArrayLength,
    maxStringLength = ctx.maxStringLength,
  }
end

-- Values whose __inspect is running: an __inspect that inspects its own
-- value gets the plain rendering instead of endless recursion.
local inCustom = setmetatable({}, { __mode = 'k' })

-- The string from v's __inspect, or nil when there is none or it fails.
local function callCustom(ctx, v, mt, level)
  local custom = rawget(mt, '__inspect')
  if custom == nil or inCustom[v] then return nil end
  inCustom[v] = true
  local ok, s = pcall(custom, v, customOptions(ctx, level))
  inCustom[v] = nil
  if ok and type(s) == 'string' then return s end
  return nil
end

local function formatUserdata(ctx, u, level)
  local kind = 'userdata'
  local mt = getmetatable(u)
  if mt then
    local s = callCustom(ctx, u, mt, level)
    if s then return s end
    local ts = rawget(mt, '__tostring')
    if ts ~= nil then
      local ok, str = pcall(ts, u)
      if ok and type(str) == 'string' then
        return stylize(ctx, str, 'special')
      end
    end
    local name = rawget(mt, '__name')
    if type(name) == 'string' then kind = name end
  end
  return stylize(ctx, '<' .. kind .. ': ' .. format('%p', u) .. '>', 'special')
end

local formatValue -- forward declaration (tables recurse)

local function formatKey(ctx, k, level, used)
  if type(k) == 'string' and match(k, '^[A-Za-z_][A-Za-z0-9_]*$')
      and not RESERVED[k] then
    return k
  end
  return '[' .. formatValue(ctx, k, level, used + 1) .. ']'
end

-- `used` is the column where this table starts, so the one-line form is
-- chosen only when it really fits in breakLength.
local function formatTable(ctx, t, level, used)
  local mt = getmetatable(t)
  local prefix = ''
  if mt then
    local s = callCustom(ctx, t, mt, level)
    if s then return s end
    local name = rawget(mt, '__name')
    if type(name) == 'string' then prefix = name .. ' ' end
  end

  -- Only ancestors count as cycles (Node's rule): a table that merely
  -- appears twice is printed twice.
  if ctx.seen[t] then
    local id = ctx.circular[t]
    if not id then
      id = ctx.nextId + 1
      ctx.nextId = id
      ctx.circular[t] = id
    end
    return stylize(ctx, '[Circular *' .. id .. ']', 'special')
  end
  if next(t) == nil then return prefix .. '{}' end
  if level > ctx.depth or level >= MAX_NESTING then
    return prefix .. stylize(ctx, '{...}', 'special')
  end

  ctx.seen[t] = true
  local indent = rep(' ', 2 * (level + 1))
  local items, n = {}, 0

  local seqLen = 0
  while rawget(t, seqLen + 1) ~= nil do seqLen = seqLen + 1 end
  local shown = min(seqLen, ctx.maxArrayLength)
  for i = 1, shown do
    n = n + 1
    items[n] = formatValue(ctx, rawget(t, i), level + 1, #indent)
  end
  if seqLen > shown then
    local more = seqLen - shown
    n = n + 1
    items[n] = '... ' .. more .. (more == 1 and ' more item' or ' more items')
  end

  local keys, nk = {}, 0
  for k in next, t do
    if not (mtype(k) == 'integer' and k >= 1 and k <= seqLen) then
      nk = nk + 1
      keys[nk] = k
    end
  end
  if ctx.sorted then sort(keys, keyLess) end
  for i = 1, nk do
    local k = keys[i]
    local ks = formatKey(ctx, k, level + 1, #indent)
    n = n + 1
    items[n] = ks .. ' = '
      .. formatValue(ctx, rawget(t, k), level + 1, #indent + width(ks) + 3)
  end
  ctx.seen[t] = nil

  local id = ctx.circular[t]
  if id then
    prefix = stylize(ctx, '<ref *' .. id .. '>', 'special') .. ' ' .. prefix
  end

  local broken = false
  for i = 1, n do
    if find(items[i], '\n', 1, true) then
      broken = true
      break
    end
  end
  if not broken then
    local line = prefix .. '{ ' .. concat(items, ', ') .. ' }'
    if used + width(line) <= ctx.breakLength then return line end
  end

  local close = '\n' .. rep(' ', 2 * level) .. '}'
  if nk == 0 and n > 6 and not broken then
    -- Long flat sequences fill lines instead of taking one line per item.
    local lines, nl, cur, curw = {}, 0, nil, 0
    local room = ctx.breakLength - #indent
    for i = 1, n do
      local piece = i < n and items[i] .. ',' or items[i]
      local w = width(piece)
      if cur and curw + 1 + w <= room then
        cur = cur .. ' ' .. piece
        curw = curw + 1 + w
      else
        if cur then
          nl = nl + 1
          lines[nl] = cur
        end
        cur, curw = piece, w
      end
    end
    nl = nl + 1
    lines[nl] = cur
    return prefix .. '{\n' .. indent .. concat(lines, '\n' .. indent) .. close
  end
  return prefix .. '{\n' .. indent .. concat(items, ',\n' .. indent) .. close
end

formatValue = function(ctx, v, level, used)
  local tv = type(v)
  if tv == 'string' then
    return formatString(ctx, v)
  elseif tv == 'number' then
    return stylize(ctx, numberToString(v), 'number')
  elseif tv == 'table' then
    return formatTable(ctx, v, level, used)
  elseif tv == 'nil' then
    return stylize(ctx, 'nil', 'nil')
  elseif tv == 'boolean' then
    return stylize(ctx, v and 'true' or 'false', 'boolean')
  elseif tv == 'function' then
    return formatFunction(ctx, v)
  elseif tv == 'thread' then
    return stylize(ctx, '<thread: ' .. format('%p', v) .. '>', 'special')
  end
  return formatUserdata(ctx, v, level)
end

local NUMBER_OPTIONS = {
  depth = 2, breakLength = 80, maxArrayLength = 100, maxStringLength = 10000,
}
local BOOLEAN_OPTIONS = { colors = false, sorted = true }

-- A fresh context per call; nil plus a message on a malformed option.
local function newContext(opts)
  if opts ~= nil and type(opts) ~= 'table' then
    return nil, 'argument #2 must be a table, got ' .. type(opts)
  end
  opts = opts or {}
  local ctx = { seen = {}, circular = {}, nextId = 0 }
  for k, default in next, NUMBER_OPTIONS do
    local v = opts[k]
    if v == nil then
      v = default
    elseif type(v) ~= 'number' or v ~= v then
      return nil, 'opts.' .. k .. ' must be a number, got ' .. type(v)
    end
    ctx[k] = v
  end
  -- Counts of items and bytes: whole and not negative.
  ctx.maxArrayLength = floor(ctx.maxArrayLength > 0 and ctx.maxArrayLength or 0)
  ctx.maxStringLength =
    floor(ctx.maxStringLength > 0 and ctx.maxStringLength or 0)
  for k, default in next, BOOLEAN_OPTIONS do
    local v = opts[k]
    if v == nil then
      v = default
    elseif type(v) ~= 'boolean' then
      return nil, 'opts.' .. k .. ' must be a boolean, got ' .. type(v)
    end
    ctx[k] = v
  end
  return ctx
end

local function inspect(v, opts)
  local ctx, err = newContext(opts)
  if not ctx then error('util.inspect: ' .. err, 2) end
  local ok, s = pcall(formatValue, ctx, v, 0, 0)
  if ok then return s end
  -- Only resource limits get here (a stack overflow in a very deep table).
  return '<' .. type(v) .. ': ' .. format('%p', v) .. '>'
end

M.inspect = inspect

-- util.format ---------------------------------------------------------------

local function toNumber(a)
  if type(a) == 'number' then return a end
  if type(a) == 'string' then return tonumber(a) end
  return nil
end

local function fmtString(a)
  local ta = type(a)
  if ta == 'string' then return a end
  if ta == 'number' then return numberToString(a) end
  if ta == 'table' or ta == 'userdata' then
    local mt = getmetatable(a)
    local ts = mt and rawget(mt, '__tostring')
    if ts ~= nil then
      local ok, s = pcall(ts, a)
      if ok and type(s) == 'string' then return s end
    end
    -- Node shows plain objects one level deep for %s.
    if ta == 'table' then return inspect(a, { depth = 0 }) end
  end
  return inspect(a)
end

local function fmtInteger(a)
  local x = toNumber(a)
  if x == nil or x ~= x then return 'nan' end
  if mtype(x) == 'integer' then return format('%d', x) end
  if x == huge then return 'inf' end
  if x == -huge then return '-inf' end
  -- Truncate toward zero, as parseInt does.
  local r = x >= 0 and floor(x) or -floor(-x)
  if mtype(r) == 'integer' then return format('%d', r) end
  return format('%.0f', r)
end

local function fmtFloat(a)
  local x = toNumber(a)
  if x == nil or x ~= x then return 'nan' end
  return numberToString(x + 0.0)
end

local function fmtJSON(a)
  -- Required per call: the built-in json module may not exist under plain
  -- lua5.4, and a failed require is only paid for when %j is used.
  local ok, json = pcall(require, 'json')
  if ok and type(json) == 'table' and type(json.encode) == 'function' then
    local okE, s = pcall(json.encode, a)
    if okE and type(s) == 'string' then return s end
  end
  return inspect(a)
end

local CONVERSIONS = {
  s = fmtString,
  d = fmtInteger,
  i = fmtInteger,
  f = fmtFloat,
  j = fmtJSON,
  o = function(a) return inspect(a, { depth = 4 }) end,
  O = function(a) return inspect(a) end,
  c = function() return '' end, -- CSS in browsers: consumed and dropped
}

function M.format(...)
  local n = select('#', ...)
  local args = { ... }
  local first = args[1]
  local parts = {}
  local i = 1
  if type(first) == 'string' then
    -- Like Node, a lone string is returned untouched ('%%' stays '%%').
    if n == 1 then return first end
    i = 2
    parts[1] = gsub(first, '%%(.?)', function(c)
      if c == '%' then return '%' end
      local conv = CONVERSIONS[c]
      if not conv or i > n then return nil end -- keep the text as it is
      local a = args[i]
      i = i + 1
      return conv(a)
    end)
  end
  for k = i, n do
    local a = args[k]
    parts[#parts + 1] = type(a) == 'string' and a or inspect(a)
  end
  return concat(parts, ' ')
end

-- Other helpers ---------------------------------------------------------

function M.isArray(t)
  if type(t) ~= 'table' then return false end
  local count, max = 0, 0
  for k in next, t do
    if mtype(k) ~= 'integer' or k < 1 then return false end
    count = count + 1
    if k > max then max = k end
  end
  -- count distinct keys in 1..max are exactly 1..count when max == count.
  return max == count
end

local warnedCodes = {}

function M.deprecate(fn, msg, code)
  if type(fn) ~= 'function' then
    error('util.deprecate: argument #1 must be a function, got ' .. type(fn), 2)
  end
  if type(msg) ~= 'string' then
    error('util.deprecate: argument #2 must be a string, got ' .. type(msg), 2)
  end
  if code ~= nil and type(code) ~= 'string' then
    error('util.deprecate: argument #3 must be a string, got ' .. type(code), 2)
  end
  local warned = false
  return function(...)
    if not warned then
      warned = true
      if code == nil or not warnedCodes[code] then
        if code then warnedCodes[code] = true end
        local tag = code and '[' .. code .. '] ' or ''
        -- A closed or odd stderr must not break the deprecated call.
        pcall(function()
          io.stderr:write('(luvhost) ', tag, 'DeprecationWarning: ', msg, '\n')
        end)
      end
    end
    return fn(...)
  end
end

return M
