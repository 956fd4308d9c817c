/* File system operations (luv's fs_*). Each runs on libuv's thread pool
 * when given a callback, and then returns its request (uv.cancel can stop
 * it while it waits for a thread); without one it blocks the loop and
 * returns the result. Failures are luv's: nil, "ENAME: message: path",
 * "ENAME", and an async callback gets that message as its err. Reads copy
 * once: libuv reads into a buffer the request owns, which becomes a Lua
 * string in the callback and is freed. Writes point libuv into the Lua
 * strings, pinned until the callback. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lh_bind.h"

#define SMALL_BUFS 8
#define MAX_IO 0x7ffff000 /* Linux's limit for one read or write */

typedef struct dir_s dir_t;

/* An fs request: the uv_fs_t first, so the same pointer works for both. A
 * synchronous call uses one on the C stack. */
typedef struct {
  uv_fs_t req;
  int async;
  char* buf;            /* fs_read: the buffer libuv reads into */
  const char* dest;     /* second path of two-path calls, for messages */
  lua_Integer nentries; /* fs_opendir: entries per fs_readdir */
  dir_t* dir;           /* fs_readdir: the directory it reads */
  lh_runtime_t* rt;     /* sync: the runtime told it blocks */
  const char* prev_call;
} fs_req_t;

/* luv_dir_t: a directory stream from fs_opendir. Its dirents live in the
 * userdata; libuv's uv_dir_t is closed by fs_closedir or by __gc. */
struct dir_s {
  uv_dir_t* dir; /* NULL once closed */
  int busy;      /* a readdir is in flight (the userdata is pinned) */
  size_t nentries;
  uv_dirent_t dirents[];
};

/* What fs_scandir returns: the finished request, which fs_scandir_next
 * walks. The sync form carries its request; the async form points into
 * its request userdata, held by user value 1. */
typedef struct {
  uv_fs_t* req; /* results left to read; NULL when none (failed, done) */
  uv_fs_t own;
} scandir_t;

static char scandirs_key; /* registry: weak-keyed request -> scandir_t */

#define DIR_MT "uv_dir"
#define SCANDIR_MT "uv_fs_scandir"

static uv_loop_t* loop_of(lua_State* L) {
  return lh_runtime(L)->loop;
}

static uv_file check_fd(lua_State* L, int idx) {
  lua_Integer fd = luaL_checkinteger(L, idx);
  luaL_argcheck(L, fd >= INT_MIN && fd <= INT_MAX, idx, "out of range");
  return (uv_file)fd;
}

/* Results ----------------------------------------------------------- */

/* luv's error message: "ENAME: message[: path[ -> dest]]". */
static void push_message(lua_State* L, const uv_fs_t* req, const char* dest,
                         int status) {
  const char* name = uv_err_name(status);
  const char* msg = uv_strerror(status);
  if (req->path != NULL && dest != NULL)
    lua_pushfstring(L, "%s: %s: %s -> %s", name, msg, req->path, dest);
  else if (req->path != NULL)
    lua_pushfstring(L, "%s: %s: %s", name, msg, req->path);
  else
    lua_pushfstring(L, "%s: %s", name, msg);
}

static int push_fail(lua_State* L, const uv_fs_t* req, const char* dest,
                     int status) {
  lua_pushnil(L);
  push_message(L, req, dest, status);
  lua_pushstring(L, uv_err_name(status));
  return 3;
}

static void push_timespec(lua_State* L, const uv_timespec_t* t) {
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, t->tv_sec);
  lua_setfield(L, -2, "sec");
  lua_pushinteger(L, t->tv_nsec);
  lua_setfield(L, -2, "nsec");
}

static const char* mode_type(uint64_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "file";
    case S_IFDIR:
      return "directory";
    case S_IFLNK:
      return "link";
    case S_IFIFO:
      return "fifo";
    case S_IFSOCK:
      return "socket";
    case S_IFCHR:
      return "char";
    case S_IFBLK:
      return "block";
    default:
      return NULL;
  }
}

#define SET_INT(L, s, field)                            \
  do {                                                  \
    lua_pushinteger((L), (lua_Integer)(s)->st_##field); \
    lua_setfield((L), -2, #field);                      \
  } while (0)

/* luv's stat table (also used by fs_poll.c). */
void lh_push_stat(lua_State* L, const uv_stat_t* s) {
  const char* type = mode_type(s->st_mode);
  lua_createtable(L, 0, 17);
  SET_INT(L, s, dev);
  SET_INT(L, s, mode);
  SET_INT(L, s, nlink);
  SET_INT(L, s, uid);
  SET_INT(L, s, gid);
  SET_INT(L, s, rdev);
  SET_INT(L, s, ino);
  SET_INT(L, s, size);
  SET_INT(L, s, blksize);
  SET_INT(L, s, blocks);
  SET_INT(L, s, flags);
  SET_INT(L, s, gen);
  push_timespec(L, &s->st_atim);
  lua_setfield(L, -2, "atime");
  push_timespec(L, &s->st_mtim);
  lua_setfield(L, -2, "mtime");
  push_timespec(L, &s->st_ctim);
  lua_setfield(L, -2, "ctime");
  push_timespec(L, &s->st_birthtim);
  lua_setfield(L, -2, "birthtime");
  if (type != NULL) {
    lua_pushstring(L, type);
    lua_setfield(L, -2, "type");
  }
}

static void push_statfs(lua_State* L, const uv_statfs_t* s) {
  lua_createtable(L, 0, 7);
  lua_pushinteger(L, (lua_Integer)s->f_type);
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)s->f_bsize);
  lua_setfield(L, -2, "bsize");
  lua_pushinteger(L, (lua_Integer)s->f_blocks);
  lua_setfield(L, -2, "blocks");
  lua_pushinteger(L, (lua_Integer)s->f_bfree);
  lua_setfield(L, -2, "bfree");
  lua_pushinteger(L, (lua_Integer)s->f_bavail);
  lua_setfield(L, -2, "bavail");
  lua_pushinteger(L, (lua_Integer)s->f_files);
  lua_setfield(L, -2, "files");
  lua_pushinteger(L, (lua_Integer)s->f_ffree);
  lua_setfield(L, -2, "ffree");
}

static const char* dirent_type(uv_dirent_type_t type) {
  switch (type) {
    case UV_DIRENT_FILE:
      return "file";
    case UV_DIRENT_DIR:
      return "directory";
    case UV_DIRENT_LINK:
      return "link";
    case UV_DIRENT_FIFO:
      return "fifo";
    case UV_DIRENT_SOCKET:
      return "socket";
    case UV_DIRENT_CHAR:
      return "char";
    case UV_DIRENT_BLOCK:
      return "block";
    default:
      return "unknown";
  }
}

/* A new luv_dir_t for libuv's open directory. */
static void push_dir(lua_State* L, uv_dir_t* dir, size_t nentries) {
  dir_t* d =
      lua_newuserdatauv(L, sizeof(dir_t) + nentries * sizeof(uv_dirent_t), 0);
  d->dir = dir;
  d->busy = 0;
  d->nentries = nentries;
  luaL_setmetatable(L, DIR_MT);
}

/* Pushes the results of a finished request (not fs_scandir's); returns
 * their count. */
static int push_result(lua_State* L, fs_req_t* f) {
  uv_fs_t* req = &f->req;
  switch (req->fs_type) {
    case UV_FS_ACCESS:
      lua_pushboolean(L, req->result >= 0);
      return 1;
    case UV_FS_OPEN:
    case UV_FS_WRITE:
    case UV_FS_SENDFILE:
      lua_pushinteger(L, (lua_Integer)req->result);
      return 1;
    case UV_FS_READ:
      lua_pushlstring(L, f->buf, (size_t)req->result);
      return 1;
    case UV_FS_STAT:
    case UV_FS_LSTAT:
    case UV_FS_FSTAT:
      lh_push_stat(L, &req->statbuf);
      return 1;
    case UV_FS_STATFS:
      push_statfs(L, req->ptr);
      return 1;
    case UV_FS_MKDTEMP:
      lua_pushstring(L, req->path);
      return 1;
    case UV_FS_MKSTEMP:
      lua_pushinteger(L, (lua_Integer)req->result);
      lua_pushstring(L, req->path);
      return 2;
    case UV_FS_READLINK:
    case UV_FS_REALPATH:
      lua_pushstring(L, req->ptr);
      return 1;
    case UV_FS_OPENDIR:
      push_dir(L, req->ptr, (size_t)f->nentries);
      return 1;
    case UV_FS_READDIR: {
      uv_dir_t* dir = req->ptr;
      ssize_t i;
      if (req->result == 0) {
        lua_pushnil(L); /* the end */
        return 1;
      }
      lua_createtable(L, (int)req->result, 0);
      for (i = 0; i < req->result; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, dir->dirents[i].name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, dirent_type(dir->dirents[i].type));
        lua_setfield(L, -2, "type");
        lua_rawseti(L, -2, i + 1);
      }
      return 1;
    }
    default: /* the calls that only succeed or fail */
      lua_pushboolean(L, 1);
      return 1;
  }
}

/* Lifecycle ---------------------------------------------------------- */

/* The request for a call whose callback (if any) is at cb_idx: a new
 * pinned request userdata, pushed, or `sync` (zeroed) without one; a sync
 * call is marked as blocking (name: the uv function) until it ends. */
#define fs_begin(L, cb_idx, sync) fs_begin_named(L, cb_idx, sync, __func__)

static fs_req_t* fs_begin_named(lua_State* L, int cb_idx, fs_req_t* sync,
                                const char* name) {
  fs_req_t* f;
  if (lua_isnoneornil(L, cb_idx)) {
    memset(sync, 0, sizeof(*sync));
    sync->rt = lh_runtime(L);
    sync->prev_call = lh_blocking_begin(sync->rt, name);
    return sync;
  }
  f = lh_req_new(L, UV_FS, sizeof(fs_req_t) - sizeof(uv_fs_t), cb_idx);
  f->async = 1;
  return f;
}

#define fs_cb_of(f) ((f)->async ? fs_cb : NULL)

/* Frees what the request holds and, if async, releases it. */
static void fs_release(fs_req_t* f) {
  free(f->buf);
  f->buf = NULL;
  if (f->dir != NULL)
    f->dir->busy = 0;
  f->dir = NULL;
  uv_fs_req_cleanup(&f->req);
  if (f->async)
    lh_req_done(lh_req_of(&f->req));
  else
    lh_blocking_end(f->rt, f->prev_call);
}

/* Closes a directory nobody will see (opened while the runtime exits). */
static void close_dir_now(uv_loop_t* loop, uv_dir_t* dir) {
  uv_fs_t req;
  uv_fs_closedir(loop, &req, dir, NULL);
  uv_fs_req_cleanup(&req);
}

static void fs_cb(uv_fs_t* req) {
  fs_req_t* f = (fs_req_t*)req;
  lh_req_t* r = lh_req_of(req);
  lh_runtime_t* rt = r->rt;
  lua_State* co = lh_req_callback(r);
  int n = 1;
  if (co == NULL) {
    if (req->fs_type == UV_FS_OPENDIR && req->result >= 0)
      close_dir_now(req->loop, req->ptr);
  } else if (req->result < 0 &&
             (req->fs_type != UV_FS_ACCESS || req->result == UV_ECANCELED)) {
    /* fs_access answers false for its errors, but not for a cancel */
    push_message(co, req, f->dest, (int)req->result);
  } else {
    lua_pushnil(co);
    n += push_result(co, f);
  }
  fs_release(f);
  if (co != NULL)
    lh_cb_run_err(rt, co, n);
}

/* Ends a call: ret is what uv_fs_* returned. Sync: the results (or fail);
 * async: the request (or fail if it could not start). */
static int fs_end(lua_State* L, fs_req_t* f, int ret) {
  int n;
  if (ret < 0 && (f->async || f->req.fs_type != UV_FS_ACCESS)) {
    n = push_fail(L, &f->req, f->dest, ret);
    fs_release(f);
    return n;
  }
  if (f->async)
    return 1; /* the request userdata, on top */
  n = push_result(L, f);
  fs_release(f);
  return n;
}

/* Pins what an async call needs until its callback (write buffers, the
 * destination path of messages). */
static void pin(lua_State* L, fs_req_t* f, int idx) {
  lh_req_t* r;
  if (!f->async)
    return;
  r = lh_req_of(&f->req);
  if (lua_type(L, idx) == LUA_TTABLE) { /* a copy: the caller's may change */
    int i, n = (int)lua_rawlen(L, idx);
    lua_createtable(L, n, 0);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      lua_rawseti(L, -2, i);
    }
  } else {
    lua_pushvalue(L, idx);
  }
  r->data_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* The second path of a two-path call, kept for messages. */
static void set_dest(lua_State* L, fs_req_t* f, int idx) {
  f->dest = lua_tostring(L, idx);
  pin(L, f, idx);
}

/* Arguments ----------------------------------------------------------- */

typedef struct {
  const char* name;
  int flags;
} open_flag_t;

static const open_flag_t open_flags[] = {
    {"r", O_RDONLY},
    {"rs", O_RDONLY | O_SYNC},
    {"sr", O_RDONLY | O_SYNC},
    {"r+", O_RDWR},
    {"rs+", O_RDWR | O_SYNC},
    {"sr+", O_RDWR | O_SYNC},
    {"w", O_TRUNC | O_CREAT | O_WRONLY},
    {"wx", O_TRUNC | O_CREAT | O_WRONLY | O_EXCL},
    {"xw", O_TRUNC | O_CREAT | O_WRONLY | O_EXCL},
    {"w+", O_TRUNC | O_CREAT | O_RDWR},
    {"wx+", O_TRUNC | O_CREAT | O_RDWR | O_EXCL},
    {"xw+", O_TRUNC | O_CREAT | O_RDWR | O_EXCL},
    {"a", O_APPEND | O_CREAT | O_WRONLY},
    {"ax", O_APPEND | O_CREAT | O_WRONLY | O_EXCL},
    {"xa", O_APPEND | O_CREAT | O_WRONLY | O_EXCL},
    {"a+", O_APPEND | O_CREAT | O_RDWR},
    {"ax+", O_APPEND | O_CREAT | O_RDWR | O_EXCL},
    {"xa+", O_APPEND | O_CREAT | O_RDWR | O_EXCL},
    {NULL, 0},
};

/* Open flags: an integer or one of luv's strings ("r", "w+", "ax", ...). */
static int check_open_flags(lua_State* L, int idx) {
  const open_flag_t* f;
  const char* s;
  if (lua_isnumber(L, idx))
    return (int)luaL_checkinteger(L, idx);
  s = lua_tostring(L, idx);
  luaL_argexpected(L, s != NULL, idx, "string or integer");
  for (f = open_flags; f->name != NULL; f++)
    if (strcmp(f->name, s) == 0)
      return f->flags;
  return luaL_argerror(L, idx,
                       lua_pushfstring(L, "unknown file open flag '%s'", s));
}

/* Access mode: an integer or letters from "rwx" (either case). */
static int check_access_mode(lua_State* L, int idx) {
  const char* s;
  int mode = F_OK;
  if (lua_isnumber(L, idx))
    return (int)luaL_checkinteger(L, idx);
  s = lua_tostring(L, idx);
  luaL_argexpected(L, s != NULL, idx, "string or integer");
  for (; *s != '\0'; s++) {
    switch (*s) {
      case 'r':
      case 'R':
        mode |= R_OK;
        break;
      case 'w':
      case 'W':
        mode |= W_OK;
        break;
      case 'x':
      case 'X':
        mode |= X_OK;
        break;
      default:
        return luaL_argerror(
            L, idx, lua_pushfstring(L, "unknown access mode '%c'", *s));
    }
  }
  return mode;
}

typedef struct {
  const char* name;
  int flag;
} flag_name_t;

/* Flags as an integer or a table of booleans; idx may also hold the
 * callback (or nothing). Sets *cb_idx to where the callback is. */
static int check_flag_table(lua_State* L, int idx, const flag_name_t* names,
                            int* cb_idx) {
  int flags = 0;
  *cb_idx = idx + 1;
  switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL:
      break;
    case LUA_TNUMBER:
      flags = (int)luaL_checkinteger(L, idx);
      break;
    case LUA_TTABLE:
      for (; names->name != NULL; names++) {
        lua_getfield(L, idx, names->name);
        if (lua_toboolean(L, -1))
          flags |= names->flag;
        lua_pop(L, 1);
      }
      break;
    default:
      if (!lh_is_callable(L, idx))
        luaL_typeerror(L, idx, "table, integer, callable or nil");
      *cb_idx = idx;
  }
  return flags;
}

/* An optional offset followed by an optional callback (fs_read and
 * fs_write): fn(fd, x, cb) or fn(fd, x, offset, cb). */
static int64_t check_offset(lua_State* L, int idx, int* cb_idx) {
  if (lh_is_callable(L, idx)) {
    *cb_idx = idx;
    return -1;
  }
  *cb_idx = idx + 1;
  return (int64_t)luaL_optinteger(L, idx, -1);
}

/* Calls -------------------------------------------------------------- */

static int fs_close(lua_State* L) {
  uv_file fd = check_fd(L, 1);
  fs_req_t sync, *f = fs_begin(L, 2, &sync);
  return fs_end(L, f, uv_fs_close(loop_of(L), &f->req, fd, fs_cb_of(f)));
}

static int fs_open(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  int flags = check_open_flags(L, 2);
  int mode = (int)luaL_checkinteger(L, 3);
  fs_req_t sync, *f = fs_begin(L, 4, &sync);
  return fs_end(
      L, f, uv_fs_open(loop_of(L), &f->req, path, flags, mode, fs_cb_of(f)));
}

/* fs_read(fd, size [, offset] [, cb]) -> string ("" at the end) | fail */
static int fs_read(lua_State* L) {
  uv_file fd = check_fd(L, 1);
  lua_Integer len = luaL_checkinteger(L, 2);
  int cb_idx;
  int64_t offset = check_offset(L, 3, &cb_idx);
  fs_req_t sync, *f;
  uv_buf_t buf;
  luaL_argcheck(L, len >= 0 && len <= MAX_IO, 2, "out of range");
  f = fs_begin(L, cb_idx, &sync);
  f->buf = malloc(len > 0 ? (size_t)len : 1);
  if (f->buf == NULL) {
    fs_release(f);
    return luaL_error(L, "not enough memory");
  }
  buf = uv_buf_init(f->buf, (unsigned)len);
  return fs_end(
      L, f, uv_fs_read(loop_of(L), &f->req, fd, &buf, 1, offset, fs_cb_of(f)));
}

/* fs_write(fd, data [, offset] [, cb]) -> bytes | fail; data is a string
 * or an array of strings. */
static int fs_write(lua_State* L) {
  uv_file fd = check_fd(L, 1);
  int cb_idx;
  int64_t offset = check_offset(L, 3, &cb_idx);
  uv_buf_t small[SMALL_BUFS];
  uv_buf_t* bufs;
  size_t total;
  fs_req_t sync, *f;
  int n, ret;
  if (!lua_isnoneornil(L, cb_idx))
    lh_check_callable(L, cb_idx); /* before bufs may be allocated */
  n = lh_check_bufs(L, 2, small, SMALL_BUFS, &bufs, &total);
  f = fs_begin(L, cb_idx, &sync);
  pin(L, f, 2);
  ret = uv_fs_write(loop_of(L), &f->req, fd, bufs, (unsigned)n, offset,
                    fs_cb_of(f));
  if (bufs != small)
    free(bufs); /* libuv copied the array */
  return fs_end(L, f, ret);
}

static int fs_unlink(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  fs_req_t sync, *f = fs_begin(L, 2, &sync);
  return fs_end(L, f, uv_fs_unlink(loop_of(L), &f->req, path, fs_cb_of(f)));
}

static int fs_mkdir(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  int mode = (int)luaL_checkinteger(L, 2);
  fs_req_t sync, *f = fs_begin(L, 3, &sync);
  return fs_end(L, f,
                uv_fs_mkdir(loop_of(L), &f->req, path, mode, fs_cb_of(f)));
}

static int fs_mkdtemp(lua_State* L) {
  const char* tpl = luaL_checkstring(L, 1);
  fs_req_t sync, *f = fs_begin(L, 2, &sync);
  return fs_end(L, f, uv_fs_mkdtemp(loop_of(L), &f->req, tpl, fs_cb_of(f)));
}

static int fs_mkstemp(lua_State* L) {
  const char* tpl = luaL_checkstring(L, 1);
  fs_req_t sync, *f = fs_begin(L, 2, &sync);
  return fs_end(L, f, uv_fs_mkstemp(loop_of(L), &f->req, tpl, fs_cb_of(f)));
}

static int fs_rmdir(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  fs_req_t sync, *f = fs_begin(L, 2, &sync);
  return fs_end(L, f, uv_fs_rmdir(loop_of(L), &f->req, path, fs_cb_of(f)));
}

static int fs_stat(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  fs_req_t sync, *f = fs_begin(L, 2, &sync);
  return fs_end(L, f, uv_fs_stat(loop_of(L), &f->req, path, fs_cb_of(f)));
}

static int fs_fstat(lua_State* L) {
  uv_file fd = check_fd(L, 1);
  fs_req_t sync, *f = fs_begin(L, 2, &sync);
  return fs_end(L, f, uv_fs_fstat(loop_of(L), &f->req, fd, fs_cb_of(f)));
}

static int fs_lstat(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  fs_req_t sync, *f = fs_begin(L, 2, &sync);
  return fs_end(L, f, uv_fs_lstat(loop_of(L), &f->req, path, fs_cb_of(f)));
}

static int fs_rename(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  const char* new_path = luaL_checkstring(L, 2);
  fs_req_t sync, *f = fs_begin(L, 3, &sync);
  set_dest(L, f, 2);
  return fs_end(L, f,
                uv_fs_rename(loop_of(L), &f->req, path, new_path, fs_cb_of(f)));
}

static int fs_fsync(lua_State* L) {
  uv_file fd = check_fd(L, 1);
  fs_req_t sync, *f = fs_begin(L, 2, &sync);
  return fs_end(L, f, uv_fs_fsync(loop_of(L), &f->req, fd, fs_cb_of(f)));
}

static int fs_fdatasync(lua_State* L) {
  uv_file fd = check_fd(L, 1);
  fs_req_t sync, *f = fs_begin(L, 2, &sync);
  return fs_end(L, f, uv_fs_fdatasync(loop_of(L), &f->req, fd, fs_cb_of(f)));
}

static int fs_ftruncate(lua_State* L) {
  uv_file fd = check_fd(L, 1);
  int64_t offset = (int64_t)luaL_checkinteger(L, 2);
  fs_req_t sync, *f = fs_begin(L, 3, &sync);
  return fs_end(L, f,
                uv_fs_ftruncate(loop_of(L), &f->req, fd, offset, fs_cb_of(f)));
}

static int fs_sendfile(lua_State* L) {
  uv_file out_fd = check_fd(L, 1);
  uv_file in_fd = check_fd(L, 2);
  int64_t in_offset = (int64_t)luaL_checkinteger(L, 3);
  lua_Integer len = luaL_checkinteger(L, 4);
  fs_req_t sync, *f;
  luaL_argcheck(L, len >= 0, 4, "must not be negative");
  f = fs_begin(L, 5, &sync);
  return fs_end(L, f,
                uv_fs_sendfile(loop_of(L), &f->req, out_fd, in_fd, in_offset,
                               (size_t)len, fs_cb_of(f)));
}

/* fs_access(path, mode) -> boolean: whether access is granted (luv: a
 * missing file gives false, not fail). */
static int fs_access(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  int mode = check_access_mode(L, 2);
  fs_req_t sync, *f = fs_begin(L, 3, &sync);
  return fs_end(L, f,
                uv_fs_access(loop_of(L), &f->req, path, mode, fs_cb_of(f)));
}

static int fs_chmod(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  int mode = (int)luaL_checkinteger(L, 2);
  fs_req_t sync, *f = fs_begin(L, 3, &sync);
  return fs_end(L, f,
                uv_fs_chmod(loop_of(L), &f->req, path, mode, fs_cb_of(f)));
}

static int fs_fchmod(lua_State* L) {
  uv_file fd = check_fd(L, 1);
  int mode = (int)luaL_checkinteger(L, 2);
  fs_req_t sync, *f = fs_begin(L, 3, &sync);
  return fs_end(L, f, uv_fs_fchmod(loop_of(L), &f->req, fd, mode, fs_cb_of(f)));
}

/* utime, futime, lutime ------------------------------------------------
 * Times are seconds (numbers), "now", or "omit"/nil (leave it). libuv
 * 1.44 takes only numbers, so a call with "now" or "omit" runs
 * utimensat/futimens itself: directly when sync, as thread-pool work
 * (a uv_work_t request) when async. */

enum { TIME_PATH, TIME_FD, TIME_LINK };

typedef struct {
  uv_work_t work;
  int kind;
  uv_file fd;
  struct timespec ts[2];
  int result;
  char path[]; /* a copy */
} utimens_t;

static int check_time(lua_State* L, int idx, double* secs,
                      struct timespec* ts) {
  static const char* const names[] = {"now", "omit", NULL};
  if (lua_isnumber(L, idx)) {
    double t = lua_tonumber(L, idx), whole;
    luaL_argcheck(L, t > -9.2e18 && t < 9.2e18, idx, "out of range");
    whole = floor(t);
    *secs = t;
    ts->tv_sec = (time_t)whole;
    ts->tv_nsec = (long)((t - whole) * 1e9);
    if (ts->tv_nsec > 999999999)
      ts->tv_nsec = 999999999;
    return 1;
  }
  ts->tv_sec = 0;
  if (lua_isnoneornil(L, idx))
    ts->tv_nsec = UTIME_OMIT;
  else
    ts->tv_nsec =
        luaL_checkoption(L, idx, NULL, names) ? UTIME_OMIT : UTIME_NOW;
  return 0;
}

static int do_utimens(int kind, const char* path, uv_file fd,
                      const struct timespec ts[2]) {
  int r;
  if (kind == TIME_FD)
    r = futimens(fd, ts);
  else
    r = utimensat(AT_FDCWD, path, ts,
                  kind == TIME_LINK ? AT_SYMLINK_NOFOLLOW : 0);
  return r < 0 ? uv_translate_sys_error(errno) : 0;
}

static void utimens_work(uv_work_t* w) {
  utimens_t* u = (utimens_t*)w;
  u->result = do_utimens(u->kind, u->path, u->fd, u->ts);
}

static void push_utimens_message(lua_State* L, const char* path, int status) {
  if (path != NULL)
    lua_pushfstring(L, "%s: %s: %s", uv_err_name(status), uv_strerror(status),
                    path);
  else
    lua_pushfstring(L, "%s: %s", uv_err_name(status), uv_strerror(status));
}

static void utimens_after(uv_work_t* w, int status) {
  utimens_t* u = (utimens_t*)w;
  lh_req_t* r = lh_req_of(w);
  lh_runtime_t* rt = r->rt;
  lua_State* co = lh_req_callback(r);
  int result = status < 0 ? status : u->result;
  int n = 1;
  if (co != NULL) {
    if (result < 0) {
      push_utimens_message(co, u->kind == TIME_FD ? NULL : u->path, result);
    } else {
      lua_pushnil(co);
      lua_pushboolean(co, 1);
      n = 2;
    }
  }
  lh_req_done(r);
  if (co != NULL)
    lh_cb_run_err(rt, co, n);
}

static int set_times(lua_State* L, int kind) {
  const char* path = NULL;
  uv_file fd = -1;
  double atime = 0, mtime = 0;
  struct timespec ts[2];
  int plain_a, plain_m, r;
  fs_req_t sync, *f;
  utimens_t* u;
  size_t len = 0;
  if (kind == TIME_FD)
    fd = check_fd(L, 1);
  else
    path = luaL_checklstring(L, 1, &len);
  plain_a = check_time(L, 2, &atime, &ts[0]);
  plain_m = check_time(L, 3, &mtime, &ts[1]);
  if (plain_a && plain_m) {
    f = fs_begin(L, 4, &sync);
    if (kind == TIME_FD)
      r = uv_fs_futime(loop_of(L), &f->req, fd, atime, mtime, fs_cb_of(f));
    else if (kind == TIME_LINK)
      r = uv_fs_lutime(loop_of(L), &f->req, path, atime, mtime, fs_cb_of(f));
    else
      r = uv_fs_utime(loop_of(L), &f->req, path, atime, mtime, fs_cb_of(f));
    return fs_end(L, f, r);
  }
  if (lua_isnoneornil(L, 4)) {
    r = do_utimens(kind, path, fd, ts);
    if (r < 0) {
      lua_pushnil(L);
      push_utimens_message(L, path, r);
      lua_pushstring(L, uv_err_name(r));
      return 3;
    }
    lua_pushboolean(L, 1);
    return 1;
  }
  u = lh_req_new(L, UV_WORK, sizeof(utimens_t) - sizeof(uv_work_t) + len + 1,
                 4);
  u->kind = kind;
  u->fd = fd;
  u->ts[0] = ts[0];
  u->ts[1] = ts[1];
  if (path != NULL)
    memcpy(u->path, path, len + 1);
  r = uv_queue_work(loop_of(L), &u->work, utimens_work, utimens_after);
  if (r < 0) {
    lh_req_done(lh_req_of(&u->work));
    lua_pushnil(L);
    push_utimens_message(L, path, r);
    lua_pushstring(L, uv_err_name(r));
    return 3;
  }
  return 1;
}

static int fs_utime(lua_State* L) {
  return set_times(L, TIME_PATH);
}

static int fs_futime(lua_State* L) {
  return set_times(L, TIME_FD);
}

static int fs_lutime(lua_State* L) {
  return set_times(L, TIME_LINK);
}

static int fs_link(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  const char* new_path = luaL_checkstring(L, 2);
  fs_req_t sync, *f = fs_begin(L, 3, &sync);
  set_dest(L, f, 2);
  return fs_end(L, f,
                uv_fs_link(loop_of(L), &f->req, path, new_path, fs_cb_of(f)));
}

static const flag_name_t symlink_flags[] = {
    {"dir", UV_FS_SYMLINK_DIR},
    {"junction", UV_FS_SYMLINK_JUNCTION},
    {NULL, 0},
};

/* fs_symlink(path, new_path [, flags] [, cb]): new_path links to path. */
static int fs_symlink(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  const char* new_path = luaL_checkstring(L, 2);
  int cb_idx;
  int flags = check_flag_table(L, 3, symlink_flags, &cb_idx);
  fs_req_t sync, *f = fs_begin(L, cb_idx, &sync);
  set_dest(L, f, 2);
  return fs_end(
      L, f,
      uv_fs_symlink(loop_of(L), &f->req, path, new_path, flags, fs_cb_of(f)));
}

static int fs_readlink(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  fs_req_t sync, *f = fs_begin(L, 2, &sync);
  return fs_end(L, f, uv_fs_readlink(loop_of(L), &f->req, path, fs_cb_of(f)));
}

static int fs_realpath(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  fs_req_t sync, *f = fs_begin(L, 2, &sync);
  return fs_end(L, f, uv_fs_realpath(loop_of(L), &f->req, path, fs_cb_of(f)));
}

static uv_uid_t check_id(lua_State* L, int idx) {
  lua_Integer id = luaL_checkinteger(L, idx);
  luaL_argcheck(L, id >= -1 && id <= (lua_Integer)UINT_MAX, idx,
                "out of range");
  return (uv_uid_t)id; /* -1: leave it */
}

static int fs_chown(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  uv_uid_t uid = check_id(L, 2);
  uv_gid_t gid = (uv_gid_t)check_id(L, 3);
  fs_req_t sync, *f = fs_begin(L, 4, &sync);
  return fs_end(L, f,
                uv_fs_chown(loop_of(L), &f->req, path, uid, gid, fs_cb_of(f)));
}

static int fs_fchown(lua_State* L) {
  uv_file fd = check_fd(L, 1);
  uv_uid_t uid = check_id(L, 2);
  uv_gid_t gid = (uv_gid_t)check_id(L, 3);
  fs_req_t sync, *f = fs_begin(L, 4, &sync);
  return fs_end(L, f,
                uv_fs_fchown(loop_of(L), &f->req, fd, uid, gid, fs_cb_of(f)));
}

static int fs_lchown(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  uv_uid_t uid = check_id(L, 2);
  uv_gid_t gid = (uv_gid_t)check_id(L, 3);
  fs_req_t sync, *f = fs_begin(L, 4, &sync);
  return fs_end(L, f,
                uv_fs_lchown(loop_of(L), &f->req, path, uid, gid, fs_cb_of(f)));
}

static const flag_name_t copyfile_flags[] = {
    {"excl", UV_FS_COPYFILE_EXCL},
    {"ficlone", UV_FS_COPYFILE_FICLONE},
    {"ficlone_force", UV_FS_COPYFILE_FICLONE_FORCE},
    {NULL, 0},
};

static int fs_copyfile(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  const char* new_path = luaL_checkstring(L, 2);
  int cb_idx;
  int flags = check_flag_table(L, 3, copyfile_flags, &cb_idx);
  fs_req_t sync, *f = fs_begin(L, cb_idx, &sync);
  set_dest(L, f, 2);
  return fs_end(
      L, f,
      uv_fs_copyfile(loop_of(L), &f->req, path, new_path, flags, fs_cb_of(f)));
}

static int fs_statfs(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  fs_req_t sync, *f = fs_begin(L, 2, &sync);
  return fs_end(L, f, uv_fs_statfs(loop_of(L), &f->req, path, fs_cb_of(f)));
}

/* Directory streams ------------------------------------------------------ */

static dir_t* check_dir(lua_State* L, int idx) {
  dir_t* d = luaL_checkudata(L, idx, DIR_MT);
  if (d->dir == NULL)
    luaL_error(L, "attempt to use a closed uv_dir");
  return d;
}

/* fs_opendir(path [, cb] [, entries]) -> luv_dir_t | fail */
static int fs_opendir(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  lua_Integer n = luaL_optinteger(L, 3, 1);
  fs_req_t sync, *f;
  luaL_argcheck(L, n >= 1 && n <= 65536, 3, "out of range");
  f = fs_begin(L, 2, &sync);
  f->nentries = n;
  return fs_end(L, f, uv_fs_opendir(loop_of(L), &f->req, path, fs_cb_of(f)));
}

/* fs_readdir(dir [, cb]) -> { {name=, type=}, ... } | nil at the end | fail
 */
static int fs_readdir(lua_State* L) {
  dir_t* d = check_dir(L, 1);
  fs_req_t sync, *f;
  if (d->busy)
    return lh_error(L, UV_EBUSY);
  f = fs_begin(L, 2, &sync);
  pin(L, f, 1); /* libuv fills d->dirents until the callback */
  d->busy = f->async;
  f->dir = d;
  d->dir->dirents = d->dirents;
  d->dir->nentries = d->nentries;
  return fs_end(L, f, uv_fs_readdir(loop_of(L), &f->req, d->dir, fs_cb_of(f)));
}

static int fs_closedir(lua_State* L) {
  dir_t* d = check_dir(L, 1);
  uv_dir_t* dir = d->dir;
  fs_req_t sync, *f;
  int r;
  if (d->busy)
    return lh_error(L, UV_EBUSY);
  f = fs_begin(L, 2, &sync);
  d->dir = NULL;
  r = uv_fs_closedir(loop_of(L), &f->req, dir, fs_cb_of(f));
  if (r < 0 && f->async)
    d->dir = dir; /* not started: still open */
  return fs_end(L, f, r);
}

/* A luv_dir_t nobody closed: closed here, synchronously. */
static int dir_gc(lua_State* L) {
  dir_t* d = luaL_checkudata(L, 1, DIR_MT);
  if (d->dir != NULL && !d->busy) {
    close_dir_now(loop_of(L), d->dir);
    d->dir = NULL;
  }
  return 0;
}

static int dir_tostring(lua_State* L) {
  dir_t* d = luaL_checkudata(L, 1, DIR_MT);
  lua_pushfstring(L, d->dir ? "uv_dir_t: %p" : "uv_dir_t: %p (closed)",
                  (void*)d);
  return 1;
}

/* scandir ------------------------------------------------------------ */

static scandir_t* new_scandir(lua_State* L, int nuv) {
  scandir_t* s = lua_newuserdatauv(L, sizeof(scandir_t), nuv);
  memset(s, 0, sizeof(*s));
  luaL_setmetatable(L, SCANDIR_MT);
  return s;
}

static void scandir_cb(uv_fs_t* req) {
  lh_req_t* r = lh_req_of(req);
  lh_runtime_t* rt = r->rt;
  lua_State* co = lh_req_callback(r);
  scandir_t* s;
  int n = 1;
  lua_State* L = co != NULL ? co : rt->L;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &scandirs_key);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->self_ref);
  lua_rawget(L, -2); /* scandirs[request] */
  lua_remove(L, -2);
  s = lua_touserdata(L, -1);
  if (req->result >= 0) {
    s->req = req; /* the iterator owns the results now */
  } else {
    lua_pop(L, 1);
    if (co != NULL)
      push_message(co, req, NULL, (int)req->result);
    uv_fs_req_cleanup(req);
  }
  if (co == NULL) {
    if (req->result >= 0)
      lua_pop(L, 1);
  } else if (req->result >= 0) {
    lua_pushnil(co);
    lua_insert(co, -2); /* nil, iterator */
    n = 2;
  }
  lh_req_done(r);
  if (co != NULL)
    lh_cb_run_err(rt, co, n);
}

/* fs_scandir(path [, cb]): sync -> iterator | fail; async -> the request
 * (cb(err, iterator)). Both go to fs_scandir_next. */
static int fs_scandir(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  fs_req_t* f;
  scandir_t* s;
  int r;
  if (lua_isnoneornil(L, 2)) {
    s = new_scandir(L, 0);
    r = uv_fs_scandir(loop_of(L), &s->own, path, 0, NULL);
    if (r < 0) {
      push_fail(L, &s->own, NULL, r);
      uv_fs_req_cleanup(&s->own);
      return 3;
    }
    s->req = &s->own;
    return 1;
  }
  f = lh_req_new(L, UV_FS, sizeof(fs_req_t) - sizeof(uv_fs_t), 2);
  f->async = 1;
  s = new_scandir(L, 1); /* request iterator */
  lua_pushvalue(L, -2);
  lua_setiuservalue(L, -2, 1); /* the iterator keeps the request */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &scandirs_key);
  lua_pushvalue(L, -3);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3); /* and the request finds the iterator */
  lua_pop(L, 2);     /* request */
  r = uv_fs_scandir(loop_of(L), &f->req, path, 0, scandir_cb);
  if (r < 0) {
    push_fail(L, &f->req, NULL, r);
    uv_fs_req_cleanup(&f->req);
    lh_req_done(lh_req_of(&f->req));
    return 3;
  }
  return 1;
}

/* fs_scandir_next(iterator | request) -> name, type | nil at the end |
 * fail */
static int fs_scandir_next(lua_State* L) {
  scandir_t* s = luaL_testudata(L, 1, SCANDIR_MT);
  uv_dirent_t ent;
  int r;
  if (s == NULL) { /* the request an async fs_scandir returned */
    luaL_checkudata(L, 1, "uv_req");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &scandirs_key);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    s = luaL_testudata(L, -1, SCANDIR_MT);
    luaL_argexpected(L, s != NULL, 1, "uv_fs_t of fs_scandir");
  }
  if (s->req == NULL) {
    lua_pushnil(L);
    return 1;
  }
  r = uv_fs_scandir_next(s->req, &ent);
  if (r == UV_EOF) {
    uv_fs_req_cleanup(s->req); /* nothing left: free it now */
    s->req = NULL;
    lua_pushnil(L);
    return 1;
  }
  if (r < 0)
    return lh_error(L, r);
  lua_pushstring(L, ent.name);
  lua_pushstring(L, dirent_type(ent.type));
  return 2;
}

static int scandir_gc(lua_State* L) {
  scandir_t* s = luaL_checkudata(L, 1, SCANDIR_MT);
  if (s->req != NULL) {
    uv_fs_req_cleanup(s->req);
    s->req = NULL;
  }
  return 0;
}

static int scandir_tostring(lua_State* L) {
  lua_pushfstring(L, "uv_fs_t: %p (scandir)", lua_touserdata(L, 1));
  return 1;
}

/* Registration ----------------------------------------------------------- */

static const luaL_Reg fs_functions[] = {
    {"fs_close", fs_close},
    {"fs_open", fs_open},
    {"fs_read", fs_read},
    {"fs_unlink", fs_unlink},
    {"fs_write", fs_write},
    {"fs_mkdir", fs_mkdir},
    {"fs_mkdtemp", fs_mkdtemp},
    {"fs_mkstemp", fs_mkstemp},
    {"fs_rmdir", fs_rmdir},
    {"fs_scandir", fs_scandir},
    {"fs_scandir_next", fs_scandir_next},
    {"fs_stat", fs_stat},
    {"fs_fstat", fs_fstat},
    {"fs_lstat", fs_lstat},
    {"fs_rename", fs_rename},
    {"fs_fsync", fs_fsync},
    {"fs_fdatasync", fs_fdatasync},
    {"fs_ftruncate", fs_ftruncate},
    {"fs_sendfile", fs_sendfile},
    {"fs_access", fs_access},
    {"fs_chmod", fs_chmod},
    {"fs_fchmod", fs_fchmod},
    {"fs_utime", fs_utime},
    {"fs_futime", fs_futime},
    {"fs_lutime", fs_lutime},
    {"fs_link", fs_link},
    {"fs_symlink", fs_symlink},
    {"fs_readlink", fs_readlink},
    {"fs_realpath", fs_realpath},
    {"fs_chown", fs_chown},
    {"fs_fchown", fs_fchown},
    {"fs_lchown", fs_lchown},
    {"fs_copyfile", fs_copyfile},
    {"fs_opendir", fs_opendir},
    {"fs_readdir", fs_readdir},
    {"fs_closedir", fs_closedir},
    {"fs_statfs", fs_statfs},
    {NULL, NULL},
};

static const luaL_Reg dir_methods[] = {
    {"readdir", fs_readdir},
    {"closedir", fs_closedir},
    {NULL, NULL},
};

void lh_open_fs(lua_State* L) {
  luaL_setfuncs(L, fs_functions, 0);

  luaL_newmetatable(L, DIR_MT);
  lua_pushcfunction(L, dir_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, dir_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, dir_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  luaL_newmetatable(L, SCANDIR_MT);
  lua_pushcfunction(L, scandir_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, scandir_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  lua_newtable(L); /* scandirs: request -> iterator, weak keys */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &scandirs_key);
}
