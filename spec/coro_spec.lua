-- coro: tasks, join, cancel, all, race, timeout, sleep, mutex, semaphore,
-- and failures of tasks nobody joined.

local helper = require('spec.helper')
local coro = require('coro')
local timers = require('timers')
local uv = require('uv')

local run = helper.run

local function luvhost(code)
  return helper.luvhost_exec('-e ' .. helper.quote(code))
end

-- Calls fn where the running coroutine cannot yield (inside a C function).
local function unyieldable(fn)
  local results
  string.gsub('x', 'x', function() results = table.pack(pcall(fn)) end)
  return table.unpack(results, 1, results.n)
end

describe('coro.spawn', function()
  it('runs each task at once, until its first wait, in spawn order', function()
    local order = {}
    run(function()
      local a = coro.spawn(function()
        order[#order + 1] = 'a start'
        coro.sleep(10)
        order[#order + 1] = 'a end'
      end)
      order[#order + 1] = 'spawned a'
      local b = coro.spawn(function()
        order[#order + 1] = 'b start'
        coro.sleep(1)
        order[#order + 1] = 'b end'
      end)
      order[#order + 1] = 'spawned b'
      assert.is_true(a:join())
      assert.is_true(b:join())
    end)
    assert.same({ 'a start', 'spawned a', 'b start', 'spawned b', 'b end',
      'a end' }, order)
  end)

  it('passes arguments and reports the status as the task goes', function()
    local seen = {}
    run(function()
      local t
      t = coro.spawn(function(...)
        seen.args = table.pack(...)
        seen.current = coro.current()
        coro.sleep(5)
        seen.later = t:status()
      end, 'a', nil, 3)
      seen.outside = t:status()
      t:join()
      seen.after = t:status()
      seen.main_current = coro.current()
      seen.task = t
    end)
    assert.same({ n = 3, 'a', nil, 3 }, seen.args)
    assert.are.equal(seen.task, seen.current)
    assert.are.equal('suspended', seen.outside)
    assert.are.equal('running', seen.later)
    assert.are.equal('done', seen.after)
    assert.is_nil(seen.main_current)
  end)

  it('rejects a fn that is not callable', function()
    assert.has_error(function() coro.spawn(42) end,
      'coro.spawn: fn must be a function, got number')
  end)
end)

describe('task:join', function()
  it('returns true and the results, nils included', function()
    local got
    run(function()
      local t = coro.spawn(function(x)
        coro.sleep(1)
        return x, nil, 'c'
      end, 'a')
      got = table.pack(t:join())
    end)
    assert.same({ n = 4, true, 'a', nil, 'c' }, got)
  end)

  it('wakes several joiners with the same results', function()
    local got = {}
    run(function()
      local t = coro.spawn(function()
        coro.sleep(10)
        return 'v'
      end)
      local joiners = {}
      for i = 1, 3 do
        joiners[i] = coro.spawn(function()
          local r = table.pack(i, t:join())
          got[#got + 1] = r
        end)
      end
      for i = 1, 3 do joiners[i]:join() end
    end)
    assert.same({
      { n = 3, 1, true, 'v' },
      { n = 3, 2, true, 'v' },
      { n = 3, 3, true, 'v' },
    }, got)
  end)

  it('returns at once for a finished task, even where it cannot wait', function()
    local got
    run(function()
      local t = coro.spawn(function() return 1, 2 end)
      assert.are.equal('done', t:status())
      got = table.pack(unyieldable(function() return t:join() end))
    end)
    assert.same({ n = 4, true, true, 1, 2 }, got)
  end)

  it('returns the error with its message, cause and traceback', function()
    local ok, err
    local cause = setmetatable({ code = 'E1' }, {
      __tostring = function() return 'custom failure' end,
    })
    run(function()
      local function deep_failure()
        coro.sleep(1)
        error('went wrong')
      end
      local t = coro.spawn(deep_failure)
      ok, err = t:join()
      assert.are.equal('failed', t:status())
      assert.are.equal(t, err.task)
      local ok2, err2 = coro.spawn(function() error(cause) end):join()
      assert.is_nil(ok2)
      assert.are.equal(cause, err2.cause)
      assert.are.equal('custom failure', err2.message)
    end)
    assert.is_nil(ok)
    assert.is_true(coro.istaskerror(err))
    assert.matches('coro_spec%.lua:%d+: went wrong$', err.message)
    assert.are.equal(err.message, err.cause)
    assert.matches("^stack traceback:\n\t%[C%]: in function 'error'", err.traceback)
    assert.matches("coro_spec%.lua:%d+: in function <", err.traceback)
    assert.not_matches('xpcall', err.traceback) -- coro's own frames are cut
    assert.matches('coro_spec%.lua:%d+: in function <', err.spawned)
    local text = tostring(err)
    assert.are.equal(1, select(2, text:gsub('went wrong', '')))
    assert.matches('went wrong\nstack traceback:\n.*\ntask spawned at:\n\t' ..
      '[^\n]*coro_spec%.lua:%d+', text)
  end)

  it('names where the task was spawned, not where it failed', function()
    local err, spawn_line
    run(function()
      spawn_line = debug.getinfo(1, 'l').currentline + 1
      local t = coro.spawn(function() coro.sleep(1) error('x') end)
      err = select(2, t:join())
    end)
    assert.matches('^\n\t[^\n]*coro_spec%.lua:' .. spawn_line .. ': ', err.spawned)
  end)

  it('gives up after the timeout; the task keeps running', function()
    local first, second, late
    run(function()
      local t = coro.spawn(function()
        coro.sleep(30)
        return 'finished'
      end)
      first = table.pack(t:join(5))
      second = table.pack(t:join(0))
      late = table.pack(t:join())
    end)
    assert.same({ n = 2, nil, 'timeout' }, first)
    assert.same({ n = 2, nil, 'timeout' }, second)
    assert.same({ n = 2, true, 'finished' }, late)
  end)

  it('says what to do where it cannot wait', function()
    local ok, err
    run(function()
      local t = coro.spawn(coro.sleep, 5)
      ok, err = unyieldable(function() return t:join() end)
      t:join()
    end)
    assert.is_false(ok)
    assert.matches('task:join: cannot wait here', err)
    assert.matches('coro%.spawn', err)
  end)

  it('rejects misuse', function()
    run(function()
      local t = coro.spawn(function() end)
      assert.has_error(function() t:join(-1) end,
        'task:join: timeout must be a number >= 0, got -1')
      assert.has_error(function() t:join('soon') end,
        'task:join: timeout must be a number >= 0, got string')
      assert.has_error(function() t.join() end,
        'task:join: expected a task (call it with a colon)')
      local self_join
      local s = coro.spawn(function()
        coro.sleep(1)
        self_join = { pcall(coro.current().join, coro.current()) }
      end)
      s:join()
      assert.is_false(self_join[1])
      assert.matches('a task cannot join itself', self_join[2])
    end)
  end)
end)

describe('task:cancel', function()
  it('raises in a task waiting in coro, so its cleanup runs', function()
    local log = {}
    local got
    run(function()
      local t = coro.spawn(function()
        local guard <close> = setmetatable({}, {
          __close = function(_, e)
            log[#log + 1] = 'closed'
            log.iscancel = coro.iscancel(e)
            log.text = tostring(e)
          end,
        })
        coro.sleep(10000)
        log[#log + 1] = 'not reached'
      end)
      assert.are.equal('suspended', t:status())
      assert.is_true(t:cancel('shutting down'))
      got = table.pack(t:join())
      assert.are.equal('cancelled', t:status())
      assert.is_false(t:cancel())
    end)
    assert.same({ 'closed', iscancel = true, text = 'cancelled: shutting down' },
      log)
    assert.same({ n = 3, nil, 'cancelled', 'shutting down' }, got)
  end)

  it('wakes every joiner with the cancellation', function()
    local got = {}
    run(function()
      local t = coro.spawn(coro.sleep, 10000)
      local a = coro.spawn(function() got.a = table.pack(t:join()) end)
      local b = coro.spawn(function() got.b = table.pack(t:join(5000)) end)
      t:cancel()
      a:join()
      b:join()
    end)
    assert.same({ n = 3, nil, 'cancelled' }, got.a)
    assert.same({ n = 3, nil, 'cancelled' }, got.b)
  end)

  it('leaves other waiting calls alone and stops the task at its next coro wait', function()
    local log = {}
    run(function()
      local start = uv.hrtime()
      local t = coro.spawn(function()
        timers.sleep(20)
        log.slept = (uv.hrtime() - start) / 1e6
        local ok, err = pcall(coro.sleep, 10000)
        log.second = { ok, coro.iscancel(err) }
        coro.sleep(1) -- delivered once: later waits work for the cleanup
        log.cleanup = true
      end)
      t:cancel()
      assert.are.equal('suspended', t:status())
      assert.is_true(t:join())
    end)
    assert.is_true(log.slept >= 19, 'woke after ' .. log.slept .. ' ms')
    assert.same({ false, true }, log.second)
    assert.is_true(log.cleanup)
  end)

  it('ends as done when the task catches the cancellation and returns', function()
    local got
    run(function()
      local t = coro.spawn(function()
        local ok = pcall(coro.sleep, 10000)
        return ok and 'slept' or 'caught'
      end)
      t:cancel()
      got = table.pack(t:join())
    end)
    assert.same({ n = 2, true, 'caught' }, got)
  end)

  it('takes a task waiting for a lock out of the queue', function()
    local order = {}
    run(function()
      local m = coro.mutex()
      m:lock()
      local a = coro.spawn(function() m:with(function() order[#order + 1] = 'a' end) end)
      local b = coro.spawn(function() m:with(function() order[#order + 1] = 'b' end) end)
      a:cancel()
      m:unlock()
      assert.is_true(b:join())
      assert.are.equal('cancelled', a:status())
      assert.is_false(m:locked())
    end)
    assert.same({ 'b' }, order)
  end)
end)

describe('coro.all', function()
  it('returns each result packed, in list order, for tasks and functions', function()
    local res
    run(function()
      local t = coro.spawn(function()
        coro.sleep(5)
        return 'task'
      end)
      res = coro.all({
        function() coro.sleep(10) return 'slow' end,
        t,
        function() return 'now', nil end,
      })
    end)
    assert.same({ { n = 1, 'slow' }, { n = 1, 'task' }, { n = 2, 'now', nil } },
      res)
  end)

  it('returns {} for an empty list', function()
    run(function() assert.same({}, coro.all({})) end)
  end)

  it('returns the first failure and cancels the rest', function()
    local got, cleaned, tasks = nil, {}, {}
    run(function()
      local function slow(name)
        return function()
          local guard <close> = setmetatable({}, {
            __close = function() cleaned[#cleaned + 1] = name end,
          })
          coro.sleep(10000)
        end
      end
      tasks[1] = coro.spawn(slow('one'))
      tasks[2] = coro.spawn(function() coro.sleep(5) error('second fails') end)
      tasks[3] = coro.spawn(slow('three'))
      got = table.pack(coro.all(tasks))
      tasks[1]:join()
      tasks[3]:join()
    end)
    assert.is_nil(got[1])
    assert.matches('second fails', got[2].message)
    assert.are.equal(2, got[3])
    table.sort(cleaned)
    assert.same({ 'one', 'three' }, cleaned)
    assert.are.equal('cancelled', tasks[1]:status())
    assert.are.equal('cancelled', tasks[3]:status())
  end)

  it('checks every entry before spawning any', function()
    local ran = false
    assert.has_error(function()
      coro.all({ function() ran = true end, 'nope' })
    end, 'coro.all: entry 2 is a string, not a task or a function')
    assert.is_false(ran)
    assert.has_error(function() coro.all(nil) end,
      'coro.all: expected an array of tasks or functions, got nil')
  end)

  it('cancels its tasks when the caller is cancelled', function()
    local got, cleaned = nil, 0
    run(function()
      local function slow()
        local guard <close> = setmetatable({}, {
          __close = function() cleaned = cleaned + 1 end,
        })
        coro.sleep(10000)
      end
      got = table.pack(coro.timeout(10, coro.all, { slow, slow }))
    end)
    assert.same({ n = 2, nil, 'timeout' }, got)
    assert.are.equal(2, cleaned)
  end)
end)

describe('coro.race', function()
  it('returns the index and results of the first task to finish', function()
    local got, slow
    run(function()
      slow = coro.spawn(coro.sleep, 10000)
      got = table.pack(coro.race({
        slow,
        function() coro.sleep(5) return 'fast', 2 end,
      }))
    end)
    assert.same({ n = 3, 2, 'fast', 2 }, got)
    assert.are.equal('cancelled', slow:status())
  end)

  it('lets a failure win when it comes first', function()
    local got
    run(function()
      got = table.pack(coro.race({
        function() coro.sleep(10000) end,
        function() coro.sleep(1) error('lost the race') end,
      }))
    end)
    assert.is_nil(got[1])
    assert.matches('lost the race', got[2].message)
    assert.are.equal(2, got[3])
  end)

  it('rejects an empty list', function()
    assert.has_error(function() coro.race({}) end, 'coro.race: the list is empty')
  end)
end)

describe('coro.timeout', function()
  it("returns fn's results when it finishes in time", function()
    local got
    run(function()
      got = table.pack(coro.timeout(1000, function(a, b)
        coro.sleep(1)
        return a + b, nil
      end, 1, 2))
    end)
    assert.same({ n = 2, 3, nil }, got)
  end)

  it('returns nil, "timeout" and cancels fn when it is late', function()
    local got, log = nil, {}
    run(function()
      got = table.pack(coro.timeout(5, function()
        local ok, err = pcall(coro.sleep, 10000)
        log.caught = { ok, tostring(err) }
        error(err, 0)
      end))
    end)
    assert.same({ n = 2, nil, 'timeout' }, got)
    assert.same({ false, 'cancelled: timeout' }, log.caught)
  end)

  it('raises the task error when fn raises', function()
    local ok, err
    run(function()
      ok, err = pcall(coro.timeout, 1000, function()
        coro.sleep(1)
        error('inside timeout')
      end)
    end)
    assert.is_false(ok)
    assert.is_true(coro.istaskerror(err))
    assert.matches('inside timeout', err.message)
  end)

  it('rejects bad arguments', function()
    assert.has_error(function() coro.timeout(nil, print) end,
      'coro.timeout: ms must be a number >= 0, got nil')
    assert.has_error(function() coro.timeout(5, nil) end,
      'coro.timeout: fn must be a function, got nil')
  end)
end)

describe('coro.sleep', function()
  it('waits at least ms milliseconds', function()
    local elapsed
    run(function()
      local start = uv.hrtime()
      coro.sleep(20)
      elapsed = (uv.hrtime() - start) / 1e6
    end)
    assert.is_true(elapsed >= 19, 'woke after ' .. elapsed .. ' ms')
  end)

  it('says what to do where it cannot wait, and rejects bad delays', function()
    local ok, err = unyieldable(function() coro.sleep(1) end)
    assert.is_false(ok)
    assert.matches('coro.sleep: cannot wait here', err)
    assert.has_error(function() coro.sleep(0 / 0) end,
      'coro.sleep: ms must be a number >= 0, got ' .. tostring(0 / 0))
  end)
end)

describe('coro.mutex', function()
  it('lets one task in at a time, in the order they asked', function()
    local entered, inside, most = {}, 0, 0
    run(function()
      local m = coro.mutex()
      m:lock() -- everyone queues behind the body
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = coro.spawn(function()
          m:with(function()
            entered[#entered + 1] = i
            inside = inside + 1
            if inside > most then most = inside end
            coro.sleep(2) -- the others stay out while this one waits
            inside = inside - 1
          end)
        end)
      end
      assert.same({}, entered)
      m:unlock()
      coro.all(tasks)
    end)
    assert.are.equal(1, most)
    assert.same({ 1, 2, 3, 4, 5 }, entered)
  end)

  it('hands the lock to waiters in FIFO order, with no barging', function()
    local order, barged = {}, nil
    run(function()
      local m = coro.mutex()
      local tasks = {}
      tasks[1] = coro.spawn(function()
        m:lock()
        coro.sleep(1) -- the others queue meanwhile
        m:unlock()
        -- The next waiter has not run yet, but the lock is already its own.
        barged = m:trylock()
      end)
      for i = 1, 3 do
        tasks[i + 1] = coro.spawn(function()
          m:lock()
          order[#order + 1] = i
          coro.sleep(1)
          m:unlock()
        end)
      end
      coro.all(tasks)
      assert.is_false(m:locked())
    end)
    assert.is_false(barged)
    assert.same({ 1, 2, 3 }, order)
  end)

  it('passes the lock down a long queue without deep nesting', function()
    local count = 0
    run(function()
      local m = coro.mutex()
      m:lock()
      local tasks = {}
      for i = 1, 500 do
        tasks[i] = coro.spawn(function()
          m:with(function() count = count + 1 end)
        end)
      end
      m:unlock()
      coro.all(tasks)
    end)
    assert.are.equal(500, count)
  end)

  it('with() unlocks when fn raises and passes the error on', function()
    local ok, err, next_ran
    run(function()
      local m = coro.mutex()
      local waiter
      ok, err = pcall(m.with, m, function()
        waiter = coro.spawn(function() m:with(function() next_ran = true end) end)
        error('in critical section')
      end)
      waiter:join()
      assert.is_false(m:locked())
    end)
    assert.is_false(ok)
    assert.matches('coro_spec%.lua:%d+: in critical section$', err)
    assert.is_true(next_ran)
  end)

  it('times out a lock() that waits too long', function()
    run(function()
      local m = coro.mutex()
      m:lock()
      local got = table.pack(coro.spawn(function() return m:lock(5) end):join())
      assert.same({ n = 3, true, nil, 'timeout' }, got)
      got = table.pack(coro.spawn(function() return m:lock(0) end):join())
      assert.same({ n = 3, true, nil, 'timeout' }, got)
      m:unlock()
      assert.is_true(m:lock(0))
      m:unlock()
    end)
  end)

  it('rejects misuse', function()
    run(function()
      local m = coro.mutex()
      assert.has_error(function() m:unlock() end,
        'mutex:unlock: the mutex is not locked')
      m:lock()
      assert.has_error(function() m:lock() end,
        'mutex:lock: this coroutine holds the mutex already (it is not recursive)')
      assert.has_error(function() m:with(1) end,
        'mutex:with: fn must be a function, got number')
      m:unlock()
    end)
  end)
end)

describe('coro.semaphore', function()
  it('limits how many tasks hold it at once', function()
    local holders, most, done = 0, 0, 0
    run(function()
      local s = coro.semaphore(3)
      local tasks = {}
      for i = 1, 10 do
        tasks[i] = coro.spawn(function()
          s:with(function()
            holders = holders + 1
            if holders > most then most = holders end
            coro.sleep(1 + i % 3)
            holders = holders - 1
            done = done + 1
          end)
        end)
      end
      coro.all(tasks)
      assert.are.equal(3, s:available())
    end)
    assert.are.equal(3, most)
    assert.are.equal(10, done)
  end)

  it('serves waiters in FIFO order: a big request is not overtaken', function()
    local order = {}
    run(function()
      local s = coro.semaphore(2)
      assert.is_true(s:tryacquire(2))
      local big = coro.spawn(function()
        s:acquire(2)
        order[#order + 1] = 'big'
        s:release(2)
      end)
      local small = coro.spawn(function()
        s:acquire()
        order[#order + 1] = 'small'
        s:release()
      end)
      s:release(1)
      assert.is_false(s:tryacquire(1)) -- one free, but 'big' is first in line
      assert.same({}, order)
      s:release(1)
      coro.all({ big, small })
      assert.are.equal(2, s:available())
    end)
    assert.same({ 'big', 'small' }, order)
  end)

  it('lets the next waiter through when the first gives up', function()
    local got
    run(function()
      local s = coro.semaphore(2)
      s:acquire()
      local big = coro.spawn(function() return s:acquire(2, 5) end)
      local small = coro.spawn(function() return s:acquire(1) end)
      assert.are.equal('suspended', small:status()) -- behind big, one is free
      assert.same({ true, nil, 'timeout' }, { big:join() })
      got = table.pack(small:join())
      assert.are.equal(0, s:available())
      s:release(2)
    end)
    assert.same({ n = 2, true, true }, got)
  end)

  it('with() releases when fn raises', function()
    run(function()
      local s = coro.semaphore(1)
      local ok, err = pcall(s.with, s, function() error('oops', 0) end)
      assert.is_false(ok)
      assert.are.equal('oops', err)
      assert.are.equal(1, s:available())
    end)
  end)

  it('rejects misuse', function()
    assert.has_error(function() coro.semaphore(-1) end,
      'coro.semaphore: n must be an integer >= 0, got -1')
    assert.has_error(function() coro.semaphore(1.5) end,
      'coro.semaphore: n must be an integer >= 0, got 1.5')
    local s = coro.semaphore(1)
    assert.has_error(function() s:acquire(0) end,
      'semaphore:acquire: count must be an integer >= 1, got 0')
    assert.has_error(function() s:release('x') end,
      'semaphore:release: count must be an integer >= 1, got string')
  end)
end)

describe('a task that fails and is never joined', function()
  it('ends the process with its error and where it was spawned', function()
    local r = luvhost([[
      local coro = require('coro')
      local function start_worker()
        local t = coro.spawn(function()
          coro.sleep(1)
          error('worker broke')
        end)
        return t
      end
      start_worker()
      setTimeout(function() print('never') end, 200)]])
    assert.are.equal(1, r.code)
    assert.are.equal('', r.stdout)
    assert.matches('%(command line%):5: worker broke\nstack traceback:', r.stderr)
    assert.matches("task spawned at:\n\t%(command line%):3: in local 'start_worker'",
      r.stderr)
  end)

  it('goes to uncaughtException listeners, and a later join still gets it', function()
    local r = luvhost([[
      local coro = require('coro')
      process:on('uncaughtException', function(err, report)
        print('listener', coro.istaskerror(err), err.message,
          report:find('task spawned at:', 1, true) ~= nil)
      end)
      local t = coro.spawn(function() coro.sleep(100) error('unwatched', 0) end)
      print('gave up', t:join(1)) -- a join that gave up does not count
      coro.sleep(250)
      local ok, err = t:join()
      print('join', ok, err.message)]])
    assert.are.equal(0, r.code)
    assert.are.equal('gave up\tnil\ttimeout\n' ..
      'listener\ttrue\tunwatched\ttrue\njoin\tnil\tunwatched\n', r.stdout)
    assert.are.equal('', r.stderr)
  end)

  it('is not reported when joined in the turn it failed', function()
    local r = luvhost([[
      local coro = require('coro')
      local t = coro.spawn(function() error('seen', 0) end)
      local ok, err = t:join()
      print(ok, err.message)]])
    assert.are.equal(0, r.code)
    assert.are.equal('nil\tseen\n', r.stdout)
    assert.are.equal('', r.stderr)
  end)
end)
