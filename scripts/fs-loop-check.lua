-- Reads one 1 MiB file from 1,000 coroutines at once and reports how long
-- the loop went without turning (the longest gap between check-phase
-- turns), the wall time and the peak RSS.
--   luvhost scripts/fs-loop-check.lua [coroutines] [size]
local fs = require('fs')
local uv = require('uv')
local coro = require('coro')

local count = tonumber(arg[1] or 1000)
local size = tonumber(arg[2] or 1024 * 1024)
local path = os.tmpname()
assert(fs.writeFileSync(path, string.rep('x', size)))

local last, worst, turns = uv.hrtime(), 0, 0
local check = uv.new_check()
check:start(function()
  local now = uv.hrtime()
  worst = math.max(worst, now - last)
  last = now
  turns = turns + 1
end)
local idle = uv.new_idle() -- keeps the loop turning while reads are out
idle:start(function() end)

local start = uv.hrtime()
last = start
local tasks = {}
for i = 1, count do
  tasks[i] = coro.spawn(function() return #assert(fs.readFile(path)) end)
end
-- Starting the coroutines is this script's own work: time the loop from
-- here.
local spawned = (uv.hrtime() - start) / 1e6
last, worst = uv.hrtime(), 0
local results = assert(coro.all(tasks))
local elapsed = (uv.hrtime() - start) / 1e6
check:close()
idle:close()
os.remove(path)
for i = 1, count do assert(results[i][1] == size) end
print(('%d concurrent readFile of %d bytes: %.0f ms (%.1f ms to start ' ..
  'them), %d loop turns, longest turn %.2f ms, peak RSS %.1f MB'):format(
  count, size, elapsed, spawned, turns, worst / 1e6,
  uv.getrusage().maxrss / 1024))
