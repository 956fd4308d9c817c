-- What keeps the process alive: the handles the bindings made, each with
-- its type, state and the line of Lua that made it. `luvhost --why-alive`
-- and SIGUSR2 print the report; the spec helper lists leaked handles with
-- describe().

local internal_uv = require('internal.uv')
local binding = require('internal.binding')

local concat = table.concat
local format = string.format

local M = {}

-- handles() -> list, others: every handle but the runtime's machinery
-- (see internal.uv.handles), and how many of the host's own keep the loop
-- alive.
M.handles = internal_uv.handles

-- Whether a handle (from handles()) keeps the event loop alive.
function M.keeps_alive(h)
  return h.active and h.ref and not h.closing
end

-- "timer (due in 850 ms), created at app.lua:3"; with states, the words
-- for whatever is not plain active and referenced.
function M.describe(h, states)
  local parts = { h.type }
  if h.detail ~= '' then parts[#parts + 1] = ' (' .. h.detail .. ')' end
  if states then
    local s = {}
    if h.closing then
      s[#s + 1] = 'closing'
    elseif not h.active then
      s[#s + 1] = 'inactive'
    end
    if not h.ref then s[#s + 1] = "unref'd" end
    if #s > 0 then parts[#parts + 1] = ' [' .. concat(s, ', ') .. ']' end
  end
  parts[#parts + 1] = ', created at ' .. (h.site or '?')
  return concat(parts)
end

local function plural(n, one, many)
  return format('%d %s', n, n == 1 and one or many)
end

-- The report: what keeps the loop alive now, one line each.
function M.report(reason)
  local list, others = M.handles()
  local lines = {}
  for i = 1, #list do
    local h = list[i]
    if M.keeps_alive(h) then lines[#lines + 1] = '  ' .. M.describe(h) end
  end
  local reqs = internal_uv.active_requests()
  if reqs > 0 then
    lines[#lines + 1] = '  ' .. plural(reqs, 'request', 'requests') ..
      ' in flight (file, DNS, connect or write)'
  end
  if others > 0 then
    lines[#lines + 1] = '  ' .. plural(others, 'handle', 'handles') ..
      " of luvhost's own (the prompt's input)"
  end
  local head = binding.progname() .. ': why alive' ..
    (reason and ' (' .. reason .. ')' or '') .. ': '
  if #lines == 0 then
    return head .. 'nothing keeps the event loop alive\n'
  end
  return head .. 'the event loop waits for\n' .. concat(lines, '\n') .. '\n'
end

function M.print_report(reason)
  io.stdout:flush()
  io.stderr:write(M.report(reason))
  io.stderr:flush()
end

return M
