-- timers: ordering, cancellation, intervals, immediates, nextTick, sleep.

local helper = require('spec.helper')
local timers = require('timers')
local uv = require('uv')

local run = helper.run

describe('setTimeout', function()
  it('fires in order of delay, then of creation', function()
    local order = {}
    run(function()
      setTimeout(function() order[#order + 1] = 'c60' end, 60)
      setTimeout(function() order[#order + 1] = 'a20' end, 20)
      setTimeout(function() order[#order + 1] = 'b20' end, 20)
      setTimeout(function() order[#order + 1] = 'z0' end, 0)
      timers.sleep(90)
    end)
    assert.same({ 'z0', 'a20', 'b20', 'c60' }, order)
  end)

  it('passes extra arguments, nils included', function()
    local got
    run(function()
      setTimeout(function(...) got = table.pack(...) end, 1, 'a', nil, 3)
      timers.sleep(20)
    end)
    assert.same({ n = 3, 'a', nil, 3 }, got)
  end)

  it('waits at least the delay', function()
    local elapsed
    run(function()
      local start = uv.hrtime()
      local done = false
      setTimeout(function()
        elapsed = (uv.hrtime() - start) / 1e6
        done = true
      end, 25)
      while not done do timers.sleep(5) end
    end)
    assert.is_true(elapsed >= 24, 'fired after ' .. elapsed .. ' ms')
  end)

  it('does not fire once cleared, and clear accepts nil or a fired timer', function()
    local fired = false
    run(function()
      local t = setTimeout(function() fired = true end, 10)
      clearTimeout(t)
      clearTimeout(t)
      clearTimeout(nil)
      local done = setTimeout(function() end, 1)
      timers.sleep(30)
      clearTimeout(done)
    end)
    assert.is_false(fired)
  end)

  it('treats bad delays as 1 ms, as Node does', function()
    local count = 0
    run(function()
      setTimeout(function() count = count + 1 end)
      setTimeout(function() count = count + 1 end, -5)
      setTimeout(function() count = count + 1 end, 0 / 0)
      setTimeout(function() count = count + 1 end, 2 ^ 40)
      setTimeout(function() count = count + 1 end, 'x')
      timers.sleep(30)
    end)
    assert.are.equal(5, count)
  end)

  it('rejects a callback that is not callable', function()
    assert.has_error(function() setTimeout(nil, 1) end,
      'setTimeout: callback must be a function, got nil')
    assert.has_error(function() setInterval('x', 1) end)
    assert.has_error(function() setImmediate(42) end)
  end)

  it('accepts callable tables', function()
    local called = false
    run(function()
      setTimeout(setmetatable({}, { __call = function() called = true end }), 1)
      timers.sleep(20)
    end)
    assert.is_true(called)
  end)

  it('lets a callback wait without holding up other timers', function()
    local order = {}
    run(function()
      setTimeout(function()
        order[#order + 1] = 'a start'
        timers.sleep(40)
        order[#order + 1] = 'a end'
      end, 1)
      setTimeout(function() order[#order + 1] = 'b' end, 15)
      timers.sleep(80)
    end)
    assert.same({ 'a start', 'b', 'a end' }, order)
  end)

  it('refresh() restarts the countdown and revives a fired timeout', function()
    local fired = 0
    run(function()
      local start = uv.hrtime()
      local t = setTimeout(function() fired = fired + 1 end, 40)
      timers.sleep(20)
      t:refresh()
      timers.sleep(25)
      assert.are.equal(0, fired, 'refresh should have pushed it back')
      timers.sleep(40)
      assert.are.equal(1, fired)
      assert.is_true((uv.hrtime() - start) / 1e6 >= 60)
      t:refresh()
      timers.sleep(60)
      assert.are.equal(2, fired)
    end)
  end)

  it('has ref/unref/hasRef returning the timer', function()
    run(function()
      local t = setTimeout(function() end, 5)
      assert.are.equal(t, t:unref())
      assert.is_false(t:hasRef())
      assert.are.equal(t, t:ref())
      assert.is_true(t:hasRef())
      clearTimeout(t)
    end)
  end)

  it('does not keep the process alive once unref()ed', function()
    local r = helper.luvhost_exec([[-e "setTimeout(function() print('no') end, 5000):unref()
      setTimeout(function() print('yes') end, 5)"]])
    assert.are.equal(0, r.code)
    assert.are.equal('yes\n', r.stdout)
  end)
end)

describe('setInterval', function()
  it('repeats until cleared, also from its own callback', function()
    local count = 0
    run(function()
      local t
      t = setInterval(function(step)
        count = count + step
        if count == 3 then clearInterval(t) end
      end, 2, 1)
      timers.sleep(60)
    end)
    assert.are.equal(3, count)
  end)

  it('can be cleared with clearTimeout, as in Node', function()
    local count = 0
    run(function()
      local t = setInterval(function() count = count + 1 end, 5)
      timers.sleep(12)
      clearTimeout(t)
      local seen = count
      timers.sleep(20)
      assert.are.equal(seen, count)
    end)
    assert.is_true(count >= 1)
  end)
end)

describe('setImmediate', function()
  it('runs after the current callback, in order, with arguments', function()
    local order = {}
    run(function()
      setImmediate(function(x) order[#order + 1] = x end, 'one')
      setImmediate(function(x) order[#order + 1] = x end, 'two')
      order[#order + 1] = 'sync'
      timers.sleep(10)
    end)
    assert.same({ 'sync', 'one', 'two' }, order)
  end)

  it('runs immediates queued by an immediate on the next turn', function()
    local order = {}
    run(function()
      local check_turns = 0
      local check = uv.new_check()
      check:start(function() check_turns = check_turns + 1 end)
      setImmediate(function()
        order[#order + 1] = 'first@' .. check_turns
        setImmediate(function() order[#order + 1] = 'second@' .. check_turns end)
      end)
      timers.sleep(10)
      check:close()
    end)
    assert.are.equal(2, #order)
    assert.are_not.equal(order[1]:match('@(%d+)'), order[2]:match('@(%d+)'))
  end)

  it('is cancelled by clearImmediate', function()
    local ran = false
    run(function()
      local i = setImmediate(function() ran = true end)
      clearImmediate(i)
      clearImmediate(i)
      clearImmediate(nil)
      timers.sleep(5)
    end)
    assert.is_false(ran)
  end)

  it('keeps the loop alive unless unref()ed', function()
    local r = helper.luvhost_exec([[-e "setImmediate(function() print('ran') end)"]])
    assert.are.equal('ran\n', r.stdout)
    local r2 = helper.luvhost_exec([[-e "local i = setImmediate(function() print('ran') end)
      assert(i:unref() == i and not i:hasRef())"]])
    assert.are.equal(0, r2.code)
  end)

  it('runs the other immediates when one fails', function()
    local r = helper.luvhost_exec([[-e "
      process:on('uncaughtException', function(e) print('caught', e) end)
      setImmediate(function() error('first', 0) end)
      setImmediate(function() print('second') end)"]])
    assert.are.equal('caught\tfirst\nsecond\n', r.stdout)
    assert.are.equal(0, r.code)
  end)
end)

describe('process.nextTick', function()
  it('runs before immediates and timers, ticks queued by ticks included', function()
    local order = {}
    run(function()
      setTimeout(function() order[#order + 1] = 'timeout' end, 0)
      setImmediate(function() order[#order + 1] = 'immediate' end)
      process.nextTick(function(x)
        order[#order + 1] = x
        process.nextTick(function() order[#order + 1] = 'tick2' end)
      end, 'tick1')
      order[#order + 1] = 'sync'
      timers.sleep(20)
    end)
    assert.same({ 'sync', 'tick1', 'tick2' }, { order[1], order[2], order[3] })
    assert.are.equal(5, #order)
  end)

  it('rejects a callback that is not callable', function()
    assert.has_error(function() process.nextTick(1) end,
      'process.nextTick: callback must be a function, got number')
  end)
end)

describe('timers.sleep', function()
  it('suspends only the calling coroutine', function()
    local order = {}
    run(function()
      setTimeout(function() order[#order + 1] = 'timer' end, 5)
      order[#order + 1] = 'before'
      timers.sleep(20)
      order[#order + 1] = 'after'
    end)
    assert.same({ 'before', 'timer', 'after' }, order)
  end)

  it('works at the top level of a script', function()
    local r = helper.luvhost_exec([[-e "local t = require('timers')
      setTimeout(function() print('timer') end, 5)
      t.sleep(30) print('main')"]])
    assert.are.equal('timer\nmain\n', r.stdout)
  end)

  it('calls back instead of waiting when given a callback', function()
    local called = false
    run(function()
      local t = timers.sleep(5, function() called = true end)
      assert.is_not_nil(t)
      timers.sleep(20)
    end)
    assert.is_true(called)
  end)

  it('says what to do where it cannot wait', function()
    local ok, err
    string.gsub('x', 'x', function() ok, err = pcall(timers.sleep, 10) end)
    assert.is_false(ok)
    assert.matches('timers.sleep: cannot wait here, inside a string.gsub ' ..
      'replacement function', err, 1, true)
    assert.matches('setTimeout', err)
  end)
end)
