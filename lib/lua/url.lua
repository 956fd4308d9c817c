-- url: parsing and formatting URLs and query strings (Node's legacy
-- url.parse and the querystring module, in Lua spelling).

local error, pairs, tonumber, type = error, pairs, tonumber, type
local char, format = string.char, string.format
local concat, sort = table.concat, table.sort

local M = {}

-- decode(s [, plus]) -> s with %XX sequences decoded (and '+' as a space
-- when plus is true, as in query strings). Bad sequences stay as they are.
function M.decode(s, plus)
  if type(s) ~= 'string' then
    error('url.decode: expected a string, got ' .. type(s), 2)
  end
  if plus then s = s:gsub('+', ' ') end
  return (s:gsub('%%(%x%x)', function(hex) return char(tonumber(hex, 16)) end))
end

-- encode(s) -> s with every byte but A-Z a-z 0-9 - _ . ! ~ * ' ( ) as %XX
-- (JavaScript's encodeURIComponent).
function M.encode(s)
  if type(s) ~= 'string' then s = tostring(s) end
  return (s:gsub("[^%w%-_%.!~%*'%(%)]", function(c)
    return format('%%%02X', c:byte())
  end))
end

-- parseQuery('a=1&b=2&a=3') -> { a = { '1', '3' }, b = '2' }. Keys and
-- values are decoded; a key without '=' maps to ''.
function M.parseQuery(qs)
  local out = {}
  if type(qs) ~= 'string' or qs == '' then return out end
  if qs:sub(1, 1) == '?' then qs = qs:sub(2) end
  for pair in qs:gmatch('[^&]+') do
    local k, v = pair:match('^([^=]*)=(.*)$')
    if not k then k, v = pair, '' end
    k, v = M.decode(k, true), M.decode(v, true)
    local old = out[k]
    if old == nil then
      out[k] = v
    elseif type(old) == 'table' then
      old[#old + 1] = v
    else
      out[k] = { old, v }
    end
  end
  return out
end

-- formatQuery({ a = 1, b = { 'x', 'y' } }) -> 'a=1&b=x&b=y' (keys sorted).
function M.formatQuery(t)
  local keys, parts = {}, {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  sort(keys)
  for _, k in ipairs(keys) do
    local v = t[k]
    if type(v) == 'table' then
      for _, item in ipairs(v) do
        parts[#parts + 1] = M.encode(k) .. '=' .. M.encode(tostring(item))
      end
    else
      parts[#parts + 1] = M.encode(k) .. '=' .. M.encode(tostring(v))
    end
  end
  return concat(parts, '&')
end

-- parse(s [, parseQuery]) -> { href, protocol, auth, host, hostname, port,
-- pathname, search, query, hash, path }. query is the raw string, or a
-- table with parseQuery. Missing parts are nil; port is a number.
function M.parse(s, parse_query)
  if type(s) ~= 'string' then
    error('url.parse: expected a string, got ' .. type(s), 2)
  end
  local u = { href = s }
  local rest = s
  local hash = rest:match('#.*$')
  if hash then
    u.hash = hash
    rest = rest:sub(1, #rest - #hash)
  end
  local protocol, after = rest:match('^(%a[%w+%-.]*:)(.*)$')
  if protocol then
    u.protocol = protocol:lower()
    rest = after
  end
  if rest:sub(1, 2) == '//' then
    local authority
    authority, rest = rest:match('^//([^/?]*)(.*)$')
    local auth, hostport = authority:match('^(.*)@(.*)$')
    if auth then
      u.auth = M.decode(auth)
    else
      hostport = authority
    end
    u.host = hostport:lower()
    local hostname, port = hostport:match('^%[(.-)%]:?(%d*)$')
    if not hostname then hostname, port = hostport:match('^([^:]*):?(%d*)$') end
    u.hostname = (hostname or hostport):lower()
    u.port = port ~= '' and tonumber(port) or nil
  end
  local search = rest:match('%?.*$')
  if search then
    u.search = search
    rest = rest:sub(1, #rest - #search)
    u.query = parse_query and M.parseQuery(search:sub(2)) or search:sub(2)
  elseif parse_query then
    u.query = {}
  end
  u.pathname = rest ~= '' and rest or (u.host and '/' or nil)
  u.path = (u.pathname or '') .. (search or '')
  return u
end

-- format({ protocol, auth, hostname, port, pathname, search | query,
-- hash }) -> string
function M.format(u)
  local parts = {}
  if u.protocol then
    parts[#parts + 1] = u.protocol:sub(-1) == ':' and u.protocol or u.protocol .. ':'
  end
  if u.host or u.hostname then
    parts[#parts + 1] = '//'
    if u.auth then parts[#parts + 1] = M.encode(u.auth):gsub('%%3A', ':') .. '@' end
    if u.hostname then
      local h = u.hostname
      if h:find(':', 1, true) then h = '[' .. h .. ']' end
      parts[#parts + 1] = h
      if u.port then parts[#parts + 1] = ':' .. u.port end
    else
      parts[#parts + 1] = u.host
    end
  end
  parts[#parts + 1] = u.pathname or ''
  if u.search then
    parts[#parts + 1] = u.search
  elseif type(u.query) == 'table' and next(u.query) then
    parts[#parts + 1] = '?' .. M.formatQuery(u.query)
  elseif type(u.query) == 'string' and u.query ~= '' then
    parts[#parts + 1] = '?' .. u.query
  end
  if u.hash then parts[#parts + 1] = u.hash end
  return concat(parts)
end

return M
