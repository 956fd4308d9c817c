-- A TCP echo server in the event style: no coroutine per connection, so an
-- idle connection costs only its socket (about 1.2 KB with the handle).
--   luvhost examples/echo-events.lua [port] [host]
local net = require('net')

local port = tonumber(arg[1] or process.env.PORT or 7000)
local host = arg[2] or process.env.HOST or '127.0.0.1'

local server = net.createServer(function(sock)
  sock:on('data', function(chunk) sock:write(chunk) end)
  sock:on('end', function() sock:finish() end)
end)

assert(server:listen(port, host))
print(('echo server on %s:%d'):format(host, server:address().port))
io.stdout:flush()
