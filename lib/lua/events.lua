-- events: Node's EventEmitter for luvhost.
--
-- Listener lists are copy-on-write: on()/off() build a new array and emit()
-- iterates whatever array was current when it started. Emitting (the hot
-- path) therefore never allocates, and listeners added or removed while an
-- emit is running do not disturb it (Node's snapshot semantics).

local error, getmetatable, next, pairs, rawget, setmetatable, tostring,
  type = error, getmetatable, next, pairs, rawget, setmetatable, tostring,
  type
local format = string.format
local move, pack, unpack = table.move, table.pack, table.unpack
local co_isyieldable, co_resume, co_running, co_yield =
  coroutine.isyieldable, coroutine.resume, coroutine.running, coroutine.yield
local traceback = debug.traceback
-- io.stderr is looked up at warning time, so it can be redirected.
local io = io

local EventEmitter = {}
EventEmitter.__index = EventEmitter
EventEmitter.__name = 'EventEmitter'
EventEmitter.defaultMaxListeners = 10

-- once() wrappers -> the user's function, so off(fn) and listeners() can see
-- through them. Weak keys: an entry dies with its wrapper.
local onceOriginal = setmetatable({}, { __mode = 'k' })

local function isCallable(f)
  if type(f) == 'function' then
    return true
  end
  local mt = getmetatable(f)
  return type(mt) == 'table' and rawget(mt, '__call') ~= nil
end

local function describe(name)
  if type(name) == 'string' then
    return format('%q', name)
  end
  return tostring(name)
end

local function className(self)
  local mt = getmetatable(self)
  local name = type(mt) == 'table' and rawget(mt, '__name')
  return type(name) == 'string' and name or 'EventEmitter'
end

-- Classes ---------------------------------------------------------------------

local function construct(class, ...)
  local self = setmetatable({}, class)
  local init = class.init
  if init then
    init(self, ...)
  end
  return self
end

function EventEmitter.new(...)
  return construct(EventEmitter, ...)
end

-- The base keeps no state until the first listener is added, so a subclass
-- init does not have to call this; it exists so that `Parent.init(self, ...)`
-- always resolves, whatever the depth of the hierarchy.
function EventEmitter.init(self) -- luacheck: ignore self
end

-- Parent:extend(name) -> a subclass of Parent. Instances come from
-- Sub.new(...), which calls Sub.init(self, ...) (inherited if not defined).
function EventEmitter.extend(parent, name)
  if name ~= nil and type(name) ~= 'string' then
    error("bad argument #1 to 'extend' (string expected, got " ..
      type(name) .. ')', 2)
  end
  local class = {}
  -- Lua reads metamethods raw from the metatable, so __index chaining does
  -- not inherit them: copy them (__tostring, __close, ...) at extend time.
  for key, value in pairs(parent) do
    if type(key) == 'string' and key:sub(1, 2) == '__' then
      class[key] = value
    end
  end
  class.__index = class
  class.__name = name or rawget(parent, '__name')
  class.super = parent
  class.new = function(...)
    return construct(class, ...)
  end
  return setmetatable(class, { __index = parent })
end

-- Adding listeners ------------------------------------------------------------

local function warnTooMany(self, name, count)
  local warned = self._warned
  if not warned then
    warned = {}
    self._warned = warned
  end
  if warned[name] then
    return
  end
  warned[name] = true
  io.stderr:write(format(
    '(luvhost) MaxListenersExceededWarning: Possible EventEmitter memory ' ..
    'leak detected. %d %s listeners added to [%s]. Use ' ..
    'emitter:setMaxListeners() to increase limit\n',
    count, describe(name), className(self)))
end

-- `original` is what the user passed; `entry` is what is stored (the same
-- function, or a once() wrapper around it).
local function add(self, name, original, entry, prepend)
  if name == nil then
    error('event name must not be nil', 3)
  end
  if not isCallable(original) then
    error('listener must be a function (got ' .. type(original) .. ')', 3)
  end
  local events = self._events
  if not events then
    events = {}
    self._events = events
  elseif events.newListener then
    -- Emitted before adding, as in Node.
    self:emit('newListener', name, original)
  end
  local old = events[name]
  if old == nil and type(entry) == 'function' then
    -- A lone listener is stored as is: most events of most emitters have
    -- one, and an idle server holds many emitters.
    events[name] = entry
    return self
  end
  if type(old) == 'function' then old = { old } end
  local n = old and #old or 0
  local list = {}
  if prepend then
    list[1] = entry
    if n > 0 then
      move(old, 1, n, 2, list)
    end
  else
    if n > 0 then
      move(old, 1, n, 1, list)
    end
    list[n + 1] = entry
  end
  events[name] = list
  local max = self._maxListeners or EventEmitter.defaultMaxListeners
  if max > 0 and n + 1 > max then
    warnTooMany(self, name, n + 1)
  end
  return self
end

local function onceWrapper(self, name, listener)
  local fired = false
  local wrapper
  wrapper = function(...)
    -- Guards against a second call from a nested emit that still holds
    -- the old list.
    if fired then
      return
    end
    fired = true
    self:removeListener(name, wrapper)
    return listener(...)
  end
  onceOriginal[wrapper] = listener
  return wrapper
end

function EventEmitter:on(name, listener)
  return add(self, name, listener, listener, false)
end
EventEmitter.addListener = EventEmitter.on

function EventEmitter:prependListener(name, listener)
  return add(self, name, listener, listener, true)
end

function EventEmitter:once(name, listener)
  return add(self, name, listener, onceWrapper(self, name, listener), false)
end

function EventEmitter:prependOnceListener(name, listener)
  return add(self, name, listener, onceWrapper(self, name, listener), true)
end

-- Removing listeners ----------------------------------------------------------

-- Removes the last matching entry in the list (Node's rule), matching a
-- once() wrapper by the function it wraps.
function EventEmitter:removeListener(name, listener)
  if not isCallable(listener) then
    error('listener must be a function (got ' .. type(listener) .. ')', 2)
  end
  local events = self._events
  local list = events and events[name]
  if not list then
    return self
  end
  if type(list) == 'function' then list = { list } end
  local n = #list
  for i = n, 1, -1 do
    local entry = list[i]
    if entry == listener or onceOriginal[entry] == listener then
      if n == 1 then
        events[name] = nil
      else
        local new = move(list, 1, i - 1, 1, {})
        events[name] = move(list, i + 1, n, i, new)
      end
      if events.removeListener then
        self:emit('removeListener', name, onceOriginal[entry] or entry)
      end
      return self
    end
  end
  return self
end
EventEmitter.off = EventEmitter.removeListener

function EventEmitter:removeAllListeners(name)
  local events = self._events
  if not events then
    return self
  end
  if not events.removeListener then
    if name == nil then
      self._events = nil
    else
      events[name] = nil
    end
    return self
  end
  -- Someone listens to 'removeListener': remove one by one so each removal
  -- is reported, and that event's own listeners last (as Node does).
  if name == nil then
    local names = {}
    for key in pairs(events) do
      if key ~= 'removeListener' then
        names[#names + 1] = key
      end
    end
    for i = 1, #names do
      self:removeAllListeners(names[i])
    end
    self:removeAllListeners('removeListener')
    return self
  end
  local list = events[name]
  if type(list) == 'function' then list = { list } end
  if list then
    for i = #list, 1, -1 do
      self:removeListener(name, list[i])
    end
  end
  return self
end

-- Emitting --------------------------------------------------------------------

local function unhandledError(err)
  if err == nil then
    error("Unhandled 'error' event", 3)
  end
  local t = type(err)
  if t == 'string' or t == 'table' or t == 'userdata' then
    error(err, 0)
  end
  error("Unhandled 'error' event (" .. tostring(err) .. ')', 3)
end

function EventEmitter:emit(name, ...)
  local events = self._events
  local list = events and events[name]
  if not list then
    if name == 'error' then
      unhandledError(...)
    elseif name == nil then
      error('event name must not be nil', 2)
    end
    return false
  end
  if type(list) == 'function' then
    list(...)
    return true
  end
  local n = #list
  if n == 1 then
    list[1](...)
  else
    for i = 1, n do
      list[i](...)
    end
  end
  return true
end

-- Introspection ---------------------------------------------------------------

function EventEmitter:listenerCount(name)
  local events = self._events
  local list = events and events[name]
  if type(list) == 'function' then return 1 end
  return list and #list or 0
end

function EventEmitter:rawListeners(name)
  local events = self._events
  local list = events and events[name]
  if not list then
    return {}
  end
  if type(list) == 'function' then return { list } end
  return move(list, 1, #list, 1, {})
end

function EventEmitter:listeners(name)
  local list = self:rawListeners(name)
  for i = 1, #list do
    list[i] = onceOriginal[list[i]] or list[i]
  end
  return list
end

function EventEmitter:eventNames()
  local names = {}
  local events = self._events
  if events then
    for key in next, events do
      names[#names + 1] = key
    end
  end
  return names
end

function EventEmitter:setMaxListeners(n)
  if type(n) ~= 'number' or n ~= n or n < 0 then
    error("bad argument #1 to 'setMaxListeners' (non-negative number " ..
      'expected, got ' .. tostring(n) .. ')', 2)
  end
  self._maxListeners = n
  return self
end

function EventEmitter:getMaxListeners()
  return self._maxListeners or EventEmitter.defaultMaxListeners
end

-- events.once -----------------------------------------------------------------

-- Tags the first value a waiting coroutine is resumed with, so once() can
-- tell its own wake-up from anyone else's (a runtime cancel or timeout).
local FIRED, FAILED = {}, {}

local function finishWait(cleanup, tag, ...)
  if tag == FIRED then
    return ...
  elseif tag == FAILED then
    return nil, (...)
  end
  -- Resumed by someone else (e.g. a timeout): stop listening and hand their
  -- values back.
  cleanup()
  return tag, ...
end

local function once(emitter, name, callback)
  if type(emitter) ~= 'table' or type(emitter.on) ~= 'function' then
    error("bad argument #1 to 'events.once' (event emitter expected, got " ..
      type(emitter) .. ')', 2)
  end
  if name == nil then
    error("bad argument #2 to 'events.once' (event name must not be nil)", 2)
  end
  if callback ~= nil and not isCallable(callback) then
    error("bad argument #3 to 'events.once' (function expected, got " ..
      type(callback) .. ')', 2)
  end
  if callback == nil and not co_isyieldable() then
    require('internal.wait').cannot_wait('events.once', 2)
  end

  local co = not callback and co_running()
  local done, waiting, early = false, false, nil
  local onEvent, onError

  local function cleanup()
    done = true
    emitter:removeListener(name, onEvent)
    if onError then
      emitter:removeListener('error', onError)
    end
  end

  local function wake(tag, ...)
    if callback then
      if tag == FIRED then
        return callback(nil, ...)
      end
      return callback((...))
    end
    if not waiting then
      -- Fired while still registering (by a 'newListener' listener).
      early = pack(tag, ...)
      return
    end
    waiting = false
    local ok, err = co_resume(co, tag, ...)
    if not ok then
      error(traceback(co, err), 0)
    end
  end

  onEvent = function(...)
    if not done then
      cleanup()
      wake(FIRED, ...)
    end
  end
  -- Waiting for 'error' itself returns its arguments like any event.
  if name ~= 'error' then
    onError = function(err)
      if not done then
        cleanup()
        wake(FAILED, err)
      end
    end
  end
  emitter:on(name, onEvent)
  if onError and not done then
    emitter:on('error', onError)
    if done then
      -- Fired by a 'newListener' listener just before onError went in.
      cleanup()
    end
  end

  if callback then
    return
  end
  if early then
    return finishWait(cleanup, unpack(early, 1, early.n))
  end
  waiting = true
  return finishWait(cleanup, co_yield())
end

local events = {
  EventEmitter = EventEmitter,
  new = EventEmitter.new,
  once = once,
}

return events
