-- One route for every error: process 'uncaughtException' listeners, or the
-- message and traceback on stderr and exit status 1 after a clean
-- teardown. Also the 'exit' event and the teardown order.

local helper = require('spec.helper')

local function luvhost(code)
  return helper.luvhost_exec('-e ' .. helper.quote(code))
end

describe('an uncaught error', function()
  it('in a timer prints message and traceback, stops everything, exits 1', function()
    local r = luvhost([[
      setTimeout(function() print('never') end, 100)
      setTimeout(function() error('boom') end, 1)]])
    assert.are.equal(1, r.code)
    assert.are.equal('', r.stdout)
    assert.matches(': %(command line%):2: boom\nstack traceback:\n', r.stderr)
    assert.matches("in function 'error'", r.stderr)
  end)

  it('in a coroutine resumed after a wait goes the same way', function()
    local r = luvhost([[require('timers').sleep(5) error('after sleep')]])
    assert.are.equal(1, r.code)
    assert.matches('after sleep\nstack traceback:', r.stderr)
  end)

  it('in a nextTick callback goes the same way', function()
    local r = luvhost([[process.nextTick(function() error('in tick') end)]])
    assert.are.equal(1, r.code)
    assert.matches('in tick', r.stderr)
  end)

  it('emits exit with status 1 before the teardown', function()
    local r = luvhost([[
      process:on('exit', function(code) print('exit', code) end)
      setTimeout(function() error('x') end, 1)]])
    assert.are.equal(1, r.code)
    assert.are.equal('exit\t1\n', r.stdout)
  end)

  it('goes to uncaughtException listeners with the error object and a report', function()
    local r = luvhost([[
      process:on('uncaughtException', function(err, report)
        print(type(err), err.code, report:match('stack traceback') ~= nil)
      end)
      setTimeout(function() error({ code = 'E42' }) end, 1)
      setTimeout(function() print('still running') end, 20)]])
    assert.are.equal(0, r.code)
    assert.are.equal('table\tE42\ttrue\nstill running\n', r.stdout)
    assert.are.equal('', r.stderr)
  end)

  it('in the main chunk also goes to listeners registered before it', function()
    local r = luvhost([[
      process:on('uncaughtException', function(err) print('caught', err) end)
      setTimeout(function() print('timer') end, 5)
      error('top', 0)]])
    assert.are.equal(0, r.code)
    assert.are.equal('caught\ttop\ntimer\n', r.stdout)
  end)

  it('raised by an uncaughtException listener is fatal', function()
    local r = luvhost([[
      process:on('uncaughtException', function() error('listener failed') end)
      setTimeout(function() error('first') end, 1)]])
    assert.are.equal(1, r.code)
    assert.matches('listener failed', r.stderr)
  end)

  it('stops listeners from running after the process has been told to stop', function()
    local r = luvhost([[
      setTimeout(function() error('one') end, 1)
      setTimeout(function() error('two') end, 1)]])
    assert.are.equal(1, r.code)
    local _, count = r.stderr:gsub('stack traceback', '')
    assert.are.equal(1, count)
  end)
end)

describe('the exit event', function()
  it('is emitted once with the exit code when the loop runs dry', function()
    local r = luvhost([[
      process:on('exit', function(code) print('exit', code) end)
      setTimeout(function() print('timer') end, 1)]])
    assert.are.equal('timer\nexit\t0\n', r.stdout)
    assert.are.equal(0, r.code)
  end)

  it('lets listeners change the exit code', function()
    local r = luvhost([[process:on('exit', function() process.exitCode = 3 end)]])
    assert.are.equal(3, r.code)
  end)

  it('never runs ticks queued during exit', function()
    local r = luvhost([[process:on('exit', function()
        process.nextTick(function() print('tick') end)
        print('exit')
      end)]])
    assert.are.equal('exit\n', r.stdout)
  end)

  it('reports an error in an exit listener and exits 1', function()
    local r = luvhost([[process:on('exit', function() error('bad exit') end)]])
    assert.are.equal(1, r.code)
    assert.matches('bad exit', r.stderr)
  end)
end)

describe('teardown', function()
  it('closes handles that are left open or unreferenced, and exits 0', function()
    local r = luvhost([[
      local uv = require('uv')
      local idle = uv.new_timer()
      local t = uv.new_timer()
      t:start(100000, 0, function() end)
      t:unref()
      local s = uv.new_signal()
      s:start('sigusr2', function() end)
      s:unref()
      process:on('SIGUSR1', function() end)
      print('done')]])
    assert.are.equal(0, r.code)
    assert.are.equal('done\n', r.stdout)
    assert.are.equal('', r.stderr)
  end)

  it('runs close callbacks of handles closed before the end', function()
    local r = luvhost([[
      local t = require('uv').new_timer()
      t:close(function() print('closed') end)]])
    assert.are.equal('closed\n', r.stdout)
  end)

  it('warns and exits 13 when the main chunk waits for nothing', function()
    local r = luvhost([[coroutine.yield()]])
    assert.are.equal(13, r.code)
    assert.matches('still waiting', r.stderr)
  end)
end)
