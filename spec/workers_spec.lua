-- luvhost --workers N: worker processes sharing one port (SO_REUSEPORT),
-- restarted when they crash, drained together on SIGTERM.

local helper = require('spec.helper')
local child_process = require('child_process')
local net = require('net')
local coro = require('coro')
local timers = require('timers')
local uv = require('uv')

local run = helper.run

-- Each worker answers with "<workerId> <pid>"; /crash ends the worker.
local SERVER = [[
local http = require('http')
local server = http.createServer(function(req, res)
  if req.path == '/crash' then os.exit(7) end
  res:finish(process.workerId .. ' ' .. process.pid)
end)
assert(server:listen(tonumber(arg[1]), '127.0.0.1'))
print('worker ' .. process.workerId .. ' ready')
io.stdout:flush()
]]

local function free_port()
  local s = net.createServer()
  assert(s:listen(0, '127.0.0.1'))
  local port = s:address().port
  s:close()
  return port
end

local function start(n)
  local dir = helper.tmpdir()
  local path = helper.write_file(dir .. '/server.lua', SERVER)
  local port = free_port()
  local child = assert(child_process.spawn(helper.luvhost,
    { '--workers', tostring(n), path, tostring(port) }))
  local seen, buffered = 0, ''
  while seen < n do
    local chunk = assert(child.stdout:read(), 'the workers printed nothing')
    buffered = buffered .. chunk
    seen = select(2, buffered:gsub('ready\n', ''))
  end
  child.stdout:resume() -- later lines go nowhere
  return child, port
end

-- One request on a connection; returns the body ("<id> <pid>").
local function request(sock, path)
  local ok, err = sock:write('GET ' .. (path or '/') .. ' HTTP/1.1\r\nHost: x\r\n\r\n')
  if not ok then return nil, err end
  local data = ''
  while true do
    local head_end = data:find('\r\n\r\n', 1, true)
    if head_end then
      local len = tonumber(data:sub(1, head_end):match('Content%-Length: (%d+)'))
      if #data >= head_end + 3 + len then
        return data:sub(head_end + 4, head_end + 3 + len)
      end
    end
    local chunk, rerr = sock:read()
    if not chunk then return nil, rerr or 'closed' end
    data = data .. chunk
  end
end

local function get(port, path)
  local sock, err = net.connect({ host = '127.0.0.1', port = port })
  if not sock then return nil, err end
  local body, rerr = request(sock, path)
  sock:close()
  return body, rerr
end

-- Workers seen over new connections: { [id] = pid }.
local function workers_seen(port, want)
  local seen, count = {}, 0
  for _ = 1, 400 do
    local body = get(port)
    if body then
      local id, pid = body:match('^(%d+) (%d+)$')
      if not seen[id] then count = count + 1 end
      seen[id] = tonumber(pid)
      if count >= want then break end
    end
  end
  return seen, count
end

describe('luvhost --workers', function()
  it('runs two workers that share one port, and stops them on SIGTERM', function()
    run(function()
      local child, port = start(2)
      local seen, count = workers_seen(port, 2)
      assert.are.equal(2, count)
      assert.is_number(seen['1'])
      assert.is_number(seen['2'])
      assert.are_not.equal(seen['1'], seen['2'])
      assert(child:kill('SIGTERM'))
      assert.are.equal(0, child:wait())
      assert.is_nil(get(port))
    end)
  end)

  it('restarts a worker that crashes', function()
    run(function()
      local child, port = start(2)
      local before = workers_seen(port, 2)
      -- Crash whichever worker takes the request.
      assert.is_nil(get(port, '/crash'))
      local err = ''
      while not err:find('restarting', 1, true) do
        err = err .. assert(child.stderr:read())
      end
      assert.matches('worker %d %(pid %d+%) exited with status 7; restarting in', err)
      local crashed = err:match('worker (%d)')
      timers.sleep(300) -- the first restart waits 0.1 s
      local after, count = workers_seen(port, 2)
      assert.are.equal(2, count)
      assert.are_not.equal(before[crashed], after[crashed])
      assert(child:kill('SIGTERM'))
      assert.are.equal(0, child:wait())
    end)
  end)

  it('loses no connection of the other worker when one is killed under load', function()
    run(function()
      local child, port = start(2)
      local pids = workers_seen(port, 2)
      local stop, victim, killed_at = false, nil, math.huge
      local served, unexpected, expected = 0, {}, 0
      local tasks = {}
      for i = 1, 40 do
        tasks[i] = coro.spawn(function()
          while not stop do
            local sock = net.connect({ host = '127.0.0.1', port = port })
            local opened = uv.now()
            if sock then
              local worker
              while not stop do
                local body, err = request(sock)
                if not body then
                  -- Only the killed worker's connections may fail.
                  if worker ~= nil and worker == victim then
                    expected = expected + 1
                  elseif worker == nil and victim ~= nil and opened < killed_at + 100 then
                    expected = expected + 1 -- queued on the dying listener
                  else
                    unexpected[#unexpected + 1] = tostring(worker) .. ': ' .. tostring(err)
                  end
                  break
                end
                worker = body:match('^(%d+)')
                served = served + 1
              end
              sock:close()
            end
          end
        end)
      end
      timers.sleep(300)
      victim, killed_at = '1', uv.now()
      assert(uv.kill(pids['1'], 'sigkill'))
      timers.sleep(700)
      stop = true
      coro.all(tasks)
      assert.are.same({}, unexpected)
      assert.is_true(served > 100, 'only ' .. served .. ' requests')
      -- The killed worker is back.
      local seen, count = workers_seen(port, 2)
      assert.are.equal(2, count)
      assert.are_not.equal(pids['1'], seen['1'])
      assert(child:kill('SIGTERM'))
      assert.are.equal(0, child:wait())
    end, { timeout = 20000 })
  end)

  it('replaces every worker on SIGHUP while the others keep serving', function()
    run(function()
      local child, port = start(2)
      local before = workers_seen(port, 2)
      local stop, last_ok, max_gap, served = false, uv.now(), 0, 0
      local odd = {}
      local tasks = {}
      for i = 1, 20 do
        tasks[i] = coro.spawn(function()
          while not stop do
            local sock = net.connect({ host = '127.0.0.1', port = port })
            if sock then
              while not stop do
                local body, err = request(sock)
                if not body then
                  -- A draining worker closes idle connections: a request
                  -- sent at that moment sees the close, nothing else.
                  if err ~= 'closed' and not tostring(err):match('ECONNRESET') then
                    odd[#odd + 1] = tostring(err)
                  end
                  break
                end
                local now = uv.now()
                if now - last_ok > max_gap then max_gap = now - last_ok end
                last_ok = now
                served = served + 1
              end
              sock:close()
            else
              timers.sleep(5)
            end
          end
        end)
      end
      timers.sleep(200)
      assert(child:kill('SIGHUP'))
      -- Both are replaced, one after the other (0.5 s apart).
      local after
      for _ = 1, 40 do
        timers.sleep(100)
        after = workers_seen(port, 2)
        if after['1'] ~= before['1'] and after['2'] ~= before['2'] then break end
      end
      timers.sleep(200)
      stop = true
      coro.all(tasks)
      assert.are_not.equal(before['1'], after['1'])
      assert.are_not.equal(before['2'], after['2'])
      assert.are.same({}, odd)
      assert.is_true(served > 100, 'only ' .. served .. ' requests')
      assert.is_true(max_gap < 500, 'no answer for ' .. max_gap .. ' ms')
      assert(child:kill('SIGTERM'))
      assert.are.equal(0, child:wait())
    end, { timeout = 20000 })
  end)

  it('gives each worker process.workerId and nothing to a plain run', function()
    run(function()
      local r = helper.luvhost_exec("-e 'print(process.workerId)'")
      assert.are.equal('nil\n', r.stdout)
      local w = helper.luvhost_exec("--workers 3 -e 'print(process.workerId)'")
      local ids = {}
      for id in w.stdout:gmatch('%d+') do ids[#ids + 1] = tonumber(id) end
      table.sort(ids)
      assert.are.same({ 1, 2, 3 }, ids)
      assert.are.equal(0, w.code)
    end)
  end)
end)
