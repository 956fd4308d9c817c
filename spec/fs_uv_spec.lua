-- uv file system bindings (luv-compatible): every fs_* call in its sync
-- form (results or nil, "ENAME: message: path", "ENAME") and its async form
-- (returns the uv_fs_t; cb(err, ...) with err the same message), directory
-- streams and scandir iterators, cancellation, fs_event and fs_poll.
-- Real files in a fresh temporary directory per test.

local helper = require('spec.helper')
local uv = require('uv')
local binding = require('internal.binding')

local run = helper.run
local C = uv.constants

local function octal(s) return tonumber(s, 8) end

-- A mailbox for callbacks: box.put(...) from a callback, box.take() in the
-- body waits for the next value put.
local function mailbox()
  local items, taker = {}, nil
  local box = {}
  function box.put(...)
    items[#items + 1] = table.pack(...)
    if taker then
      local co = taker
      taker = nil
      binding.resume(co)
    end
  end
  function box.take()
    while #items == 0 do
      taker = coroutine.running()
      coroutine.yield()
    end
    local item = table.remove(items, 1)
    return table.unpack(item, 1, item.n)
  end
  function box.count() return #items end
  return box
end

-- call(fn, ...): the async form fn(..., cb) from the running body; returns
-- the request fn returned, then the callback's arguments.
local function call(fn, ...)
  local box = mailbox()
  local args = table.pack(...)
  args[args.n + 1] = box.put
  local req, err = fn(table.unpack(args, 1, args.n + 1))
  assert(req, err)
  return req, box.take()
end

local function is_fs_req(req)
  assert.matches('^uv_fs_t: ', tostring(req))
  assert.are.equal('fs', (req:get_type()))
end

local function fail_of(ok, msg, name)
  assert.is_nil(ok)
  return msg, name
end

local function slurp(path) return helper.read_file(path) end

local dir, cleanup
before_each(function()
  dir, cleanup = helper.tmpdir()
  assert(uv.fs_chmod(dir, octal('755')))
end)
after_each(function() cleanup() end)

describe('uv fs, sync', function()
  it('opens, writes, reads and closes a file', function()
    local path = dir .. '/a.txt'
    local fd = uv.fs_open(path, 'w+', octal('644'))
    assert.are.equal('integer', math.type(fd))
    assert.are.equal(5, uv.fs_write(fd, 'hello'))
    assert.are.equal(6, uv.fs_write(fd, { ' ', 'wor', 'ld' }))
    assert.are.equal('', uv.fs_read(fd, 10)) -- at the end: ""
    assert.are.equal('hello world', uv.fs_read(fd, 100, 0))
    assert.are.equal('world', uv.fs_read(fd, 5, 6))
    assert.are.equal(3, uv.fs_write(fd, 'HEL', 0)) -- at an offset
    assert.are.equal('HELlo', uv.fs_read(fd, 5, 0))
    assert.are.equal('', uv.fs_read(fd, 0, 0))
    assert.is_true(uv.fs_close(fd))
    assert.are.equal('HELlo world', slurp(path))
    local msg, name = fail_of(uv.fs_close(fd))
    assert.are.equal('EBADF: bad file descriptor', msg)
    assert.are.equal('EBADF', name)
  end)

  it('takes every luv flag string, and integer flags', function()
    -- r, w: readable, writable; c: creates; t: truncates; a: appends;
    -- x: fails if it exists. The s variants add O_SYNC.
    local kinds = {
      r = 'r', rs = 'r', sr = 'r', ['r+'] = 'rw', ['rs+'] = 'rw',
      ['sr+'] = 'rw', w = 'wct', wx = 'wctx', xw = 'wctx', ['w+'] = 'rwct',
      ['wx+'] = 'rwctx', ['xw+'] = 'rwctx', a = 'wca', ax = 'wcax',
      xa = 'wcax', ['a+'] = 'rwca', ['ax+'] = 'rwcax', ['xa+'] = 'rwcax',
    }
    local n = 0
    for flags, kind in pairs(kinds) do
      n = n + 1
      local has = function(c) return kind:find(c, 1, true) ~= nil end
      local path = dir .. '/f' .. n
      local fd, msg, name = uv.fs_open(path, flags, octal('644'))
      if has('c') then
        assert(fd, msg)
        assert(uv.fs_close(fd))
      else
        assert.are.equal('ENOENT: no such file or directory: ' .. path, msg)
        assert.are.equal('ENOENT', name)
      end
      helper.write_file(path, 'abc')
      fd, msg, name = uv.fs_open(path, flags, octal('644'))
      if has('x') then
        assert.are.equal('EEXIST: file already exists: ' .. path, msg)
        assert.are.equal('EEXIST', name)
      else
        assert(fd, msg)
        assert.are.equal(has('t') and 0 or 3, uv.fs_fstat(fd).size)
        local data, rerr = uv.fs_read(fd, 3, 0)
        if has('r') then
          assert.are.equal(has('t') and '' or 'abc', data)
        else
          assert.matches('^EBADF', rerr)
        end
        local written, werr = uv.fs_write(fd, 'Z')
        if has('w') then
          assert.are.equal(1, written)
          local want = has('t') and 'Z' or has('a') and 'abcZ' or 'Zbc'
          assert.are.equal(want, slurp(path), flags)
        else
          assert.matches('^EBADF', werr)
        end
        assert(uv.fs_close(fd))
      end
    end
    assert.are.equal(18, n)
    local path = dir .. '/int'
    local fd = assert(uv.fs_open(path, C.O_WRONLY + C.O_CREAT, octal('600')))
    assert(uv.fs_close(fd))
    assert.are.equal(octal('600'), uv.fs_stat(path).mode & octal('777'))
    assert.has_error(function() uv.fs_open(path, 'z', 0) end,
      "bad argument #2 to 'fs_open' (unknown file open flag 'z')")
    assert.has_error(function() uv.fs_open(path, true, 0) end)
  end)

  it('returns luv stat tables', function()
    local path = helper.write_file(dir .. '/s.txt', '12345')
    local st = uv.fs_stat(path)
    for _, k in ipairs({ 'dev', 'mode', 'nlink', 'uid', 'gid', 'rdev', 'ino',
      'size', 'blksize', 'blocks', 'flags', 'gen' }) do
      assert.are.equal('integer', math.type(st[k]), k)
    end
    for _, k in ipairs({ 'atime', 'mtime', 'ctime', 'birthtime' }) do
      assert.are.equal('integer', math.type(st[k].sec), k)
      assert.are.equal('integer', math.type(st[k].nsec), k)
    end
    assert.are.equal(5, st.size)
    assert.are.equal('file', st.type)
    assert.are.equal(C.S_IFREG, st.mode & C.S_IFMT)
    assert.are.equal(1, st.nlink)
    assert.are.equal(uv.getuid(), st.uid)
    assert.is_true(st.mtime.sec > 0)
    assert.are.equal('directory', uv.fs_stat(dir).type)
    assert(uv.fs_symlink(path, dir .. '/ln'))
    assert.are.equal('link', uv.fs_lstat(dir .. '/ln').type)
    assert.are.equal('file', uv.fs_stat(dir .. '/ln').type)
    assert.are.equal(st.ino, uv.fs_stat(dir .. '/ln').ino)
    local fd = assert(uv.fs_open(path, 'r', 0))
    assert.are.same(st, uv.fs_fstat(fd))
    assert(uv.fs_close(fd))
    assert.are.equal('char', uv.fs_stat('/dev/null').type)
  end)

  it('reports failures with the path: ENOENT, ENOTDIR, EEXIST, EISDIR',
    function()
      local missing = dir .. '/missing.txt'
      local msg, name = fail_of(uv.fs_stat(missing))
      assert.are.equal('ENOENT: no such file or directory: ' .. missing, msg)
      assert.are.equal('ENOENT', name)
      local file = helper.write_file(dir .. '/file', 'x')
      msg, name = fail_of(uv.fs_stat(file .. '/child'))
      assert.are.equal('ENOTDIR: not a directory: ' .. file .. '/child', msg)
      assert.are.equal('ENOTDIR', name)
      msg, name = fail_of(uv.fs_mkdir(file, octal('755')))
      assert.are.equal('EEXIST: file already exists: ' .. file, msg)
      assert.are.equal('EEXIST', name)
      msg, name = fail_of(uv.fs_open(dir, 'w', octal('644')))
      assert.are.equal('EISDIR: illegal operation on a directory: ' .. dir,
        msg)
      assert.are.equal('EISDIR', name)
      msg = fail_of(uv.fs_unlink(missing))
      assert.are.equal('ENOENT: no such file or directory: ' .. missing, msg)
    end)

  it('reports EACCES for a file it may not read', function()
    local secret = helper.write_file(dir .. '/secret', 'x')
    assert(uv.fs_chmod(secret, 0))
    local code = ("print(require('uv').fs_open(%q, 'r', 0))"):format(secret)
    local want = 'nil\tEACCES: permission denied: ' .. secret .. '\tEACCES\n'
    if uv.getuid() ~= 0 then
      local ok, msg, name = uv.fs_open(secret, 'r', 0)
      assert.are.equal(want, ('%s\t%s\t%s\n'):format(ok, msg, name))
    elseif os.execute('command -v setpriv >/dev/null 2>&1') then
      -- Root may read anything: check as nobody, in a child process.
      local r = helper.exec('setpriv --reuid=65534 --regid=65534 ' ..
        '--clear-groups ' .. helper.command('-e ' .. helper.quote(code)))
      assert.are.equal(want, r.stdout, r.stderr)
    else
      -- Root without setpriv: permissions do not apply to root, so only
      -- that can be checked here.
      local fd = assert(uv.fs_open(secret, 'r', 0))
      assert(uv.fs_close(fd))
    end
  end)

  it('makes and removes directories and files', function()
    local sub = dir .. '/sub'
    assert.is_true(uv.fs_mkdir(sub, octal('700')))
    assert.are.equal(octal('700'), uv.fs_stat(sub).mode & octal('777'))
    helper.write_file(sub .. '/f', 'x')
    local msg, name = fail_of(uv.fs_rmdir(sub))
    assert.are.equal('ENOTEMPTY: directory not empty: ' .. sub, msg)
    assert.are.equal('ENOTEMPTY', name)
    assert.is_true(uv.fs_unlink(sub .. '/f'))
    assert.is_true(uv.fs_rmdir(sub))
    assert.is_nil(uv.fs_stat(sub))
    msg = fail_of(uv.fs_rmdir(sub))
    assert.are.equal('ENOENT: no such file or directory: ' .. sub, msg)
  end)

  it('makes temporary directories and files', function()
    local tdir = uv.fs_mkdtemp(dir .. '/dXXXXXX')
    assert.matches('^' .. dir:gsub('%p', '%%%0') .. '/d%w%w%w%w%w%w$', tdir)
    assert.are.equal('directory', uv.fs_stat(tdir).type)
    local fd, path = uv.fs_mkstemp(dir .. '/fXXXXXX')
    assert.are.equal('integer', math.type(fd))
    assert.matches('/f%w%w%w%w%w%w$', path)
    assert.are.equal(2, uv.fs_write(fd, 'hi'))
    assert(uv.fs_close(fd))
    assert.are.equal('hi', slurp(path))
    local msg, name = fail_of(uv.fs_mkdtemp(dir .. '/no-template'))
    assert.are.equal('EINVAL', name)
    assert.matches('^EINVAL: invalid argument: ', msg)
    assert.are.equal('EINVAL', select(3, uv.fs_mkstemp(dir .. '/nope')))
  end)

  it('scans a directory with fs_scandir_next', function()
    helper.write_file(dir .. '/b.txt', 'x')
    assert(uv.fs_mkdir(dir .. '/a', octal('755')))
    assert(uv.fs_symlink('b.txt', dir .. '/c'))
    local iter = uv.fs_scandir(dir)
    assert.matches('^uv_fs_t: ', tostring(iter))
    local seen = {}
    while true do
      local name, kind = uv.fs_scandir_next(iter)
      if not name then break end
      seen[name] = kind
    end
    assert.are.same({ a = 'directory', ['b.txt'] = 'file', c = 'link' }, seen)
    assert.is_nil(uv.fs_scandir_next(iter)) -- stays at the end
    local msg, name = fail_of(uv.fs_scandir(dir .. '/none'))
    assert.are.equal('ENOENT: no such file or directory: ' .. dir .. '/none',
      msg)
    assert.are.equal('ENOENT', name)
    name = select(3, uv.fs_scandir(dir .. '/b.txt'))
    assert.are.equal('ENOTDIR', name)
    -- An iterator dropped half way frees its entries when collected.
    iter = uv.fs_scandir(dir)
    assert.is_string(uv.fs_scandir_next(iter))
    iter = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.has_error(function() uv.fs_scandir_next({}) end)
  end)

  it('reads directory streams with opendir, readdir and closedir', function()
    for i = 1, 5 do helper.write_file(dir .. '/f' .. i, 'x') end
    local d = uv.fs_opendir(dir, nil, 2)
    assert.matches('^uv_dir_t: ', tostring(d))
    local names, batches = {}, 0
    while true do
      local entries = uv.fs_readdir(d)
      if not entries then break end
      batches = batches + 1
      assert.is_true(#entries >= 1 and #entries <= 2)
      for _, e in ipairs(entries) do
        assert.are.equal('file', e.type)
        names[#names + 1] = e.name
      end
    end
    table.sort(names)
    assert.are.same({ 'f1', 'f2', 'f3', 'f4', 'f5' }, names)
    assert.are.equal(3, batches)
    assert.is_true(d:closedir())
    assert.matches('%(closed%)$', tostring(d))
    assert.has_error(function() d:readdir() end,
      'attempt to use a closed uv_dir')
    assert.has_error(function() uv.fs_closedir(d) end,
      'attempt to use a closed uv_dir')
    -- One entry per readdir by default; the method forms work too.
    d = uv.fs_opendir(dir)
    assert.are.equal(1, #d:readdir())
    assert.is_true(uv.fs_closedir(d))
    local msg, name = fail_of(uv.fs_opendir(dir .. '/none'))
    assert.are.equal('ENOENT: no such file or directory: ' .. dir .. '/none',
      msg)
    assert.are.equal('ENOENT', name)
    assert.has_error(function() uv.fs_opendir(dir, nil, 0) end)
  end)

  it('closes a directory stream nobody closed when it is collected',
    function()
      local function open_fds()
        local n, iter = 0, uv.fs_scandir('/proc/self/fd')
        while uv.fs_scandir_next(iter) do n = n + 1 end
        return n
      end
      collectgarbage()
      local before = open_fds()
      local d = uv.fs_opendir(dir)
      assert.are.equal(before + 1, open_fds())
      d = nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.are.equal(before, open_fds())
    end)

  it('renames, links and resolves paths', function()
    local a = helper.write_file(dir .. '/a', 'data')
    assert.is_true(uv.fs_rename(a, dir .. '/b'))
    assert.are.equal('data', slurp(dir .. '/b'))
    local msg, name = fail_of(uv.fs_rename(a, dir .. '/c'))
    assert.are.equal('ENOENT: no such file or directory: ' .. a .. ' -> ' ..
      dir .. '/c', msg)
    assert.are.equal('ENOENT', name)
    assert.is_true(uv.fs_link(dir .. '/b', dir .. '/hard'))
    assert.are.equal(2, uv.fs_stat(dir .. '/b').nlink)
    msg = fail_of(uv.fs_link(dir .. '/b', dir .. '/hard'))
    assert.are.equal('EEXIST: file already exists: ' .. dir .. '/b -> ' ..
      dir .. '/hard', msg)
    assert.is_true(uv.fs_symlink('b', dir .. '/soft'))
    assert.is_true(uv.fs_symlink(dir, dir .. '/dirlink', { dir = true }))
    assert.is_true(uv.fs_symlink(dir, dir .. '/dirlink2', 0))
    assert.are.equal('b', uv.fs_readlink(dir .. '/soft'))
    local real = uv.fs_realpath(dir)
    assert.are.equal(real .. '/b', uv.fs_realpath(dir .. '/soft'))
    assert.are.equal(real .. '/b',
      uv.fs_realpath(dir .. '/dirlink/../' .. dir:match('[^/]+$') .. '/b'))
    msg, name = fail_of(uv.fs_readlink(dir .. '/b'))
    assert.are.equal('EINVAL: invalid argument: ' .. dir .. '/b', msg)
    assert.are.equal('EINVAL', name)
    msg = fail_of(uv.fs_realpath(dir .. '/none'))
    assert.are.equal('ENOENT: no such file or directory: ' .. dir .. '/none',
      msg)
  end)

  it('syncs, truncates and sends between files', function()
    local fd = assert(uv.fs_open(dir .. '/t', 'w+', octal('644')))
    assert(uv.fs_write(fd, 'hello world'))
    assert.is_true(uv.fs_fsync(fd))
    assert.is_true(uv.fs_fdatasync(fd))
    assert.is_true(uv.fs_ftruncate(fd, 5))
    assert.are.equal(5, uv.fs_fstat(fd).size)
    assert.is_true(uv.fs_ftruncate(fd, 8))
    assert.are.equal('hello\0\0\0', uv.fs_read(fd, 100, 0))
    assert(uv.fs_write(fd, 'hello world', 0))
    local out = assert(uv.fs_open(dir .. '/out', 'w', octal('644')))
    assert.are.equal(5, uv.fs_sendfile(out, fd, 6, 5))
    assert.are.equal(3, uv.fs_sendfile(out, fd, 0, 3))
    assert(uv.fs_close(out))
    assert.are.equal('worldhel', slurp(dir .. '/out'))
    assert(uv.fs_close(fd))
    assert.are.equal('EBADF', select(3, uv.fs_fsync(fd)))
    assert.are.equal('EBADF', select(3, uv.fs_ftruncate(fd, 0)))
    assert.are.equal('EBADF', select(3, uv.fs_sendfile(fd, fd, 0, 1)))
  end)

  it('checks access as a boolean', function()
    local file = helper.write_file(dir .. '/f', 'x')
    assert(uv.fs_chmod(file, octal('644')))
    assert.is_true(uv.fs_access(file, 'r'))
    assert.is_true(uv.fs_access(file, 'RW'))
    assert.is_true(uv.fs_access(file, ''))
    assert.is_true(uv.fs_access(file, 0))
    assert.is_true(uv.fs_access(file, 4)) -- R_OK
    -- No execute bit for anyone: refused even to root.
    assert.is_false(uv.fs_access(file, 'x'))
    assert.is_false(uv.fs_access(file, 'rx'))
    assert(uv.fs_chmod(file, octal('755')))
    assert.is_true(uv.fs_access(file, 'rwx'))
    assert.is_false(uv.fs_access(dir .. '/none', 'r'))
    assert.has_error(function() uv.fs_access(file, 'q') end,
      "bad argument #2 to 'fs_access' (unknown access mode 'q')")
  end)

  it('changes modes and owners', function()
    local file = helper.write_file(dir .. '/f', 'x')
    assert.is_true(uv.fs_chmod(file, octal('640')))
    assert.are.equal(octal('640'), uv.fs_stat(file).mode & octal('7777'))
    local fd = assert(uv.fs_open(file, 'r', 0))
    assert.is_true(uv.fs_fchmod(fd, octal('604')))
    assert.are.equal(octal('604'), uv.fs_stat(file).mode & octal('7777'))
    -- Root can give files away; anyone can "change" to their own ids.
    local uid, gid = uv.getuid(), uv.getgid()
    local to = uid == 0 and 65534 or uid
    local tog = uid == 0 and 65534 or gid
    assert.is_true(uv.fs_chown(file, to, tog))
    assert.are.equal(to, uv.fs_stat(file).uid)
    assert.are.equal(tog, uv.fs_stat(file).gid)
    assert.is_true(uv.fs_fchown(fd, uid, -1)) -- -1 leaves the group
    assert.are.equal(uid, uv.fs_stat(file).uid)
    assert.are.equal(tog, uv.fs_stat(file).gid)
    assert(uv.fs_close(fd))
    assert(uv.fs_symlink(file, dir .. '/ln'))
    assert.is_true(uv.fs_lchown(dir .. '/ln', to, -1))
    assert.are.equal(to, uv.fs_lstat(dir .. '/ln').uid)
    assert.are.equal(uid, uv.fs_stat(file).uid)
    local msg, name = fail_of(uv.fs_chown(dir .. '/none', uid, gid))
    assert.are.equal('ENOENT: no such file or directory: ' .. dir .. '/none',
      msg)
    assert.are.equal('ENOENT', name)
    assert.are.equal('EBADF', select(3, uv.fs_fchmod(fd, octal('644'))))
  end)

  it('sets times: seconds, "now" and "omit"', function()
    local file = helper.write_file(dir .. '/f', 'x')
    assert.is_true(uv.fs_utime(file, 1000, 2000.25))
    local st = uv.fs_stat(file)
    assert.are.same({ sec = 1000, nsec = 0 }, st.atime)
    assert.are.same({ sec = 2000, nsec = 250000000 }, st.mtime)
    assert.is_true(uv.fs_utime(file, 'omit', 3000))
    st = uv.fs_stat(file)
    assert.are.equal(1000, st.atime.sec)
    assert.are.equal(3000, st.mtime.sec)
    assert.is_true(uv.fs_utime(file, 4000)) -- nil: leave mtime
    st = uv.fs_stat(file)
    assert.are.equal(4000, st.atime.sec)
    assert.are.equal(3000, st.mtime.sec)
    local before = os.time()
    assert.is_true(uv.fs_utime(file, nil, 'now'))
    st = uv.fs_stat(file)
    assert.are.equal(4000, st.atime.sec)
    assert.is_true(st.mtime.sec >= before and st.mtime.sec <= os.time())
    local fd = assert(uv.fs_open(file, 'r', 0))
    assert.is_true(uv.fs_futime(fd, 5000, 6000))
    assert.are.equal(6000, uv.fs_stat(file).mtime.sec)
    assert.is_true(uv.fs_futime(fd, 'now', 'omit'))
    assert.are.equal(6000, uv.fs_stat(file).mtime.sec)
    assert.is_true(uv.fs_stat(file).atime.sec >= before)
    assert(uv.fs_close(fd))
    assert(uv.fs_symlink(file, dir .. '/ln'))
    assert.is_true(uv.fs_lutime(dir .. '/ln', 7000, 8000))
    assert.are.equal(8000, uv.fs_lstat(dir .. '/ln').mtime.sec)
    assert.are.equal(6000, uv.fs_stat(file).mtime.sec)
    assert.is_true(uv.fs_lutime(dir .. '/ln', 'omit', 9000))
    assert.are.equal(9000, uv.fs_lstat(dir .. '/ln').mtime.sec)
    assert.are.equal(7000, uv.fs_lstat(dir .. '/ln').atime.sec)
    local msg, name = fail_of(uv.fs_utime(dir .. '/none', 1, 2))
    assert.are.equal('ENOENT: no such file or directory: ' .. dir .. '/none',
      msg)
    assert.are.equal('ENOENT', name)
    msg, name = fail_of(uv.fs_utime(dir .. '/none', 'now', 'now'))
    assert.are.equal('ENOENT: no such file or directory: ' .. dir .. '/none',
      msg)
    assert.are.equal('ENOENT', name)
    assert.are.equal('EBADF: bad file descriptor',
      select(2, uv.fs_futime(fd, 'now', 'now')))
    assert.has_error(function() uv.fs_utime(file, 'later', 1) end)
    assert.has_error(function() uv.fs_utime(file, 0 / 0, 1) end)
    assert.has_error(function() uv.fs_futime(0, 1, math.huge) end)
  end)

  it('copies files, with excl as a table or an integer', function()
    local src = helper.write_file(dir .. '/src', 'copy me')
    assert.is_true(uv.fs_copyfile(src, dir .. '/dst'))
    assert.are.equal('copy me', slurp(dir .. '/dst'))
    local msg, name = fail_of(uv.fs_copyfile(src, dir .. '/dst',
      { excl = true }))
    assert.are.equal('EEXIST: file already exists: ' .. src .. ' -> ' ..
      dir .. '/dst', msg)
    assert.are.equal('EEXIST', name)
    assert.are.equal('EEXIST', select(3, uv.fs_copyfile(src, dir .. '/dst', 1)))
    helper.write_file(src, 'new')
    assert.is_true(uv.fs_copyfile(src, dir .. '/dst', { excl = false }))
    assert.are.equal('new', slurp(dir .. '/dst'))
    -- ficlone falls back to copying where the file system cannot clone.
    assert.is_true(uv.fs_copyfile(src, dir .. '/dst2', { ficlone = true }))
    assert.are.equal('new', slurp(dir .. '/dst2'))
    msg = fail_of(uv.fs_copyfile(dir .. '/none', dir .. '/x'))
    assert.are.equal('ENOENT: no such file or directory: ' .. dir ..
      '/none -> ' .. dir .. '/x', msg)
    assert.has_error(function() uv.fs_copyfile(src, dir .. '/y', 'excl') end)
  end)

  it('describes the file system', function()
    local st = uv.fs_statfs(dir)
    for _, k in ipairs({ 'type', 'bsize', 'blocks', 'bfree', 'bavail',
      'files', 'ffree' }) do
      assert.are.equal('integer', math.type(st[k]), k)
    end
    assert.is_true(st.bsize > 0)
    assert.is_true(st.blocks > 0)
    assert.are.equal('ENOENT', select(3, uv.fs_statfs(dir .. '/none')))
  end)

  it('checks arguments', function()
    local fd = assert(uv.fs_open(dir .. '/f', 'w+', octal('644')))
    assert.has_error(function() uv.fs_read(fd, -1) end)
    assert.has_error(function() uv.fs_read(fd, 1, 0, 'not callable') end)
    assert.has_error(function() uv.fs_write(fd, { 'a', 1 }) end)
    assert.has_error(function() uv.fs_write(fd, 'a', 0, 42) end)
    assert.has_error(function() uv.fs_write(fd, true) end)
    assert.has_error(function() uv.fs_stat() end)
    assert.has_error(function() uv.fs_close('x') end)
    assert.has_error(function() uv.fs_mkdir(dir .. '/d') end) -- no mode
    assert(uv.fs_close(fd))
  end)
end)

describe('uv fs, async', function()
  it('opens, writes, reads and closes a file', function()
    run(function()
      local path = dir .. '/a.txt'
      local req, err, fd = call(uv.fs_open, path, 'w+', octal('644'))
      is_fs_req(req)
      assert.is_nil(err)
      assert.are.equal('integer', math.type(fd))
      local _, e2, n = call(uv.fs_write, fd, 'hello')
      assert.is_nil(e2)
      assert.are.equal(5, n)
      _, e2, n = call(uv.fs_write, fd, { ' ', 'world' }, 5)
      assert.is_nil(e2)
      assert.are.equal(6, n)
      local _, e3, data = call(uv.fs_read, fd, 100, 0)
      assert.is_nil(e3)
      assert.are.equal('hello world', data)
      -- Without an offset: from the current position, which the write
      -- at an offset did not move.
      _, e3, data = call(uv.fs_read, fd, 100)
      assert.are.equal(' world', data)
      _, e3, data = call(uv.fs_read, fd, 100)
      assert.is_nil(e3)
      assert.are.equal('', data)
      local _, e4, ok = call(uv.fs_close, fd)
      assert.is_nil(e4)
      assert.is_true(ok)
      local _, e5, none = call(uv.fs_close, fd)
      assert.are.equal('EBADF: bad file descriptor', e5)
      assert.is_nil(none)
    end)
  end)

  it('pins written strings and arrays until the write completes', function()
    run(function()
      local fd = assert(uv.fs_open(dir .. '/big', 'w+', octal('644')))
      local box = mailbox()
      local parts = { string.rep('a', 100000), string.rep('b', 100000) }
      assert(uv.fs_write(fd, parts, 0, box.put))
      parts[1], parts[2] = 'changed', 'too' -- the array was copied
      assert(uv.fs_write(fd, string.rep('c', 5000) .. 'end', 200000, box.put))
      collectgarbage()
      collectgarbage()
      local e1, n1 = box.take()
      local e2, n2 = box.take()
      assert.is_nil(e1)
      assert.is_nil(e2)
      assert.are.equal(200000 + 5003, n1 + n2)
      assert(uv.fs_close(fd))
      assert.are.equal(string.rep('a', 100000) .. string.rep('b', 100000) ..
        string.rep('c', 5000) .. 'end', slurp(dir .. '/big'))
    end)
  end)

  it('reads a 1 MiB file from many requests at once', function()
    run(function()
      local content = {}
      for i = 1, 1024 do content[i] = string.rep(string.char(i % 256), 1024) end
      content = table.concat(content)
      local path = helper.write_file(dir .. '/mib', content)
      local fd = assert(uv.fs_open(path, 'r', 0))
      local box = mailbox()
      local n = 64
      for _ = 1, n do assert(uv.fs_read(fd, #content + 10, 0, box.put)) end
      for _ = 1, n do
        local err, data = box.take()
        assert.is_nil(err)
        assert.are.equal(#content, #data)
        assert.is_true(data == content)
      end
      assert(uv.fs_close(fd))
    end)
  end)

  it('passes the fail message, with the path, to the callback', function()
    run(function()
      local missing = dir .. '/missing'
      local req, err, value = call(uv.fs_open, missing, 'r', 0)
      is_fs_req(req)
      assert.are.equal('ENOENT: no such file or directory: ' .. missing, err)
      assert.is_nil(value)
      local _, e2 = call(uv.fs_rename, missing, dir .. '/x')
      assert.are.equal('ENOENT: no such file or directory: ' .. missing ..
        ' -> ' .. dir .. '/x', e2)
      local file = helper.write_file(dir .. '/file', 'x')
      local _, e3 = call(uv.fs_stat, file .. '/x')
      assert.are.equal('ENOTDIR: not a directory: ' .. file .. '/x', e3)
      local _, e4 = call(uv.fs_mkdir, file, octal('755'))
      assert.are.equal('EEXIST: file already exists: ' .. file, e4)
      local _, e5 = call(uv.fs_read, 12345, 10)
      assert.are.equal('EBADF: bad file descriptor', e5)
    end)
  end)

  it('fails at once, without a callback, when a request cannot start',
    function()
      run(function()
        local fd = assert(uv.fs_open(dir .. '/f', 'w', octal('644')))
        local called = false
        local ok, msg, name = uv.fs_write(fd, {}, function() called = true end)
        assert.is_nil(ok)
        assert.are.equal('EINVAL: invalid argument', msg)
        assert.are.equal('EINVAL', name)
        assert(uv.fs_close(fd))
        require('timers').sleep(5)
        assert.is_false(called)
      end)
    end)

  it('stats files, links and descriptors', function()
    run(function()
      local file = helper.write_file(dir .. '/f', 'abc')
      assert(uv.fs_symlink(file, dir .. '/ln'))
      local req, err, st = call(uv.fs_stat, file)
      is_fs_req(req)
      assert.is_nil(err)
      assert.are.equal('file', st.type)
      assert.are.equal(3, st.size)
      local _, e2, lst = call(uv.fs_lstat, dir .. '/ln')
      assert.is_nil(e2)
      assert.are.equal('link', lst.type)
      local fd = assert(uv.fs_open(file, 'r', 0))
      local _, e3, fst = call(uv.fs_fstat, fd)
      assert.is_nil(e3)
      assert.are.same(st, fst)
      assert(uv.fs_close(fd))
      local _, e4, sfs = call(uv.fs_statfs, dir)
      assert.is_nil(e4)
      assert.is_true(sfs.bsize > 0)
      local _, e5, yes = call(uv.fs_access, file, 'r')
      assert.is_nil(e5)
      assert.is_true(yes)
      local _, e6, no = call(uv.fs_access, dir .. '/none', 'r')
      assert.is_nil(e6)
      assert.is_false(no)
    end)
  end)

  it('makes, scans and removes directories', function()
    run(function()
      local req, err, ok = call(uv.fs_mkdir, dir .. '/sub', octal('755'))
      is_fs_req(req)
      assert.is_nil(err)
      assert.is_true(ok)
      local _, e2, tdir = call(uv.fs_mkdtemp, dir .. '/sub/tXXXXXX')
      assert.is_nil(e2)
      assert.are.equal('directory', uv.fs_stat(tdir).type)
      local _, e3, fd, path = call(uv.fs_mkstemp, dir .. '/sub/fXXXXXX')
      assert.is_nil(e3)
      assert.are.equal('integer', math.type(fd))
      assert.are.equal('file', uv.fs_stat(path).type)
      assert(uv.fs_close(fd))
      local _, e3b = call(uv.fs_mkdtemp, dir .. '/no-template')
      assert.matches('^EINVAL: invalid argument: ', e3b)

      local box = mailbox()
      local sreq = uv.fs_scandir(dir .. '/sub', box.put)
      is_fs_req(sreq)
      local e4, iter = box.take()
      assert.is_nil(e4)
      local seen = {}
      for name, kind in uv.fs_scandir_next, iter do seen[name] = kind end
      assert.are.same({
        [tdir:match('[^/]+$')] = 'directory',
        [path:match('[^/]+$')] = 'file',
      }, seen)
      -- The request the call returned iterates the same results.
      sreq = uv.fs_scandir(dir .. '/sub', box.put)
      assert.is_nil((box.take()))
      local n = 0
      while uv.fs_scandir_next(sreq) do n = n + 1 end
      assert.are.equal(2, n)
      uv.fs_scandir(dir .. '/none', box.put)
      local e5, none = box.take()
      assert.are.equal('ENOENT: no such file or directory: ' .. dir .. '/none',
        e5)
      assert.is_nil(none)

      local _, e6, gone = call(uv.fs_unlink, path)
      assert.is_nil(e6)
      assert.is_true(gone)
      local _, e7 = call(uv.fs_rmdir, dir .. '/sub')
      assert.are.equal('ENOTEMPTY: directory not empty: ' .. dir .. '/sub', e7)
      assert.is_true(select(3, call(uv.fs_rmdir, tdir)))
      assert.is_true(select(3, call(uv.fs_rmdir, dir .. '/sub')))
    end)
  end)

  it('reads directory streams', function()
    run(function()
      for i = 1, 3 do helper.write_file(dir .. '/f' .. i, 'x') end
      local box = mailbox()
      local req = uv.fs_opendir(dir, box.put, 2)
      is_fs_req(req)
      local err, d = box.take()
      assert.is_nil(err)
      assert.matches('^uv_dir_t: ', tostring(d))
      local names = {}
      while true do
        local r = d:readdir(box.put)
        is_fs_req(r)
        -- One readdir at a time per stream.
        assert.are.equal('EBUSY', select(3, d:readdir()))
        assert.are.equal('EBUSY', select(3, d:closedir()))
        local e2, entries = box.take()
        assert.is_nil(e2)
        if not entries then break end
        for _, e in ipairs(entries) do names[#names + 1] = e.name end
      end
      table.sort(names)
      assert.are.same({ 'f1', 'f2', 'f3' }, names)
      local creq = d:closedir(box.put)
      is_fs_req(creq)
      local e3, ok = box.take()
      assert.is_nil(e3)
      assert.is_true(ok)
      uv.fs_opendir(dir .. '/none', box.put)
      local e4, none = box.take()
      assert.are.equal('ENOENT: no such file or directory: ' .. dir .. '/none',
        e4)
      assert.is_nil(none)
    end)
  end)

  it('renames, links, copies and resolves', function()
    run(function()
      local a = helper.write_file(dir .. '/a', 'data')
      local req, err, ok = call(uv.fs_rename, a, dir .. '/b')
      is_fs_req(req)
      assert.is_nil(err)
      assert.is_true(ok)
      assert.is_true(select(3, call(uv.fs_link, dir .. '/b', dir .. '/h')))
      assert.are.equal(2, uv.fs_stat(dir .. '/b').nlink)
      assert.is_true(select(3, call(uv.fs_symlink, 'b', dir .. '/s')))
      assert.is_true(select(3, call(uv.fs_symlink, 'b', dir .. '/s2',
        { dir = false })))
      local _, e2 = call(uv.fs_symlink, 'b', dir .. '/s')
      assert.are.equal('EEXIST: file already exists: b -> ' .. dir .. '/s', e2)
      assert.are.equal('b', select(3, call(uv.fs_readlink, dir .. '/s')))
      local real = uv.fs_realpath(dir)
      assert.are.equal(real .. '/b', select(3, call(uv.fs_realpath,
        dir .. '/s')))
      assert.is_true(select(3, call(uv.fs_copyfile, dir .. '/b',
        dir .. '/c')))
      assert.are.equal('data', slurp(dir .. '/c'))
      local _, e3 = call(uv.fs_copyfile, dir .. '/b', dir .. '/c',
        { excl = true })
      assert.are.equal('EEXIST: file already exists: ' .. dir .. '/b -> ' ..
        dir .. '/c', e3)
      local _, e4 = call(uv.fs_copyfile, dir .. '/b', dir .. '/c', 1)
      assert.matches('^EEXIST: ', e4)
    end)
  end)

  it('syncs, truncates and sends', function()
    run(function()
      local fd = assert(uv.fs_open(dir .. '/t', 'w+', octal('644')))
      assert(uv.fs_write(fd, 'hello world'))
      local req, err, ok = call(uv.fs_fsync, fd)
      is_fs_req(req)
      assert.is_nil(err)
      assert.is_true(ok)
      assert.is_true(select(3, call(uv.fs_fdatasync, fd)))
      assert.is_true(select(3, call(uv.fs_ftruncate, fd, 5)))
      assert.are.equal(5, uv.fs_fstat(fd).size)
      local out = assert(uv.fs_open(dir .. '/out', 'w', octal('644')))
      local _, e2, n = call(uv.fs_sendfile, out, fd, 1, 4)
      assert.is_nil(e2)
      assert.are.equal(4, n)
      assert(uv.fs_close(out))
      assert.are.equal('ello', slurp(dir .. '/out'))
      assert(uv.fs_close(fd))
      local _, e3 = call(uv.fs_ftruncate, fd, 0)
      assert.are.equal('EBADF: bad file descriptor', e3)
    end)
  end)

  it('changes modes, owners and times', function()
    run(function()
      local file = helper.write_file(dir .. '/f', 'x')
      local req, err, ok = call(uv.fs_chmod, file, octal('600'))
      is_fs_req(req)
      assert.is_nil(err)
      assert.is_true(ok)
      assert.are.equal(octal('600'), uv.fs_stat(file).mode & octal('777'))
      local fd = assert(uv.fs_open(file, 'r', 0))
      assert.is_true(select(3, call(uv.fs_fchmod, fd, octal('640'))))
      assert.are.equal(octal('640'), uv.fs_stat(file).mode & octal('777'))
      local uid, gid = uv.getuid(), uv.getgid()
      local to = uid == 0 and 65534 or uid
      assert.is_true(select(3, call(uv.fs_chown, file, to, gid)))
      assert.are.equal(to, uv.fs_stat(file).uid)
      assert.is_true(select(3, call(uv.fs_fchown, fd, uid, gid)))
      assert.are.equal(uid, uv.fs_stat(file).uid)
      assert(uv.fs_symlink(file, dir .. '/ln'))
      assert.is_true(select(3, call(uv.fs_lchown, dir .. '/ln', to, gid)))
      assert.are.equal(to, uv.fs_lstat(dir .. '/ln').uid)
      local _, e2 = call(uv.fs_chown, dir .. '/none', uid, gid)
      assert.are.equal('ENOENT: no such file or directory: ' .. dir .. '/none',
        e2)

      assert.is_true(select(3, call(uv.fs_utime, file, 100, 200)))
      assert.are.equal(200, uv.fs_stat(file).mtime.sec)
      assert.is_true(select(3, call(uv.fs_futime, fd, 300, 400)))
      assert.are.equal(400, uv.fs_stat(file).mtime.sec)
      assert.is_true(select(3, call(uv.fs_lutime, dir .. '/ln', 500, 600)))
      assert.are.equal(600, uv.fs_lstat(dir .. '/ln').mtime.sec)
      -- "now" and "omit" run as thread-pool work (libuv 1.44 has no such
      -- times): the request is a uv_work_t.
      local before = os.time()
      local wreq, e3, ok3 = call(uv.fs_utime, file, 'omit', 'now')
      assert.are.equal('work', (wreq:get_type()))
      assert.is_nil(e3)
      assert.is_true(ok3)
      assert.are.equal(300, uv.fs_stat(file).atime.sec)
      assert.is_true(uv.fs_stat(file).mtime.sec >= before)
      assert.is_true(select(3, call(uv.fs_futime, fd, 700, nil)))
      assert.are.equal(700, uv.fs_stat(file).atime.sec)
      assert.is_true(uv.fs_stat(file).mtime.sec >= before)
      assert.is_true(select(3, call(uv.fs_lutime, dir .. '/ln', nil, 800)))
      assert.are.equal(800, uv.fs_lstat(dir .. '/ln').mtime.sec)
      assert.are.equal(500, uv.fs_lstat(dir .. '/ln').atime.sec)
      local _, e4 = call(uv.fs_utime, dir .. '/none', 'now', 'now')
      assert.are.equal('ENOENT: no such file or directory: ' .. dir .. '/none',
        e4)
      local _, e5 = call(uv.fs_utime, dir .. '/none', 1, 2)
      assert.are.equal('ENOENT: no such file or directory: ' .. dir .. '/none',
        e5)
      assert(uv.fs_close(fd))
      local _, e6 = call(uv.fs_futime, fd, 'now', 'omit')
      assert.are.equal('EBADF: bad file descriptor', e6)
    end)
  end)
end)

describe('uv fs, cancel', function()
  it('cancels requests still waiting for a thread', function()
    -- Opening a FIFO for reading blocks until a writer comes: that many
    -- opens hold every thread of the pool, so what follows waits in the
    -- queue and can be cancelled.
    local threads = tonumber(os.getenv('UV_THREADPOOL_SIZE')) or 4
    local fifo = dir .. '/fifo'
    assert(os.execute('mkfifo ' .. helper.quote(fifo)))
    run(function()
      local opens = mailbox()
      for _ = 1, threads do
        assert(uv.fs_open(fifo, 'r', 0, opens.put))
      end
      local file = helper.write_file(dir .. '/data', 'data')
      local fd = assert(uv.fs_open(file, 'r', 0))
      local box = mailbox()
      local reqs = {
        uv.fs_stat(dir, box.put),
        uv.fs_read(fd, 1024 * 1024, 0, box.put), -- its buffer must be freed
        uv.fs_scandir(dir, box.put),
        uv.fs_opendir(dir, box.put),
        uv.fs_utime(dir, 'now', 'omit', box.put), -- a uv_work_t
        uv.fs_access(dir, 'r', box.put), -- not just false
      }
      for _, req in ipairs(reqs) do
        assert.are.equal(0, uv.cancel(req))
      end
      for _ = 1, #reqs do
        local err, value = box.take()
        assert.matches('^ECANCELED: operation canceled', err)
        assert.is_nil(value)
      end
      -- A done request cannot be cancelled.
      local msg, name = fail_of(reqs[1]:cancel())
      assert.are.equal('EBUSY: resource busy or locked', msg)
      assert.are.equal('EBUSY', name)
      assert(uv.fs_close(fd))
      -- A writer lets the blocked opens finish. It stays open until all
      -- are done: a thread that reaches open() late must not block again.
      -- ENXIO: no reader has reached open() yet.
      local w, err, name
      repeat
        w, err, name = uv.fs_open(fifo, C.O_WRONLY | C.O_NONBLOCK, 0)
        if not w then
          assert.are.equal('ENXIO', name, err)
          require('timers').sleep(5)
        end
      until w
      for _ = 1, threads do
        local oerr, rfd = opens.take()
        assert.is_nil(oerr)
        assert(uv.fs_close(rfd))
      end
      assert(uv.fs_close(w))
    end)
  end)
end)

describe('uv fs_event', function()
  it('sees a create, a change and a rename in a directory', function()
    run(function()
      local box = mailbox()
      local ev = uv.new_fs_event()
      assert.matches('^uv_fs_event_t: ', tostring(ev))
      assert.are.equal('fs_event', (ev:get_type()))
      assert.are.equal('EINVAL', select(3, ev:getpath()))
      assert.are.equal(0, ev:start(dir, {}, function(err, name, events)
        box.put(err, name, events)
      end))
      assert.are.equal(dir, ev:getpath())
      assert.are.equal(dir, uv.fs_event_getpath(ev))
      local function wait_for(name, kind)
        while true do
          local err, got, events = box.take()
          assert.is_nil(err)
          assert.is_table(events)
          for k, v in pairs(events) do
            assert.is_true(k == 'change' or k == 'rename')
            assert.is_true(v)
          end
          if got == name and events[kind] then return end
        end
      end
      local fd = assert(uv.fs_open(dir .. '/new.txt', 'w', octal('644')))
      wait_for('new.txt', 'rename') -- created
      assert(uv.fs_write(fd, 'more'))
      assert(uv.fs_close(fd))
      wait_for('new.txt', 'change')
      assert(uv.fs_rename(dir .. '/new.txt', dir .. '/moved.txt'))
      wait_for('moved.txt', 'rename')
      assert.are.equal(0, uv.fs_event_stop(ev))
      assert.is_false(ev:is_active())
      ev:close()
    end)
  end)

  it('watches a single file, and fails for a missing path', function()
    run(function()
      local box = mailbox()
      local file = helper.write_file(dir .. '/watched', 'a')
      local ev = uv.new_fs_event()
      assert.are.equal(0, uv.fs_event_start(ev, file,
        { watch_entry = false, stat = false, recursive = false }, box.put))
      assert.is_true(ev:is_active())
      helper.write_file(file, 'changed')
      local err, name, events = box.take()
      assert.is_nil(err)
      assert.are.equal('watched', name)
      assert.is_true(events.change)
      assert.are.equal(0, ev:stop())
      local ok, msg, ename = ev:start(dir .. '/none', {}, box.put)
      assert.is_nil(ok)
      assert.are.equal('ENOENT: no such file or directory', msg)
      assert.are.equal('ENOENT', ename)
      ev:close()
      assert.has_error(function() ev:start(dir, {}, box.put) end,
        'attempt to use a closing fs_event handle')
    end)
  end)
end)

describe('uv fs_poll', function()
  it('reports a missing path, its creation and a change', function()
    run(function()
      local box = mailbox()
      local path = dir .. '/polled'
      local poll = uv.new_fs_poll()
      assert.matches('^uv_fs_poll_t: ', tostring(poll))
      assert.are.equal('EINVAL', select(3, poll:getpath()))
      assert.are.equal(0, poll:start(path, 10, function(err, prev, curr)
        box.put(err, prev, curr)
      end))
      assert.are.equal(path, poll:getpath())
      assert.are.equal(path, uv.fs_poll_getpath(poll))
      -- The first stat fails: the callback says so once.
      local err, prev, curr = box.take()
      assert.are.equal('ENOENT', err)
      assert.are.equal(0, prev.size)
      assert.are.equal(0, curr.ino)
      helper.write_file(path, 'a')
      repeat
        err, prev, curr = box.take()
        assert.is_nil(err)
      until curr.size == 1
      assert.are.equal('file', curr.type)
      helper.write_file(path, 'abcdef')
      repeat
        err, prev, curr = box.take()
        assert.is_nil(err)
      until curr.size == 6
      assert.is_true(prev.size < 6)
      assert.are.equal(prev.ino, curr.ino)
      assert.are.equal(0, uv.fs_poll_stop(poll))
      assert.are.equal('EINVAL', select(3, poll:getpath()))
      poll:close()
    end)
  end)

  it('checks its arguments', function()
    run(function()
      local poll = uv.new_fs_poll()
      assert.has_error(function() poll:start(dir, -1, function() end) end)
      assert.has_error(function() poll:start(dir, 10, 'nope') end)
      local timer = uv.new_timer()
      assert.has_error(function()
        uv.fs_poll_start(timer, dir, 1, function() end)
      end)
      timer:close()
      poll:close()
    end)
  end)
end)
