-- url: parsing and formatting URLs and query strings.

local url = require('url')

describe('url', function()
  it('decodes and encodes components', function()
    assert.are.equal('a b/c', url.decode('a%20b%2Fc'))
    assert.are.equal('a+b', url.decode('a+b'))
    assert.are.equal('a b', url.decode('a+b', true))
    assert.are.equal('%zz stays', url.decode('%zz stays'))
    assert.are.equal('a%20b%2Fc%3D%26', url.encode('a b/c=&'))
    assert.are.equal("-_.!~*'()", url.encode("-_.!~*'()"))
    assert.are.equal('42', url.encode(42))
    assert.has_error(function() url.decode(nil) end,
      'url.decode: expected a string, got nil')
  end)

  it('parses query strings, repeated keys becoming arrays', function()
    assert.are.same({ a = { '1', '3' }, b = '2', c = '', ['d e'] = 'f g' },
      url.parseQuery('a=1&b=2&a=3&c&d+e=f%20g'))
    assert.are.same({ x = 'y' }, url.parseQuery('?x=y'))
    assert.are.same({}, url.parseQuery(''))
    assert.are.same({}, url.parseQuery(nil))
    assert.are.same({ a = '=b' }, url.parseQuery('a==b'))
  end)

  it('formats query strings with sorted keys', function()
    assert.are.equal('a=1&b=x&b=y&c=%20%26', url.formatQuery({ c = ' &', a = 1, b = { 'x', 'y' } }))
    assert.are.equal('', url.formatQuery({}))
  end)

  it('parses absolute URLs into their parts', function()
    local u = url.parse('HTTP://user:p%40ss@Example.COM:8080/a/b?x=1&y=2#frag')
    assert.are.equal('http:', u.protocol)
    assert.are.equal('user:p@ss', u.auth)
    assert.are.equal('example.com:8080', u.host)
    assert.are.equal('example.com', u.hostname)
    assert.are.equal(8080, u.port)
    assert.are.equal('/a/b', u.pathname)
    assert.are.equal('?x=1&y=2', u.search)
    assert.are.equal('x=1&y=2', u.query)
    assert.are.equal('#frag', u.hash)
    assert.are.equal('/a/b?x=1&y=2', u.path)
  end)

  it('parses IPv6 hosts, missing paths and relative URLs', function()
    local v6 = url.parse('http://[::1]:9000')
    assert.are.equal('::1', v6.hostname)
    assert.are.equal(9000, v6.port)
    assert.are.equal('/', v6.pathname)
    local bare = url.parse('http://host')
    assert.is_nil(bare.port)
    assert.are.equal('/', bare.path)
    local rel = url.parse('/p?q=1', true)
    assert.is_nil(rel.protocol)
    assert.is_nil(rel.host)
    assert.are.equal('/p', rel.pathname)
    assert.are.same({ q = '1' }, rel.query)
    assert.are.same({}, url.parse('/p', true).query)
  end)

  it('formats what it parses', function()
    for _, s in ipairs({ 'http://example.com:8080/a/b?x=1#h', 'https://[::1]:443/',
      'http://u:p@h/p', '/only/path?q' }) do
      assert.are.equal(s, url.format(url.parse(s)))
    end
    assert.are.equal('http://h:1/p?a=1&b=2',
      url.format({ protocol = 'http', hostname = 'h', port = 1, pathname = '/p',
        query = { b = 2, a = 1 } }))
  end)

  it('raises for a non-string to parse', function()
    assert.has_error(function() url.parse(42) end, 'url.parse: expected a string, got number')
  end)
end)
