-- The pitfalls of event-loop code that luvhost catches (docs/pitfalls.md),
-- one script each, run as a child luvhost: the diagnostic names the line
-- of Lua responsible.

local helper = require('spec.helper')
local child_process = require('child_process')
local net = require('net')
local coro = require('coro')
local uv = require('uv')

local run = helper.run

local dir, cleanup = helper.tmpdir()
teardown(cleanup)

-- Writes a script; returns its path.
local function script(name, text)
  return helper.write_file(dir .. '/' .. name, text)
end

-- Runs luvhost with options on a script, to completion.
local function luvhost(options, path, env)
  return helper.luvhost_exec(options .. ' ' .. helper.quote(path), nil, env)
end

local BLOCKED = ': event loop blocked for (%d+) ms'

local function count(s, pattern)
  local n = 0
  for _ in s:gmatch(pattern) do n = n + 1 end
  return n
end

-- The stall reports in stderr: { ms = , text = } each, text being the
-- rest of the first line and the traceback's lines.
local function reports(stderr)
  local list, current = {}, nil
  for line in (stderr .. '\n'):gmatch('(.-)\n') do
    local ms, rest = line:match(BLOCKED .. '(.*)$')
    if ms then
      current = { ms = tonumber(ms), text = rest }
      list[#list + 1] = current
    elseif current and (line == 'stack traceback:' or line:find('^\t')) then
      current.text = current.text .. '\n' .. line
    else
      current = nil
    end
  end
  return list
end

-- The stall reports of a run of `script` with a FIFO as its argument,
-- less the early notes a slow machine may add on a long stall.
local function final_reports(path, fifo)
  local r = helper.luvhost_exec('--warn-blocking=200 ' ..
    helper.quote(path) .. ' ' .. helper.quote(fifo))
  assert.are.equal(0, r.code, r.stderr)
  local list = {}
  for _, report in ipairs(reports(r.stderr)) do
    if not report.text:find('^ so far') then list[#list + 1] = report end
  end
  return list, r.stderr
end

local function has(s, plain)
  return s:find(plain, 1, true) ~= nil
end

local SPIN = [[
local uv = require('uv')
local function spin(ms)
  local stop = uv.hrtime() + ms * 1e6
  while uv.hrtime() < stop do end
end
setTimeout(function()
  spin(400)
end, 10)
]]

describe('the blocking watchdog', function()
  it('reports Lua code that holds the loop, with its traceback', function()
    local r = luvhost('--warn-blocking=200', script('spin.lua', SPIN))
    assert.are.equal(0, r.code)
    local list = reports(r.stderr)
    assert.are.equal(1, #list, r.stderr)
    assert.is_true(list[1].ms >= 400 and list[1].ms < 3000, r.stderr)
    assert.matches('^\nstack traceback:\n', list[1].text)
    assert.is_true(has(list[1].text, 'spin.lua:4:'), r.stderr)
    assert.is_true(has(list[1].text, 'spin.lua:7:'), r.stderr)
  end)

  it('names the blocking call: a *Sync call, os.execute', function()
    local fifo = dir .. '/fifo'
    assert(os.execute('mkfifo ' .. helper.quote(fifo)))
    local path = script('sync.lua', [[
local fs = require('fs')
local fifo = ...
setTimeout(function()
  -- A writer for the FIFO in 0.6 s: the open blocks until then.
  os.execute("(sleep 0.6; echo hi > '" .. fifo .. "') &")
  local fd = assert(fs.openSync(fifo, 'r'))
  fs.closeSync(fd)
end, 10)
setTimeout(function()
  os.execute('sleep 0.4')
end, 20)
]])
    local list, stderr = final_reports(path, fifo)
    assert.are.equal(2, #list, stderr)
    assert.is_true(list[1].ms >= 500, stderr)
    assert.matches('^ in fs%.openSync\nstack traceback:\n', list[1].text)
    assert.is_true(has(list[1].text, 'sync.lua:6:'), stderr)
    assert.matches('^ in os%.execute\nstack traceback:\n', list[2].text)
    assert.is_true(has(list[2].text, 'sync.lua:10:'), stderr)
  end)

  it('names the blocking call that follows slow Lua code in the same stall', function()
    local fifo = dir .. '/fifo-late'
    assert(os.execute('mkfifo ' .. helper.quote(fifo)))
    local path = script('late.lua', [[
local fs = require('fs')
local uv = require('uv')
local fifo = ...
setTimeout(function()
  os.execute("(sleep 0.8; echo hi > '" .. fifo .. "') &")
  local stop = uv.hrtime() + 300e6
  while uv.hrtime() < stop do end
  local fd = assert(fs.openSync(fifo, 'r'))
  fs.closeSync(fd)
end, 10)
]])
    local list, stderr = final_reports(path, fifo)
    assert.are.equal(1, #list, stderr)
    assert.matches('^ in fs%.openSync\nstack traceback:\n', list[1].text)
    assert.is_true(has(list[1].text, 'late.lua:8:'), stderr)
  end)

  it('notes a stall that does not end, while it lasts', function()
    local path = script('endless.lua', [[
local uv = require('uv')
setTimeout(function()
  local stop = uv.hrtime() + 1300e6
  while uv.hrtime() < stop do end
end, 10)
]])
    local r = luvhost('--warn-blocking=100', path)
    assert.are.equal(0, r.code)
    local list = reports(r.stderr)
    assert.are.equal(2, #list, r.stderr)
    assert.matches('^ so far %(still blocked%)\nstack traceback:\n',
      list[1].text)
    assert.is_true(list[1].ms >= 1000 and list[1].ms < 1300, r.stderr)
    assert.is_true(has(list[1].text, 'endless.lua:4:'), r.stderr)
    assert.is_true(list[2].ms >= 1300, r.stderr)
  end)

  it('raises an error in the blocking code with --max-blocking', function()
    local path = script('max.lua', [[
process:on('uncaughtException', function(err)
  print('caught: ' .. tostring(err))
end)
setTimeout(function()
  local n = 0
  while true do n = n + 1 end
end, 10)
setTimeout(function() print('still serving') end, 600)
]])
    local r = luvhost('--max-blocking=300', path)
    assert.are.equal(0, r.code)
    assert.matches('^caught: [^\n]*max%.lua:6: blocked the event loop for ' ..
      'more than 300 ms %(%-%-max%-blocking%)\nstill serving\n$', r.stdout)
    assert.are.equal('', r.stderr) -- the error is the report
  end)

  it('is off with 0, LUVHOST_WARN_BLOCKING=0 or LUVHOST_ENV=production',
    function()
      local path = script('spin.lua', SPIN)
      local r = luvhost('--warn-blocking=0', path)
      assert.are.equal('', r.stderr)
      r = luvhost('', path, 'LUVHOST_WARN_BLOCKING=0')
      assert.are.equal('', r.stderr)
      r = luvhost('', path,
        'env -u LUVHOST_WARN_BLOCKING LUVHOST_ENV=production')
      assert.are.equal('', r.stderr)
      r = luvhost('', path, 'env -u LUVHOST_WARN_BLOCKING')
      assert.are.equal(1, #reports(r.stderr), r.stderr) -- 200 ms by default
      r = luvhost('', path, 'LUVHOST_WARN_BLOCKING=1000')
      assert.are.equal('', r.stderr)
      r = luvhost('--warn-blocking=x', path)
      assert.are.equal(1, r.code)
      assert.matches("'%-%-warn%-blocking=x' needs a value: milliseconds", r.stderr)
    end)

  it('takes waiting for idle, and start-up for start-up', function()
    local path = script('idle.lua', [[
local uv = require('uv')
local stop = uv.hrtime() + 300e6
while uv.hrtime() < stop do end -- the main chunk, before the loop runs
setTimeout(function() print('done') end, 500)
]])
    local r = luvhost('--warn-blocking=100', path)
    assert.are.equal('done\n', r.stdout)
    assert.are.equal('', r.stderr)
  end)

  it('sets its hook safely on coroutines that end and are collected', function()
    -- A stress of the hand-over between the watchdog thread and the loop:
    -- short-lived coroutines, collected at once, inside stalls the
    -- watchdog looks at every quarter of a millisecond. A hook set on a
    -- collected coroutine would crash, or fail under make sanitize.
    local path = script('churn.lua', [[
local uv = require('uv')
local function burn(ms)
  local stop = uv.hrtime() + ms * 1e6
  while uv.hrtime() < stop do end
end
local rounds = 0
local function round()
  for _ = 1, 20 do
    coroutine.wrap(function() burn(2) end)()
    collectgarbage()
  end
  rounds = rounds + 1
  if rounds < 20 then setImmediate(round) else print('done', rounds) end
end
setImmediate(round)
]])
    local r = luvhost('--warn-blocking=1', path)
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal('done\t20\n', r.stdout)
    local list = reports(r.stderr)
    assert.is_true(#list >= 10, r.stderr)
    local named = 0
    for _, report in ipairs(list) do
      if has(report.text, 'churn.lua:') then named = named + 1 end
    end
    assert.is_true(named >= #list / 2, r.stderr)
  end)

  it('takes new limits from process.blockingLimits', function()
    local path = script('limits.lua', [[
local uv = require('uv')
local before = process.blockingLimits({ warn = 1000 })
print(before.warn, before.max)
setTimeout(function()
  local stop = uv.hrtime() + 600e6
  while uv.hrtime() < stop do end
end, 10)
setTimeout(function()
  local now = process.blockingLimits({ warn = 100 })
  print(now.warn, now.max)
end, 650)
setTimeout(function()
  local stop = uv.hrtime() + 600e6
  while uv.hrtime() < stop do end
end, 700)
]])
    local r = luvhost('--warn-blocking=200', path)
    assert.are.equal('200\t0\n1000\t0\n', r.stdout)
    local list = reports(r.stderr)
    assert.are.equal(1, #list, r.stderr)
    assert.is_true(has(list[1].text, 'limits.lua:14:'), r.stderr)
  end)

  it('finds the handler that blocks an HTTP server under load', function()
    local path = script('server.lua', [[
local http = require('http')
local uv = require('uv')
local server = http.createServer(function(req, res)
  if req.url == '/slow' then
    local stop = uv.hrtime() + 300e6
    while uv.hrtime() < stop do end
  end
  res:finish('ok')
end)
assert(server:listen(0, '127.0.0.1'))
print('ready ' .. server:address().port)
io.stdout:flush()
]])
    local stderr, answered = '', 0
    run(function()
      local child = assert(child_process.spawn(helper.luvhost,
        { '--warn-blocking=200', path }))
      local first = child.stdout:read()
      local port = tonumber(first and first:match('ready (%d+)'))
      assert(port, first)
      local errs = coro.spawn(helper.read_all, child.stderr)
      -- Eight keep-alive clients, as fast as the server answers; one of
      -- them asks for /slow once, half-way.
      local stop = false
      local function client(i)
        local sock = assert(net.connect({ host = '127.0.0.1', port = port }))
        local n = 0
        while not stop do
          n = n + 1
          local url = (i == 1 and n == 20) and '/slow' or '/'
          assert(sock:write('GET ' .. url .. ' HTTP/1.1\r\nHost: x\r\n\r\n'))
          local got = ''
          repeat
            got = got .. assert(sock:read())
          until got:find('\r\n\r\nok', 1, true)
          answered = answered + 1
        end
        sock:destroy()
      end
      local tasks = {}
      for i = 1, 8 do tasks[i] = function() return client(i) end end
      local clients = coro.spawn(coro.all, tasks)
      coro.sleep(1000)
      stop = true
      assert.is_true(clients:join())
      child:kill('sigterm')
      local _, out = errs:join()
      stderr = out
      child:wait()
    end, { timeout = 20000 })
    assert.is_true(answered > 200, answered .. ' requests answered')
    local list = reports(stderr)
    assert.are.equal(1, #list, stderr)
    assert.is_true(list[1].ms >= 300, stderr)
    assert.is_true(has(list[1].text, 'server.lua:6: in function <'), stderr)
  end)
end)

describe('lost errors', function()
  it('reports a task that fails unjoined, with where it was spawned',
    function()
      local path = script('lost.lua', [[
local coro = require('coro')
local function start_worker()
  local task = coro.spawn(function()
    coro.sleep(5)
    error('worker failed')
  end)
  return task
end
start_worker()
setTimeout(function() print('never') end, 200)
]])
      local r = luvhost('', path)
      assert.are.equal(1, r.code)
      assert.are.equal('', r.stdout)
      assert.matches('lost%.lua:5: worker failed\nstack traceback:\n.-' ..
        'lost%.lua:5: in function <', r.stderr)
      assert.matches("\ntask spawned at:\n\t[^\n]*lost%.lua:3: in local " ..
        "'start_worker'\n\t[^\n]*lost%.lua:9: in main chunk", r.stderr)
    end)

  it('says which callback never reads its error, with --trace-errors',
    function()
      local path = script('errback.lua', [[
local fs = require('fs')
local uv = require('uv')
fs.readFile('/nonexistent/file', function(err, data)
  print('got', data)
end)
fs.readFile('/nonexistent/file', function(err, data)
  if err then print('handled') end
end)
uv.fs_stat('/nonexistent/file', function(e, stat)
  print('stat', stat)
end)
uv.fs_stat('/nonexistent/file', function(_, stat) end) -- on purpose
]])
      local r = luvhost('--trace-errors', path)
      assert.are.equal(0, r.code)
      assert.are.equal(2, count(r.stderr, 'never reads it'), r.stderr)
      assert.matches('callback that never reads it: ENOENT[^\n]*\n\t[^\n]*' ..
        "errback%.lua:3: the callback's first parameter 'err' is never used",
        r.stderr)
      assert.matches('callback that never reads it: ENOENT[^\n]*\n\t[^\n]*' ..
        "errback%.lua:9: the callback's first parameter 'e' is never used",
        r.stderr)
      r = luvhost('', path)
      assert.are.equal('', r.stderr)
    end)
end)

describe('waiting where a coroutine cannot wait', function()
  it('says where and what to do, with the line', function()
    local path = script('misuse.lua', [[
local fs = require('fs')
local ok, err = pcall(table.sort, { 'b', 'a' }, function(x, y)
  fs.readFile('/etc/hostname')
  return x < y
end)
print(err)
package.preload.config = function()
  local data = fs.readFile('/etc/hostname')
  return { data = data }
end
print(select(2, pcall(require, 'config')))
print(select(2, pcall(string.gsub, 'x', 'x', function()
  coroutine.yield()
end)))
process:on('exit', function()
  print(select(2, pcall(function() require('timers').sleep(10) end)))
end)
]])
    local r = luvhost('', path)
    assert.are.equal(0, r.code)
    local lines = {}
    for l in r.stdout:gmatch('[^\n]+') do lines[#lines + 1] = l end
    assert.are.equal(4, #lines, r.stdout)
    assert.matches('misuse%.lua:3: fs%.readFile: cannot wait here, inside ' ..
      'a table%.sort comparator %(table%.sort is a C function: Lua cannot ' ..
      'suspend a coroutine across it%); pass a callback instead, or run ' ..
      'the waiting code in a task of its own: coro%.spawn%(fn%)$', lines[1])
    assert.matches('misuse%.lua:8: fs%.readFile: cannot wait here, in the ' ..
      'main chunk of a module that require is loading .*; wait in a ' ..
      'function the module returns', lines[2])
    assert.matches('misuse%.lua:13: attempt to yield across a C%-call ' ..
      'boundary: the code runs inside a string%.gsub replacement function',
      lines[3])
    assert.matches("misuse%.lua:16: timers%.sleep: cannot wait here, in an " ..
      "'exit' listener", lines[4])
  end)
end)

describe('leaked handles', function()
  local ALIVE = [[
local net = require('net')
local server = net.createServer(function() end)
assert(server:listen(0, '127.0.0.1'))
local timer = setInterval(function() end, 1000)
setTimeout(function()
  server:close()
  clearInterval(timer)
end, 100)
]]

  it('--why-alive lists what keeps the loop alive and where it was made',
    function()
      local r = luvhost('--why-alive', script('alive.lua', ALIVE))
      assert.are.equal(0, r.code)
      assert.matches('^[^\n]*: why alive %(after the main chunk%): the ' ..
        'event loop waits for\n', r.stderr)
      assert.matches('\n  tcp %(listening on 127%.0%.0%.1:%d+%), created ' ..
        'at [^\n]*alive%.lua:3\n', r.stderr)
      assert.matches('\n  timer %(due in %d+ ms, repeating every 1000 ms%), ' ..
        'created at [^\n]*alive%.lua:4\n', r.stderr)
      assert.matches('\n  timer %(due in %d+ ms%), created at [^\n]*' ..
        'alive%.lua:5\n', r.stderr)
      assert.are.equal(4, count(r.stderr, '\n'), r.stderr)
    end)

  it('SIGUSR2 prints the same at any time, unless the script listens',
    function()
      local path = script('usr2.lua', [[
local http = require('http')
local server = http.createServer(function(req, res) res:finish() end)
assert(server:listen(0, '127.0.0.1'))
setTimeout(function() require('uv').kill(process.pid, 'sigusr2') end, 50)
setTimeout(function() server:close() end, 300)
]])
      local r = luvhost('', path)
      assert.are.equal(0, r.code)
      assert.matches('^[^\n]*: why alive %(SIGUSR2%): the event loop waits ' ..
        'for\n  tcp %(http server listening on 127%.0%.0%.1:%d+%), created ' ..
        'at [^\n]*usr2%.lua:3\n  timer %(due in %d+ ms%), created at ' ..
        '[^\n]*usr2%.lua:5\n$', r.stderr)
      r = luvhost('', script('usr2b.lua', [[
local function mine() print('mine') process:off('SIGUSR2', mine) end
process:on('SIGUSR2', mine)
setTimeout(function() require('uv').kill(process.pid, 'sigusr2') end, 10)
setTimeout(function() end, 200)
]]))
      assert.are.equal('mine\n', r.stdout)
      assert.are.equal('', r.stderr)
    end)

  it('the spec helper names where a leaked handle was made', function()
    local line
    local ok, err = pcall(run, function()
      line = debug.getinfo(1, 'l').currentline + 1
      local t = uv.new_timer()
      uv.update_time()
      t:start(60000, 0, function() end)
    end)
    assert.is_false(ok)
    assert.matches('^handles left open:\n  timer %(due in %d+ ms%), ' ..
      'created at spec/pitfalls_spec%.lua:' .. line .. '$', err)
  end)
end)

describe('process.loopStats', function()
  it('gives turns, time in Lua and idle, and loop delays since the last call',
    function()
      local path = script('stats.lua', [[
local uv = require('uv')
local function spin(ms)
  local stop = uv.hrtime() + ms * 1e6
  while uv.hrtime() < stop do end
end
local n = 0
process.loopStats()
local t
t = setInterval(function()
  n = n + 1
  spin(n == 5 and 100 or 1)
  if n == 20 then
    clearInterval(t)
    local s = process.loopStats()
    print(s.turns >= 19, s.samples >= 19, s.luaTime >= 110,
      s.idleTime > 0, s.elapsed >= s.luaTime + s.idleTime - 1,
      s.maxDelay >= 100 and s.maxDelay < 1000, s.minDelay >= 1,
      s.p50Delay >= 1 and s.p50Delay < 10, s.p99Delay <= s.maxDelay,
      s.meanDelay > s.minDelay, s.stalls)
    local again = process.loopStats()
    print(again.turns, again.samples, again.maxDelay)
  end
end, 5)
]])
      local r = luvhost('--warn-blocking=50', path)
      local list = reports(r.stderr)
      assert.are.equal(1, #list, r.stderr)
      assert.is_true(has(list[1].text, 'stats.lua:4:'), r.stderr)
      assert.are.equal('true\ttrue\ttrue\ttrue\ttrue\ttrue\ttrue\ttrue\t' ..
        'true\ttrue\t1\n0\t0\t0.0\n', r.stdout)
    end)
end)
