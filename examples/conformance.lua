-- The HTTP contract that independent tests exercise with real clients.
-- PORT (default 8080) and HOST (default 127.0.0.1) choose where.
--
--   GET  /          200 "Hello, World!\n"; HEAD / the same without a body
--   POST /echo      the request body back, byte for byte (Content-Length or
--                   chunked in; streamed out)
--   GET  /stream?n=N&delay=MS   "chunk 0\n" ... "chunk N-1\n", each written
--                   on its own, MS ms apart (chunked on HTTP/1.1)
--   GET  /headers   "<name in lower case>: <value>\n" per request header line
--   other paths 404; a known path with another method 405
local http = require('http')
local timers = require('timers')

local port = tonumber(process.env.PORT) or 8080
local host = process.env.HOST or '127.0.0.1'

local function hello(req, res)
  res:setHeader('Content-Type', 'text/plain')
  res:finish('Hello, World!\n')
end

local function echo(req, res)
  local length = req.headers['content-length']
  if length then res:setHeader('Content-Length', length) end
  res:setHeader('Content-Type', req.headers['content-type'] or
    'application/octet-stream')
  while true do
    local chunk, err = req:read()
    if not chunk then
      if err then return end -- the client left
      break
    end
    if not res:write(chunk) then return end
  end
  res:finish()
end

local function stream(req, res)
  local n = tonumber(req.query.n) or 5
  local delay = tonumber(req.query.delay) or 0
  res:setHeader('Content-Type', 'text/plain')
  for i = 0, n - 1 do
    if i > 0 and delay > 0 then timers.sleep(delay) end
    if not res:write('chunk ' .. i .. '\n') then return end
  end
  res:finish()
end

local function headers(req, res)
  local raw = req.rawHeaders
  local lines = {}
  for i = 1, #raw, 2 do
    lines[#lines + 1] = raw[i]:lower() .. ': ' .. raw[i + 1] .. '\n'
  end
  res:setHeader('Content-Type', 'text/plain')
  res:finish(table.concat(lines))
end

local routes = {
  ['/'] = { GET = hello, HEAD = hello },
  ['/echo'] = { POST = echo },
  ['/stream'] = { GET = stream },
  ['/headers'] = { GET = headers },
}

local server = http.createServer(function(req, res)
  local route = routes[req.path]
  if not route then
    res.statusCode = 404
    res:setHeader('Content-Type', 'text/plain')
    return res:finish('Not Found\n')
  end
  local handler = route[req.method]
  if not handler then
    local allowed = {}
    for method in pairs(route) do allowed[#allowed + 1] = method end
    table.sort(allowed)
    res.statusCode = 405
    res:setHeader('Allow', table.concat(allowed, ', '))
    res:setHeader('Content-Type', 'text/plain')
    return res:finish('Method Not Allowed\n')
  end
  handler(req, res)
end)

assert(server:listen(port, host))
print(('conformance server on http://%s:%d/'):format(host, server:address().port))
io.stdout:flush()
