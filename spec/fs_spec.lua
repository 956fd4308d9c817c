-- fs: the three forms of each function, errors with Node's fields, large
-- files streamed with bounded memory, concurrency, watching.

local helper = require('spec.helper')
local fs = require('fs')
local net = require('net')
local coro = require('coro')
local timers = require('timers')

local run = helper.run

local dir, cleanup

before_each(function() dir, cleanup = helper.tmpdir() end)
after_each(function() cleanup() end)

describe('fs, three forms', function()
  it('writes and reads a file in the coroutine form', function()
    run(function()
      assert.is_true(fs.writeFile(dir .. '/a.txt', 'hello'))
      assert.are.equal('hello', fs.readFile(dir .. '/a.txt'))
      assert.is_true(fs.appendFile(dir .. '/a.txt', { ' ', 'world' }))
      assert.are.equal('hello world', fs.readFile(dir .. '/a.txt'))
    end)
  end)

  it('does the same with callbacks', function()
    local got = {}
    run(function()
      local done = false
      fs.writeFile(dir .. '/b.txt', 'cb data', function(err, ok)
        got.write = { err, ok }
        fs.readFile(dir .. '/b.txt', function(rerr, data)
          got.read = { rerr, data }
          fs.readFile(dir .. '/none', function(merr, mdata)
            got.missing = { merr and merr.code, mdata }
            done = true
          end)
        end)
      end)
      while not done do timers.sleep(1) end
    end)
    assert.same({ nil, true }, got.write)
    assert.same({ nil, 'cb data' }, got.read)
    assert.same({ 'ENOENT', nil }, got.missing)
  end)

  it('does the same synchronously', function()
    assert.is_true(fs.writeFileSync(dir .. '/c.txt', 'sync'))
    assert.are.equal('sync', fs.readFileSync(dir .. '/c.txt'))
    local ok, err = fs.readFileSync(dir .. '/missing')
    assert.is_nil(ok)
    assert.are.equal('ENOENT', err.code)
  end)

  it('raises where a coroutine form cannot wait, and suggests the fix', function()
    local ok, err
    string.gsub('x', 'x', function() ok, err = pcall(fs.readFile, dir .. '/a') end)
    assert.is_false(ok)
    assert.matches('fs.readFile: cannot wait here', err)
    assert.matches('callback', err)
  end)

  it('opens, reads, writes, seeks and closes descriptors', function()
    run(function()
      local fd = assert(fs.open(dir .. '/d.bin', 'w+'))
      assert.are.equal(6, fs.write(fd, 'abcdef'))
      assert.are.equal(2, fs.write(fd, 'XY', 2))
      assert.are.equal('abXYef', fs.read(fd, 100, 0))
      assert.are.equal('Ye', fs.read(fd, 2, 3))
      assert.are.equal('', fs.read(fd, 10, 6))
      assert.are.equal(6, fs.fstat(fd).size)
      assert.is_true(fs.ftruncate(fd, 3))
      assert.is_true(fs.fsync(fd))
      assert.is_true(fs.close(fd))
      assert.are.equal('abX', fs.readFileSync(dir .. '/d.bin'))
      local ok, err = fs.close(fd)
      assert.is_nil(ok)
      assert.are.equal('EBADF', err.code)
    end)
  end)

  it('reads files whose size it cannot know in advance', function()
    run(function()
      local data = fs.readFile('/proc/self/status')
      assert.matches('^Name:', data)
    end)
  end)
end)

describe('fs, files and directories', function()
  it('stats files, directories and links', function()
    run(function()
      fs.writeFile(dir .. '/f', '12345')
      fs.symlink(dir .. '/f', dir .. '/l')
      local st = fs.stat(dir .. '/f')
      assert.is_true(st:isFile())
      assert.is_false(st:isDirectory())
      assert.are.equal(5, st.size)
      assert.is_true(st.mtime > 1600000000)
      assert.is_true(math.abs(st.mtimeMs - st.mtime * 1000) < 1)
      assert.is_true(fs.stat(dir):isDirectory())
      assert.is_true(fs.lstat(dir .. '/l'):isSymbolicLink())
      assert.is_true(fs.stat(dir .. '/l'):isFile())
      assert.are.equal(dir .. '/f', fs.readlink(dir .. '/l'))
      assert.are.equal(fs.realpath(dir .. '/f'), fs.realpath(dir .. '/l'))
      assert.is_true(fs.exists(dir .. '/f'))
      assert.is_false(fs.exists(dir .. '/nope'))
      assert.is_false(fs.existsSync(42))
    end)
  end)

  it('makes, lists and removes directories, recursively too', function()
    run(function()
      assert.are.equal(dir .. '/x', fs.mkdir(dir .. '/x/y/z', { recursive = true }))
      assert.is_true(fs.mkdir(dir .. '/x/y/z', { recursive = true }))
      fs.writeFile(dir .. '/x/y/file', 'f')
      assert.same({ 'file', 'z' }, fs.readdir(dir .. '/x/y'))
      local entries = fs.readdir(dir .. '/x/y', { withFileTypes = true })
      assert.are.equal('file', entries[1].name)
      assert.is_true(entries[1]:isFile())
      assert.is_true(entries[2]:isDirectory())
      local ok, err = fs.rmdir(dir .. '/x')
      assert.is_nil(ok)
      assert.are.equal('ENOTEMPTY', err.code)
      ok, err = fs.rm(dir .. '/x')
      assert.is_nil(ok)
      assert.are.equal('EISDIR', err.code)
      assert.is_true(fs.rm(dir .. '/x', { recursive = true }))
      assert.is_false(fs.exists(dir .. '/x'))
      assert.is_true(fs.rm(dir .. '/x', { force = true }))
      ok, err = fs.rm(dir .. '/x')
      assert.are.equal('ENOENT', err.code)
    end)
  end)

  it('renames, copies, links, unlinks, chmods, utimes and truncates', function()
    run(function()
      fs.writeFile(dir .. '/a', 'content')
      assert.is_true(fs.rename(dir .. '/a', dir .. '/b'))
      assert.is_true(fs.copyFile(dir .. '/b', dir .. '/c'))
      local ok, err = fs.copyFile(dir .. '/b', dir .. '/c', fs.constants.COPYFILE_EXCL)
      assert.is_nil(ok)
      assert.are.equal('EEXIST', err.code)
      assert.are.equal('copyfile', err.syscall)
      assert.are.equal(dir .. '/b', err.path)
      assert.are.equal(dir .. '/c', err.dest)
      assert.are.equal(("EEXIST: file already exists, copyfile '%s/b' -> '%s/c'")
        :format(dir, dir), tostring(err))
      assert.is_true(fs.link(dir .. '/b', dir .. '/hard'))
      assert.are.equal(2, fs.stat(dir .. '/b').nlink)
      assert.is_true(fs.chmod(dir .. '/b', '600'))
      assert.are.equal(384, fs.stat(dir .. '/b').mode & 511)
      assert.is_true(fs.utimes(dir .. '/b', 1000000000, 1000000000))
      assert.are.equal(1000000000, math.floor(fs.stat(dir .. '/b').mtime))
      assert.is_true(fs.truncate(dir .. '/b', 3))
      assert.are.equal('con', fs.readFile(dir .. '/b'))
      assert.is_true(fs.unlink(dir .. '/hard'))
      assert.is_true(fs.access(dir .. '/b', fs.constants.R_OK))
      ok, err = fs.access(dir .. '/nope')
      assert.are.equal('ENOENT', err.code)
      local tmp = fs.mkdtemp(dir .. '/tmp-')
      assert.matches('/tmp%-......$', tmp)
      assert.is_true(fs.stat(tmp):isDirectory())
    end)
  end)
end)

describe('fs errors', function()
  it('carry code, errno, syscall, path and Node\'s message', function()
    run(function()
      local ok, err = fs.readFile(dir .. '/x.txt')
      assert.is_nil(ok)
      assert.are.equal('ENOENT', err.code)
      assert.are.equal(-2, err.errno)
      assert.are.equal('open', err.syscall)
      assert.are.equal(dir .. '/x.txt', err.path)
      assert.are.equal(("ENOENT: no such file or directory, open '%s/x.txt'")
        :format(dir), tostring(err))
    end)
  end)

  it('say not a directory and already exists', function()
    run(function()
      fs.writeFile(dir .. '/file', 'x')
      local ok, err = fs.readFile(dir .. '/file/inside')
      assert.is_nil(ok)
      assert.are.equal('ENOTDIR', err.code)
      ok, err = fs.mkdir(dir .. '/file')
      assert.are.equal('EEXIST', err.code)
      assert.are.equal('mkdir', err.syscall)
      ok, err = fs.mkdir(dir .. '/file/sub', { recursive = true })
      assert.are.equal('ENOTDIR', err.code)
      ok, err = fs.readFile(dir)
      assert.are.equal('EISDIR', err.code)
    end)
  end)

  it('say permission denied', function()
    run(function()
      local path = dir .. '/secret'
      fs.writeFile(path, 'x')
      fs.chmod(path, 0)
      local ok, err = fs.readFile(path)
      if ok then
        -- Running as root, which reads anything: a file no one may write.
        ok, err = fs.writeFile('/sys/kernel/notes', 'x')
      end
      assert.is_nil(ok)
      assert.are.equal('EACCES', err.code)
      assert.are.equal('open', err.syscall)
    end)
  end)

  it('raise for arguments of the wrong type', function()
    assert.has_error(function() fs.readFileSync(42.5) end)
    assert.has_error(function() fs.mkdirSync({}) end)
    assert.has_error(function() fs.writeFileSync(dir .. '/a', 42) end)
    assert.has_error(function() fs.chmodSync(dir .. '/a', 'notoctal') end)
  end)
end)

describe('fs concurrency and size', function()
  it('serves 100 coroutines reading and writing at once', function()
    run(function()
      local tasks = {}
      for i = 1, 100 do
        tasks[i] = coro.spawn(function()
          local path = ('%s/f%d'):format(dir, i)
          assert(fs.writeFile(path, string.rep(tostring(i), 1000)))
          return fs.readFile(path)
        end)
      end
      local results = assert(coro.all(tasks))
      for i = 1, 100 do
        assert.are.equal(string.rep(tostring(i), 1000), results[i][1])
      end
    end)
  end)

  it('reads one 1 MiB file from 1,000 coroutines at once', function()
    run(function()
      local path = dir .. '/mib'
      fs.writeFile(path, string.rep('m', 1024 * 1024))
      local tasks = {}
      for i = 1, 1000 do
        tasks[i] = coro.spawn(function() return #assert(fs.readFile(path)) end)
      end
      local results = assert(coro.all(tasks))
      for i = 1, 1000 do assert.are.equal(1024 * 1024, results[i][1]) end
    end, { timeout = 60000 })
  end)

  it('streams 256 MiB with bounded memory', function()
    run(function()
      local path = dir .. '/big'
      local chunk = string.rep('b', 1024 * 1024)
      local out = fs.createWriteStream(path)
      for _ = 1, 256 do assert(out:write(chunk)) end
      local finished = false
      out:on('close', function() finished = true end)
      out:finish()
      while not finished do timers.sleep(1) end
      assert.are.equal(256 * 1024 * 1024, fs.stat(path).size)
      collectgarbage()
      local before = collectgarbage('count')
      local peak = before
      local input = fs.createReadStream(path)
      local total = 0
      while true do
        local piece = input:read()
        if not piece then break end
        total = total + #piece
        peak = math.max(peak, collectgarbage('count'))
        if total % (16 * 1024 * 1024) == 0 then collectgarbage('step') end
      end
      assert.are.equal(256 * 1024 * 1024, total)
      -- 64 KiB reads: the heap never holds more than a few of them (plus
      -- the garbage between collections), far from the file's size.
      assert.is_true((peak - before) * 1024 < 64 * 1024 * 1024,
        ('heap grew by %d KiB'):format(math.floor(peak - before)))
    end, { timeout = 120000 })
  end)

  it('pipes a file into a socket with backpressure', function()
    run(function()
      local path = dir .. '/send'
      local data = string.rep('0123456789', 200000)
      fs.writeFile(path, data)
      local received = {}
      local server = net.createServer(function(sock)
        while true do
          local piece = sock:read()
          if not piece then break end
          received[#received + 1] = piece
          timers.sleep(1) -- a slow reader
        end
        sock:close()
      end)
      assert(server:listen(0, '127.0.0.1'))
      local sock = assert(net.connect({ host = '127.0.0.1', port = server:address().port }))
      local closed = false
      sock:on('close', function() closed = true end)
      fs.createReadStream(path):pipe(sock)
      while not closed do timers.sleep(5) end
      server:close()
      assert.are.equal(#data, #table.concat(received))
    end, { timeout = 30000 })
  end)

  it('reads a range with start and end', function()
    run(function()
      fs.writeFile(dir .. '/r', 'abcdefghij')
      local s = fs.createReadStream(dir .. '/r', { start = 2, ['end'] = 5 })
      assert.are.equal('cdef', s:read())
      assert.is_nil(s:read())
      local missing = fs.createReadStream(dir .. '/none')
      local ok, err = missing:read()
      assert.is_nil(ok)
      assert.are.equal('ENOENT', err.code)
    end)
  end)

  it('emits data and end from a read stream', function()
    run(function()
      fs.writeFile(dir .. '/e', string.rep('e', 200000))
      local got, ended = 0, false
      local s = fs.createReadStream(dir .. '/e')
      s:on('data', function(piece) got = got + #piece end)
      s:on('end', function() ended = true end)
      while not ended do timers.sleep(1) end
      timers.sleep(5)
      assert.are.equal(200000, got)
    end)
  end)
end)

describe('fs.watch', function()
  it('sees a create, a change and a rename', function()
    local events = {}
    run(function()
      local watcher = assert(fs.watch(dir, function(kind, name)
        events[#events + 1] = kind .. ' ' .. tostring(name)
      end))
      local function settle()
        local n = #events
        repeat timers.sleep(20) until #events == n or #events > n + 10
      end
      fs.writeFile(dir .. '/w.txt', 'one')
      settle()
      local seen_create = #events
      fs.appendFile(dir .. '/w.txt', 'two')
      settle()
      local seen_change = #events
      fs.rename(dir .. '/w.txt', dir .. '/v.txt')
      settle()
      watcher:close()
      assert.is_true(seen_create > 0, 'no event for the create')
      assert.is_true(seen_change > seen_create, 'no event for the change')
      assert.is_true(#events > seen_change, 'no event for the rename')
    end)
    local text = table.concat(events, '\n')
    assert.matches('rename w%.txt', text)
    assert.matches('change w%.txt', text)
    assert.matches('rename v%.txt', text)
  end)

  it('returns a missing path as an error value', function()
    run(function()
      local w, err = fs.watch(dir .. '/missing', function() end)
      assert.is_nil(w)
      assert.are.equal('ENOENT', err.code)
    end)
  end)
end)
