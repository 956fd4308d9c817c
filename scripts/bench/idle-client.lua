-- The idle-connection client of scripts/bench/run, run by luvhost:
--   luvhost scripts/bench/idle-client.lua PORT COUNTS GO [HOST]
-- Opens keep-alive HTTP connections to HOST:PORT in steps: COUNTS is an
-- increasing list such as "1000,5000,10000" (at most PARALLEL connections
-- being set up at a time). Each connection sends one GET, reads the whole
-- response and then stays open and silent. When a step's total is reached
-- it prints "READY n=N ok=A failed=F alive=L" (alive: not closed by the
-- server) and waits until the file GO.N exists (the harness has sampled
-- the server) before opening more. After the last step it prints
-- "DONE alive=L" and exits: 0 when every connection stayed alive.
local net = require('net')

local usage = 'usage: idle-client.lua PORT COUNTS GO [HOST]'
local port = assert(tonumber(arg[1]), usage)
local counts = {}
for n in assert(arg[2], usage):gmatch('%d+') do counts[#counts + 1] = tonumber(n) end
local go = assert(arg[3], usage)
local host = arg[4] or '127.0.0.1'
local PARALLEL = 256
local REQUEST = ('GET / HTTP/1.1\r\nHost: %s:%d\r\n\r\n'):format(host, port)

local step = 1 -- the step being filled: counts[step]
local started, ok, failed, closed = 0, 0, 0, 0
local first_error
local sockets = {}

-- Whether buf holds one whole response (Content-Length or chunked).
local function complete(buf)
  local head_end = buf:find('\r\n\r\n', 1, true)
  if not head_end then return false end
  local head = buf:sub(1, head_end + 1):lower()
  local len = head:match('\r\ncontent%-length:%s*(%d+)')
  if len then return #buf >= head_end + 3 + tonumber(len) end
  if head:find('\r\ntransfer%-encoding:[^\r]*chunked') then
    return buf:find('\r\n0\r\n\r\n', head_end + 2, true) ~= nil
  end
  return false -- a body up to the end of the connection: not keep-alive
end

local function exists(path)
  local f = io.open(path, 'r')
  if f then f:close() end
  return f ~= nil
end

local open_next, fill

-- All of this step's connections are settled: report, wait for GO.N.
local function step_done()
  local n = counts[step]
  print(('READY n=%d ok=%d failed=%d alive=%d%s'):format(n, ok, failed, ok - closed,
    first_error and (' first_error=' .. tostring(first_error)) or ''))
  io.stdout:flush()
  local poll
  poll = setInterval(function()
    if not exists(go .. '.' .. n) then return end
    clearInterval(poll)
    step = step + 1
    if counts[step] then
      fill()
    else
      print(('DONE alive=%d'):format(ok - closed))
      io.stdout:flush()
      os.exit(ok - closed == started and failed == 0 and 0 or 1)
    end
  end, 20)
end

local function settled(good, why)
  if good then
    ok = ok + 1
  else
    failed = failed + 1
    first_error = first_error or why
  end
  if started < counts[step] then
    open_next()
  elseif ok + failed == counts[step] then
    step_done()
  end
end

open_next = function()
  started = started + 1
  local buf, done = '', false
  local sock
  sock = net.connect({ host = host, port = port }, function(err)
    if err then
      if not done then
        done = 'failed'
        settled(false, err)
      end
      return
    end
    sock:write(REQUEST)
  end)
  sockets[#sockets + 1] = sock
  sock:on('data', function(chunk)
    if done then return end
    buf = buf .. chunk
    if complete(buf) then
      done, buf = true, nil
      settled(true)
    end
  end)
  sock:on('error', function(err)
    if not done then
      done = 'failed'
      settled(false, err)
    end
  end)
  sock:on('close', function()
    if done == true then
      closed = closed + 1
    elseif not done then
      done = 'failed'
      settled(false, 'closed before a whole response')
    end
  end)
end

-- Starts the current step: up to PARALLEL connections, each settled one
-- opens the next until counts[step] have been started.
fill = function()
  local want = counts[step] - started
  if want <= 0 then return step_done() end
  for _ = 1, math.min(PARALLEL, want) do open_next() end
end

assert(#counts > 0, usage)
fill()
