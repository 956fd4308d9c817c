-- Hello, World over HTTP: the server `make run` starts and `make bench`
-- measures. PORT (default 8080) and HOST (default 127.0.0.1) choose where.
local http = require('http')

local port = tonumber(process.env.PORT) or 8080
local host = process.env.HOST or '127.0.0.1'

local server = http.createServer({
  -- Long enough for the benchmark's idle-connection test (Node: 5 s).
  keepAliveTimeout = tonumber(process.env.KEEPALIVE_TIMEOUT) or 65000,
}, function(req, res)
  res:setHeader('Content-Type', 'text/plain')
  res:finish('Hello, World!\n')
end)

assert(server:listen(port, host))
print(('listening on http://%s:%d/'):format(host, server:address().port))
io.stdout:flush()
