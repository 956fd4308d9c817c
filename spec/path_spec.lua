-- Expected values were produced by Node v20's path.posix (node -e) and
-- pasted here as literals; none of them is computed by the module under test.

local path = require('path')

-- Call fn(...) and return the error message it raises (or fail).
local function errorOf(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, 'expected an error')
  return err
end

-- Run fn with package.loaded.uv and os.getenv replaced, then restore both.
local function withCwd(uv, pwd, fn)
  local savedUv, savedGetenv = package.loaded.uv, os.getenv
  package.loaded.uv = uv
  os.getenv = function(name)
    if name == 'PWD' then return pwd end
    return savedGetenv(name)
  end
  local ok, err = pcall(fn)
  package.loaded.uv, os.getenv = savedUv, savedGetenv
  if not ok then error(err, 0) end
end

local fakeUv = { cwd = function() return '/x/y' end }

describe('path', function()
  it('has POSIX constants and aliases', function()
    assert.equal('/', path.sep)
    assert.equal(':', path.delimiter)
    assert.equal(path, path.posix)
    assert.equal(path, path.posix.posix)
  end)

  describe('normalize', function()
    local cases = {
      { "", "." },
      { ".", "." },
      { "..", ".." },
      { "/", "/" },
      { "//", "/" },
      { "///", "/" },
      { "/a//b", "/a/b" },
      { "/foo/bar//baz/asdf/quux/..", "/foo/bar/baz/asdf" },
      { "./", "./" },
      { "../", "../" },
      { "a/..", "." },
      { "a/../", "./" },
      { "../../a", "../../a" },
      { "/../a", "/a" },
      { "a/./b/", "a/b/" },
      { "//a", "/a" },
      { "///a//b/", "/a/b/" },
      { "a/b/../../..", ".." },
      { "./../a", "../a" },
      { ".../a", ".../a" },
      { "a/...", "a/..." },
      { "/a/b/c/../../../..", "/" },
      { "foo/../../bar", "../bar" },
      { "a/b/.", "a/b" },
      { "a/b/./", "a/b/" },
    }
    for _, c in ipairs(cases) do
      it(('%q -> %q'):format(c[1], c[2]), function()
        assert.equal(c[2], path.normalize(c[1]))
      end)
    end
  end)

  describe('dirname', function()
    local cases = {
      { "/foo/bar/baz/asdf/quux", "/foo/bar/baz/asdf" },
      { "", "." },
      { "/", "/" },
      { "//", "/" },
      { "///", "/" },
      { "a", "." },
      { "a/", "." },
      { "/a", "/" },
      { "//a", "//" },
      { "///a", "//" },
      { "a/b", "a" },
      { "a//b", "a/" },
      { "/a/b/", "/a" },
      { "/a/b//", "/a" },
      { ".", "." },
      { "..", "." },
      { "./a", "." },
      { "../a", ".." },
      { "/a//b", "/a/" },
    }
    for _, c in ipairs(cases) do
      it(('%q -> %q'):format(c[1], c[2]), function()
        assert.equal(c[2], path.dirname(c[1]))
      end)
    end
  end)

  describe('basename', function()
    local cases = {
      { "/foo/bar/baz/asdf/quux.html", "quux.html" },
      { "", "" },
      { "/", "" },
      { "//", "" },
      { "a/", "a" },
      { "a//", "a" },
      { "/a/b/", "b" },
      { "a", "a" },
      { ".", "." },
      { "..", ".." },
      { "/a/.", "." },
      { "a.b", "a.b" },
    }
    for _, c in ipairs(cases) do
      it(('%q -> %q'):format(c[1], c[2]), function()
        assert.equal(c[2], path.basename(c[1]))
      end)
    end

    local withSuffix = {
      { "/foo/bar/baz/asdf/quux.html", ".html", "quux" },
      { "/foo/bar/baz/asdf/quux.HTML", ".html", "quux.HTML" },
      { "aaa", "a", "aa" },
      { "a", "a", "" },
      { "/a", "a", "a" },
      { "x/ab/", "xab", "ab/" },
      { "/", "x", "/" },
      { "//", "/", "//" },
      { "a.js/", ".js", "a" },
      { ".js", ".js", "" },
      { "/.js", ".js", ".js" },
      { "a.js", "", "a.js" },
      { "file.tar.gz", ".gz", "file.tar" },
      { "file.tar.gz", "tar.gz", "file." },
      { "a/b.c", "b.c", "b.c" },
    }
    for _, c in ipairs(withSuffix) do
      it(('%q, %q -> %q'):format(c[1], c[2], c[3]), function()
        assert.equal(c[3], path.basename(c[1], c[2]))
      end)
    end

    it('treats a nil suffix as no suffix', function()
      assert.equal('quux.html', path.basename('/a/quux.html', nil))
    end)
  end)

  describe('extname', function()
    local cases = {
      { "index.html", ".html" },
      { "index.coffee.md", ".md" },
      { "index.", "." },
      { "index", "" },
      { ".index", "" },
      { ".index.md", ".md" },
      { "", "" },
      { ".", "" },
      { "..", "" },
      { "...", "." },
      { ".bashrc", "" },
      { "a.", "." },
      { "a..", "." },
      { "..a", ".a" },
      { "a.b/", ".b" },
      { "a.b//", ".b" },
      { "/a.b/c", "" },
      { "a/.b", "" },
      { "a.b.c", ".c" },
      { "/x.y/..", "" },
    }
    for _, c in ipairs(cases) do
      it(('%q -> %q'):format(c[1], c[2]), function()
        assert.equal(c[2], path.extname(c[1]))
      end)
    end
  end)

  describe('join', function()
    local cases = {
      { { "/foo", "bar", "baz/asdf", "quux", ".." }, "/foo/bar/baz/asdf" },
      { {  }, "." },
      { { "" }, "." },
      { { "", "" }, "." },
      { { "a", "" }, "a" },
      { { "", "a" }, "a" },
      { { "/", "a" }, "/a" },
      { { "a/", "/b" }, "a/b" },
      { { ".", "." }, "." },
      { { "..", "a" }, "../a" },
      { { "//a", "b" }, "/a/b" },
      { { "a", "../..", "b" }, "../b" },
      { { "/a", "../.." }, "/" },
      { { "a//", "//b//" }, "a/b/" },
      { { "a", "b/" }, "a/b/" },
    }
    for _, c in ipairs(cases) do
      it(table.concat(c[1], ', ') .. ' -> ' .. c[2], function()
        assert.equal(c[2], path.join(table.unpack(c[1])))
      end)
    end
  end)

  describe('resolve', function()
    local cases = {
      { { "/foo/bar", "./baz" }, "/foo/bar/baz" },
      { { "/foo/bar", "/tmp/file/" }, "/tmp/file" },
      { { "/a", "", "b" }, "/a/b" },
      { { "/", ".." }, "/" },
      { { "//a" }, "/a" },
      { { "/a/b", "../c/./d" }, "/a/c/d" },
      { { "/a", "/b", "c/" }, "/b/c" },
      { { "/a/b/c", "..", "..", "..", ".." }, "/" },
    }
    for _, c in ipairs(cases) do
      it(table.concat(c[1], ', ') .. ' -> ' .. c[2], function()
        -- Absolute results never consult the current directory.
        local asked = 0
        local uv = { cwd = function() asked = asked + 1; return '/cwd' end }
        withCwd(uv, '/pwd', function()
          assert.equal(c[2], path.resolve(table.unpack(c[1])))
        end)
        assert.equal(0, asked)
      end)
    end

    it('prepends uv.cwd() to relative paths', function()
      withCwd(fakeUv, '/from/pwd', function()
        assert.equal('/x/y', path.resolve())
        assert.equal('/x/y', path.resolve(''))
        assert.equal('/x/y/a/c', path.resolve('a/b', '../c'))
        assert.equal('/', path.resolve('..', '..', '..'))
      end)
    end)

    it('falls back to $PWD when uv has no usable cwd', function()
      withCwd({}, '/from/pwd', function()
        assert.equal('/from/pwd/a', path.resolve('a'))
      end)
      withCwd({ cwd = function() return nil, 'ENOENT: gone', 'ENOENT' end },
        '/from/pwd', function()
          assert.equal('/from', path.resolve('..'))
        end)
    end)

    it('raises when no current directory is known', function()
      withCwd({}, nil, function()
        assert.equal(
          'path.resolve: cannot determine the current directory',
          errorOf(path.resolve, 'a'))
        assert.equal('/a', path.resolve('a', '/a'))
      end)
    end)
  end)

  describe('relative', function()
    local cases = {
      { "/data/orandea/test/aaa", "/data/orandea/impl/bbb", "../../impl/bbb" },
      { "/a", "/a", "" },
      { "/", "/a/b", "a/b" },
      { "/a/b", "/", "../.." },
      { "/a/b/c", "/a/b", ".." },
      { "/a/bc", "/a/b", "../b" },
      { "/a/b", "/a/bc", "../bc" },
      { "/a//b/", "/a/b", "" },
      { "/foo/bar", "/foo/bar/baz/", "baz" },
      { "/foo/bar/baz", "/foo/bar/baz-quux", "../baz-quux" },
      { "/", "/", "" },
    }
    for _, c in ipairs(cases) do
      it(('%q, %q -> %q'):format(c[1], c[2], c[3]), function()
        assert.equal(c[3], path.relative(c[1], c[2]))
      end)
    end

    it('resolves relative arguments against the current directory', function()
      withCwd(fakeUv, nil, function()
        assert.equal('../b', path.relative('a', 'b'))
        assert.equal('z', path.relative('', '/x/y/z'))
        assert.equal('y', path.relative('/x', ''))
        assert.equal('../../b', path.relative('a', '../b'))
        assert.equal('', path.relative('.', '/x/y/'))
        assert.equal('', path.relative('', ''))
      end)
    end)
  end)

  describe('isAbsolute', function()
    it('is true only for a leading slash', function()
      assert.is_true(path.isAbsolute('/foo/bar'))
      assert.is_true(path.isAbsolute('/baz/..'))
      assert.is_true(path.isAbsolute('//'))
      assert.is_false(path.isAbsolute('qux/'))
      assert.is_false(path.isAbsolute('.'))
      assert.is_false(path.isAbsolute(''))
    end)
  end)

  describe('parse', function()
    -- { input, root, dir, base, ext, name }
    local cases = {
      { "/home/user/dir/file.txt", "/", "/home/user/dir", "file.txt", ".txt",
        "file" },
      { "", "", "", "", "", "" },
      { "/", "/", "/", "", "", "" },
      { "//", "/", "/", "", "", "" },
      { "a", "", "", "a", "", "a" },
      { "a/", "", "", "a", "", "a" },
      { "/a", "/", "/", "a", "", "a" },
      { "//a", "/", "/", "a", "", "a" },
      { "a/b.c", "", "a", "b.c", ".c", "b" },
      { "./a.b", "", ".", "a.b", ".b", "a" },
      { ".bashrc", "", "", ".bashrc", "", ".bashrc" },
      { "/..", "/", "/", "..", ".", "." },
      { "..", "", "", "..", "", ".." },
      { "/a/b/", "/", "/a", "b", "", "b" },
      { "a//b", "", "a/", "b", "", "b" },
      { "/.a.b", "/", "/", ".a.b", ".b", ".a" },
      { "/a/b.c.d/", "/", "/a", "b.c.d", ".d", "b.c" },
    }
    for _, c in ipairs(cases) do
      it(('%q'):format(c[1]), function()
        assert.same({ root = c[2], dir = c[3], base = c[4], ext = c[5],
          name = c[6] }, path.parse(c[1]))
      end)
    end
  end)

  describe('format', function()
    local cases = {
      { { root = "/ignored", dir = "/home/user/dir", base = "file.txt" },
        "/home/user/dir/file.txt" },
      { { root = "/", base = "file.txt", ext = "ignored" }, "/file.txt" },
      { { root = "/", name = "file", ext = ".txt" }, "/file.txt" },
      { { root = "/", name = "file", ext = "txt" }, "/file.txt" },
      { {  }, "" },
      { { dir = "d" }, "d/" },
      { { root = "/x/", name = "a", ext = ".b" }, "/x/a.b" },
      { { dir = "", root = "", base = "x" }, "x" },
      { { dir = "/", base = "a" }, "//a" },
      { { dir = "a", root = "a", base = "b" }, "ab" },
    }
    for i, c in ipairs(cases) do
      it('case ' .. i .. ' -> ' .. c[2], function()
        assert.equal(c[2], path.format(c[1]))
      end)
    end

    it('inverts parse for ordinary paths', function()
      for _, p in ipairs({ '/home/user/dir/file.txt', 'a/b.c', '/a', 'x' }) do
        assert.equal(p, path.format(path.parse(p)))
      end
    end)
  end)

  describe('toNamespacedPath', function()
    it('returns its argument unchanged', function()
      assert.equal('/a/../b', path.toNamespacedPath('/a/../b'))
      assert.equal(42, path.toNamespacedPath(42))
    end)
  end)

  describe('argument errors', function()
    it('name the function, the argument and the type', function()
      assert.equal('path.join: argument #2 must be a string, got number',
        errorOf(path.join, 'a', 1))
      assert.equal('path.join: argument #3 must be a string, got nil',
        errorOf(path.join, 'a', 'b', nil))
      assert.equal('path.resolve: argument #1 must be a string, got table',
        errorOf(path.resolve, {}, '/a'))
      assert.equal('path.normalize: argument #1 must be a string, got nil',
        errorOf(path.normalize))
      assert.equal('path.basename: argument #2 must be a string, got boolean',
        errorOf(path.basename, 'a', true))
      assert.equal('path.dirname: argument #1 must be a string, got number',
        errorOf(path.dirname, 1))
      assert.equal('path.extname: argument #1 must be a string, got nil',
        errorOf(path.extname))
      assert.equal('path.isAbsolute: argument #1 must be a string, got number',
        errorOf(path.isAbsolute, 0))
      assert.equal('path.relative: argument #2 must be a string, got nil',
        errorOf(path.relative, '/a'))
      assert.equal('path.parse: argument #1 must be a string, got table',
        errorOf(path.parse, {}))
      assert.equal('path.format: argument #1 must be a table, got string',
        errorOf(path.format, '/a'))
      assert.equal("path.format: field 'ext' must be a string, got number",
        errorOf(path.format, { name = 'a', ext = 1 }))
    end)

    it('blame the caller', function()
      local err = errorOf(function()
        local r = path.join('a', 1)
        return r
      end)
      assert.truthy(err:find('path_spec%.lua:%d+: path%.join: argument #2'),
        err)
      err = errorOf(function()
        local r = path.format(1)
        return r
      end)
      assert.truthy(err:find('path_spec%.lua:%d+: path%.format: '), err)
    end)
  end)
end)
