local util = require('util')
local inspect = util.inspect

-- Call fn(...) and return the error message it raises (or fail).
local function errorOf(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, 'expected an error')
  return err
end

-- Run fn with the metatable of file handles changed by edit(mt), then put
-- the original fields back (file handles are the one userdata plain Lua has).
local function withFileMeta(edit, fn)
  local mt = debug.getmetatable(io.stdout)
  local saved = { __tostring = mt.__tostring, __name = mt.__name,
    __inspect = mt.__inspect }
  edit(mt)
  local ok, err = pcall(fn)
  mt.__tostring, mt.__name = saved.__tostring, saved.__name
  mt.__inspect = saved.__inspect
  if not ok then error(err, 0) end
end

-- Run fn with io.stderr replaced by a buffer; return what was written.
local function captureStderr(fn)
  local saved, out = io.stderr, {}
  io.stderr = {
    write = function(self, ...)
      for _, s in ipairs({ ... }) do out[#out + 1] = s end
      return self
    end,
  }
  local ok, err = pcall(fn)
  io.stderr = saved
  if not ok then error(err, 0) end
  return table.concat(out)
end

describe('util', function()
  describe('inspect', function()
    it('prints nil and booleans', function()
      assert.equal('nil', inspect(nil))
      assert.equal('nil', inspect())
      assert.equal('true', inspect(true))
      assert.equal('false', inspect(false))
    end)

    it('prints numbers as Lua does, integers apart from floats', function()
      assert.equal('1', inspect(1))
      assert.equal('1.0', inspect(1.0))
      assert.equal('-0.0', inspect(-0.0))
      assert.equal('0.1', inspect(0.1))
      assert.equal('1e+100', inspect(1e100))
      assert.equal('inf', inspect(math.huge))
      assert.equal('-inf', inspect(-math.huge))
      assert.equal('-9223372036854775808', inspect(math.mininteger))
      assert.equal('9.007199254741e+15', inspect(2.0 ^ 53))
      assert.equal(tostring(0 / 0), inspect(0 / 0))
    end)

    it('quotes strings as Lua literals', function()
      assert.equal('"a"', inspect('a'))
      assert.equal('""', inspect(''))
      assert.equal('"a\\nb"', inspect('a\nb'))
      assert.equal('"say \\"hi\\""', inspect('say "hi"'))
      assert.equal('"back\\\\slash"', inspect('back\\slash'))
      assert.equal('"\\t\\r\\a\\b\\f\\v"', inspect('\t\r\a\b\f\v'))
      assert.equal('"\\0"', inspect('\0'))
      assert.equal('"\\27[1m"', inspect('\27[1m'))
      assert.equal('"\\127"', inspect('\127'))
      -- A digit after an escape forces three digits: "\0012" is \1 then 2.
      assert.equal('"\\0012"', inspect('\0012'))
      assert.equal("\"it's\"", inspect("it's"))
    end)

    it('keeps valid UTF-8 readable and escapes other high bytes', function()
      assert.equal('"héllo"', inspect('héllo'))
      assert.equal('"\\255\\128abc"', inspect('\255\128abc'))
    end)

    it('produces literals that load back to the same string', function()
      local bytes = {}
      for b = 0, 255 do bytes[#bytes + 1] = string.char(b) end
      local all = table.concat(bytes) .. '0123\0009'
      assert.equal(all, load('return ' .. inspect(all))())
    end)

    it('cuts strings longer than maxStringLength', function()
      local s = string.rep('x', 20)
      assert.equal('"xxxxx"... 15 more bytes',
        inspect(s, { maxStringLength = 5 }))
      assert.equal('"' .. string.rep('x', 19) .. '"... 1 more byte',
        inspect(s, { maxStringLength = 19 }))
      assert.equal('"' .. s .. '"', inspect(s, { maxStringLength = 20 }))
      assert.equal('""... 20 more bytes', inspect(s, { maxStringLength = 0 }))
      -- Never inside a UTF-8 sequence.
      assert.equal('"é"... 4 more bytes',
        inspect('ééé', { maxStringLength = 3 }))
      local long = string.rep('y', 10001)
      assert.equal('"' .. string.rep('y', 10000) .. '"... 1 more byte',
        inspect(long))
    end)

    it('names functions by where they were defined', function()
      assert.equal('<function: builtin>', inspect(print))
      assert.equal('<function: builtin>', inspect(string.format))
      local f = load('local x = 1\nreturn function() end', '=chunk')()
      assert.equal('<function: chunk:2>', inspect(f))
      local g = function() end; local line = debug.getinfo(1, 'l').currentline
      local src = debug.getinfo(1, 'S').short_src
      assert.equal('<function: ' .. src .. ':' .. line .. '>', inspect(g))
      assert.truthy(src:find('util_spec%.lua$'), src)
    end)

    it('prints threads with their address', function()
      local co = coroutine.create(print)
      local s = inspect(co)
      assert.equal(string.format('<thread: %p>', co), s)
      assert.truthy(s:find('^<thread: 0x%x+>$'), s)
    end)

    it('prints userdata with __tostring, else with __name', function()
      assert.equal(tostring(io.stdout), inspect(io.stdout))
      withFileMeta(function(mt) mt.__tostring = nil end, function()
        assert.equal(string.format('<FILE*: %p>', io.stdout),
          inspect(io.stdout))
      end)
      withFileMeta(function(mt)
        mt.__tostring, mt.__name = nil, nil
      end, function()
        assert.equal(string.format('<userdata: %p>', io.stdout),
          inspect(io.stdout))
      end)
    end)

    it('survives a __tostring that raises or returns a non-string', function()
      withFileMeta(function(mt)
        mt.__tostring = function() error('boom') end
      end, function()
        assert.equal(string.format('<FILE*: %p>', io.stdout),
          inspect(io.stdout))
      end)
      withFileMeta(function(mt)
        mt.__tostring = function() return 42 end
      end, function()
        assert.equal(string.format('{ <FILE*: %p> }', io.stdout),
          inspect({ io.stdout }))
      end)
    end)

    it('uses __inspect for userdata too, before __tostring', function()
      withFileMeta(function(mt)
        mt.__inspect = function(f, opts)
          return '<file ' .. (f == io.stdout and 'stdout' or '?') .. ' '
            .. opts.depth .. '>'
        end
      end, function()
        assert.equal('<file stdout 2>', inspect(io.stdout))
        assert.equal('{ <file stdout 1> }', inspect({ io.stdout }))
      end)
      withFileMeta(function(mt)
        mt.__inspect = function() error('boom') end
      end, function()
        assert.equal(tostring(io.stdout), inspect(io.stdout))
      end)
    end)

    it('prints sequences and keyed tables', function()
      assert.equal('{}', inspect({}))
      assert.equal('{ 1, 2, 3 }', inspect({ 1, 2, 3 }))
      assert.equal('{ a = 1, ["b c"] = 2, [true] = 3 }',
        inspect({ a = 1, ['b c'] = 2, [true] = 3 }))
      assert.equal('{ 1, [3] = 3 }', inspect({ 1, nil, 3 }))
      assert.equal('{ "a", "b", [0] = "z" }', inspect({ [0] = 'z', 'a', 'b' }))
      assert.equal('{ { 1, { 2 } }, x = { y = "z" } }',
        inspect({ { 1, { 2 } }, x = { y = 'z' } }))
    end)

    it('sorts other keys: numbers, strings, then other types', function()
      local t = { 'x', [-1] = 3, [2.5] = 2, [10] = 1, b = 4, a = 5,
        [false] = 6, [true] = 7 }
      assert.equal('{ "x", [-1] = 3, [2.5] = 2, [10] = 1, a = 5, b = 4,'
        .. ' [false] = 6, [true] = 7 }', inspect(t, { breakLength = 200 }))
    end)

    it('quotes keys that are not identifiers', function()
      assert.equal('{ ["1a"] = 3, _ok = 2, ["a-b"] = 4, ["end"] = 1 }',
        inspect({ ['end'] = 1, _ok = 2, ['1a'] = 3, ['a-b'] = 4 }))
      assert.equal('{ [{}] = 1 }', inspect({ [{}] = 1 }))
      assert.equal('{ ["\\n"] = 1 }', inspect({ ['\n'] = 1 }))
    end)

    it('keeps next() order when sorted is false', function()
      local t = { c = 1, a = 2, b = 3, 'seq' }
      local expected = { '"seq"' }
      for k, v in next, t do
        if k ~= 1 then expected[#expected + 1] = k .. ' = ' .. v end
      end
      assert.equal('{ ' .. table.concat(expected, ', ') .. ' }',
        inspect(t, { sorted = false }))
    end)

    it('stops at depth (default 2) like Node', function()
      local t = { a = { b = { c = { d = 1 } } } }
      assert.equal('{ a = { b = { c = {...} } } }', inspect(t))
      assert.equal('{ a = { b = { c = {...} } } }', inspect(t, {}))
      assert.equal('{ a = {...} }', inspect(t, { depth = 0 }))
      assert.equal('{...}', inspect(t, { depth = -1 }))
      assert.equal('{ a = { b = { c = { d = 1 } } } }',
        inspect(t, { depth = math.huge }))
      -- Empty tables are shown as they are at any depth.
      assert.equal('{ a = { b = { c = {} } } }',
        inspect({ a = { b = { c = {} } } }))
    end)

    it('marks cycles the way Node does', function()
      local t = {}
      t.self = t
      assert.equal('<ref *1> { self = [Circular *1] }', inspect(t))
      local a, b = {}, {}
      a.b, b.a = b, a
      assert.equal('<ref *1> { b = { a = [Circular *1] } }', inspect(a))
      local root = { p = {}, q = {} }
      root.p.self, root.q.self = root.p, root.q
      assert.equal('{ p = <ref *1> { self = [Circular *1] },'
        .. ' q = <ref *2> { self = [Circular *2] } }',
        inspect(root, { breakLength = 200 }))
      local seq = { 1 }
      seq[2] = seq
      assert.equal('<ref *1> { 1, [Circular *1] }', inspect(seq))
      assert.equal('{ <ref *1> { self = [Circular *1] } }', inspect({ t }))
    end)

    it('prints a table seen twice, not in a cycle, twice', function()
      local shared = { 1 }
      assert.equal('{ { 1 }, { 1 } }', inspect({ shared, shared }))
    end)

    it('limits sequences to maxArrayLength items', function()
      assert.equal('{ 1, 2, ... 1 more item }',
        inspect({ 1, 2, 3 }, { maxArrayLength = 2 }))
      assert.equal('{ ... 2 more items, n = 2 }',
        inspect({ 1, 2, n = 2 }, { maxArrayLength = 0 }))
      assert.equal('{ ... 3 more items }',
        inspect({ 1, 2, 3 }, { maxArrayLength = -1 }))
      assert.equal('{ 1, 2, ... 1 more item }',
        inspect({ 1, 2, 3 }, { maxArrayLength = 2.5 }))
      local big = {}
      for i = 1, 150 do big[i] = i end
      local s = inspect(big)
      assert.truthy(s:find(' 100, %.%.%. 50 more items\n}$'), s)
      assert.falsy(s:find('101', 1, true))
    end)

    it('prefixes tables whose metatable has __name', function()
      local P = { __name = 'Point' }
      assert.equal('Point { x = 1, y = 2 }',
        inspect(setmetatable({ x = 1, y = 2 }, P)))
      assert.equal('Point {}', inspect(setmetatable({}, P)))
      assert.equal('{ p = Point {...} }',
        inspect({ p = setmetatable({ x = 1 }, P) }, { depth = 0 }))
      local c = setmetatable({}, P)
      c.me = c
      assert.equal('<ref *1> Point { me = [Circular *1] }', inspect(c))
      -- A __metatable field does not hide the metatable from inspect.
      assert.equal('Locked { 1 }', inspect(setmetatable({ 1 },
        { __name = 'Locked', __metatable = false })))
    end)

    it('does not run __index, __pairs, __len or a table __tostring', function()
      local trap = function() error('user code ran') end
      local t = setmetatable({ 1, a = 2 }, {
        __index = trap, __newindex = trap, __pairs = trap, __len = trap,
        __lt = trap, __le = trap, __eq = trap, __tostring = trap,
        __call = trap, __concat = trap,
      })
      assert.equal('{ 1, a = 2 }', inspect(t))
      local keys = setmetatable({}, { __lt = trap })
      -- Table keys sort by address: either order, but no __lt.
      local out = inspect({ [keys] = 1, [setmetatable({}, { __lt = trap })] = 2 })
      assert.is_true(out == '{ [{}] = 1, [{}] = 2 }' or
        out == '{ [{}] = 2, [{}] = 1 }', out)
    end)

    it('uses __inspect from the metatable', function()
      local seen
      local mt = {
        __inspect = function(self, opts)
          seen = opts
          return '<money ' .. self.cents .. '>'
        end,
      }
      local m = setmetatable({ cents = 150 }, mt)
      assert.equal('<money 150>', inspect(m))
      assert.equal(2, seen.depth)
      assert.equal(80, seen.breakLength)
      assert.is_false(seen.colors)
      assert.equal('{ price = <money 150> }', inspect({ price = m }))
      assert.equal(1, seen.depth)
      inspect({ price = m }, { depth = 5, colors = true })
      assert.equal(4, seen.depth)
      assert.is_true(seen.colors)
    end)

    it('falls back when __inspect fails or returns a non-string', function()
      local raising = setmetatable({ a = 1 }, {
        __name = 'R', __inspect = function() error('boom') end,
      })
      assert.equal('R { a = 1 }', inspect(raising))
      local silly = setmetatable({ a = 1 }, { __inspect = function() end })
      assert.equal('{ a = 1 }', inspect(silly))
    end)

    it('lets __inspect inspect its own table without recursing', function()
      local t
      t = setmetatable({ a = 1 }, {
        __inspect = function(self) return 'W' .. inspect(self) end,
      })
      assert.equal('W{ a = 1 }', inspect(t))
      assert.equal('{ W{ a = 1 } }', inspect({ t }))
    end)

    it('puts a table on one line only when it fits breakLength', function()
      local x74, x75 = string.rep('x', 74), string.rep('x', 75)
      assert.equal('{ "' .. x74 .. '" }', inspect({ x74 }))
      assert.equal('{\n  "' .. x75 .. '"\n}', inspect({ x75 }))
      -- The key and indentation count too: "  k = " is 6 columns.
      local x68, x69 = string.rep('x', 68), string.rep('x', 69)
      assert.equal('{\n  k = { "' .. x68 .. '" }\n}', inspect({ k = { x68 } }))
      assert.equal('{\n  k = {\n    "' .. x69 .. '"\n  }\n}',
        inspect({ k = { x69 } }))
      assert.equal('{ k = { "' .. x69 .. '" } }',
        inspect({ k = { x69 } }, { breakLength = math.huge }))
      assert.equal('{\n  1\n}', inspect({ 1 }, { breakLength = 0 }))
    end)

    it('breaks nested tables with two spaces per level', function()
      local a40, b40 = string.rep('a', 40), string.rep('b', 40)
      assert.equal(table.concat({
        '{',
        '  a = {',
        '    "' .. a40 .. '",',
        '    "' .. b40 .. '"',
        '  },',
        '  b = 1',
        '}',
      }, '\n'), inspect({ a = { a40, b40 }, b = 1 }))
    end)

    it('fills lines with the items of long sequences', function()
      local t = {}
      for i = 1, 30 do t[i] = i * 100 end
      assert.equal(table.concat({
        '{',
        '  100, 200, 300, 400, 500, 600, 700,',
        '  800, 900, 1000, 1100, 1200, 1300,',
        '  1400, 1500, 1600, 1700, 1800, 1900,',
        '  2000, 2100, 2200, 2300, 2400, 2500,',
        '  2600, 2700, 2800, 2900, 3000',
        '}',
      }, '\n'), inspect(t, { breakLength = 40 }))
      -- Six items or fewer take one line each.
      assert.equal('{\n  100,\n  200\n}',
        inspect({ 100, 200 }, { breakLength = 5 }))
    end)

    it('colours like Node when colors is true', function()
      assert.equal('\27[33m1\27[39m', inspect(1, { colors = true }))
      assert.equal('\27[33mtrue\27[39m', inspect(true, { colors = true }))
      assert.equal('\27[32m"s"\27[39m', inspect('s', { colors = true }))
      assert.equal('\27[1mnil\27[22m', inspect(nil, { colors = true }))
      assert.equal('\27[36m<function: builtin>\27[39m',
        inspect(print, { colors = true }))
      local t = {}
      t.t = t
      assert.equal('\27[36m<ref *1>\27[39m { t = \27[36m[Circular *1]\27[39m }',
        inspect(t, { colors = true }))
      assert.equal('{ a = \27[36m{...}\27[39m }',
        inspect({ a = { 1 } }, { colors = true, depth = 0 }))
      -- Colour codes take no columns: this still fits on one line.
      local x74 = string.rep('x', 74)
      assert.equal('{ \27[32m"' .. x74 .. '"\27[39m }',
        inspect({ x74 }, { colors = true }))
    end)

    it('stops at 200 levels even when depth is math.huge', function()
      local deep = {}
      local cur = deep
      for _ = 1, 100000 do
        cur.n = {}
        cur = cur.n
      end
      local s = inspect(deep, { depth = math.huge, breakLength = math.huge })
      local expected = string.rep('{ n = ', 200) .. '{...}'
        .. string.rep(' }', 200)
      assert.equal(expected, s)
    end)

    it('raises on malformed options', function()
      assert.equal('util.inspect: argument #2 must be a table, got string',
        errorOf(inspect, 1, 'x'))
      assert.equal('util.inspect: opts.depth must be a number, got string',
        errorOf(inspect, 1, { depth = '1' }))
      assert.equal('util.inspect: opts.colors must be a boolean, got number',
        errorOf(inspect, 1, { colors = 1 }))
      assert.equal('util.inspect: opts.breakLength must be a number, got table',
        errorOf(inspect, 1, { breakLength = {} }))
    end)
  end)

  describe('format', function()
    it('substitutes %s with strings, numbers and short tables', function()
      assert.equal('a b', util.format('%s %s', 'a', 'b'))
      assert.equal('42 1.0 nil true',
        util.format('%s %s %s %s', 42, 1.0, nil, true))
      assert.equal('{ a = {...} }', util.format('%s', { a = { b = 1 } }))
      assert.equal('<function: builtin>', util.format('%s', print))
      local T = setmetatable({}, { __tostring = function() return 'T!' end })
      assert.equal('<T!>', util.format('<%s>', T))
      local bad = setmetatable({ 1 }, {
        __tostring = function() error('x') end,
      })
      assert.equal('{ 1 }', util.format('%s', bad))
    end)

    it('substitutes %d and %i with integers', function()
      assert.equal('42', util.format('%d', 42))
      assert.equal('1', util.format('%d', 1.5))
      assert.equal('-1', util.format('%i', -1.5))
      assert.equal('3', util.format('%d', 3.0))
      assert.equal('42', util.format('%d', '42'))
      assert.equal('16', util.format('%i', '0x10'))
      assert.equal('nan', util.format('%d', 'x'))
      assert.equal('nan', util.format('%d', {}))
      assert.equal('nan', util.format('%d', 0 / 0))
      assert.equal('inf -inf', util.format('%d %i', math.huge, -math.huge))
      assert.equal('9223372036854775808', util.format('%d', 2.0 ^ 63))
    end)

    it('substitutes %f with floats', function()
      assert.equal('1.0', util.format('%f', 1))
      assert.equal('1.5', util.format('%f', 1.5))
      assert.equal('2.5', util.format('%f', '2.5'))
      assert.equal('nan', util.format('%f', 'abc'))
    end)

    it('substitutes %j with json.encode, else inspect', function()
      local saved = package.loaded.json
      local ok, err = pcall(function()
        package.loaded.json = {
          encode = function(v) return '[' .. v[1] .. ']' end,
        }
        assert.equal('[7]', util.format('%j', { 7 }))
        package.loaded.json = { encode = function() error('cycle') end }
        assert.equal('{ 7 }', util.format('%j', { 7 }))
        package.loaded.json = {}
        assert.equal('{ 7 }', util.format('%j', { 7 }))
      end)
      package.loaded.json = saved
      assert.is_true(ok, err)
    end)

    it('substitutes %o (depth 4) and %O (default inspect)', function()
      local t = { a = { b = { c = { d = { e = { f = 1 } } } } } }
      assert.equal('{ a = { b = { c = { d = { e = {...} } } } } }',
        util.format('%o', t))
      assert.equal('{ a = { b = { c = {...} } } }', util.format('%O', t))
      assert.equal('"s"', util.format('%O', 's'))
    end)

    it('consumes %c and prints nothing for it', function()
      assert.equal('X', util.format('%cX', 'color: red'))
    end)

    it('handles %% and leftovers like Node', function()
      assert.equal('%%', util.format('%%'))
      assert.equal('% x', util.format('%% %s', 'x'))
      assert.equal('a %s', util.format('%s %s', 'a'))
      assert.equal('%x 1', util.format('%x %s', 1))
      assert.equal('a% 1', util.format('a%', 1))
      assert.equal('%s', util.format('%s'))
      assert.equal('nil|x', util.format('%s|%s', nil, 'x'))
    end)

    it('appends extra arguments separated by spaces', function()
      assert.equal('a b 1 nil { 1 }', util.format('a', 'b', 1, nil, { 1 }))
      assert.equal('1 x', util.format('%d', 1, 'x'))
    end)

    it('inspects everything when the first argument is not a string', function()
      assert.equal('1 b { a = 1 }', util.format(1, 'b', { a = 1 }))
      assert.equal('nil', util.format(nil))
      assert.equal('{}', util.format({}))
      assert.equal('', util.format())
      assert.equal('nil nil', util.format(nil, nil))
    end)
  end)

  describe('isArray', function()
    it('is true for tables whose keys are exactly 1..n', function()
      assert.is_true(util.isArray({}))
      assert.is_true(util.isArray({ 1, 2, 3 }))
      assert.is_true(util.isArray({ [1.0] = 'a', [2] = 'b' }))
      assert.is_true(util.isArray({ 'a', nil }))
      assert.is_true(util.isArray(setmetatable({}, { __index = { 1 } })))
    end)

    it('is false for holes, other keys and non-tables', function()
      assert.is_false(util.isArray({ 1, nil, 3 }))
      assert.is_false(util.isArray({ 1, 2, [4] = 4 }))
      assert.is_false(util.isArray({ a = 1 }))
      assert.is_false(util.isArray({ 1, n = 1 }))
      assert.is_false(util.isArray({ [0] = 1 }))
      assert.is_false(util.isArray({ [1.5] = 1 }))
      assert.is_false(util.isArray('abc'))
      assert.is_false(util.isArray(nil))
    end)
  end)

  describe('deprecate', function()
    it('warns once on stderr and passes calls through', function()
      local calls = 0
      local old = util.deprecate(function(a, b)
        calls = calls + 1
        return a + b, 'second'
      end, 'old() is deprecated, use new()')
      local r1, r2
      local out = captureStderr(function() r1, r2 = old(1, 2) end)
      assert.equal('(luvhost) DeprecationWarning: old() is deprecated,'
        .. ' use new()\n', out)
      assert.equal(3, r1)
      assert.equal('second', r2)
      out = captureStderr(function() r1 = old(2, 2) end)
      assert.equal('', out)
      assert.equal(4, r1)
      assert.equal(2, calls)
    end)

    it('warns once per code across wrappers', function()
      local f = util.deprecate(function() return 'f' end, 'f is old',
        'SPEC_DEP_1')
      local g = util.deprecate(function() return 'g' end, 'g is old',
        'SPEC_DEP_1')
      local out = captureStderr(function()
        assert.equal('f', f())
        assert.equal('g', g())
        assert.equal('f', f())
      end)
      assert.equal('(luvhost) [SPEC_DEP_1] DeprecationWarning: f is old\n', out)
    end)

    it('still calls through when stderr cannot be written', function()
      local f = util.deprecate(function() return 'ok' end, 'odd stderr')
      local saved = io.stderr
      io.stderr = {}
      local ok, r = pcall(f)
      io.stderr = saved
      assert.is_true(ok, r)
      assert.equal('ok', r)
    end)

    it('does not warn until the function is called', function()
      local out = captureStderr(function()
        util.deprecate(function() end, 'unused')
      end)
      assert.equal('', out)
    end)

    it('raises on bad arguments', function()
      assert.equal('util.deprecate: argument #1 must be a function, got number',
        errorOf(util.deprecate, 1, 'm'))
      assert.equal('util.deprecate: argument #2 must be a string, got nil',
        errorOf(util.deprecate, print))
      assert.equal('util.deprecate: argument #3 must be a string, got number',
        errorOf(util.deprecate, print, 'm', 1))
    end)
  end)
end)
