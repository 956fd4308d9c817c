-- Specs for lib/lua/json.lua. Pure Lua + lua-cjson: no luvhost binary needed.


describe('json module', function()

  it("does not change the settings of the shared 'cjson' module", function()
    local cjson = require('cjson')
    require('json')
    assert.is_true(cjson.decode_invalid_numbers())
    assert.are.equal(14, cjson.encode_number_precision())
    assert.are.equal('{}', cjson.encode({}))
  end)
end)

local json = require('json')

-- Encodes and asserts success.
local function enc(value, options)
  local s, err = json.encode(value, options)
  assert(s, err)
  assert.is_nil(err)
  return s
end

-- Decodes and asserts success.
local function dec(s)
  local v, err = json.decode(s)
  assert(v ~= nil, err)
  assert.is_nil(err)
  return v
end

-- Asserts that encoding fails with a message matching `pattern`.
local function encFails(value, pattern)
  local s, err = json.encode(value)
  assert.is_nil(s)
  assert.is_string(err)
  assert.matches(pattern, err)
  return err
end

-- Asserts that decoding fails with exactly `message`.
local function decFails(text, message)
  local v, err = json.decode(text)
  assert.is_nil(v)
  assert.are.equal(message, err)
end

describe('json.encode', function()
  describe('scalars', function()
    it('encodes strings, booleans, nil and json.null', function()
      assert.are.equal('"hello"', enc('hello'))
      assert.are.equal('""', enc(''))
      assert.are.equal('true', enc(true))
      assert.are.equal('false', enc(false))
      assert.are.equal('null', enc(nil))
      assert.are.equal('null', enc(json.null))
    end)

    it('escapes quotes, backslashes and control characters', function()
      assert.are.equal([["a\"b\\c"]], enc('a"b\\c'))
      assert.are.equal([["\n\r\t\b\f"]], enc('\n\r\t\b\f'))
      assert.are.equal([["\u0000\u0001\u001f\u007f"]], enc('\0\1\31\127'))
    end)

    it("does not escape '/' (unlike cjson)", function()
      assert.are.equal('"http://x.org/a/b"', enc('http://x.org/a/b'))
      -- a backslash followed by a slash: the backslash is escaped, the
      -- slash is not
      assert.are.equal([["a\\/b"]], enc('a\\/b'))
      assert.are.equal('a\\/b', dec(enc('a\\/b')))
      assert.are.equal([["\\\\/"]], enc('\\\\/'))
    end)

    it('writes UTF-8 as is', function()
      assert.are.equal('"héllo wörld ✓ 😀"', enc('héllo wörld ✓ 😀'))
      assert.are.equal('{"clé":"valeur"}', enc({ ['clé'] = 'valeur' }))
    end)

    it('writes integers exactly, including beyond 14 digits', function()
      assert.are.equal('0', enc(0))
      assert.are.equal('-42', enc(-42))
      assert.are.equal('99999999999999', enc(99999999999999))
      assert.are.equal('123456789012345', enc(123456789012345))
      assert.are.equal('9007199254740993', enc(9007199254740993))
      assert.are.equal('9223372036854775807', enc(math.maxinteger))
      assert.are.equal('-9223372036854775808', enc(math.mininteger))
      assert.are.equal('[1,123456789012345678]', enc({ 1, 123456789012345678 }))
    end)

    it('writes floats with the fewest digits that read back exactly', function()
      assert.are.equal('1.5', enc(1.5))
      assert.are.equal('0.1', enc(0.1))
      assert.are.equal('0.30000000000000004', enc(0.1 + 0.2))
      assert.are.equal('3.141592653589793', enc(math.pi))
      assert.are.equal('100', enc(100.0))
      assert.are.equal('9007199254740992', enc(2.0 ^ 53))
      assert.are.equal('1e+300', enc(1e300))
      assert.are.equal('-2.5e-08', enc(-2.5e-8))
      for _, x in ipairs({ 0.1 + 0.2, math.pi, 1 / 3, 2 / 3, 1e-300, 5e-324,
        1.7976931348623157e308, 123456.789e3, -0.000123456789012345 }) do
        assert.are.equal(x, dec(enc(x)))
        assert.are.equal(x, dec(enc({ x }))[1])
      end
    end)

    it('fails on NaN and infinity', function()
      encFails(0 / 0, '^json.encode: cannot encode NaN or infinity at %$$')
      encFails(math.huge, 'NaN or infinity')
      encFails({ a = { -math.huge } }, 'NaN or infinity at %$%.a%[1%]$')
    end)

    it('fails on functions, threads and userdata, saying where', function()
      encFails(print, '^json.encode: cannot encode a function value at %$$')
      encFails({ list = { 1, 2, coroutine.create(print) } },
        '^json.encode: cannot encode a thread value at %$%.list%[3%]$')
      encFails({ ['a key'] = { f = io.stdout } },
        'cannot encode a userdata value at %$%["a key"%]%.f$')
    end)
  end)

  describe('arrays and objects', function()
    it('encodes sequences as arrays and string-keyed tables as objects',
      function()
        assert.are.equal('[1,2,3]', enc({ 1, 2, 3 }))
        assert.are.equal('["a",["b",["c"]]]', enc({ 'a', { 'b', { 'c' } } }))
        assert.are.equal('{"a":1}', enc({ a = 1 }))
        assert.are.equal('{"a":{"b":{"c":[true,false]}}}',
          enc({ a = { b = { c = { true, false } } } }))
      end)

    it('encodes an empty plain table as an object', function()
      assert.are.equal('{}', enc({}))
      assert.are.equal('[{},{}]', enc({ {}, {} }))
    end)

    it('encodes json.array() and json.empty_array as []', function()
      assert.are.equal('[]', enc(json.array()))
      assert.are.equal('[]', enc(json.array({})))
      assert.are.equal('[]', enc(json.empty_array))
      assert.are.equal('{"items":[]}', enc({ items = json.array() }))
      assert.are.equal('[[],{},[]]',
        enc({ json.array(), {}, json.empty_array }))
    end)

    it('writes holes and json.null as null', function()
      assert.are.equal('[1,null,3]', enc({ 1, nil, 3 }))
      assert.are.equal('[1,null,3]', enc({ 1, json.null, 3 }))
      assert.are.equal('[null,null,null,null,5]', enc(json.array({ [5] = 5 })))
      assert.are.equal('{"a":null}', enc({ a = json.null }))
    end)

    it('fails on a very sparse plain table, unless marked as array',
      function()
        encFails({ [1] = 1, [100] = 2 },
          'sparse array %(largest index 100 but only 2 values; wrap it ' ..
          'with json.array%(%)')
        local s = enc(json.array({ [1] = 1, [100] = 2 }))
        assert.are.equal(100, #dec(s))
        assert.matches('^%[1,null,null,', s)
      end)

    it('fails on a marked array with non-index keys', function()
      encFails(json.array({ 1, 2, name = 'x' }),
        'table marked as array has a non%-index key "name" at %$$')
    end)

    it('writes number keys of mixed tables as strings', function()
      assert.same({ ['1'] = 'a', x = 'b' }, dec(enc({ 'a', x = 'b' })))
      assert.are.equal('{"1.5":true}', enc({ [1.5] = true }))
      assert.are.equal('{"-3":true}', enc({ [-3] = true }))
      assert.are.equal('{"0":true}', enc({ [0] = true }))
    end)

    it('fails when a number key and a string key collide', function()
      encFails({ [1] = 'a', ['1'] = 'b' }, 'duplicate key "1"')
    end)

    it('fails on keys that are not strings or numbers', function()
      encFails({ [true] = 1 }, 'cannot encode a table key of type boolean')
      encFails({ a = { [{}] = 1 } },
        'cannot encode a table key of type table at %$%.a$')
      encFails({ [math.huge] = 1 }, 'NaN or infinity as a key')
    end)

    it('reports a cycle', function()
      local t = { name = 'loop' }
      t.child = { parent = t }
      encFails(t, '^json.encode: cannot encode a table that contains ' ..
        'itself %(cycle%)$')
      local a = {}
      a[1] = a
      encFails(a, 'cycle')
    end)

    it('allows 1000 levels of nesting and refuses 1001', function()
      local function nest(levels, leaf)
        local root = {}
        local t = root
        for _ = 2, levels do
          t[1] = {}
          t = t[1]
        end
        t[1] = leaf
        return root
      end
      local s = enc(nest(1000, 1))
      assert.are.equal(('['):rep(1000) .. '1' .. (']'):rep(1000), s)
      -- same depth through the exact writer (a big integer forces it)
      s = enc(nest(1000, math.maxinteger))
      assert.are.equal(('['):rep(1000) .. '9223372036854775807' ..
        (']'):rep(1000), s)
      encFails(nest(1001, 1),
        '^json.encode: nesting deeper than 1000 levels$')
      -- shared (not cyclic) subtrees are fine
      local shared = { 1 }
      assert.are.equal('[[1],[1]]', enc({ shared, shared }))
    end)

    it('ignores metatables other than the array marker', function()
      local obj = setmetatable({ x = 1 }, { __index = function() return 0 end })
      assert.are.equal('{"x":1}', enc(obj))
    end)

    it('gives the same text through cjson and through the exact writer',
      function()
        -- The big integer at the end forces the Lua writer for the whole
        -- value; the rest must read exactly as cjson's output.
        local inner = { 1, -2.5, 'x/y "q"', true, false, json.null,
          { k = 'v' }, {}, json.array(), 'é\n', 100.0, 0.1 }
        local fast = enc(inner)
        local slow = enc({ inner, math.maxinteger })
        assert.are.equal('[1,-2.5,"x/y \\"q\\"",true,false,null,{"k":"v"},' ..
          '{},[],"é\\n",100,0.1]', fast)
        assert.are.equal('[' .. fast .. ',9223372036854775807]', slow)
      end)
  end)

  describe('pretty printing', function()
    it('indents with two spaces for pretty = true', function()
      assert.are.equal('[\n  1,\n  [\n    2,\n    3\n  ],\n  {\n    "a": ' ..
        'true\n  }\n]', enc({ 1, { 2, 3 }, { a = true } }, { pretty = true }))
    end)

    it('takes an indent string or a number of spaces', function()
      assert.are.equal('{\n\t"a": [\n\t\t1\n\t]\n}',
        enc({ a = { 1 } }, { indent = '\t' }))
      assert.are.equal('[\n    1\n]', enc({ 1 }, { indent = 4 }))
    end)

    it('keeps empty containers and scalars on one line', function()
      assert.are.equal('[\n  {},\n  [],\n  null,\n  "s"\n]',
        enc({ {}, json.array(), json.null, 's' }, { pretty = true }))
      assert.are.equal('{}', enc({}, { pretty = true }))
      assert.are.equal('[]', enc(json.array(), { pretty = true }))
      assert.are.equal('42', enc(42, { pretty = true }))
    end)

    it('is compact for an empty indent, as JSON.stringify', function()
      assert.are.equal('[1,[2]]', enc({ 1, { 2 } }, { indent = '' }))
      assert.are.equal('[1,[2]]', enc({ 1, { 2 } }, { indent = 0 }))
      assert.are.equal('[1,[2]]', enc({ 1, { 2 } }, {}))
    end)

    it('decodes back to the same value', function()
      local value = { name = 'x', list = { 1, 2.5, { deep = json.array() } },
        none = json.null, big = 2 ^ 60 }
      assert.same(dec(enc(value)), dec(enc(value, { pretty = true })))
    end)

    it('raises on bad options (misuse)', function()
      assert.has_error(function()
        json.encode({}, 'pretty')
      end)
      assert.has_error(function()
        json.encode({}, { indent = -1 })
      end)
      assert.has_error(function()
        json.encode({}, { indent = 1.5 })
      end)
      assert.has_error(function()
        json.encode({}, { indent = true })
      end)
    end)
  end)
end)

describe('json.decode', function()
  it('decodes objects, arrays and scalars', function()
    assert.same({ a = 1, b = { true, false, 'x' }, c = { d = 'e' } },
      dec('{"a":1,"b":[true,false,"x"],"c":{"d":"e"}}'))
    assert.are.equal('str', dec('"str"'))
    assert.are.equal(true, dec('true'))
    assert.are.equal(false, dec('false'))
    assert.are.equal(12, dec(' \t\r\n12 \n'))
  end)

  it('maps null to json.null (which is cjson.null)', function()
    assert.are.equal(json.null, dec('null'))
    assert.are.equal(require('cjson').null, json.null)
    local t = dec('{"a":null,"b":[null,1]}')
    assert.are.equal(json.null, t.a)
    assert.are.equal(json.null, t.b[1])
    assert.are.equal(2, #t.b)
  end)

  it('decodes integral numbers within 2^53 as integers, others as floats',
    function()
      local cases = {
        { '1', 1, 'integer' },
        { '-7', -7, 'integer' },
        { '1.0', 1, 'integer' },
        { '1e2', 100, 'integer' },
        { '0', 0, 'integer' },
        { '9007199254740991', 9007199254740991, 'integer' },
        { '-9007199254740991', -9007199254740991, 'integer' },
        { '9007199254740993', 9007199254740992.0, 'float' },
        { '1e20', 1e20, 'float' },
        { '1.5', 1.5, 'float' },
        { '-0.25', -0.25, 'float' },
        { '1e400', math.huge, 'float' },
      }
      for _, case in ipairs(cases) do
        local v = dec(case[1])
        assert.are.equal(case[2], v, case[1])
        assert.are.equal(case[3], math.type(v), case[1])
        local inArray = dec('[' .. case[1] .. ']')[1]
        local inObject = dec('{"n":' .. case[1] .. '}').n
        assert.are.equal(case[3], math.type(inArray), case[1])
        assert.are.equal(case[3], math.type(inObject), case[1])
      end
    end)

  it('decodes \\u escapes, including surrogate pairs, to UTF-8', function()
    assert.are.equal('é', dec('"\\u00e9"'))
    assert.are.equal('😀', dec('"\\ud83d\\ude00"'))
    assert.are.equal('a\0b', dec('"a\\u0000b"'))
    assert.are.equal('/"\\\b\f\n\r\t', dec('"\\/\\"\\\\\\b\\f\\n\\r\\t"'))
    assert.are.equal('déjà vu ✓', dec('"déjà vu ✓"'))
  end)

  it('marks arrays (including empty ones) and leaves objects plain',
    function()
      local t = dec('{"list":[1,2],"empty":[],"obj":{},"nested":[[],[[]]]}')
      assert.is_true(json.isArray(t.list))
      assert.is_true(json.isArray(t.empty))
      assert.is_true(json.isArray(t.nested))
      assert.is_true(json.isArray(t.nested[1]))
      assert.is_true(json.isArray(t.nested[2][1]))
      assert.is_false(json.isArray(t.obj))
      assert.is_false(json.isArray(t))
      assert.are.equal(0, #t.empty)
      assert.is_nil(next(t.empty))
      assert.are.equal(2, #t.nested)
    end)

  it('finds empty arrays whatever the whitespace, and not inside strings',
    function()
      local t = dec('{"a":[ ],"b":[\n\t],"s":"[]","q":"\\"[ ]\\\\","o":{}}')
      assert.is_true(json.isArray(t.a))
      assert.is_true(json.isArray(t.b))
      assert.are.equal('[]', t.s)
      assert.are.equal('"[ ]\\', t.q)
      assert.is_false(json.isArray(t.o))
      assert.are.equal('[]', enc(t.a))
      -- an escaped quote must not end the string for the scan
      local quoted = dec('["\\"", [], "a\\\\", []]')
      assert.are.equal('"', quoted[1])
      assert.is_true(json.isArray(quoted[2]))
      assert.are.equal('a\\', quoted[3])
      assert.is_true(json.isArray(quoted[4]))
      local list = dec('[[], "x", {"k": []}, [1]]')
      assert.are.equal(4, #list)
      assert.are.equal('x', list[2])
      assert.are.equal(1, list[4][1])
      assert.is_true(json.isArray(list[3].k))
    end)

  it('keeps a decoded array an array after it is emptied', function()
    local t = dec('{"items":[1]}')
    table.remove(t.items)
    assert.are.equal('{"items":[]}', enc(t))
  end)

  describe('errors', function()
    it('returns nil and a message saying what and where', function()
      decFails('[1, x]', 'json.decode: Expected value but found invalid ' ..
        'token at character 5')
      decFails('[1,2,', 'json.decode: Expected value but found end of ' ..
        'input at character 6')
      decFails('{"a":1,}', "json.decode: Expected object key string but " ..
        "found '}' at character 8")
      decFails('{"a" 1}', 'json.decode: Expected colon but found number ' ..
        'at character 6')
      decFails('[1]x', 'json.decode: Expected the end but found invalid ' ..
        'token at character 4')
      decFails('"abc', 'json.decode: Expected value but found unexpected ' ..
        'end of string at character 5')
      decFails('', 'json.decode: Expected value but found end of input at ' ..
        'character 1')
    end)

    it('reports positions in the original text when it has empty arrays',
      function()
        decFails('[[], [], x]', 'json.decode: Expected value but found ' ..
          'invalid token at character 10')
        decFails('{"a": [], }', "json.decode: Expected object key string " ..
          "but found '}' at character 11")
      end)

    it('rejects what JSON does not allow', function()
      for _, text in ipairs({ 'NaN', 'Infinity', '-Infinity', '0x10', '01',
        '.5', "'single'", '{a:1}', '[1,]', '"\\ud83d"', 'tru', 'nul' }) do
        local v, err = json.decode(text)
        assert.is_nil(v, text)
        assert.matches('^json.decode: ', err, 1, false, text)
      end
    end)

    it('raises when given a non-string (misuse)', function()
      for _, bad in ipairs({ 42, true, {}, print }) do
        local ok, err = pcall(json.decode, bad)
        assert.is_false(ok)
        assert.matches("bad argument #1 to 'json.decode' %(string expected",
          err)
      end
      assert.has_error(function()
        json.decode(nil)
      end)
    end)
  end)
end)

describe('round trips', function()
  it('encode(decode(s)) gives s back for order-independent texts', function()
    for _, s in ipairs({
      '[]', '{}', '[[],{}]', '{"a":[]}', '[1,2.5,"x",true,false,null]',
      '{"a":{"b":{"c":[[],[{}],[[]]]}}}', '["[]","{}","\\"[]\\""]',
      '[9007199254740991,-9007199254740991,0.1,1e+300]',
      '"\\u0000\\u001f"', '"é😀/"', '[{"k":[1,[2,[3,[]]]]}]',
    }) do
      assert.are.equal(s, enc(dec(s)))
    end
  end)

  it('decode(encode(v)) gives v back for nested values', function()
    local value = {
      name = 'luvhost', version = { 5, 4 }, tags = json.array(),
      nested = { a = { b = { c = { 'deep', 1.25, -3, json.null } } } },
      unicode = '日本語 😀', flags = { on = true, off = false },
      numbers = { 0, 1, -1, 0.5, 1e-9, 2 ^ 40, 9007199254740991 },
    }
    local back = dec(enc(value))
    assert.same(value, back)
    assert.is_true(json.isArray(back.tags))
    assert.are.equal('integer', math.type(back.numbers[7]))
  end)
end)

describe('json.array', function()
  it('marks and returns the same table', function()
    local t = { 1, 2 }
    assert.are.equal(t, json.array(t))
    assert.is_true(json.isArray(t))
    assert.are.equal(t, json.array(t)) -- marking twice is fine
  end)

  it('raises on a non-table or a table with another metatable', function()
    assert.has_error(function()
      json.array('x')
    end)
    assert.has_error(function()
      json.array(setmetatable({}, {}))
    end)
  end)

  it('json.empty_array is an array and cannot be modified', function()
    assert.is_true(json.isArray(json.empty_array))
    assert.are.equal(json.empty_array, json.array(json.empty_array))
    assert.has_error(function()
      json.empty_array[1] = 'x'
    end)
    assert.is_nil(next(json.empty_array))
  end)

  it('isArray is false for plain tables and non-tables', function()
    assert.is_false(json.isArray({}))
    assert.is_false(json.isArray({ 1, 2 }))
    assert.is_false(json.isArray('[]'))
    assert.is_false(json.isArray(nil))
  end)
end)
