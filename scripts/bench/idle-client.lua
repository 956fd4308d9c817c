-- The idle-connection client of scripts/bench/run, run by luvhost:
--   luvhost scripts/bench/idle-client.lua PORT N [HOLD_MS] [HOST]
-- Opens N keep-alive HTTP connections to HOST:PORT (at most PARALLEL being
-- set up at a time); each sends one GET, reads the whole response and then
-- stays open and silent. Prints "READY ok=A failed=F" once all N are
-- settled, holds them HOLD_MS more (default 3000), prints "DONE alive=L"
-- (those the server has not closed) and exits: 0 when all N stayed alive.
local net = require('net')

local port = assert(tonumber(arg[1]), 'usage: idle-client.lua PORT N')
local total = assert(tonumber(arg[2]), 'usage: idle-client.lua PORT N')
local hold_ms = tonumber(arg[3]) or 3000
local host = arg[4] or '127.0.0.1'
local PARALLEL = 256
local REQUEST = ('GET / HTTP/1.1\r\nHost: %s:%d\r\n\r\n'):format(host, port)

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

local open_next

local function settled(good, why)
  if good then
    ok = ok + 1
  else
    failed = failed + 1
    first_error = first_error or why
  end
  if started < total then open_next() end
  if ok + failed == total then
    print(('READY ok=%d failed=%d%s'):format(ok, failed,
      first_error and (' first_error=' .. tostring(first_error)) or ''))
    io.stdout:flush()
    setTimeout(function()
      print(('DONE alive=%d'):format(ok - closed))
      io.stdout:flush()
      os.exit(ok - closed == total and 0 or 1)
    end, hold_ms)
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

for _ = 1, math.min(PARALLEL, total) do open_next() end
