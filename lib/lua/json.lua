-- json: JSON for luvhost on top of Debian's lua-cjson 2.1.0.
--
-- cjson parses and (usually) prints. Around it this module fixes what that
-- cjson version gets wrong for a Node-like runtime:
--   * `[]` and `{}` both decode to an empty table and both encode as `{}`:
--     arrays are marked with a metatable (json.array), and decoding finds
--     empty arrays in the text before cjson sees it.
--   * every number decodes as a float: integral values within +-2^53 are
--     turned back into integers.
--   * numbers are printed with 14 significant digits: a pre-scan sends
--     values cjson would round (big integers, long floats) to a small Lua
--     writer that prints them exactly; the same writer does pretty output.
--   * '/' is escaped as '\/': undone on the output.

local cjson = require('cjson')

local error, getmetatable, next, pcall, rawget, setmetatable, tonumber,
  tostring, type = error, getmetatable, next, pcall, rawget, setmetatable,
  tonumber, tostring, type
local huge, mtype, tointeger = math.huge, math.type, math.tointeger
local byte, find, format, gsub, rep, sub =
  string.byte, string.find, string.format, string.gsub, string.rep,
  string.sub
local concat, remove = table.concat, table.remove

-- A private instance: settings changed here do not leak to other cjson users.
local engine = cjson.new()
engine.decode_invalid_numbers(false) -- reject NaN, Infinity, 0x10 like JSON
engine.encode_invalid_numbers(false)
local cencode, cdecode = engine.encode, engine.decode
local null = engine.null

local MAX_DEPTH = 1000 -- cjson's own limit for both directions
local EXACT_INT = 1e14 -- below this, cjson's %.14g prints integers exactly
-- Beyond +-(2^53 - 1) a float no longer tells which integer the text held.
local MAX_SAFE_INT = (1 << 53) - 1

local ARRAY_MT = { __name = 'json.array' }
local EMPTY_MT = {
  __name = 'json.empty_array',
  __newindex = function()
    error('json.empty_array is read-only', 2)
  end,
}
local emptyArray = setmetatable({}, EMPTY_MT)

local function isMarked(t)
  local mt = getmetatable(t)
  return mt == ARRAY_MT or mt == EMPTY_MT
end

-- Encoding: the pre-scan ---------------------------------------------------

-- Keys leading to the table being scanned, for error messages ($.a[2].b).
-- No user code runs during a scan, so one shared stack is enough.
local pathKeys = {}
local TOO_DEEP = {}

local function formatKey(key)
  if type(key) == 'string' then
    if find(key, '^[%a_][%w_]*$') then
      return '.' .. key
    end
    return format('[%q]', key)
  end
  return '[' .. tostring(key) .. ']'
end

local function fail(msg, depth, key)
  local parts = { 'json.encode: ', msg, ' at $' }
  for i = 1, depth - 1 do
    parts[#parts + 1] = formatKey(pathKeys[i])
  end
  if key ~= nil then
    parts[#parts + 1] = formatKey(key)
  end
  error(concat(parts), 0)
end

-- Finite floats that %.14g does not round-trip need the exact writer.
local function floatNeedsWriter(x, depth, key)
  if x ~= x or x == huge or x == -huge then
    fail('cannot encode NaN or infinity', depth, key)
  end
  return tonumber(format('%.14g', x)) ~= x
end

local function scalarNeedsWriter(v, depth, key)
  local tv = type(v)
  if tv == 'number' then
    if mtype(v) == 'integer' then
      return v >= EXACT_INT or v <= -EXACT_INT
    end
    return floatNeedsWriter(v, depth, key)
  elseif tv ~= 'string' and tv ~= 'boolean' and v ~= null then
    fail('cannot encode a ' .. tv .. ' value', depth, key)
  end
  return false
end

local formatNumber -- defined with the writer below

-- Raises on what JSON cannot hold; returns true when cjson's output would
-- be wrong and the Lua writer must be used.
local function scanTable(t, depth)
  if depth > MAX_DEPTH then
    error(TOO_DEEP, 0)
  end
  local slow = false
  local count, max = 0, 0
  local stringKeys, numberKeys = false, false
  for k, v in next, t do
    local tk = type(k)
    if tk == 'string' then
      stringKeys = true
    elseif tk == 'number' and mtype(k) == 'integer' and k > 0 then
      count = count + 1
      if k > max then
        max = k
      end
    elseif tk == 'number' then
      if k == huge or k == -huge then
        fail('cannot encode NaN or infinity as a key', depth, k)
      end
      numberKeys = true
    else
      fail('cannot encode a table key of type ' .. tk, depth)
    end
    -- The common cases inline; scalarNeedsWriter for the rest.
    local tv = type(v)
    if tv == 'table' then
      pathKeys[depth] = k
      if scanTable(v, depth + 1) then
        slow = true
      end
    elseif tv == 'string' or tv == 'boolean' then -- luacheck: ignore 542
    elseif tv == 'number' and mtype(v) == 'integer' then
      if v >= EXACT_INT or v <= -EXACT_INT then
        slow = true
      end
    elseif scalarNeedsWriter(v, depth, k) then
      slow = true
    end
  end

  if not (stringKeys or numberKeys) then
    if count == 0 then
      -- cjson prints every empty table as {}.
      return slow or isMarked(t)
    end
    -- cjson's rule for plain tables (encode_sparse_array defaults).
    if max > count * 2 and max > 10 then
      if not isMarked(t) then
        fail(format('cannot encode a sparse array (largest index %d but ' ..
          'only %d values; wrap it with json.array() to write the holes ' ..
          'as null)', max, count), depth)
      end
      slow = true
    end
    return slow
  end
  if isMarked(t) then
    local key = next(t)
    while mtype(key) == 'integer' and key > 0 do
      key = next(t, key)
    end
    fail('table marked as array has a non-index key ' ..
      (type(key) == 'string' and format('%q', key) or tostring(key)), depth)
  end
  if count > 0 or numberKeys then
    -- Number keys become strings: catch {[1] = a, ['1'] = b}.
    for k in next, t do
      if type(k) == 'number' and rawget(t, formatNumber(k)) ~= nil then
        fail('duplicate key "' .. formatNumber(k) .. '" (number and ' ..
          'string)', depth)
      end
    end
    return true
  end
  return slow
end

local function scan(v)
  if type(v) == 'table' then
    return scanTable(v, 1)
  elseif v == nil then
    return false
  end
  return scalarNeedsWriter(v, 1, nil)
end

-- Only called after a scan hit the depth limit: was it a cycle?
local function hasCycle(t, onPath, done, depth)
  if onPath[t] then
    return true
  end
  if done[t] or depth > MAX_DEPTH then
    return false
  end
  onPath[t] = true
  for _, v in next, t do
    if type(v) == 'table' and hasCycle(v, onPath, done, depth + 1) then
      return true
    end
  end
  onPath[t] = nil
  done[t] = true
  return false
end

-- Encoding: the Lua writer -------------------------------------------------

function formatNumber(x)
  if mtype(x) == 'integer' then
    return format('%d', x)
  end
  -- Shortest of 14..17 digits that reads back as the same float; %.14g
  -- first so the output matches cjson's whenever cjson's is exact.
  for digits = 14, 16 do
    local s = format('%.' .. digits .. 'g', x)
    if tonumber(s) == x then
      return s
    end
  end
  return format('%.17g', x)
end

local function formatString(s)
  if not find(s, '[%c"\\/]') then
    return '"' .. s .. '"'
  end
  return cencode(s)
end

-- Array length, or nil when t is to be written as an object. The scan has
-- already rejected the shapes that are neither.
local function arrayLength(t)
  local max = 0
  for k in next, t do
    if mtype(k) ~= 'integer' or k < 1 then
      return nil
    end
    if k > max then
      max = k
    end
  end
  if max == 0 and not isMarked(t) then
    return nil
  end
  return max
end

local function newline(indent, level)
  return '\n' .. rep(indent, level)
end

local function write(v, buf, n, indent, level)
  local tv = type(v)
  n = n + 1
  if tv == 'string' then
    buf[n] = formatString(v)
  elseif tv == 'number' then
    buf[n] = formatNumber(v)
  elseif tv == 'boolean' then
    buf[n] = v and 'true' or 'false'
  elseif tv ~= 'table' then
    buf[n] = 'null'
  else
    local len = arrayLength(v)
    if len == 0 or (not len and next(v) == nil) then
      buf[n] = len and '[]' or '{}'
      return n
    end
    local inner = indent and newline(indent, level + 1)
    if len then
      buf[n] = '['
      for i = 1, len do
        if i > 1 then
          n = n + 1
          buf[n] = ','
        end
        if inner then
          n = n + 1
          buf[n] = inner
        end
        n = write(rawget(v, i), buf, n, indent, level + 1)
      end
    else
      buf[n] = '{'
      local colon = indent and ': ' or ':'
      local first = true
      for k, x in next, v do
        if first then
          first = false
        else
          n = n + 1
          buf[n] = ','
        end
        if inner then
          n = n + 1
          buf[n] = inner
        end
        n = n + 1
        if type(k) == 'string' then
          buf[n] = formatString(k)
        else
          buf[n] = '"' .. formatNumber(k) .. '"'
        end
        n = n + 1
        buf[n] = colon
        n = write(x, buf, n, indent, level + 1)
      end
    end
    if inner then
      n = n + 1
      buf[n] = newline(indent, level)
    end
    n = n + 1
    buf[n] = len and ']' or '}'
  end
  return n
end

local function indentOption(options)
  if type(options) ~= 'table' then
    error("bad argument #2 to 'json.encode' (table expected, got " ..
      type(options) .. ')', 3)
  end
  local indent = options.indent
  if type(indent) == 'number' then
    if mtype(indent) ~= 'integer' or indent < 0 then
      error("bad argument #2 to 'json.encode' (indent must be a " ..
        'non-negative integer or a string)', 3)
    end
    indent = rep(' ', indent)
  elseif indent == nil then
    indent = options.pretty and '  ' or nil
  elseif type(indent) ~= 'string' then
    error("bad argument #2 to 'json.encode' (indent must be a " ..
      'non-negative integer or a string)', 3)
  end
  if indent == '' then
    return nil -- as JSON.stringify: an empty indent means compact
  end
  return indent
end

-- Decoding -----------------------------------------------------------------

-- Cheap test, run on every decode: can the text hold an empty array?
-- Strings are not skipped, so "[]" inside a string also says yes.
local function mayHaveEmptyArray(s)
  local pos = 1
  while true do
    local p = find(s, ']', pos, true)
    if not p then
      return false
    end
    local j = p - 1
    local b = byte(s, j)
    while b == 32 or b == 10 or b == 13 or b == 9 do
      j = j - 1
      b = byte(s, j)
    end
    if b == 91 then
      return true
    end
    pos = p + 1
  end
end

-- Puts a null in front of every array outside strings, so that after
-- cjson a table is an array exactly when t[1] ~= nil (object keys are
-- strings), even for `[]`. fixup() takes the nulls out again.
local function tagArrays(s)
  local out, n = {}, 0
  local from, pos = 1, 1
  while true do
    local p = find(s, '["[]', pos)
    if not p then
      break
    end
    if byte(s, p) == 34 then
      -- Skip the string: find its closing quote past any escapes.
      local q = p + 1
      while true do
        local e = find(s, '["\\]', q)
        if not e then
          q = nil -- unterminated: cjson will say so
          break
        end
        if byte(s, e) == 92 then
          q = e + 2
        else
          q = e + 1
          break
        end
      end
      if not q then
        break
      end
      pos = q
    else
      local after = find(s, '[^ \t\r\n]', p + 1)
      n = n + 1
      out[n] = sub(s, from, p)
      n = n + 1
      out[n] = (after and byte(s, after) == 93) and 'null' or 'null,'
      from, pos = p + 1, p + 1
    end
  end
  n = n + 1
  out[n] = sub(s, from)
  return concat(out, '', 1, n)
end

local function toInteger(x)
  local i = tointeger(x)
  if i and i <= MAX_SAFE_INT and i >= -MAX_SAFE_INT then
    return i
  end
  return x
end

local function fixup(t, tagged)
  if t[1] ~= nil then
    if tagged then
      remove(t, 1)
    end
    setmetatable(t, ARRAY_MT)
    for i = 1, #t do
      local v = t[i]
      if type(v) == 'table' then
        fixup(v, tagged)
      elseif mtype(v) == 'float' then
        t[i] = toInteger(v)
      end
    end
  else
    for k, v in next, t do
      if type(v) == 'table' then
        fixup(v, tagged)
      elseif mtype(v) == 'float' then
        t[k] = toInteger(v) -- assigning an existing key is fine during next
      end
    end
  end
end

local TOKEN_NAMES = {
  T_OBJ_BEGIN = "'{'", T_OBJ_END = "'}'", T_ARR_BEGIN = "'['",
  T_ARR_END = "']'", T_STRING = 'string', T_NUMBER = 'number',
  T_BOOLEAN = 'boolean', T_NULL = 'null', T_COLON = "':'", T_COMMA = "','",
  T_END = 'end of input', T_WHITESPACE = 'whitespace', T_ERROR = 'error',
  T_UNKNOWN = 'unknown token',
}

local function decodeError(msg)
  if type(msg) ~= 'string' then
    msg = tostring(msg)
  end
  return 'json.decode: ' .. gsub(msg, 'T_[%u_]+', TOKEN_NAMES)
end

-- Module ---------------------------------------------------------------------

local json = {
  null = null,
  empty_array = emptyArray,
}

-- json.encode(value[, options]) -> string | nil, err
function json.encode(value, options)
  local indent
  if options ~= nil then
    indent = indentOption(options)
  end
  local ok, slow = pcall(scan, value)
  if not ok then
    if slow == TOO_DEEP then
      if hasCycle(value, {}, {}, 1) then
        return nil, 'json.encode: cannot encode a table that contains ' ..
          'itself (cycle)'
      end
      return nil, 'json.encode: nesting deeper than ' .. MAX_DEPTH ..
        ' levels'
    end
    return nil, slow
  end
  local out
  if slow or indent then
    local buf = {}
    local n = write(value, buf, 0, indent, 0)
    out = concat(buf, '', 1, n)
  else
    ok, out = pcall(cencode, value)
    if not ok then
      return nil, 'json.encode: ' .. tostring(out)
    end
  end
  -- The only '\/' in cjson's output are its escapes of '/' (a '\' is
  -- itself always escaped), so this cannot touch anything else.
  if find(out, '\\/', 1, true) then
    out = gsub(out, '\\/', '/')
  end
  return out
end

-- json.decode(str) -> value | nil, err
function json.decode(str)
  if type(str) ~= 'string' then
    error("bad argument #1 to 'json.decode' (string expected, got " ..
      type(str) .. ')', 2)
  end
  local tagged = mayHaveEmptyArray(str)
  local ok, value = pcall(cdecode, tagged and tagArrays(str) or str)
  if not ok then
    if tagged then
      -- Report positions in the caller's text, not the tagged one.
      local ok2, value2 = pcall(cdecode, str)
      if ok2 then
        value, tagged = value2, false -- never expected; stay correct anyway
      else
        return nil, decodeError(value2)
      end
    else
      return nil, decodeError(value)
    end
  end
  if type(value) == 'table' then
    fixup(value, tagged)
  elseif mtype(value) == 'float' then
    value = toInteger(value)
  end
  return value
end

-- json.array([t]) -> t, marked to encode as a JSON array even when empty.
function json.array(t)
  if t == nil then
    return setmetatable({}, ARRAY_MT)
  end
  if type(t) ~= 'table' then
    error("bad argument #1 to 'json.array' (table expected, got " ..
      type(t) .. ')', 2)
  end
  if isMarked(t) then
    return t
  end
  if getmetatable(t) ~= nil then
    error("bad argument #1 to 'json.array' (table already has a metatable)",
      2)
  end
  return setmetatable(t, ARRAY_MT)
end

-- json.isArray(v) -> true if v was made by json.array, is json.empty_array,
-- or was decoded from a JSON array.
function json.isArray(v)
  return type(v) == 'table' and isMarked(v)
end

return json
