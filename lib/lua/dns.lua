-- dns: Node's name lookups, coroutine-first. Without a callback a lookup
-- suspends the calling coroutine and returns its results, or nil and an
-- error object; with a trailing callback it returns at once and calls
-- cb(err, ...) later. Lookups go through getaddrinfo/getnameinfo on
-- libuv's thread pool (so /etc/hosts and the system resolver apply); IP
-- literals and 'localhost' are answered without a lookup.

local uv = require('uv')
local errors = require('internal.errors')
local wait = require('internal.wait')

local error, ipairs, tonumber, tostring, type =
  error, ipairs, tonumber, tostring, type

local M = {}

-- Errors -----------------------------------------------------------------------

-- Node reports "no such name" as ENOTFOUND, whatever getaddrinfo said.
local NOTFOUND = { EAI_NONAME = 'ENOTFOUND', EAI_NODATA = 'ENOTFOUND' }

-- A Node-shaped error from a libuv error name such as 'EAI_NONAME'.
local function dns_error(name, syscall, hostname)
  local e = errors.uv(NOTFOUND[name] or name, syscall, { hostname = hostname })
  e.errno = uv.errno[name]
  return e
end

M.NOTFOUND = 'ENOTFOUND'

-- Helpers ----------------------------------------------------------------------

local is_callable, check_callback = wait.is_callable, wait.check_callback
local run = wait.run

-- 4 or 6 for an IPv4 or IPv6 literal, else 0.
local function ip_family(s)
  local a, b, c, d = s:match('^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$')
  if a then
    if tonumber(a) > 255 or tonumber(b) > 255 or tonumber(c) > 255 or
        tonumber(d) > 255 then
      return 0
    end
    return 4
  end
  if s:find(':', 1, true) and
      uv.getaddrinfo(s, nil, { family = 'inet6', numerichost = true }) then
    return 6
  end
  return 0
end

-- isIP(s) -> 4, 6 or 0, as net.isIP.
function M.isIP(s)
  if type(s) ~= 'string' then return 0 end
  return ip_family(s)
end

-- 'localhost' and names under it are the loopback addresses (RFC 6761),
-- answered without the resolver.
local function is_localhost(name)
  name = name:lower()
  if name:sub(-1) == '.' then name = name:sub(1, -2) end
  return name == 'localhost' or name:sub(-10) == '.localhost'
end

local LOOPBACK = {
  { address = '127.0.0.1', family = 4 },
  { address = '::1', family = 6 },
}

local FAMILY_HINT = { [4] = 'inet', [6] = 'inet6' }
local FAMILY_NUMBER = { inet = 4, inet6 = 6 }

-- Resolves name for family (0: any) and calls done(list) with one
-- { address, family } per address in the resolver's order, or done(nil,
-- err_name).
local function addresses(name, family, done)
  if is_localhost(name) then
    local list = {}
    for _, entry in ipairs(LOOPBACK) do
      if family == 0 or family == entry.family then
        list[#list + 1] = { address = entry.address, family = entry.family }
      end
    end
    return done(list)
  end
  local req, _, err_name = uv.getaddrinfo(name, nil, {
    family = FAMILY_HINT[family],
    socktype = 'stream', -- one entry per address, not one per socket type
  }, function(err, res)
    if err then return done(nil, err) end
    local list, seen = {}, {}
    for _, ai in ipairs(res) do
      if not seen[ai.addr] then
        seen[ai.addr] = true
        list[#list + 1] = { address = ai.addr,
          family = FAMILY_NUMBER[ai.family] }
      end
    end
    if #list == 0 then return done(nil, 'EAI_NODATA') end
    done(list)
  end)
  if not req then done(nil, err_name) end
end

-- lookup -----------------------------------------------------------------------

local function check_family(family)
  if family == nil or family == 0 then return 0 end
  if family == 4 or family == 'IPv4' then return 4 end
  if family == 6 or family == 'IPv6' then return 6 end
  error('dns.lookup: family must be 0, 4 or 6, got ' .. tostring(family), 3)
end

-- lookup(hostname [, opts] [, cb]) -> address, family | addresses | nil, err
-- opts: a family (0, 4, 6) or { family =, all = }.
function M.lookup(hostname, opts, cb)
  if cb == nil and is_callable(opts) then opts, cb = nil, opts end
  if type(hostname) ~= 'string' then
    error('dns.lookup: hostname must be a string, got ' .. type(hostname), 2)
  end
  check_callback(cb, 'dns.lookup')
  local family, all = 0, false
  if type(opts) == 'table' then
    family = check_family(opts.family)
    all = opts.all == true
  elseif opts ~= nil then
    family = check_family(opts)
  end
  return run('dns.lookup', cb, function(done)
    local function finish(list, err_name)
      if not list then
        return done(dns_error(err_name, 'getaddrinfo', hostname))
      end
      if all then return done(nil, list) end
      return done(nil, list[1].address, list[1].family)
    end
    local literal = ip_family(hostname)
    if literal ~= 0 then
      return finish({ { address = hostname, family = literal } })
    end
    addresses(hostname, family, finish)
  end)
end

-- resolve4 / resolve6 ----------------------------------------------------------

local function resolver(family, syscall, who)
  return function(hostname, opts, cb)
    if cb == nil and is_callable(opts) then cb = opts end
    if type(hostname) ~= 'string' then
      error(who .. ': hostname must be a string, got ' .. type(hostname), 2)
    end
    check_callback(cb, who)
    return run(who, cb, function(done)
      local literal = ip_family(hostname)
      if literal == family then return done(nil, { hostname }) end
      addresses(hostname, family, function(list, err_name)
        if not list then
          return done(dns_error(err_name, syscall, hostname))
        end
        local out = {}
        for i, entry in ipairs(list) do out[i] = entry.address end
        done(nil, out)
      end)
    end)
  end
end

-- resolve4(hostname [, opts] [, cb]) -> { '1.2.3.4', ... } | nil, err
M.resolve4 = resolver(4, 'queryA', 'dns.resolve4')
-- resolve6(hostname [, opts] [, cb]) -> { '::1', ... } | nil, err
M.resolve6 = resolver(6, 'queryAaaa', 'dns.resolve6')

-- lookupService ----------------------------------------------------------------

-- lookupService(address, port [, cb]) -> hostname, service | nil, err
function M.lookupService(address, port, cb)
  if type(address) ~= 'string' or ip_family(address) == 0 then
    error('dns.lookupService: address must be an IP address, got ' ..
      tostring(address), 2)
  end
  local p = math.tointeger(tonumber(port))
  if p == nil or p < 0 or p > 65535 then
    error('dns.lookupService: port must be an integer from 0 to 65535, got '
      .. tostring(port), 2)
  end
  check_callback(cb, 'dns.lookupService')
  return run('dns.lookupService', cb, function(done)
    local req, _, err_name = uv.getnameinfo({ ip = address, port = p },
      function(err, host, service)
        if err then
          return done(dns_error(err, 'getnameinfo', address))
        end
        done(nil, host, service)
      end)
    if not req then done(dns_error(err_name, 'getnameinfo', address)) end
  end)
end

return M
