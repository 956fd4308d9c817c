-- Node-shaped error objects for runtime failures: { code, errno, syscall,
-- message, [address, port, path, dest] }, printed by tostring as message.

local setmetatable, tostring, type = setmetatable, tostring, type
local format = string.format

local M = {}

local Error = {}
Error.__index = Error
Error.__name = 'Error'
Error.__tostring = function(e) return e.message end

M.Error = Error

local uv_errno -- loaded on first use

local function errno_of(code)
  if uv_errno == nil then uv_errno = require('uv').errno end
  return uv_errno[code]
end

-- A system error from a libuv error name (as callbacks get it) or a luv
-- fail message ("ECONNREFUSED: connection refused"). Message in Node's
-- shape: "<syscall> <CODE> <address>:<port>" for sockets.
function M.uv(err, syscall, info)
  local code = type(err) == 'string' and err:match('^([%u%d_]+)') or tostring(err)
  local e = setmetatable({
    code = code,
    errno = errno_of(code),
    syscall = syscall,
  }, Error)
  local where = ''
  if info then
    for k, v in pairs(info) do e[k] = v end
    if info.address and info.port then
      where = format(' %s:%s', info.address, info.port)
    elseif info.address then
      where = ' ' .. info.address
    elseif info.path then
      where = ' ' .. info.path
    elseif info.hostname then
      where = ' ' .. info.hostname
    end
  end
  e.message = format('%s %s%s', syscall or 'uv', code, where)
  return e
end

-- An error with a code and a message of its own (ERR_* codes, as in Node).
function M.new(code, message, fields)
  local e = setmetatable({ code = code, message = message }, Error)
  if fields then
    for k, v in pairs(fields) do e[k] = v end
  end
  return e
end

function M.is(value)
  return getmetatable(value) == Error
end

return M
