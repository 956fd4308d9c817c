-- path: Node's `path` module, POSIX flavour.
--
-- Results match Node's path.posix byte for byte, quirks included (see
-- docs/path.md), so code ported from Node keeps working. Paths are byte
-- strings: only '/' (47) and '.' (46) are special.

local type, select, error, pcall, require = type, select, error, pcall, require
local ipairs = ipairs
local byte, sub, gmatch = string.byte, string.sub, string.gmatch
local concat = table.concat
local os = os -- os.getenv is looked up per call, so it can be stubbed

local SLASH = 47 -- '/'
local DOT = 46 -- '.'

local M = {}

M.sep = '/'
M.delimiter = ':'

-- Misuse raises (DESIGN.md error model). Level 3 blames the caller of the
-- public function, which is always the direct caller of this helper.
local function checkString(fname, i, v)
  if type(v) ~= 'string' then
    error('path.' .. fname .. ': argument #' .. i .. ' must be a string, got '
      .. type(v), 3)
  end
end

-- Collapse '.', '..' and repeated slashes. Leading '..' segments survive only
-- for relative paths (allowAboveRoot); '/..' is '/'.
local function normalizeSegments(p, allowAboveRoot)
  local out, n = {}, 0
  for seg in gmatch(p, '[^/]+') do
    if seg == '..' then
      if n > 0 and out[n] ~= '..' then
        out[n] = nil
        n = n - 1
      elseif allowAboveRoot then
        n = n + 1
        out[n] = '..'
      end
    elseif seg ~= '.' then
      n = n + 1
      out[n] = seg
    end
  end
  return concat(out, '/', 1, n)
end

local function normalize(p)
  if p == '' then return '.' end
  local abs = byte(p, 1) == SLASH
  local trailing = byte(p, -1) == SLASH
  local s = normalizeSegments(p, not abs)
  if s == '' then
    if abs then return '/' end
    return trailing and './' or '.'
  end
  if trailing then s = s .. '/' end
  if abs then return '/' .. s end
  return s
end

-- The current directory, asked for only when a relative path must be
-- resolved. `uv` is required lazily so this module loads under plain lua5.4.
local function cwd()
  local ok, uv = pcall(require, 'uv')
  if ok and type(uv) == 'table' and type(uv.cwd) == 'function' then
    local okc, dir = pcall(uv.cwd)
    if okc and type(dir) == 'string' then return dir end
  end
  return os.getenv('PWD')
end

-- Resolve already checked strings; nil when the cwd is needed but unknown.
local function resolveList(args, n)
  local resolved, abs = '', false
  for i = n, 1, -1 do
    local a = args[i]
    if a ~= '' then
      resolved = a .. '/' .. resolved
      if byte(a, 1) == SLASH then
        abs = true
        break
      end
    end
  end
  if not abs then
    local dir = cwd()
    if not dir then return nil end
    resolved = dir .. '/' .. resolved
    abs = byte(dir, 1) == SLASH
  end
  local s = normalizeSegments(resolved, not abs)
  if abs then return '/' .. s end
  if s == '' then return '.' end
  return s
end

-- Bounds of the last path component: p[i..j], trailing slashes excluded.
-- j == 0 when p holds only slashes (or is empty).
local function lastComponent(p)
  local j = #p
  while j > 0 and byte(p, j) == SLASH do j = j - 1 end
  local i = j
  while i > 0 and byte(p, i) ~= SLASH do i = i - 1 end
  return i + 1, j
end

-- Index of the dot starting the extension of the component p[i..j], or nil.
-- A leading dot ('.bashrc') is not an extension, nor is '..'.
local function extDot(p, i, j)
  for k = j, i + 1, -1 do
    if byte(p, k) == DOT then
      if k == j and k == i + 1 and byte(p, i) == DOT then return nil end
      return k
    end
  end
  return nil
end

function M.normalize(p)
  checkString('normalize', 1, p)
  return normalize(p)
end

function M.join(...)
  local n = select('#', ...)
  local args = { ... }
  local parts, k = {}, 0
  for i = 1, n do
    local a = args[i]
    checkString('join', i, a)
    if a ~= '' then
      k = k + 1
      parts[k] = a
    end
  end
  if k == 0 then return '.' end
  return normalize(concat(parts, '/', 1, k))
end

function M.resolve(...)
  local n = select('#', ...)
  local args = { ... }
  for i = 1, n do checkString('resolve', i, args[i]) end
  local r = resolveList(args, n)
  if not r then
    error('path.resolve: cannot determine the current directory', 2)
  end
  return r
end

function M.isAbsolute(p)
  checkString('isAbsolute', 1, p)
  return byte(p, 1) == SLASH
end

function M.relative(from, to)
  checkString('relative', 1, from)
  checkString('relative', 2, to)
  if from == to then return '' end
  local rf, rt = resolveList({ from }, 1), resolveList({ to }, 1)
  if not rf or not rt then
    error('path.relative: cannot determine the current directory', 2)
  end
  if rf == rt then return '' end
  -- Both are normalized absolute paths now: compare them segment by segment.
  local fs, ts = {}, {}
  for seg in gmatch(rf, '[^/]+') do fs[#fs + 1] = seg end
  for seg in gmatch(rt, '[^/]+') do ts[#ts + 1] = seg end
  local common = 0
  while common < #fs and common < #ts and fs[common + 1] == ts[common + 1] do
    common = common + 1
  end
  local out = {}
  for _ = common + 1, #fs do out[#out + 1] = '..' end
  for k = common + 1, #ts do out[#out + 1] = ts[k] end
  return concat(out, '/')
end

function M.dirname(p)
  checkString('dirname', 1, p)
  if p == '' then return '.' end
  local abs = byte(p, 1) == SLASH
  -- The first byte is never taken as the separator before the last component.
  local i = #p
  while i > 1 and byte(p, i) == SLASH do i = i - 1 end
  while i > 1 and byte(p, i) ~= SLASH do i = i - 1 end
  if i == 1 then return abs and '/' or '.' end
  -- Node drops only the one slash in front of the last component, so
  -- 'a//b' gives 'a/' and '//a' gives '//'.
  if abs and i == 2 then return '//' end
  return sub(p, 1, i - 1)
end

function M.basename(p, ext)
  checkString('basename', 1, p)
  if ext ~= nil then checkString('basename', 2, ext) end
  local i, j = lastComponent(p)
  local base = sub(p, i, j)
  if ext == nil or ext == '' or #ext > #p then return base end
  -- Node's suffix quirks: a suffix equal to the whole path gives '', and a
  -- component that is only the tail of a longer suffix comes back with its
  -- trailing slashes ('/' with suffix 'x' gives '/').
  if ext == p then return '' end
  if #base < #ext and sub(ext, #ext - #base + 1) == base then
    return sub(p, i)
  end
  if #base > #ext and sub(base, -#ext) == ext then
    return sub(base, 1, #base - #ext)
  end
  return base
end

function M.extname(p)
  checkString('extname', 1, p)
  local i, j = lastComponent(p)
  local dot = extDot(p, i, j)
  if not dot then return '' end
  return sub(p, dot, j)
end

function M.parse(p)
  checkString('parse', 1, p)
  local r = { root = '', dir = '', base = '', ext = '', name = '' }
  if p == '' then return r end
  local abs = byte(p, 1) == SLASH
  if abs then r.root = '/' end
  -- Like dirname, the root slash is never the separator before the base.
  local lo = abs and 2 or 1
  local j = #p
  while j >= lo and byte(p, j) == SLASH do j = j - 1 end
  if j < lo then
    r.dir = r.root
    return r
  end
  local s = j
  while s >= lo and byte(p, s) ~= SLASH do s = s - 1 end
  local i = s + 1
  local quirk = false
  if s >= lo then
    r.dir = sub(p, 1, s - 1)
  else
    r.dir = r.root
    i = lo
    -- Node quirk: '/..' parses as name '.' and ext '.' (extname says '').
    quirk = abs
  end
  r.base = sub(p, i, j)
  local dot = extDot(p, i, j)
  if quirk and r.base == '..' then dot = j end
  if dot then
    r.name = sub(p, i, dot - 1)
    r.ext = sub(p, dot, j)
  else
    r.name = r.base
  end
  return r
end

function M.format(t)
  if type(t) ~= 'table' then
    error('path.format: argument #1 must be a table, got ' .. type(t), 2)
  end
  local f = {}
  for _, k in ipairs({ 'root', 'dir', 'base', 'name', 'ext' }) do
    local v = t[k]
    if v ~= nil and type(v) ~= 'string' then
      error('path.format: field \'' .. k .. '\' must be a string, got '
        .. type(v), 2)
    end
    -- Node tests these with JS truthiness: '' counts as missing.
    if v ~= '' then f[k] = v end
  end
  local dir = f.dir or f.root
  local base = f.base
  if not base then
    local ext = f.ext or ''
    if ext ~= '' and byte(ext, 1) ~= DOT then ext = '.' .. ext end
    base = (f.name or '') .. ext
  end
  if not dir then return base end
  if dir == f.root then return dir .. base end
  return dir .. '/' .. base
end

-- On POSIX there are no namespaced paths: the argument comes back unchanged.
function M.toNamespacedPath(p)
  return p
end

M.posix = M

return M
