-- Graceful shutdown, the default for SIGTERM and SIGINT (host/shutdown.c
-- calls start): servers stop accepting, HTTP requests in flight finish
-- (their responses say Connection: close; idle keep-alive connections close
-- at once), then the process exits 0. A deadline (--shutdown-timeout,
-- default 10 s) or a second signal ends it at once.

local uv = require('uv')

local pairs, tostring = pairs, tostring

local M = {}

-- Servers that listen now: drained ones (HTTP) are waited for, the others
-- only stop accepting.
local servers = setmetatable({}, { __mode = 'k' })

function M.track(server, drain)
  servers[server] = drain and 'drain' or 'stop'
end

function M.untrack(server)
  servers[server] = nil
end

local started = false

local function log(msg)
  io.stderr:write('luvhost: ', msg, '\n')
end

-- start(signal name, timeout ms)
function M.start(signame, timeout)
  if started then return end
  started = true
  local pending = 0
  local function done()
    pending = pending - 1
    if pending == 0 then process.exit(0) end
  end
  local list = {}
  for server, how in pairs(servers) do list[#list + 1] = { server, how } end
  for _, entry in ipairs(list) do
    local server, how = entry[1], entry[2]
    if how == 'drain' then
      pending = pending + 1
      server:close(done)
    else
      server:close()
    end
  end
  if pending == 0 then
    process.exit(0)
    return
  end
  local timer = uv.new_timer()
  require('internal.uv').hide(timer)
  timer:start(timeout, 0, function()
    log(('%s: shutdown timed out after %s ms with requests in flight')
      :format(signame, tostring(timeout)))
    process.exit(1)
  end)
  timer:unref() -- the servers' connections keep the loop alive meanwhile
end

return M
