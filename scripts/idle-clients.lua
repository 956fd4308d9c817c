-- Opens N TCP connections to host:port, checks each one echoes a byte,
-- then holds them idle for HOLD seconds. Prints "READY n=N" once all are
-- idle and "DONE alive=A" at the end. Used by scripts/idle-check.
--   luvhost scripts/idle-clients.lua PORT N [HOLD] [HOST]
local uv = require('uv')

local port = assert(tonumber(arg[1]), 'port')
local total = assert(tonumber(arg[2]), 'count')
local hold = tonumber(arg[3] or 3)
local host = arg[4] or '127.0.0.1'
local CONCURRENT = 200 -- connections being set up at once

local socks, idle, failed, started = {}, 0, 0, 0

local function ready_check()
  if idle + failed == total then
    print(('READY n=%d ok=%d failed=%d'):format(total, idle, failed))
    io.stdout:flush()
    local t = uv.new_timer()
    t:start(hold * 1000, 0, function()
      local alive = 0
      for _, s in ipairs(socks) do
        if not s.closed then alive = alive + 1 end
      end
      print(('DONE alive=%d'):format(alive))
      io.stdout:flush()
      os.exit(alive == total and 0 or 1)
    end)
  end
end

local open_one

local function settled(entry, ok)
  if ok then idle = idle + 1 else failed = failed + 1 end
  if started < total then open_one() end
  ready_check()
end

open_one = function()
  started = started + 1
  local entry = { handle = uv.new_tcp() }
  socks[#socks + 1] = entry
  entry.handle:connect(host, port, function(err)
    if err then return settled(entry, false) end
    entry.handle:write('x')
    entry.handle:read_start(function(rerr, chunk)
      if rerr or not chunk then
        entry.closed = true
        if not entry.counted then entry.counted = true settled(entry, false) end
        return
      end
      if not entry.counted then
        entry.counted = true
        settled(entry, true)
      end
    end)
  end)
end

for _ = 1, math.min(CONCURRENT, total) do open_one() end
