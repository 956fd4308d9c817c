-- fs: Node's file system functions in three forms each:
--   fs.readFile(path)             suspends the calling coroutine; returns
--                                 data, or nil, err
--   fs.readFile(path, function(err, data) end)   callback
--   fs.readFileSync(path)         blocks the loop on purpose; data | nil, err
-- The work runs on libuv's thread pool (the first two forms). Errors are
-- values with Node's fields: code, errno, syscall, path (and dest), and a
-- message such as "ENOENT: no such file or directory, open 'x.txt'".

local uv = require('uv')
local EventEmitter = require('events').EventEmitter
local errors = require('internal.errors')
local wait = require('internal.wait')
local binding = require('internal.binding')

local error, ipairs, select, setmetatable, tonumber, tostring, type =
  error, ipairs, select, setmetatable, tonumber, tostring, type
local concat, pack, unpack = table.concat, table.pack, table.unpack
local format = string.format
local spawn = binding.spawn
local is_callable = wait.is_callable

local M = {}

local SYNC, ASYNC = 'sync', 'async'
local CHUNK = 64 * 1024

-- Errors -----------------------------------------------------------------------

local strerror_cache = {}

-- Node's fs error: "ENOENT: no such file or directory, open 'x.txt'".
local function fs_error(code, syscall, path, dest)
  local errno = uv.errno[code]
  local text = strerror_cache[code]
  if not text then
    text = errno and uv.strerror(errno) or code
    strerror_cache[code] = text
  end
  local message = format('%s: %s, %s', code, text, syscall)
  if path then message = message .. format(" '%s'", path) end
  if dest then message = message .. format(" -> '%s'", dest) end
  return errors.new(code, message, { errno = errno, syscall = syscall,
    path = path, dest = dest })
end

M.error = fs_error

-- Calling uv ---------------------------------------------------------------------

local function name_of(err)
  return type(err) == 'string' and err:match('^([%u%d_]+)') or tostring(err)
end

-- Calls uv.fs_*(...) (n arguments) in the given mode. Returns its results,
-- or nil and the error's name ('ENOENT').
local function call(mode, fn, n, ...)
  if mode == SYNC then
    local a, b, c = fn(...)
    if a == nil and c ~= nil then return nil, c end
    return a, b
  end
  local args = pack(...)
  local w = wait.waiter('fs', 4)
  args[n + 1] = function(err, a, b) w:wake(err, a, b) end
  local req, _, name = fn(unpack(args, 1, n + 1))
  if not req then return nil, name end
  local err, a, b = w:wait()
  if err then return nil, name_of(err) end
  return a, b
end

-- Defines fs.<name>, fs.<name>Sync from impl(mode, ...) -> values | nil, err.
-- The plain form takes an optional trailing callback cb(err, values...).
-- (Not a tail call: the *Sync function stays on the stack while impl runs,
-- so a blocking-watchdog report can name it.)
local function pass(...) return ... end

local function define(name, impl)
  M[name .. 'Sync'] = function(...) return pass(impl(SYNC, ...)) end
  M[name] = function(...)
    local n = select('#', ...)
    local cb = n > 0 and select(n, ...) or nil
    if not is_callable(cb) then
      wait.current('fs.' .. name, 2)
      return impl(ASYNC, ...)
    end
    local args = pack(...)
    cb = wait.traced(cb)
    spawn(function()
      local r = pack(impl(ASYNC, unpack(args, 1, n - 1)))
      if r[1] == nil and r.n >= 2 and r[2] ~= nil then
        cb(r[2])
      else
        cb(nil, unpack(r, 1, r.n))
      end
    end)
  end
end

local function check_path(path, who)
  if type(path) ~= 'string' then
    error(who .. ': path must be a string, got ' .. type(path), 4)
  end
end

local function check_fd(fd, who)
  if math.type(fd) ~= 'integer' or fd < 0 then
    error(who .. ': fd must be a non-negative integer, got ' .. tostring(fd), 4)
  end
end

-- A mode as a number, or an octal string ('755').
local function mode_of(mode, default, who)
  if mode == nil then return default end
  if type(mode) == 'string' then
    local n = tonumber(mode, 8)
    if n then return n end
  elseif math.type(mode) == 'integer' then
    return mode
  end
  error(who .. ': mode must be an integer or an octal string, got ' ..
    tostring(mode), 4)
end

local function opts_of(opts, key)
  if type(opts) == 'table' then return opts end
  if opts == nil then return {} end
  return { [key] = opts }
end

-- Stats --------------------------------------------------------------------------

local Stats = {}
Stats.__index = Stats
Stats.__name = 'Stats'
M.Stats = Stats

local S_IFMT = uv.constants.S_IFMT
local function kind(self, bits) return self.mode & S_IFMT == bits end
function Stats:isFile() return kind(self, uv.constants.S_IFREG) end
function Stats:isDirectory() return kind(self, uv.constants.S_IFDIR) end
function Stats:isSymbolicLink() return kind(self, uv.constants.S_IFLNK) end
function Stats:isFIFO() return kind(self, uv.constants.S_IFIFO) end
function Stats:isSocket() return kind(self, uv.constants.S_IFSOCK) end
function Stats:isCharacterDevice() return kind(self, uv.constants.S_IFCHR) end
function Stats:isBlockDevice() return kind(self, uv.constants.S_IFBLK) end

-- luv's stat table with times as seconds (float) and Node's *Ms fields.
local function stats_of(st)
  for _, key in ipairs({ 'atime', 'mtime', 'ctime', 'birthtime' }) do
    local t = st[key]
    if type(t) == 'table' then
      local seconds = t.sec + t.nsec / 1e9
      st[key] = seconds
      st[key .. 'Ms'] = seconds * 1000
    end
  end
  return setmetatable(st, Stats)
end

-- Basic calls ----------------------------------------------------------------

-- Defines a one-call function: fs.<name>(args...) -> uv.fs_<uvname>'s
-- result (or `result` when given), errors naming the first path (and the
-- second as dest when two_paths).
local function simple(name, uvname, syscall, nargs, opts)
  opts = opts or {}
  local fn = uv['fs_' .. uvname]
  define(name, function(mode, ...)
    local a, b = ...
    if opts.check then opts.check(...) end
    local args = pack(...)
    if opts.prepare then args = pack(opts.prepare(...)) end
    local r, err = call(mode, fn, nargs, unpack(args, 1, nargs))
    if r == nil and err then
      return nil, fs_error(err, syscall, opts.path ~= false and a or nil,
        opts.two_paths and b or nil)
    end
    if opts.result ~= nil then return opts.result end
    if opts.convert then return opts.convert(r) end
    return r
  end)
end

local function path_arg(who) return function(path) check_path(path, who) end end
local function two_paths(who)
  return function(a, b) check_path(a, who) check_path(b, who) end
end
local function fd_arg(who) return function(fd) check_fd(fd, who) end end

simple('close', 'close', 'close', 1, { check = fd_arg('close'), path = false,
  result = true })
simple('unlink', 'unlink', 'unlink', 1, { check = path_arg('unlink'), result = true })
simple('rename', 'rename', 'rename', 2, { check = two_paths('rename'),
  two_paths = true, result = true })
simple('link', 'link', 'link', 2, { check = two_paths('link'), two_paths = true,
  result = true })
simple('symlink', 'symlink', 'symlink', 2, { check = two_paths('symlink'),
  two_paths = true, result = true })
simple('readlink', 'readlink', 'readlink', 1, { check = path_arg('readlink') })
simple('realpath', 'realpath', 'realpath', 1, { check = path_arg('realpath') })
simple('stat', 'stat', 'stat', 1, { check = path_arg('stat'), convert = stats_of })
simple('lstat', 'lstat', 'lstat', 1, { check = path_arg('lstat'), convert = stats_of })
simple('fstat', 'fstat', 'fstat', 1, { check = fd_arg('fstat'), path = false,
  convert = stats_of })
simple('fsync', 'fsync', 'fsync', 1, { check = fd_arg('fsync'), path = false,
  result = true })
simple('fdatasync', 'fdatasync', 'fdatasync', 1, { check = fd_arg('fdatasync'),
  path = false, result = true })
simple('chmod', 'chmod', 'chmod', 2, { check = path_arg('chmod'), result = true,
  prepare = function(path, mode) return path, mode_of(mode, nil, 'chmod') end })
simple('fchmod', 'fchmod', 'fchmod', 2, { check = fd_arg('fchmod'), path = false,
  result = true,
  prepare = function(fd, mode) return fd, mode_of(mode, nil, 'fchmod') end })
simple('chown', 'chown', 'chown', 3, { check = path_arg('chown'), result = true })
simple('lchown', 'lchown', 'lchown', 3, { check = path_arg('lchown'), result = true })
simple('fchown', 'fchown', 'fchown', 3, { check = fd_arg('fchown'), path = false,
  result = true })
simple('utimes', 'utime', 'utime', 3, { check = path_arg('utimes'), result = true })
simple('lutimes', 'lutime', 'lutime', 3, { check = path_arg('lutimes'), result = true })
simple('futimes', 'futime', 'futime', 3, { check = fd_arg('futimes'), path = false,
  result = true })
simple('ftruncate', 'ftruncate', 'ftruncate', 2, { check = fd_arg('ftruncate'),
  path = false, result = true,
  prepare = function(fd, len) return fd, len or 0 end })
simple('mkdtemp', 'mkdtemp', 'mkdtemp', 1, { check = function(prefix)
  check_path(prefix, 'mkdtemp')
end, prepare = function(prefix) return prefix .. 'XXXXXX' end })

-- copyFile(src, dest [, mode]): mode is fs.constants.COPYFILE_EXCL etc.
simple('copyFile', 'copyfile', 'copyfile', 3, { check = two_paths('copyFile'),
  two_paths = true, result = true,
  prepare = function(a, b, mode) return a, b, mode or 0 end })

-- access(path [, mode]) -> true | nil, err (mode: fs.constants.R_OK, ...)
define('access', function(mode, path, amode)
  check_path(path, 'access')
  local ok, err = call(mode, uv.fs_access, 2, path, amode or 0)
  if ok == nil and err then return nil, fs_error(err, 'access', path) end
  if not ok then -- luv says only false: a missing path, or no permission
    local st, serr = call(mode, uv.fs_stat, 1, path)
    return nil, fs_error(st and 'EACCES' or serr, 'access', path)
  end
  return true
end)

-- exists(path) -> boolean (never an error; the callback gets (nil, bool)).
define('exists', function(mode, path)
  if type(path) ~= 'string' then return false end
  local st = call(mode, uv.fs_stat, 1, path)
  return st ~= nil
end)

-- open(path [, flags] [, mode]) -> fd
define('open', function(mode, path, flags, fmode)
  check_path(path, 'open')
  local fd, err = call(mode, uv.fs_open, 3, path, flags or 'r',
    mode_of(fmode, 438, 'open')) -- 0666
  if not fd then return nil, fs_error(err, 'open', path) end
  return fd
end)

-- read(fd [, length] [, position]) -> data ('' at the end of the file)
define('read', function(mode, fd, length, position)
  check_fd(fd, 'read')
  local data, err = call(mode, uv.fs_read, 3, fd, length or CHUNK, position)
  if not data then return nil, fs_error(err, 'read') end
  return data
end)

-- write(fd, data [, position]) -> bytes written (data: string or array)
define('write', function(mode, fd, data, position)
  check_fd(fd, 'write')
  if type(data) ~= 'string' and type(data) ~= 'table' then
    error('write: data must be a string or an array of strings', 3)
  end
  local n, err = call(mode, uv.fs_write, 3, fd, data, position)
  if not n then return nil, fs_error(err, 'write') end
  return n
end)

-- truncate(path [, length])
define('truncate', function(mode, path, length)
  check_path(path, 'truncate')
  local fd, err = call(mode, uv.fs_open, 3, path, 'r+', 438)
  if not fd then return nil, fs_error(err, 'open', path) end
  local ok, terr = call(mode, uv.fs_ftruncate, 2, fd, length or 0)
  call(mode, uv.fs_close, 1, fd)
  if not ok then return nil, fs_error(terr, 'ftruncate', path) end
  return true
end)

-- Whole files ---------------------------------------------------------------------

-- Whole-file reads in flight at once. The thread pool fills read buffers
-- faster than the loop turns them into strings: without a cap, 1,000
-- concurrent readFile calls of 1 MiB hold about 1 GB at the peak.
local READ_SLOTS = 8
local reads_in_flight = 0
local read_queue, read_head, read_tail = {}, 1, 0

local function acquire_read(mode)
  if mode == SYNC then return end
  if reads_in_flight < READ_SLOTS then
    reads_in_flight = reads_in_flight + 1
    return
  end
  local w = wait.waiter('fs.readFile', 3)
  read_tail = read_tail + 1
  read_queue[read_tail] = w
  w:wait() -- the slot is handed over by release_read
end

local function release_read(mode)
  if mode == SYNC then return end
  if read_head <= read_tail then
    local w = read_queue[read_head]
    read_queue[read_head] = nil
    read_head = read_head + 1
    if read_head > read_tail then read_head, read_tail = 1, 0 end
    w:wake()
  else
    reads_in_flight = reads_in_flight - 1
  end
end

local function read_file(mode, path, opts)
  if type(path) ~= 'string' and math.type(path) ~= 'integer' then
    error('readFile: path must be a string or an fd, got ' .. type(path), 3)
  end
  opts = opts_of(opts, 'encoding')
  local fd, own = path, false
  if type(path) == 'string' then
    local err
    fd, err = call(mode, uv.fs_open, 3, path, opts.flag or 'r', 438)
    if not fd then return nil, fs_error(err, 'open', path) end
    own = true
  end
  local st = call(mode, uv.fs_fstat, 1, fd)
  local parts, result, err = {}, nil, nil
  if st and st.type == 'directory' then
    err = fs_error('EISDIR', 'read')
  elseif st and st.type == 'file' and st.size > 0 then
    -- A regular file: its size in one read (and more if it is short).
    local want, got = st.size, 0
    acquire_read(mode)
    while got < want do
      local data, rerr = call(mode, uv.fs_read, 3, fd, want - got, own and got or nil)
      if not data then err = fs_error(rerr, 'read') break end
      if data == '' then break end
      parts[#parts + 1] = data
      got = got + #data
    end
    release_read(mode)
  else
    -- Pipes, /proc files, devices: read until the end.
    local pos = 0
    while true do
      local data, rerr = call(mode, uv.fs_read, 3, fd, CHUNK, own and pos or nil)
      if not data then err = fs_error(rerr, 'read') break end
      if data == '' then break end
      parts[#parts + 1] = data
      pos = pos + #data
    end
  end
  if own then call(mode, uv.fs_close, 1, fd) end
  if err then
    err.path = type(path) == 'string' and path or nil
    if err.path then err.message = err.message .. format(" '%s'", path) end
    return nil, err
  end
  result = #parts == 1 and parts[1] or concat(parts)
  return result
end

-- readFile(path | fd [, opts]) -> data. opts: flag (default 'r').
define('readFile', read_file)

local function write_file(mode, path, data, opts, default_flag, who)
  if type(path) ~= 'string' and math.type(path) ~= 'integer' then
    error(who .. ': path must be a string or an fd, got ' .. type(path), 3)
  end
  if type(data) ~= 'string' and type(data) ~= 'table' then
    error(who .. ': data must be a string or an array of strings, got ' ..
      type(data), 3)
  end
  opts = opts_of(opts, 'encoding')
  local fd, own = path, false
  if type(path) == 'string' then
    local err
    fd, err = call(mode, uv.fs_open, 3, path, opts.flag or default_flag,
      mode_of(opts.mode, 438, who))
    if not fd then return nil, fs_error(err, 'open', path) end
    own = true
  end
  if type(data) == 'table' then data = concat(data) end
  local pos, total, err = 0, #data, nil
  local append = (opts.flag or default_flag):find('a', 1, true) ~= nil
  while pos < total do
    local chunk = pos == 0 and data or data:sub(pos + 1)
    local n, werr = call(mode, uv.fs_write, 3, fd, chunk,
      (own and not append) and pos or nil)
    if not n then err = fs_error(werr, 'write', type(path) == 'string' and path or nil) break end
    pos = pos + n
  end
  if own then
    local ok, cerr = call(mode, uv.fs_close, 1, fd)
    if not ok and not err then err = fs_error(cerr, 'close', path) end
  end
  if err then return nil, err end
  return true
end

-- writeFile(path | fd, data [, opts]) -> true. opts: flag ('w'), mode.
define('writeFile', function(mode, path, data, opts)
  return write_file(mode, path, data, opts, 'w', 'writeFile')
end)

-- appendFile(path | fd, data [, opts]) -> true. opts: flag ('a'), mode.
define('appendFile', function(mode, path, data, opts)
  return write_file(mode, path, data, opts, 'a', 'appendFile')
end)

-- Directories ---------------------------------------------------------------------

local Dirent = {}
Dirent.__index = Dirent
Dirent.__name = 'Dirent'
function Dirent:isFile() return self.type == 'file' end
function Dirent:isDirectory() return self.type == 'directory' end
function Dirent:isSymbolicLink() return self.type == 'link' end
function Dirent:isFIFO() return self.type == 'fifo' end
function Dirent:isSocket() return self.type == 'socket' end
function Dirent:isCharacterDevice() return self.type == 'char' end
function Dirent:isBlockDevice() return self.type == 'block' end

-- readdir(path [, opts]) -> names | dirents. opts.withFileTypes: Dirent
-- tables { name, type } with isFile(), isDirectory(), ...
define('readdir', function(mode, path, opts)
  check_path(path, 'readdir')
  opts = opts_of(opts, 'encoding')
  local req, err = call(mode, uv.fs_scandir, 1, path)
  if not req then return nil, fs_error(err, 'scandir', path) end
  local list = {}
  while true do
    local name, kind = uv.fs_scandir_next(req)
    if not name then break end
    if opts.withFileTypes then
      list[#list + 1] = setmetatable({ name = name, type = kind, path = path }, Dirent)
    else
      list[#list + 1] = name
    end
  end
  return list
end)

local function parent_of(path)
  return path:match('^(.*)/[^/]+/*$')
end

-- mkdir(path [, opts]) -> true | first created directory (recursive).
-- opts: recursive, mode (default 0777), or a mode number.
define('mkdir', function(mode, path, opts)
  check_path(path, 'mkdir')
  if type(opts) ~= 'table' then opts = { mode = opts } end
  local dmode = mode_of(opts.mode, 511, 'mkdir')
  if not opts.recursive then
    local ok, err = call(mode, uv.fs_mkdir, 2, path, dmode)
    if not ok then return nil, fs_error(err, 'mkdir', path) end
    return true
  end
  -- Recursive: create the missing ancestors, outermost first.
  local missing, p = {}, path:gsub('/+$', '')
  if p == '' then p = '/' end
  while p and p ~= '' do
    local st = call(mode, uv.fs_stat, 1, p)
    if st then
      if st.type ~= 'directory' then
        return nil, fs_error('ENOTDIR', 'mkdir', path)
      end
      break
    end
    missing[#missing + 1] = p
    p = parent_of(p)
  end
  local first
  for i = #missing, 1, -1 do
    local ok, err = call(mode, uv.fs_mkdir, 2, missing[i], dmode)
    if not ok and err ~= 'EEXIST' then return nil, fs_error(err, 'mkdir', path) end
    first = first or (ok and missing[i])
  end
  return first or true
end)

local function remove_tree(mode, path)
  local st, err = call(mode, uv.fs_lstat, 1, path)
  if not st then return nil, err, 'lstat' end
  if st.type ~= 'directory' then
    local ok, uerr = call(mode, uv.fs_unlink, 1, path)
    if not ok then return nil, uerr, 'unlink' end
    return true
  end
  local req, serr = call(mode, uv.fs_scandir, 1, path)
  if not req then return nil, serr, 'scandir' end
  local names = {}
  while true do
    local name = uv.fs_scandir_next(req)
    if not name then break end
    names[#names + 1] = name
  end
  for _, name in ipairs(names) do
    local ok, e, syscall = remove_tree(mode, path .. '/' .. name)
    if not ok then return nil, e, syscall end
  end
  local ok, rerr = call(mode, uv.fs_rmdir, 1, path)
  if not ok then return nil, rerr, 'rmdir' end
  return true
end

-- rm(path [, opts]) -> true. opts: recursive (directories and their
-- contents), force (a missing path is not an error).
define('rm', function(mode, path, opts)
  check_path(path, 'rm')
  opts = opts or {}
  local st, err = call(mode, uv.fs_lstat, 1, path)
  if not st then
    if err == 'ENOENT' and opts.force then return true end
    return nil, fs_error(err, 'rm', path)
  end
  if st.type == 'directory' and not opts.recursive then
    return nil, fs_error('EISDIR', 'rm', path) -- Node: ERR_FS_EISDIR
  end
  local ok, rerr, syscall = remove_tree(mode, path)
  if not ok then
    if rerr == 'ENOENT' and opts.force then return true end
    return nil, fs_error(rerr, syscall, path)
  end
  return true
end)

-- rmdir(path [, opts]) -> true. opts.recursive as rm's.
define('rmdir', function(mode, path, opts)
  check_path(path, 'rmdir')
  if opts and opts.recursive then
    local ok, err, syscall = remove_tree(mode, path)
    if not ok then return nil, fs_error(err, syscall, path) end
    return true
  end
  local ok, err = call(mode, uv.fs_rmdir, 1, path)
  if not ok then return nil, fs_error(err, 'rmdir', path) end
  return true
end)

-- Constants -----------------------------------------------------------------------

M.constants = {
  F_OK = 0, R_OK = 4, W_OK = 2, X_OK = 1,
  COPYFILE_EXCL = uv.constants.FS_COPYFILE_EXCL,
  COPYFILE_FICLONE = uv.constants.FS_COPYFILE_FICLONE,
  COPYFILE_FICLONE_FORCE = uv.constants.FS_COPYFILE_FICLONE_FORCE,
  O_RDONLY = uv.constants.O_RDONLY, O_WRONLY = uv.constants.O_WRONLY,
  O_RDWR = uv.constants.O_RDWR, O_CREAT = uv.constants.O_CREAT,
  O_EXCL = uv.constants.O_EXCL, O_TRUNC = uv.constants.O_TRUNC,
  O_APPEND = uv.constants.O_APPEND,
  S_IFMT = uv.constants.S_IFMT, S_IFREG = uv.constants.S_IFREG,
  S_IFDIR = uv.constants.S_IFDIR, S_IFLNK = uv.constants.S_IFLNK,
}

-- Streams ------------------------------------------------------------------------

local ReadStream = EventEmitter:extend('ReadStream')
M.ReadStream = ReadStream

-- createReadStream(path [, opts]) -> ReadStream. opts: start, ['end']
-- (inclusive, as in Node), highWaterMark (chunk size, default 64 KiB),
-- fd (read an open fd; it is closed at the end unless autoClose=false).
-- read() -> chunk | nil at the end | nil, err; 'data'/'end'/'close'/
-- 'error' events; pipe(dest) copies with backpressure.
function M.createReadStream(path, opts)
  opts = opts_of(opts, 'encoding')
  if opts.fd == nil then check_path(path, 'createReadStream') end
  local self = ReadStream.new()
  self.path = path
  self.fd = opts.fd
  self._pos = opts.start or 0
  self._stop = opts['end'] and opts['end'] + 1 or nil
  self._size = opts.highWaterMark or CHUNK
  self._autoClose = opts.autoClose ~= false
  self.bytesRead = 0
  return self
end

local function close_fd(self)
  local fd = self.fd
  if fd and self._autoClose and not self._fdClosed then
    self._fdClosed = true
    uv.fs_close(fd, function() self:emit('close') end)
  elseif not self._closeEmitted then
    self._closeEmitted = true
    spawn(self.emit, self, 'close')
  end
end

function ReadStream:read(cb)
  if cb then
    wait.in_background(self, self.read, cb)
    return
  end
  if self._err then return nil, self._err end
  if self._ended or self._destroyed then return nil end
  if self._reading then return nil, 'stream busy reading' end
  self._reading = true
  if not self.fd then
    local fd, err = M.open(self.path, 'r')
    if not fd then
      self._reading = false
      self._err = err
      return nil, err
    end
    self.fd = fd
    self:emit('open', fd)
  end
  local size = self._size
  if self._stop then size = math.min(size, self._stop - self._pos) end
  local data, err
  if size > 0 then
    data, err = M.read(self.fd, size, self._pos)
  else
    data = ''
  end
  self._reading = false
  if not data then
    self._err = err
    close_fd(self)
    return nil, err
  end
  if data == '' then
    self._ended = true
    close_fd(self)
    return nil
  end
  self._pos = self._pos + #data
  self.bytesRead = self.bytesRead + #data
  return data
end

-- 'data' listeners start a reading loop (the 'end' event follows).
function ReadStream:on(name, listener)
  EventEmitter.on(self, name, listener)
  if name == 'data' and not self._flowing then
    self._flowing = true
    spawn(function()
      while self._flowing do
        local chunk, err = self:read()
        if not chunk then
          if err then
            if self:listenerCount('error') > 0 then self:emit('error', err) end
          else
            self:emit('end')
          end
          break
        end
        self:emit('data', chunk)
      end
    end)
  end
  return self
end

function ReadStream:pause()
  self._flowing = false
  return self
end

function ReadStream:destroy()
  if self._destroyed then return self end
  self._destroyed = true
  self._flowing = false
  close_fd(self)
  return self
end
ReadStream.close = ReadStream.destroy

-- pipe(dest [, opts]) -> dest: everything to dest (anything with
-- write/finish/destroy: sockets, HTTP responses, write streams), waiting
-- for dest between chunks; dest is finished at the end unless
-- opts.finish == false.
function ReadStream:pipe(dest, opts)
  spawn(function()
    while true do
      local chunk, err = self:read()
      if not chunk then
        if err then dest:destroy(err) return end
        break
      end
      if not dest:write(chunk) then self:destroy() return end
    end
    if not (opts and opts.finish == false) then dest:finish() end
  end)
  return dest
end

local WriteStream = EventEmitter:extend('WriteStream')
M.WriteStream = WriteStream

-- createWriteStream(path [, opts]) -> WriteStream. opts: flags ('w'),
-- mode, start, fd. write(data) waits until the data is written (the
-- backpressure of a file) and returns true | nil, err; with a callback it
-- queues and returns at once. finish([data]) closes the file after the
-- queued writes ('finish' then 'close').
function M.createWriteStream(path, opts)
  opts = opts_of(opts, 'encoding')
  if opts.fd == nil then check_path(path, 'createWriteStream') end
  local self = WriteStream.new()
  self.path = path
  self.fd = opts.fd
  self._flags = opts.flags or 'w'
  self._mode = opts.mode
  self._pos = opts.start
  self._queue = {}
  self.bytesWritten = 0
  return self
end

local function ws_pump(self)
  if self._pumping then return end
  self._pumping = true
  spawn(function()
    while #self._queue > 0 do
      local item = table.remove(self._queue, 1)
      local err
      if not self._err then
        if not self.fd then
          local fd, oerr = M.open(self.path, self._flags, self._mode)
          if fd then
            self.fd = fd
            self:emit('open', fd)
          else
            self._err = oerr
          end
        end
        if item.data and not self._err then
          local n, werr = M.write(self.fd, item.data, self._pos)
          if n then
            self.bytesWritten = self.bytesWritten + n
            if self._pos then self._pos = self._pos + n end
          else
            self._err = werr
          end
        end
      end
      err = self._err
      if item.finish then
        if self.fd then M.close(self.fd) end
        self._closed = true
        if not err then self:emit('finish') end
        if err and self:listenerCount('error') > 0 then self:emit('error', err) end
        self:emit('close')
      end
      if item.cb then item.cb(err) end
      if item.waiter then item.waiter:wake(err) end
    end
    self._pumping = false
  end)
end

function WriteStream:write(data, cb)
  if type(data) ~= 'string' and type(data) ~= 'table' then
    error('write: data must be a string or an array of strings, got ' ..
      type(data), 2)
  end
  cb = wait.traced(cb)
  if self._ending then
    local err = errors.new('ERR_STREAM_WRITE_AFTER_END', 'write after end')
    if cb then spawn(cb, err) return false end
    return nil, err
  end
  if type(data) == 'table' then data = concat(data) end
  local item = { data = data, cb = cb }
  if not cb then item.waiter = wait.waiter('write', 2) end
  self._queue[#self._queue + 1] = item
  ws_pump(self)
  if cb then return #self._queue < 16 end
  local err = item.waiter:wait()
  if err then return nil, err end
  return true
end

function WriteStream:finish(data, cb)
  if type(data) == 'function' then data, cb = nil, data end
  cb = wait.traced(cb)
  if self._ending then
    if cb then spawn(cb) end
    return self
  end
  self._ending = true
  self._queue[#self._queue + 1] = { data = data, finish = true, cb = cb }
  ws_pump(self)
  return self
end
WriteStream['end'] = WriteStream.finish

function WriteStream:destroy()
  return self:finish()
end
WriteStream.close = WriteStream.destroy

-- watch -----------------------------------------------------------------------------

local FSWatcher = EventEmitter:extend('FSWatcher')
M.FSWatcher = FSWatcher

-- watch(path [, opts] [, listener]) -> watcher | nil, err. listener is a
-- 'change' listener: (eventType 'rename' | 'change', filename). opts:
-- persistent (default true: keeps the process alive), recursive.
function M.watch(path, opts, listener)
  if is_callable(opts) then opts, listener = nil, opts end
  check_path(path, 'watch')
  opts = opts_of(opts, 'encoding')
  local handle = uv.new_fs_event()
  local self = FSWatcher.new()
  self._handle = handle
  if listener then self:on('change', listener) end
  local ok, _, name = handle:start(path, { recursive = opts.recursive },
    function(err, filename, events)
      if err then
        local e = fs_error(name_of(err), 'watch', path)
        if self:listenerCount('error') > 0 then self:emit('error', e) end
        return
      end
      if events.rename then self:emit('change', 'rename', filename) end
      if events.change then self:emit('change', 'change', filename) end
    end)
  if not ok then
    handle:close()
    return nil, fs_error(name, 'watch', path)
  end
  if opts.persistent == false then handle:unref() end
  return self
end

function FSWatcher:close()
  local handle = self._handle
  if handle and not handle:is_closing() then
    handle:close(function() self:emit('close') end)
  end
  return self
end

function FSWatcher:ref()
  if not self._handle:is_closing() then self._handle:ref() end
  return self
end

function FSWatcher:unref()
  if not self._handle:is_closing() then self._handle:unref() end
  return self
end

return M
