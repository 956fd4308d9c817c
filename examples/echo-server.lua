-- A TCP echo server in the coroutine style: one coroutine per connection,
-- parked in read() while the peer is quiet.
--   luvhost examples/echo-server.lua [port] [host]
local net = require('net')

local port = tonumber(arg[1] or process.env.PORT or 7000)
local host = arg[2] or process.env.HOST or '127.0.0.1'

local server = net.createServer(function(sock)
  while true do
    local chunk = sock:read()
    if not chunk then break end
    sock:write(chunk)
  end
  sock:finish()
end)

assert(server:listen(port, host))
print(('echo server on %s:%d'):format(host, server:address().port))
io.stdout:flush()
