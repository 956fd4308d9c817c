-- Graceful shutdown: SIGTERM and SIGINT stop the servers, let requests in
-- flight finish and exit 0; a second signal or the deadline ends it at
-- once; a script's own listeners replace the default; correct as PID 1.

local helper = require('spec.helper')
local child_process = require('child_process')
local net = require('net')
local coro = require('coro')
local timers = require('timers')
local uv = require('uv')

local run = helper.run

-- The server scripts: they print "ready <port>" once listening.
local SLOW_SERVER = [[
local http = require('http')
local timers = require('timers')
local busy = 0
local server = http.createServer(function(req, res)
  busy = busy + 1
  if busy % 50 == 0 then print('inflight ' .. busy) io.stdout:flush() end
  timers.sleep(tonumber(req.query.ms) or 300)
  res:finish('done ' .. req.url)
end)
assert(server:listen(0, '127.0.0.1'))
print('ready ' .. server:address().port)
io.stdout:flush()
]]

-- Starts luvhost on a script (text) with options; returns the child, a
-- line reader for its stdout and the port it printed.
local function start(script, options)
  local dir = helper.tmpdir()
  local path = helper.write_file(dir .. '/server.lua', script)
  local args = {}
  for _, o in ipairs(options or {}) do args[#args + 1] = o end
  args[#args + 1] = path
  local child = assert(child_process.spawn(helper.luvhost, args))
  local buffered = ''
  local function line()
    while not buffered:find('\n', 1, true) do
      local chunk = child.stdout:read()
      if not chunk then return nil end
      buffered = buffered .. chunk
    end
    local l, rest = buffered:match('^([^\n]*)\n(.*)$')
    buffered = rest
    return l
  end
  local first = assert(line(), 'the server printed nothing')
  local port = tonumber(first:match('^ready (%d+)$'))
  assert(port, 'unexpected first line: ' .. first)
  return child, line, port
end

local function stderr_of(child)
  return helper.read_all(child.stderr)
end

-- One request on a connection: the whole response (Content-Length).
local function request(sock, path)
  local ok, err = sock:write('GET ' .. path .. ' HTTP/1.1\r\nHost: x\r\n\r\n')
  if not ok then return nil, err end
  local data = ''
  while true do
    local head_end = data:find('\r\n\r\n', 1, true)
    if head_end then
      local len = tonumber(data:sub(1, head_end):match('[Cc]ontent%-[Ll]ength: (%d+)'))
      if len and #data >= head_end + 3 + len then
        return data:sub(1, head_end + 3 + len)
      end
    end
    local chunk, rerr = sock:read()
    if not chunk then return nil, rerr or 'closed before the response' end
    data = data .. chunk
  end
end

describe('graceful shutdown', function()
  it('lets 200 requests in flight finish on SIGTERM, then exits 0', function()
    run(function()
      local child, line, port = start(SLOW_SERVER)
      local answers, failures = {}, {}
      local tasks = {}
      for i = 1, 200 do
        tasks[i] = coro.spawn(function()
          local sock = assert(net.connect({ host = '127.0.0.1', port = port }))
          local res, err = request(sock, '/r' .. i .. '?ms=400')
          if res then answers[#answers + 1] = res else failures[#failures + 1] = err end
          -- The connection closes after the response (Connection: close).
          local after = sock:read()
          if after ~= nil then failures[#failures + 1] = 'kept open' end
          sock:close()
        end)
      end
      repeat local l = line() until l == nil or l == 'inflight 200'
      assert(child:kill('SIGTERM'))
      -- Stopped accepting: new connections are refused.
      timers.sleep(50)
      assert.is_nil(net.connect({ host = '127.0.0.1', port = port }))
      coro.all(tasks)
      local code = child:wait()
      assert.are.same({}, failures)
      assert.are.equal(200, #answers)
      for _, res in ipairs(answers) do
        assert.matches('^HTTP/1.1 200 OK\r\n', res)
        assert.matches('\r\nConnection: close\r\n', res)
        assert.matches('done /r%d+%?ms=400$', res)
      end
      assert.are.equal(0, code)
    end, { timeout = 20000 })
  end)

  it('closes idle keep-alive connections at once and exits 0 on SIGINT', function()
    run(function()
      local child, _, port = start(SLOW_SERVER)
      local sock = assert(net.connect({ host = '127.0.0.1', port = port }))
      assert.matches('done /x', assert(request(sock, '/x?ms=1')))
      local t0 = uv.now()
      assert(child:kill('SIGINT'))
      assert.is_nil(sock:read()) -- closed by the server
      sock:close()
      assert.are.equal(0, child:wait())
      assert.is_true(uv.now() - t0 < 2000)
    end)
  end)

  it('ends at once on a second signal', function()
    run(function()
      local child, _, port = start(SLOW_SERVER)
      local sock = assert(net.connect({ host = '127.0.0.1', port = port }))
      assert(sock:write('GET /slow?ms=10000 HTTP/1.1\r\nHost: x\r\n\r\n'))
      timers.sleep(100)
      local t0 = uv.now()
      assert(child:kill('SIGTERM'))
      timers.sleep(100)
      assert(child:kill('SIGTERM'))
      assert.are.equal(128 + 15, child:wait())
      assert.is_true(uv.now() - t0 < 2000)
      sock:close()
    end)
  end)

  it('ends at the deadline (--shutdown-timeout) with status 1', function()
    run(function()
      local child, _, port = start(SLOW_SERVER, { '--shutdown-timeout=0.3' })
      local sock = assert(net.connect({ host = '127.0.0.1', port = port }))
      assert(sock:write('GET /slow?ms=10000 HTTP/1.1\r\nHost: x\r\n\r\n'))
      timers.sleep(100)
      local t0 = uv.now()
      assert(child:kill('SIGTERM'))
      local err = stderr_of(child)
      assert.are.equal(1, child:wait())
      local took = uv.now() - t0
      assert.is_true(took >= 250 and took < 3000, 'took ' .. took .. ' ms')
      assert.matches('shutdown timed out after 300 ms', err)
      sock:close()
    end)
  end)

  it("gives the signal to the script's listeners instead", function()
    run(function()
      local child, line = start([[
        process:on('SIGTERM', function(name)
          print('custom ' .. name)
          io.stdout:flush()
          process.exit(3)
        end)
      ]] .. SLOW_SERVER)
      assert(child:kill('SIGTERM'))
      assert.are.equal('custom SIGTERM', line())
      assert.are.equal(3, child:wait())
    end)
  end)

  it('ends a script that has no server with status 0', function()
    run(function()
      local child, _ = start([[
        setTimeout(function() end, 60000)
        process:on('exit', function(code) print('exit event ' .. code) end)
        print('ready 0')
        io.stdout:flush()
      ]])
      assert(child:kill('SIGTERM'))
      assert.are.equal('exit event 0\n', child.stdout:read())
      assert.are.equal(0, child:wait())
    end)
  end)

  it('as PID 1: reaps orphans and shuts down on SIGTERM', function()
    run(function()
      local dir = helper.tmpdir()
      local path = helper.write_file(dir .. '/pid1.lua', [[
        local child_process = require('child_process')
        local timers = require('timers')
        -- The shell leaves a sleep behind; it becomes our child (PID 1's).
        local sh = assert(child_process.spawn('sh', { '-c', 'sleep 0.1 & exit 0' }))
        sh:wait()
        timers.sleep(500)
        local zombies = 0
        for _, name in ipairs(require('fs').readdirSync('/proc')) do
          local stat = tonumber(name) and io.open('/proc/' .. name .. '/stat')
          if stat then
            local text = stat:read('a') or ''
            stat:close()
            local state, ppid = text:match('%) (%a) (%d+)')
            if state == 'Z' and ppid == '1' then zombies = zombies + 1 end
          end
        end
        local http = require('http')
        local server = http.createServer(function(_, res) res:finish('ok') end)
        assert(server:listen(0, '127.0.0.1'))
        print('pid ' .. process.pid .. ' zombies ' .. zombies)
        io.stdout:flush()
      ]])
      local child = assert(child_process.spawn('unshare',
        { '--pid', '--fork', '--mount-proc', helper.luvhost, path }))
      local out = child.stdout:read()
      assert.are.equal('pid 1 zombies 0\n', out)
      -- The luvhost inside is the only child of unshare.
      local r = helper.exec('pgrep -P ' .. child.pid)
      local pid = assert(tonumber(r.stdout:match('%d+')), 'no process inside')
      assert(uv.kill(pid, 'sigterm'))
      assert.are.equal(0, child:wait())
    end)
  end)
end)
