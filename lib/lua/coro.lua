-- coro: tasks (spawn, join, cancel), all, race, timeout, sleep, and a FIFO
-- mutex and semaphore, for code that coordinates many coroutines.
--
-- Every wait here parks the running coroutine on a wait record `w` and
-- yields until resumed with exactly `w`, so stray resumes from elsewhere
-- cannot end it early. Ending a wait only queues the wake-up; flush() then
-- resumes the queued coroutines one after another from a single loop, so
-- long hand-over chains (a mutex passed down 1000 waiters) do not nest
-- resumes until the C stack runs out.
--
-- Cancellation raises a Cancelled error inside the task, but only at the
-- waits of this module: the task is resumed only if it is parked in one of
-- them. Other waiting calls (timers.sleep, socket reads) are left alone;
-- the request then waits for the task's next wait here.

local uv = require('uv')
local binding = require('internal.binding')
local timers = require('timers')

local error, getmetatable, pcall, rawequal, rawget, setmetatable, tostring,
  type, xpcall = error, getmetatable, pcall, rawequal, rawget, setmetatable,
  tostring, type, xpcall
local floor, huge = math.floor, math.huge
local concat, pack, remove, unpack =
  table.concat, table.pack, table.remove, table.unpack
local find, format, sub = string.find, string.format, string.sub
local co_isyieldable, co_running, co_status, co_yield =
  coroutine.isyieldable, coroutine.running, coroutine.status, coroutine.yield
local getinfo, traceback = debug.getinfo, debug.traceback
local new_timer, update_time = uv.new_timer, uv.update_time
local resume, spawn = binding.resume, binding.spawn
local exit_emitted = binding.exit_emitted
local cannot_wait_message = require('internal.wait').cannot_wait_message
local setImmediate = timers.setImmediate

local M = {}

local THIS_SOURCE = getinfo(1, 'S').source
local SPAWN_FRAMES = 5 -- frames of the spawner kept for error reports
local FOREVER = 2 ^ 53 -- ms: this long or longer means no timer at all

local Task = {}
Task.__index = Task
Task.__name = 'coro.Task'

local TaskError = {}
TaskError.__name = 'coro.TaskError'

local Cancelled = {}
Cancelled.__name = 'coro.Cancelled'
Cancelled.__tostring = function(c)
  if c.reason == nil then return 'cancelled' end
  return 'cancelled: ' .. tostring(c.reason)
end

-- What the xpcall handler hands back for a failure: the raised value and
-- the traceback taken where it was raised.
local Captured = {}

local task_of = setmetatable({}, { __mode = 'k' }) -- coroutine -> Task

local function is_callable(f)
  if type(f) == 'function' then return true end
  local mt = getmetatable(f)
  return type(mt) == 'table' and rawget(mt, '__call') ~= nil
end

-- Wake-ups -------------------------------------------------------------------

local wq, wq_head, wq_tail = {}, 1, 0
local dispatching = false

local function enqueue(w)
  wq_tail = wq_tail + 1
  wq[wq_tail] = w
end

-- Resumes every queued coroutine, in order. A nested call (from a coroutine
-- this loop resumed) returns at once: the outer loop picks up its wakes.
local function flush()
  if dispatching then return end
  dispatching = true
  while wq_head <= wq_tail do
    local w = wq[wq_head]
    wq[wq_head] = nil
    wq_head = wq_head + 1
    local co = w.co
    if co_status(co) == 'suspended' then resume(co, w) end
  end
  wq_head, wq_tail = 1, 0
  dispatching = false
end

local function close_timer(w)
  local t = w.timer
  if t then
    w.timer = nil
    t:close()
  end
end

-- Ends wait w normally; false if it had already ended.
local function complete(w)
  if w.done then return false end
  w.done = true
  close_timer(w)
  enqueue(w)
  return true
end

-- Ends wait w early: why is 'timed_out' or 'cancelled'. w.abort undoes
-- whatever w was registered with (and, for all/race/timeout, cancels the
-- tasks the wait was for).
local function cut(w, why, value)
  if w.done then return false end
  w.done = true
  close_timer(w)
  w[why] = value
  local abort = w.abort
  if abort then abort(w, why) end
  enqueue(w)
  return true
end

local function arm(w, ms)
  if ms == huge then return end
  update_time()
  local t = new_timer()
  w.timer = t
  t:start(ms, 0, function()
    cut(w, 'timed_out', true)
    flush()
  end)
end

-- The running coroutine and its task (or nil) for a call that is about to
-- wait; raises where it cannot yield, and delivers a pending cancellation.
local function enter_wait(what)
  if not co_isyieldable() or exit_emitted() then
    error(cannot_wait_message(what), 3)
  end
  local co = co_running()
  local me = task_of[co]
  if me then
    local c = me._cancel
    if c then
      me._cancel = nil
      error(c, 0)
    end
  end
  return co, me
end

local function new_wait(co, me)
  return { co = co, task = me, done = false }
end

-- Suspends until w ends; raises the Cancelled error if it was cancelled.
local function park(w)
  local me = w.task
  if me then me._wait = w end
  repeat until rawequal(co_yield(), w)
  if me then me._wait = nil end
  local c = w.cancelled
  if c then error(c, 0) end
end

-- Arguments ------------------------------------------------------------------

local function describe(v)
  if type(v) == 'number' then return tostring(v) end
  return type(v)
end

-- Milliseconds: a number >= 0 (fractions dropped); math.huge (or anything
-- from 2^53 up) waits for ever.
local function check_ms(ms, what, name)
  if type(ms) ~= 'number' or ms ~= ms or ms < 0 then
    error(format('%s: %s must be a number >= 0, got %s', what, name,
      describe(ms)), 3)
  end
  if ms >= FOREVER then return huge end
  return floor(ms)
end

local function check_timeout(ms, what)
  if ms == nil then return huge end
  return check_ms(ms, what, 'timeout')
end

local function check_count(n, what, name, min)
  if n == nil then return 1 end
  if type(n) ~= 'number' or n ~= floor(n) or n < min or n == huge then
    error(format('%s: %s must be an integer >= %d, got %s', what, name, min,
      describe(n)), 3)
  end
  return floor(n)
end

local function check_task(t, what)
  if getmetatable(t) ~= Task then
    error(what .. ': expected a task (call it with a colon)', 3)
  end
end

-- Error reports --------------------------------------------------------------

local function message_of(e)
  local t = type(e)
  if t == 'string' then return e end
  if t == 'number' then return tostring(e) end
  local mt = getmetatable(e)
  if mt == TaskError then return e.message end
  if type(mt) == 'table' and mt.__tostring ~= nil then
    local ok, s = pcall(tostring, e)
    if ok and type(s) == 'string' then return s end
  end
  return format('(error object is a %s value)', t)
end

TaskError.__tostring = function(e)
  local s = e.message .. '\n' .. e.traceback .. '\ntask spawned at:' ..
    e.spawned
  if getmetatable(e.cause) == TaskError then
    s = s .. '\ncaused by: ' .. tostring(e.cause)
  end
  return s
end

-- Up to SPAWN_FRAMES frames of the code that spawns, as getinfo tables
-- (formatted only if the task fails: a full traceback costs ~50 us).
local function spawn_site(run_task)
  local frames, n = {}, 0
  local level = 3
  while n < SPAWN_FRAMES do
    local info = getinfo(level, 'Slnft')
    if info == nil or info.func == run_task then break end
    if info.source ~= THIS_SOURCE and info.func ~= xpcall and
        not (info.what == 'C' and info.name == nil) then
      info.func = nil -- keep the report, not the function, alive
      n = n + 1
      frames[n] = info
    end
    level = level + 1
  end
  return frames
end

local function format_site(frames)
  local lines = {}
  for i = 1, #frames do
    local f = frames[i]
    local where
    if f.namewhat ~= '' then
      where = format("%s '%s'", f.namewhat, f.name)
    elseif f.what == 'main' then
      where = 'main chunk'
    elseif f.what == 'C' then
      where = '?'
    else
      where = format('function <%s:%d>', f.short_src, f.linedefined)
    end
    if f.currentline > 0 then
      lines[i] = format('\n\t%s:%d: in %s', f.short_src, f.currentline, where)
    else
      lines[i] = format('\n\t%s: in %s', f.short_src, where)
    end
    if f.istailcall then lines[i] = lines[i] .. '\n\t(...tail calls...)' end
  end
  if #lines == 0 then return '\n\t?' end
  return concat(lines)
end

-- Drops our own frames (the xpcall and the task runner) from the bottom.
local function trim_traceback(tb)
  local cut_at, init = nil, 1
  while true do
    local s = find(tb, "\n\t[C]: in function 'xpcall'", init, true)
    if s == nil then break end
    cut_at, init = s, s + 1
  end
  if cut_at then tb = sub(tb, 1, cut_at - 1) end
  return tb
end

local function capture(e)
  if getmetatable(e) == Cancelled then return e end
  return setmetatable({ cause = e, traceback = traceback(nil, 2) }, Captured)
end

-- Lost errors ----------------------------------------------------------------

-- A failure nobody has joined by the end of the loop turn it happened in is
-- raised afresh on its own coroutine, which takes it to 'uncaughtException'
-- or the fatal report. (Not nextTick: a nested spawn drains ticks early.)
local lost, lost_n, lost_queued = {}, 0, false

local function raise(err)
  error(err, 0)
end

local function report_lost()
  local list, n = lost, lost_n
  lost, lost_n, lost_queued = {}, 0, false
  for i = 1, n do
    local t = list[i]
    if not t._observed then
      t._observed = true
      spawn(raise, t._error)
    end
  end
end

local function watch_lost(t)
  lost_n = lost_n + 1
  lost[lost_n] = t
  if not lost_queued then
    lost_queued = true
    setImmediate(report_lost)
  end
end

-- Tasks ----------------------------------------------------------------------

local function add_watcher(t, w)
  local ws = t._watchers
  if ws == nil then
    t._watchers = { w }
  else
    ws[#ws + 1] = w
  end
end

local function remove_watcher(t, w)
  local ws = t._watchers
  if ws == nil then return end
  for i = #ws, 1, -1 do
    if ws[i] == w then
      remove(ws, i)
      if ws[1] == nil then t._watchers = nil end
      return
    end
  end
end

local function settle(t, ok, ...)
  local co = t._co
  task_of[co] = nil
  t._co, t._wait, t._cancel = nil, nil, nil
  if ok then
    t._status = 'done'
    t._results = pack(...)
  else
    local e = ...
    local mt = getmetatable(e)
    if mt == Cancelled then
      t._status = 'cancelled'
      t._reason = e.reason
    else
      local cause, tb = e, 'stack traceback:\n\t?'
      if mt == Captured then cause, tb = e.cause, e.traceback end
      t._status = 'failed'
      t._error = setmetatable({
        message = message_of(cause),
        cause = cause,
        traceback = trim_traceback(tb),
        spawned = format_site(t._site),
        task = t,
      }, TaskError)
      -- Joiners waiting now receive it; a join that gave up earlier does
      -- not count.
      if not t._observed and t._watchers == nil then watch_lost(t) end
    end
  end
  t._site = nil
  local ws = t._watchers
  t._watchers = nil
  if ws then
    for i = 1, #ws do
      local w = ws[i]
      w.on_done(w, t)
    end
  end
  flush()
end

local function run_task(t, fn, ...)
  local co = co_running()
  t._co = co
  task_of[co] = t
  return settle(t, xpcall(fn, capture, ...))
end

local function start(fn, ...)
  local parent = task_of[co_running()]
  local site = spawn_site(run_task)
  -- Spawned from inside this module (all, race, timeout) in a task of its
  -- own: report where that task came from.
  if #site == 0 and parent and parent._site then site = parent._site end
  local t = setmetatable({ _status = 'live', _site = site }, Task)
  spawn(run_task, t, fn, ...)
  if t._status == 'live' and t._co == nil then
    -- The runtime is shutting down and did not start it.
    t._status, t._reason, t._site = 'cancelled', 'exiting', nil
  end
  return t
end

-- spawn(fn, ...) -> Task: runs fn(...) now, until its first wait.
function M.spawn(fn, ...)
  if not is_callable(fn) then
    error('coro.spawn: fn must be a function, got ' .. type(fn), 2)
  end
  return start(fn, ...)
end

-- The task running now, or nil outside any task.
function M.current()
  return task_of[co_running()]
end

local function outcome(t)
  local s = t._status
  if s == 'done' then
    local r = t._results
    return true, unpack(r, 1, r.n)
  elseif s == 'failed' then
    return nil, t._error
  end
  return nil, 'cancelled', t._reason
end

local function join_done(w)
  complete(w)
end

local function join_abort(w)
  remove_watcher(w.target, w)
end

-- join([timeout]) -> true, results... | nil, err
function Task:join(timeout)
  check_task(self, 'task:join')
  local ms = check_timeout(timeout, 'task:join')
  if self._status ~= 'live' then
    self._observed = true
    return outcome(self)
  end
  if ms == 0 then return nil, 'timeout' end
  local co, me = enter_wait('task:join')
  if me == self then error('task:join: a task cannot join itself', 2) end
  local w = new_wait(co, me)
  w.target, w.on_done, w.abort = self, join_done, join_abort
  add_watcher(self, w)
  arm(w, ms)
  park(w)
  if w.timed_out then return nil, 'timeout' end
  return outcome(self)
end

-- Marks t cancelled (no flush): resumes it with the error if it is parked
-- in a wait of ours, else leaves the request for its next one.
local function request_cancel(t, reason)
  if t._status ~= 'live' then return false end
  local c = setmetatable({ reason = reason }, Cancelled)
  local w = t._wait
  if w and not w.done then
    cut(w, 'cancelled', c)
  elseif t._cancel == nil then
    t._cancel = c
  end
  return true
end

-- cancel([reason]) -> true if the task was still running, else false.
function Task:cancel(reason)
  check_task(self, 'task:cancel')
  local requested = request_cancel(self, reason)
  flush()
  return requested
end

function Task:status()
  check_task(self, 'task:status')
  local s = self._status
  if s ~= 'live' then return s end
  local co = self._co
  if co and co_status(co) == 'suspended' then return 'suspended' end
  return 'running'
end

-- all, race, timeout ----------------------------------------------------------

local function check_list(list, what)
  if type(list) ~= 'table' then
    error(what .. ': expected an array of tasks or functions, got ' ..
      type(list), 3)
  end
  local n = #list
  local me = task_of[co_running()]
  for i = 1, n do
    local v = list[i]
    if getmetatable(v) ~= Task and not is_callable(v) then
      error(format('%s: entry %d is a %s, not a task or a function', what, i,
        type(v)), 3)
    elseif v == me then
      error(format('%s: entry %d is the calling task itself', what, i), 3)
    end
  end
  return n
end

-- The (checked) array as tasks, spawning the functions in order; all of
-- them count as joined.
local function tasks_of(list, n)
  local tasks = {}
  for i = 1, n do
    local v = list[i]
    if getmetatable(v) == Task then
      tasks[i] = v
    else
      tasks[i] = start(v)
    end
    tasks[i]._observed = true
  end
  return tasks, n
end

-- Tasks still running, each once.
local function live_set(tasks, n)
  local live, seen = {}, {}
  for i = 1, n do
    local t = tasks[i]
    if t._status == 'live' and not seen[t] then
      seen[t] = true
      live[#live + 1] = t
    end
  end
  return live
end

local function unwatch_all(w)
  local live = w.live
  for i = 1, #live do remove_watcher(live[i], w) end
end

-- The caller of all/race/timeout was cancelled (or timeout's time is up):
-- the tasks it waited for go too.
local function group_abort(w, why)
  unwatch_all(w)
  local reason = why == 'timed_out' and 'timeout' or w.cancelled.reason
  local live = w.live
  for i = 1, #live do request_cancel(live[i], reason) end
end

local function cancel_live(tasks, n)
  for i = 1, n do request_cancel(tasks[i]) end
  flush()
end

local function index_in(tasks, n, t)
  for i = 1, n do
    if tasks[i] == t then return i end
  end
end

local function all_done(w, t)
  if w.done then return end
  if t._status == 'done' then
    w.pending = w.pending - 1
    if w.pending == 0 then complete(w) end
  else
    w.failed = t
    complete(w)
  end
end

-- all(list) -> { pack(results), ... } | nil, err, index
function M.all(list)
  local n = check_list(list, 'coro.all')
  local co, me = enter_wait('coro.all')
  local tasks = tasks_of(list, n)
  local failed
  for i = 1, n do
    if tasks[i]._status == 'failed' or tasks[i]._status == 'cancelled' then
      failed = tasks[i]
      break
    end
  end
  if failed == nil then
    local live = live_set(tasks, n)
    if #live > 0 then
      local w = new_wait(co, me)
      w.live, w.pending, w.on_done, w.abort = live, #live, all_done,
        group_abort
      for i = 1, #live do add_watcher(live[i], w) end
      park(w)
      unwatch_all(w)
      failed = w.failed
    end
  end
  if failed then
    cancel_live(tasks, n)
    local _, err, reason = outcome(failed)
    return nil, err, index_in(tasks, n, failed), reason
  end
  local results = {}
  for i = 1, n do
    local r = tasks[i]._results
    results[i] = pack(unpack(r, 1, r.n))
  end
  return results
end

local function race_done(w, t)
  if complete(w) then w.winner = t end
end

-- race(list) -> index, results... | nil, err, index: the first task to end
-- wins; the others are cancelled.
function M.race(list)
  local n = check_list(list, 'coro.race')
  if n == 0 then error('coro.race: the list is empty', 2) end
  local co, me = enter_wait('coro.race')
  local tasks = tasks_of(list, n)
  local winner
  for i = 1, n do
    if tasks[i]._status ~= 'live' then
      winner = tasks[i]
      break
    end
  end
  if winner == nil then
    local w = new_wait(co, me)
    w.live, w.on_done, w.abort = live_set(tasks, n), race_done, group_abort
    for i = 1, #w.live do add_watcher(w.live[i], w) end
    park(w)
    unwatch_all(w)
    winner = w.winner
  end
  cancel_live(tasks, n)
  local i = index_in(tasks, n, winner)
  if winner._status == 'done' then
    local r = winner._results
    return i, unpack(r, 1, r.n)
  end
  local _, err, reason = outcome(winner)
  return nil, err, i, reason
end

local function timeout_done(w)
  complete(w)
end

-- timeout(ms, fn, ...) -> fn's results | nil, 'timeout'. fn runs as a task,
-- cancelled when time is up; an error it raises is raised here as a
-- TaskError.
function M.timeout(ms, fn, ...)
  local limit = check_ms(ms, 'coro.timeout', 'ms')
  if not is_callable(fn) then
    error('coro.timeout: fn must be a function, got ' .. type(fn), 2)
  end
  local co, me = enter_wait('coro.timeout')
  local t = start(fn, ...)
  t._observed = true
  if t._status == 'live' then
    if limit == 0 then
      request_cancel(t, 'timeout')
      flush()
      return nil, 'timeout'
    end
    local w = new_wait(co, me)
    w.live, w.on_done, w.abort = { t }, timeout_done, group_abort
    add_watcher(t, w)
    arm(w, limit)
    park(w)
    remove_watcher(t, w)
    if w.timed_out then return nil, 'timeout' end
  end
  local s = t._status
  if s == 'done' then
    local r = t._results
    return unpack(r, 1, r.n)
  elseif s == 'failed' then
    error(t._error, 0)
  end
  return nil, 'cancelled', t._reason
end

-- sleep(ms): waits ms milliseconds (math.huge: until cancelled). Unlike
-- timers.sleep, a cancelled task stops sleeping at once.
function M.sleep(ms)
  local delay = check_ms(ms, 'coro.sleep', 'ms')
  local co, me = enter_wait('coro.sleep')
  local w = new_wait(co, me)
  arm(w, delay)
  park(w)
end

-- FIFO queues of wait records (for mutex and semaphore) ------------------

local function q_push(o, w)
  local tail = o._qt + 1
  o._qt = tail
  o._q[tail] = w
end

-- The first waiter that is still waiting (dropping ended ones), or nil.
local function q_first(o)
  local q, head, tail = o._q, o._qh, o._qt
  while head <= tail do
    local w = q[head]
    if not w.done then
      o._qh = head
      return w
    end
    q[head] = nil
    head = head + 1
  end
  o._qh, o._qt = 1, 0
  return nil
end

local function q_shift(o)
  local head = o._qh
  o._q[head] = nil
  o._qh = head + 1
end

-- Mutex ------------------------------------------------------------------------

local Mutex = {}
Mutex.__index = Mutex
Mutex.__name = 'coro.Mutex'

local MutexGuard = { __close = function(g) g.m:unlock() end }

function M.mutex()
  local m = setmetatable({ _locked = false, _owner = nil, _q = {}, _qh = 1,
    _qt = 0 }, Mutex)
  m._guard = setmetatable({ m = m }, MutexGuard)
  return m
end

local function check_mutex(m, what)
  if getmetatable(m) ~= Mutex then
    error(what .. ': expected a mutex (call it with a colon)', 3)
  end
end

function Mutex:trylock()
  check_mutex(self, 'mutex:trylock')
  if self._locked then return false end
  self._locked, self._owner = true, co_running()
  return true
end

-- lock([timeout]) -> true | nil, 'timeout'
function Mutex:lock(timeout)
  check_mutex(self, 'mutex:lock')
  local ms = check_timeout(timeout, 'mutex:lock')
  if not self._locked then
    self._locked, self._owner = true, co_running()
    return true
  end
  if self._owner == co_running() then
    error('mutex:lock: this coroutine holds the mutex already (it is ' ..
      'not recursive)', 2)
  end
  if ms == 0 then return nil, 'timeout' end
  local co, me = enter_wait('mutex:lock')
  local w = new_wait(co, me)
  q_push(self, w)
  arm(w, ms)
  park(w)
  if w.timed_out then return nil, 'timeout' end
  return true
end

-- Hands the lock straight to the longest waiter, so nobody can barge in.
function Mutex:unlock()
  check_mutex(self, 'mutex:unlock')
  if not self._locked then
    error('mutex:unlock: the mutex is not locked', 2)
  end
  local w = q_first(self)
  if w then
    q_shift(self)
    self._owner = w.co
    complete(w)
    flush()
  else
    self._locked, self._owner = false, nil
  end
end

function Mutex:locked()
  check_mutex(self, 'mutex:locked')
  return self._locked
end

-- with(fn, ...) -> fn's results: holds the lock while fn runs; unlocks
-- however fn ends (the error passes through unchanged).
function Mutex:with(fn, ...)
  check_mutex(self, 'mutex:with')
  if not is_callable(fn) then
    error('mutex:with: fn must be a function, got ' .. type(fn), 2)
  end
  self:lock()
  local _ <close> = self._guard
  return fn(...)
end

-- Semaphore --------------------------------------------------------------------

local Semaphore = {}
Semaphore.__index = Semaphore
Semaphore.__name = 'coro.Semaphore'

local SemaphoreGuard = { __close = function(g) g.s:release(1) end }

function M.semaphore(n)
  if type(n) ~= 'number' or n ~= floor(n) or n < 0 or n == huge then
    error('coro.semaphore: n must be an integer >= 0, got ' .. describe(n), 2)
  end
  local s = setmetatable({ _n = floor(n), _q = {}, _qh = 1, _qt = 0 },
    Semaphore)
  s._guard = setmetatable({ s = s }, SemaphoreGuard)
  return s
end

local function check_semaphore(s, what)
  if getmetatable(s) ~= Semaphore then
    error(what .. ': expected a semaphore (call it with a colon)', 3)
  end
end

-- Grants waiters in order while the first one fits.
local function pump(s)
  while true do
    local w = q_first(s)
    if w == nil or w.count > s._n then return end
    q_shift(s)
    s._n = s._n - w.count
    complete(w)
  end
end

local function semaphore_abort(w)
  pump(w.semaphore)
end

function Semaphore:tryacquire(count)
  check_semaphore(self, 'semaphore:tryacquire')
  count = check_count(count, 'semaphore:tryacquire', 'count', 1)
  if q_first(self) == nil and count <= self._n then
    self._n = self._n - count
    return true
  end
  return false
end

-- acquire([count [, timeout]]) -> true | nil, 'timeout'
function Semaphore:acquire(count, timeout)
  check_semaphore(self, 'semaphore:acquire')
  count = check_count(count, 'semaphore:acquire', 'count', 1)
  local ms = check_timeout(timeout, 'semaphore:acquire')
  if q_first(self) == nil and count <= self._n then
    self._n = self._n - count
    return true
  end
  if ms == 0 then return nil, 'timeout' end
  local co, me = enter_wait('semaphore:acquire')
  local w = new_wait(co, me)
  w.count, w.semaphore, w.abort = count, self, semaphore_abort
  q_push(self, w)
  arm(w, ms)
  park(w)
  if w.timed_out then return nil, 'timeout' end
  return true
end

function Semaphore:release(count)
  check_semaphore(self, 'semaphore:release')
  count = check_count(count, 'semaphore:release', 'count', 1)
  self._n = self._n + count
  pump(self)
  flush()
end

function Semaphore:available()
  check_semaphore(self, 'semaphore:available')
  return self._n
end

-- with(fn, ...) -> fn's results: holds one unit while fn runs.
function Semaphore:with(fn, ...)
  check_semaphore(self, 'semaphore:with')
  if not is_callable(fn) then
    error('semaphore:with: fn must be a function, got ' .. type(fn), 2)
  end
  self:acquire(1)
  local _ <close> = self._guard
  return fn(...)
end

-- Whether err is the error a cancelled task gets at its wait.
function M.iscancel(err)
  return getmetatable(err) == Cancelled
end

-- Whether err is the error of a failed task (as join returns it).
function M.istaskerror(err)
  return getmetatable(err) == TaskError
end

return M
