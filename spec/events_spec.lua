-- Specs for lib/lua/events.lua. Pure Lua: no luvhost binary needed.


local events = require('events')
local EventEmitter = events.EventEmitter

-- Runs fn with io.stderr replaced by a table that records writes.
local function captureStderr(fn)
  local written = {}
  local saved = io.stderr
  io.stderr = {
    write = function(self, ...)
      for i = 1, select('#', ...) do
        written[#written + 1] = tostring((select(i, ...)))
      end
      return self
    end,
  }
  local ok, err = pcall(fn)
  io.stderr = saved
  assert(ok, err)
  return table.concat(written)
end

describe('EventEmitter', function()
  local e, log

  before_each(function()
    e = EventEmitter.new()
    log = {}
  end)

  local function logger(tag)
    return function(...)
      log[#log + 1] = { tag, select('#', ...), ... }
    end
  end

  describe('construction', function()
    it('events.new() and EventEmitter.new() give emitters', function()
      assert.are.equal(EventEmitter, getmetatable(events.new()))
      assert.are.equal(EventEmitter, getmetatable(EventEmitter.new()))
    end)

    it('tostring shows the class name', function()
      assert.matches('^EventEmitter: ', tostring(e))
    end)
  end)

  describe('on and emit', function()
    it('calls listeners in the order they were added, with only the emitted ' ..
      'arguments', function()
      e:on('x', logger('a'))
      e:addListener('x', logger('b'))
      e:on('x', logger('c'))
      assert.is_true(e:emit('x', 1, nil, 'three'))
      assert.same({
        { 'a', 3, 1, nil, 'three' },
        { 'b', 3, 1, nil, 'three' },
        { 'c', 3, 1, nil, 'three' },
      }, log)
    end)

    it('passes no arguments when none are emitted', function()
      e:on('x', logger('a'))
      e:emit('x')
      assert.same({ { 'a', 0 } }, log)
    end)

    it('returns false when there are no listeners', function()
      assert.is_false(e:emit('nothing', 1))
      e:on('other', logger('a'))
      assert.is_false(e:emit('nothing'))
      assert.same({}, log)
    end)

    it('calls the same function twice if added twice', function()
      local f = logger('f')
      e:on('x', f)
      e:on('x', f)
      e:emit('x')
      assert.are.equal(2, #log)
    end)

    it('keeps events separate and accepts non-string event names', function()
      local key = {}
      e:on('a', logger('a'))
      e:on(key, logger('key'))
      e:on(42, logger('42'))
      e:emit(key, 'k')
      e:emit(42)
      assert.same({ { 'key', 1, 'k' }, { '42', 0 } }, log)
    end)

    it('returns self from on, once, prepend*, off and removeAllListeners',
      function()
        local f = function() end
        assert.are.equal(e, e:on('x', f))
        assert.are.equal(e, e:addListener('x', f))
        assert.are.equal(e, e:once('x', f))
        assert.are.equal(e, e:prependListener('x', f))
        assert.are.equal(e, e:prependOnceListener('x', f))
        assert.are.equal(e, e:off('x', f))
        assert.are.equal(e, e:removeListener('x', f))
        assert.are.equal(e, e:removeAllListeners('x'))
        assert.are.equal(e, e:removeAllListeners())
        assert.are.equal(e, e:setMaxListeners(3))
      end)

    it('accepts a callable table as listener', function()
      local calls = 0
      local callable = setmetatable({}, {
        __call = function(_, v)
          calls = calls + v
        end,
      })
      e:on('x', callable)
      e:emit('x', 5)
      assert.are.equal(5, calls)
      e:off('x', callable)
      assert.are.equal(0, e:listenerCount('x'))
    end)

    it('raises on misuse: nil name, non-function listener', function()
      assert.has_error(function()
        e:on(nil, function() end)
      end)
      assert.has_error(function()
        e:on('x', 'not a function')
      end)
      assert.has_error(function()
        e:once('x', {})
      end)
      assert.has_error(function()
        e:off('x', 42)
      end)
      assert.has_error(function()
        e:emit(nil)
      end)
      local ok, err = pcall(e.on, e, 'x', 'nope')
      assert.is_false(ok)
      assert.matches('listener must be a function %(got string%)', err)
      assert.are.equal(0, e:listenerCount('x'))
    end)
  end)

  describe('prependListener', function()
    it('puts listeners at the front', function()
      e:on('x', logger('a'))
      e:prependListener('x', logger('b'))
      e:prependListener('x', logger('c'))
      e:on('x', logger('d'))
      e:emit('x')
      local order = {}
      for i, entry in ipairs(log) do
        order[i] = entry[1]
      end
      assert.same({ 'c', 'b', 'a', 'd' }, order)
    end)
  end)

  describe('once', function()
    it('fires once, then is removed', function()
      e:once('x', logger('once'))
      e:on('x', logger('on'))
      assert.is_true(e:emit('x', 1))
      assert.is_true(e:emit('x', 2))
      assert.same({ { 'once', 1, 1 }, { 'on', 1, 1 }, { 'on', 1, 2 } }, log)
      assert.are.equal(1, e:listenerCount('x'))
    end)

    it('emit returns false after the only once listener fired', function()
      e:once('x', logger('once'))
      assert.is_true(e:emit('x'))
      assert.is_false(e:emit('x'))
      assert.are.equal(1, #log)
    end)

    it('prependOnceListener fires first, once', function()
      e:on('x', logger('on'))
      e:prependOnceListener('x', logger('first'))
      e:emit('x')
      e:emit('x')
      assert.same({ { 'first', 0 }, { 'on', 0 }, { 'on', 0 } }, log)
    end)

    it('can be removed before firing with the original function', function()
      local f = logger('f')
      e:once('x', f)
      e:off('x', f)
      assert.are.equal(0, e:listenerCount('x'))
      assert.is_false(e:emit('x'))
      assert.same({}, log)
    end)

    it('is not called twice by a nested emit of the same event', function()
      local calls = 0
      e:once('x', function()
        calls = calls + 1
        e:emit('x')
      end)
      e:on('x', function() end)
      e:emit('x')
      assert.are.equal(1, calls)
    end)

    it('is not called again by an outer emit whose snapshot still holds it',
      function()
        local calls, nested = 0, false
        e:on('x', function()
          if not nested then
            nested = true
            e:emit('x') -- fires the once listener below
          end
        end)
        e:once('x', function()
          calls = calls + 1
        end)
        e:emit('x') -- its snapshot still lists the once listener
        assert.are.equal(1, calls)
        assert.are.equal(1, e:listenerCount('x'))
      end)

    it('removes itself even if the listener raises', function()
      e:once('x', function()
        error('boom', 0)
      end)
      assert.has_error(function()
        e:emit('x')
      end, 'boom')
      assert.are.equal(0, e:listenerCount('x'))
    end)
  end)

  describe('off / removeListener', function()
    it('removes one listener and leaves the others in order', function()
      local b = logger('b')
      e:on('x', logger('a'))
      e:on('x', b)
      e:on('x', logger('c'))
      e:off('x', b)
      e:emit('x')
      assert.same({ { 'a', 0 }, { 'c', 0 } }, log)
    end)

    it('removes only the most recently added copy', function()
      local calls = {}
      local f = function(v)
        calls[#calls + 1] = 'f' .. v
      end
      local g = function(v)
        calls[#calls + 1] = 'g' .. v
      end
      e:on('x', f)
      e:on('x', g)
      e:on('x', f)
      e:off('x', f)
      e:emit('x', 1)
      assert.same({ 'f1', 'g1' }, calls)
      assert.same({ f, g }, e:listeners('x'))
    end)

    it('removes the last match when a once and an on share a function',
      function()
        local f = logger('f')
        e:on('x', f)
        e:once('x', f)
        e:off('x', f) -- removes the once wrapper (last)
        e:emit('x')
        e:emit('x')
        assert.are.equal(2, #log) -- the plain listener stayed
      end)

    it('is a no-op for unknown events and functions', function()
      e:on('x', logger('a'))
      e:off('y', function() end)
      e:off('x', function() end)
      assert.are.equal(1, e:listenerCount('x'))
    end)

    it('removeAllListeners(name) removes one event only', function()
      e:on('x', logger('a'))
      e:on('x', logger('b'))
      e:on('y', logger('c'))
      e:removeAllListeners('x')
      assert.are.equal(0, e:listenerCount('x'))
      assert.are.equal(1, e:listenerCount('y'))
    end)

    it('removeAllListeners() removes everything', function()
      e:on('x', logger('a'))
      e:once('y', logger('b'))
      e:removeAllListeners()
      assert.same({}, e:eventNames())
      assert.is_false(e:emit('x'))
      assert.is_false(e:emit('y'))
    end)
  end)

  describe('changing listeners during emit', function()
    it('a listener removing a later one does not skip it this time', function()
      local b = logger('b')
      e:on('x', function()
        log[#log + 1] = { 'a' }
        e:off('x', b)
      end)
      e:on('x', b)
      e:on('x', logger('c'))
      e:emit('x')
      assert.same({ { 'a' }, { 'b', 0 }, { 'c', 0 } }, log)
      log = {}
      e:emit('x')
      assert.same({ { 'a' }, { 'c', 0 } }, log)
    end)

    it('a listener removing itself does not make the next one skipped',
      function()
        local a
        a = function()
          log[#log + 1] = { 'a' }
          e:off('x', a)
        end
        e:on('x', a)
        e:on('x', logger('b'))
        e:on('x', logger('c'))
        e:emit('x')
        assert.same({ { 'a' }, { 'b', 0 }, { 'c', 0 } }, log)
        assert.are.equal(2, e:listenerCount('x'))
      end)

    it('a listener added during emit runs from the next emit on', function()
      e:on('x', function()
        log[#log + 1] = { 'a' }
        e:on('x', logger('late'))
      end)
      e:emit('x')
      assert.same({ { 'a' } }, log)
      log = {}
      e:emit('x')
      assert.same({ { 'a' }, { 'late', 0 } }, log)
    end)

    it('removeAllListeners during emit still lets the current emit finish',
      function()
        e:on('x', function()
          log[#log + 1] = { 'a' }
          e:removeAllListeners('x')
        end)
        e:on('x', logger('b'))
        e:emit('x')
        assert.same({ { 'a' }, { 'b', 0 } }, log)
        assert.is_false(e:emit('x'))
      end)

    it('several once listeners all fire once', function()
      e:once('x', logger('1'))
      e:once('x', logger('2'))
      e:once('x', logger('3'))
      e:emit('x')
      e:emit('x')
      assert.are.equal(3, #log)
      assert.same({ '1', '2', '3' }, { log[1][1], log[2][1], log[3][1] })
    end)
  end)

  describe("'error' event", function()
    it('raises a string argument as-is when nobody listens', function()
      local ok, err = pcall(e.emit, e, 'error', 'ECONNRESET: connection reset')
      assert.is_false(ok)
      assert.are.equal('ECONNRESET: connection reset', err)
    end)

    it('raises a table argument as the same table', function()
      local obj = setmetatable({ code = 'EPIPE' }, {
        __tostring = function()
          return 'EPIPE: broken pipe'
        end,
      })
      local ok, err = pcall(e.emit, e, 'error', obj)
      assert.is_false(ok)
      assert.are.equal(obj, err)
    end)

    it("raises \"Unhandled 'error' event\" for a nil argument", function()
      local ok, err = pcall(e.emit, e, 'error')
      assert.is_false(ok)
      assert.matches("Unhandled 'error' event$", err)
    end)

    it('mentions other argument types in the message', function()
      local ok, err = pcall(e.emit, e, 'error', 42)
      assert.is_false(ok)
      assert.matches("Unhandled 'error' event %(42%)", err)
    end)

    it('goes to listeners when there are some', function()
      e:on('error', logger('err'))
      assert.is_true(e:emit('error', 'bad'))
      assert.same({ { 'err', 1, 'bad' } }, log)
    end)

    it('raises again after the only once error listener fired', function()
      e:once('error', logger('err'))
      e:emit('error', 'first')
      assert.has_error(function()
        e:emit('error', 'second')
      end, 'second')
    end)
  end)

  describe('listener errors', function()
    it('propagate to the emit caller and stop later listeners', function()
      e:on('x', logger('a'))
      e:on('x', function()
        error({ code = 'X' })
      end)
      e:on('x', logger('c'))
      local ok, err = pcall(e.emit, e, 'x')
      assert.is_false(ok)
      assert.same({ code = 'X' }, err)
      assert.same({ { 'a', 0 } }, log)
    end)
  end)

  describe('introspection', function()
    it('listenerCount counts per event', function()
      assert.are.equal(0, e:listenerCount('x'))
      e:on('x', logger('a'))
      e:once('x', logger('b'))
      e:on('y', logger('c'))
      assert.are.equal(2, e:listenerCount('x'))
      assert.are.equal(1, e:listenerCount('y'))
    end)

    it('listeners returns a copy with once wrappers unwrapped', function()
      local a, b = logger('a'), logger('b')
      e:on('x', a)
      e:once('x', b)
      local list = e:listeners('x')
      assert.are.equal(2, #list)
      assert.are.equal(a, list[1])
      assert.are.equal(b, list[2])
      list[1] = nil
      assert.are.equal(2, e:listenerCount('x'))
      assert.same({}, e:listeners('none'))
    end)

    it('rawListeners returns the once wrappers, which still work', function()
      local a, b = logger('a'), logger('b')
      e:on('x', a)
      e:once('x', b)
      local raw = e:rawListeners('x')
      assert.are.equal(a, raw[1])
      assert.are_not.equal(b, raw[2])
      assert.is_function(raw[2])
      raw[2]('direct')
      assert.same({ { 'b', 1, 'direct' } }, log)
      assert.same({ a }, e:listeners('x'))
    end)

    it('eventNames lists events that have listeners', function()
      assert.same({}, e:eventNames())
      local f = function() end
      e:on('b', f)
      e:on('a', f)
      e:once('c', f)
      local names = e:eventNames()
      table.sort(names)
      assert.same({ 'a', 'b', 'c' }, names)
      e:off('b', f)
      e:emit('c')
      assert.same({ 'a' }, e:eventNames())
    end)
  end)

  describe("'newListener' and 'removeListener' events", function()
    it("emits 'newListener' before adding, with the original function",
      function()
        local seen = {}
        local f = function() end
        e:on('newListener', function(name, listener)
          seen[#seen + 1] = { name, listener, e:listenerCount(name) }
        end)
        e:on('x', f)
        e:once('x', f)
        assert.same({ { 'x', f, 0 }, { 'x', f, 1 } }, seen)
      end)

    it("a 'newListener' listener that adds one for the same event puts it " ..
      'first', function()
      local adding = false
      e:on('newListener', function(name)
        if name == 'x' and not adding then
          adding = true
          e:on('x', logger('from newListener'))
        end
      end)
      e:on('x', logger('x'))
      e:emit('x')
      assert.same({ { 'from newListener', 0 }, { 'x', 0 } }, log)
    end)

    it("emits 'removeListener' after removing, with the original function",
      function()
        local seen = {}
        local f, g = function() end, function() end
        e:on('removeListener', function(name, listener)
          seen[#seen + 1] = { name, listener, e:listenerCount(name) }
        end)
        e:on('x', f)
        e:once('x', g)
        e:off('x', f)
        e:emit('x') -- the once listener removes itself
        assert.same({ { 'x', f, 1 }, { 'x', g, 0 } }, seen)
      end)

    it("removeAllListeners reports each removal, 'removeListener' last",
      function()
        local seen = {}
        local f, g = function() end, function() end
        local watcher = function(name, listener)
          seen[#seen + 1] = { name, listener }
        end
        e:on('removeListener', watcher)
        e:on('x', f)
        e:on('x', g)
        e:removeAllListeners()
        -- x's listeners in reverse order; the watcher's own removal is not
        -- reported because nobody listens any more.
        assert.same({ { 'x', g }, { 'x', f } }, seen)
        assert.same({}, e:eventNames())
      end)
  end)

  describe('max listeners', function()
    it('defaults to 10', function()
      assert.are.equal(10, e:getMaxListeners())
      assert.are.equal(10, EventEmitter.defaultMaxListeners)
    end)

    it('warns once per event name on stderr when exceeded', function()
      local f = function() end
      local out = captureStderr(function()
        for _ = 1, 10 do
          e:on('data', f)
        end
      end)
      assert.are.equal('', out)
      out = captureStderr(function()
        e:on('data', f)
        e:on('data', f)
        for _ = 1, 11 do
          e:on('end', f)
        end
      end)
      local _, count = out:gsub('MaxListenersExceededWarning', '')
      assert.are.equal(2, count)
      assert.matches('11 "data" listeners added to %[EventEmitter%]', out)
      assert.matches('11 "end" listeners added', out)
      assert.matches('setMaxListeners', out)
      assert.are.equal(12, e:listenerCount('data'))
    end)

    it('respects setMaxListeners, and 0 means unlimited', function()
      local f = function() end
      e:setMaxListeners(2)
      assert.are.equal(2, e:getMaxListeners())
      local out = captureStderr(function()
        e:on('x', f)
        e:on('x', f)
      end)
      assert.are.equal('', out)
      out = captureStderr(function()
        e:on('x', f)
      end)
      assert.matches('3 "x" listeners', out)

      local u = EventEmitter.new():setMaxListeners(0)
      out = captureStderr(function()
        for _ = 1, 50 do
          u:on('x', f)
        end
      end)
      assert.are.equal('', out)
    end)

    it('rejects a negative or non-number limit', function()
      assert.has_error(function()
        e:setMaxListeners(-1)
      end)
      assert.has_error(function()
        e:setMaxListeners('3')
      end)
      assert.has_error(function()
        e:setMaxListeners(0 / 0)
      end)
    end)
  end)
end)

describe('EventEmitter:extend', function()
  it('makes a subclass whose new() calls init with the arguments', function()
    local Server = EventEmitter:extend('Server')
    function Server:init(port, host)
      self.port = port
      self.host = host
    end
    function Server:listen()
      self:emit('listening', self.port)
      return self
    end

    local s = Server.new(8080, '127.0.0.1')
    assert.are.equal(Server, getmetatable(s))
    assert.are.equal(8080, s.port)
    assert.are.equal('127.0.0.1', s.host)
    local got
    s:on('listening', function(port)
      got = port
    end)
    assert.are.equal(s, s:listen())
    assert.are.equal(8080, got)
  end)

  it('sets __name, super and keeps the chain to EventEmitter', function()
    local Server = EventEmitter:extend('Server')
    assert.are.equal('Server', Server.__name)
    assert.are.equal(EventEmitter, Server.super)
    assert.are.equal(EventEmitter.emit, Server.emit)
    assert.matches('^Server: ', tostring(Server.new()))
  end)

  it('works without init and without a name', function()
    local Plain = EventEmitter:extend()
    local p = Plain.new()
    assert.are.equal('EventEmitter', Plain.__name)
    local n = 0
    p:on('x', function()
      n = n + 1
    end)
    p:emit('x')
    assert.are.equal(1, n)
  end)

  it('supports several levels with explicit super init calls', function()
    local Base = EventEmitter:extend('Base')
    function Base:init(a)
      EventEmitter.init(self)
      self.a = a
    end
    function Base:describe()
      return 'base ' .. self.a
    end
    local Derived = Base:extend('Derived')
    function Derived:init(a, b)
      Base.init(self, a)
      self.b = b
    end
    local Leaf = Derived:extend('Leaf') -- no init of its own: inherits

    local d = Derived.new(1, 2)
    assert.are.equal(1, d.a)
    assert.are.equal(2, d.b)
    assert.are.equal('base 1', d:describe())
    local leaf = Leaf.new(3, 4)
    assert.are.equal(3, leaf.a)
    assert.are.equal(4, leaf.b)
    assert.are.equal(Derived, Leaf.super)
    assert.matches('^Leaf: ', tostring(leaf))
  end)

  it('copies metamethods to subclasses', function()
    local Named = EventEmitter:extend('Named')
    Named.__tostring = function(self)
      return 'Named(' .. self.name .. ')'
    end
    function Named:init(name)
      self.name = name
    end
    local Sub = Named:extend('Sub')
    assert.are.equal('Named(x)', tostring(Sub.new('x')))
  end)

  it('keeps listener state per instance', function()
    local Sub = EventEmitter:extend('Sub')
    local a, b = Sub.new(), Sub.new()
    local calls = 0
    a:on('x', function()
      calls = calls + 1
    end)
    assert.is_false(b:emit('x'))
    assert.is_true(a:emit('x'))
    assert.are.equal(1, calls)
  end)

  it('names the subclass in the max listeners warning', function()
    local Socket = EventEmitter:extend('Socket')
    local s = Socket.new():setMaxListeners(1)
    local out = captureStderr(function()
      s:on('data', print)
      s:on('data', print)
    end)
    assert.matches('%[Socket%]', out)
  end)

  it('rejects a non-string name', function()
    assert.has_error(function()
      EventEmitter:extend(42)
    end)
  end)
end)

describe('events.once', function()
  local e

  before_each(function()
    e = EventEmitter.new()
  end)

  it('suspends the coroutine until the event fires, returning its arguments',
    function()
      local results, steps = nil, {}
      local run = coroutine.wrap(function()
        steps[#steps + 1] = 'waiting'
        results = table.pack(events.once(e, 'ready'))
        steps[#steps + 1] = 'resumed'
      end)
      run()
      assert.same({ 'waiting' }, steps)
      assert.are.equal(1, e:listenerCount('ready'))
      assert.are.equal(1, e:listenerCount('error'))
      assert.is_true(e:emit('ready', 1, nil, 'x'))
      assert.same({ 'waiting', 'resumed' }, steps)
      assert.same({ n = 3, 1, nil, 'x' }, results)
      assert.are.equal(0, e:listenerCount('ready'))
      assert.are.equal(0, e:listenerCount('error'))
    end)

  it('returns nil, err when error fires first', function()
    local a, b
    coroutine.wrap(function()
      a, b = events.once(e, 'ready')
    end)()
    e:emit('error', 'ECONNREFUSED')
    assert.is_nil(a)
    assert.are.equal('ECONNREFUSED', b)
    assert.are.equal(0, e:listenerCount('ready'))
    assert.are.equal(0, e:listenerCount('error'))
    assert.is_false(e:emit('ready'))
  end)

  it("waiting for 'error' itself returns the error as a value", function()
    local got
    coroutine.wrap(function()
      got = events.once(e, 'error')
    end)()
    e:emit('error', 'bad')
    assert.are.equal('bad', got)
  end)

  it('lets the coroutine continue and wait again', function()
    local seen = {}
    coroutine.wrap(function()
      for _ = 1, 3 do
        seen[#seen + 1] = events.once(e, 'tick')
      end
    end)()
    e:emit('tick', 'a')
    e:emit('tick', 'b')
    e:emit('tick', 'c')
    e:emit('tick', 'd')
    assert.same({ 'a', 'b', 'c' }, seen)
  end)

  it('works with coroutine.resume as well', function()
    local co = coroutine.create(function()
      return events.once(e, 'x')
    end)
    assert.is_true(coroutine.resume(co))
    assert.are.equal('suspended', coroutine.status(co))
    e:emit('x', 7)
    assert.are.equal('dead', coroutine.status(co))
  end)

  it('raises when called outside a coroutine without a callback', function()
    -- A gsub callback cannot yield in any host (luvhost's main chunk is
    -- itself a coroutine, so plain top-level code could).
    local ok, err
    string.gsub('x', 'x', function()
      ok, err = pcall(events.once, e, 'x')
    end)
    assert.is_false(ok)
    assert.matches('events.once: cannot wait here, inside a string.gsub ' ..
      'replacement function', err, 1, true)
    assert.matches('pass a callback', err, 1, true)
    assert.are.equal(0, e:listenerCount('x'))
  end)

  it('uses a trailing callback instead of suspending', function()
    local calls = {}
    events.once(e, 'data', function(err, ...)
      calls[#calls + 1] = table.pack(err, ...)
    end)
    e:emit('data', 'a', 'b')
    e:emit('data', 'c')
    assert.same({ { n = 3, nil, 'a', 'b' } }, calls)
    assert.are.equal(0, e:listenerCount('error'))
  end)

  it('passes the error to the callback when error fires first', function()
    local got = {}
    events.once(e, 'data', function(err, value)
      got[#got + 1] = { err, value }
    end)
    e:emit('error', 'EOF')
    e:emit('data', 'late')
    assert.same({ { 'EOF', nil } }, got)
    assert.are.equal(0, e:listenerCount('data'))
  end)

  it('returns the values of a foreign resume and stops listening', function()
    local co = coroutine.create(function()
      return events.once(e, 'x')
    end)
    coroutine.resume(co)
    local ok, a, b = coroutine.resume(co, nil, 'timeout')
    assert.is_true(ok)
    assert.is_nil(a)
    assert.are.equal('timeout', b)
    assert.are.equal(0, e:listenerCount('x'))
    assert.are.equal(0, e:listenerCount('error'))
  end)

  it('handles an event fired while registering (from newListener)', function()
    -- 'newListener' runs before each add: when once() adds its 'error'
    -- listener, its 'now' listener is already in place.
    e:on('newListener', function(name)
      if name == 'error' then
        e:emit('now', 'early')
      end
    end)
    local got
    coroutine.wrap(function()
      got = events.once(e, 'now')
    end)()
    assert.are.equal('early', got)
    assert.are.equal(0, e:listenerCount('now'))
    assert.are.equal(0, e:listenerCount('error'))
  end)

  it('rethrows an error raised by the resumed coroutine to the emitter',
    function()
      coroutine.wrap(function()
        events.once(e, 'x')
        error('after wake')
      end)()
      local ok, err = pcall(e.emit, e, 'x')
      assert.is_false(ok)
      assert.matches('after wake', err)
    end)

  it('raises on bad arguments', function()
    assert.has_error(function()
      events.once(nil, 'x', function() end)
    end)
    assert.has_error(function()
      events.once(e, nil, function() end)
    end)
    assert.has_error(function()
      events.once(e, 'x', 'not a function')
    end)
  end)
end)
