/* uv_pipe_t: Unix domain sockets and anonymous pipes, as luv gives them.
 * An ipc pipe also carries handles between processes: the reader sees
 * pipe_pending_count() > 0 after a read, makes a handle of
 * pipe_pending_type() and accepts it from the pipe. */
#include "lh_bind.h"

/* Room for any sun_path (108 bytes on Linux), abstract names included. */
#define NAME_MAX_LEN 256

static uv_pipe_t* check_pipe(lua_State* L, int idx) {
  return lh_check_uv(L, idx, UV_NAMED_PIPE, uv_pipe_t);
}

/* An optional boolean: nil means false, other types raise. */
static int opt_boolean(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx))
    return 0;
  luaL_checktype(L, idx, LUA_TBOOLEAN);
  return lua_toboolean(L, idx);
}

/* new_pipe([ipc]) -> pipe | fail */
static int pipe_new(lua_State* L) {
  int ipc = opt_boolean(L, 1);
  uv_pipe_t* p = lh_handle_new(L, UV_NAMED_PIPE);
  int r = uv_pipe_init(lh_runtime(L)->loop, p, ipc);
  if (r < 0) {
    lh_handle_abort(L, p);
    return lh_error(L, r);
  }
  lh_handle_ready(L, p);
  return 1;
}

/* open(pipe, fd) -> 0 | fail; the fd becomes non-blocking. */
static int pipe_open(lua_State* L) {
  uv_pipe_t* p = check_pipe(L, 1);
  return lh_result(L, uv_pipe_open(p, (uv_file)luaL_checkinteger(L, 2)));
}

/* bind(pipe, name) -> 0 | fail */
static int pipe_bind(lua_State* L) {
  uv_pipe_t* p = check_pipe(L, 1);
  return lh_result(L, uv_pipe_bind(p, luaL_checkstring(L, 2)));
}

static void connect_cb(uv_connect_t* req, int status) {
  lh_req_t* r = lh_req_of(req);
  lua_State* co = lh_req_callback(r);
  lh_req_done(r);
  if (co == NULL)
    return;
  lh_push_errname(co, status);
  lh_cb_run_err(r->rt, co, 1);
}

/* connect(pipe, name [, cb]) -> uv_connect_t; cb(err). libuv reports
 * every failure (ENOENT, ECONNREFUSED, ...) through the callback. */
static int pipe_connect(lua_State* L) {
  uv_pipe_t* p = check_pipe(L, 1);
  const char* name = luaL_checkstring(L, 2);
  uv_connect_t* req =
      lh_req_new(L, UV_CONNECT, 0, lua_isnoneornil(L, 3) ? 0 : 3);
  uv_pipe_connect(req, p, name, connect_cb);
  return 1;
}

typedef int (*name_fn)(const uv_pipe_t*, char*, size_t*);

static int push_name(lua_State* L, name_fn fn) {
  uv_pipe_t* p = check_pipe(L, 1);
  char buf[NAME_MAX_LEN];
  size_t len = sizeof(buf);
  int r;
  buf[0] = '\0'; /* libuv reads it back when the name is empty */
  r = fn(p, buf, &len);
  if (r < 0)
    return lh_error(L, r);
  lua_pushlstring(L, buf, len);
  return 1;
}

/* getsockname(pipe) -> string | fail ("" when not bound) */
static int pipe_getsockname(lua_State* L) {
  return push_name(L, uv_pipe_getsockname);
}

/* getpeername(pipe) -> string | fail (ENOTCONN when not connected) */
static int pipe_getpeername(lua_State* L) {
  return push_name(L, uv_pipe_getpeername);
}

/* pending_instances(pipe, count): Windows only; nothing on Unix. */
static int pipe_pending_instances(lua_State* L) {
  uv_pipe_t* p = check_pipe(L, 1);
  uv_pipe_pending_instances(p, (int)luaL_checkinteger(L, 2));
  return 0;
}

static int pipe_pending_count(lua_State* L) {
  lua_pushinteger(L, uv_pipe_pending_count(check_pipe(L, 1)));
  return 1;
}

/* pending_type(pipe) -> "tcp" | "pipe" | "udp" | ..., or nothing when no
 * handle is pending (luv). */
static int pipe_pending_type(lua_State* L) {
  const char* name =
      uv_handle_type_name(uv_pipe_pending_type(check_pipe(L, 1)));
  if (name == NULL)
    return 0;
  lua_pushstring(L, name);
  return 1;
}

/* chmod(pipe, "r" | "w" | "rw" | "wr") -> 0 | fail */
static int pipe_chmod(lua_State* L) {
  static const char* const names[] = {"r", "w", "rw", "wr", NULL};
  static const int values[] = {UV_READABLE, UV_WRITABLE,
                               UV_READABLE | UV_WRITABLE,
                               UV_READABLE | UV_WRITABLE};
  uv_pipe_t* p = check_pipe(L, 1);
  int flags = values[luaL_checkoption(L, 2, NULL, names)];
  return lh_result(L, uv_pipe_chmod(p, flags));
}

/* A { nonblock = bool } table or nil, as pipe flags. */
static int pipe_flags(lua_State* L, int idx) {
  int flags = 0;
  if (lua_isnoneornil(L, idx))
    return 0;
  luaL_argexpected(L, lua_type(L, idx) == LUA_TTABLE, idx, "table or nil");
  lua_getfield(L, idx, "nonblock");
  if (lua_toboolean(L, -1))
    flags |= UV_NONBLOCK_PIPE;
  lua_pop(L, 1);
  return flags;
}

/* pipe([read_flags] [, write_flags]) -> { read = fd, write = fd } | fail;
 * both ends are close-on-exec. */
static int pipe_pipe(lua_State* L) {
  int read_flags = pipe_flags(L, 1);
  int write_flags = pipe_flags(L, 2);
  uv_file fds[2];
  int r = uv_pipe(fds, read_flags, write_flags);
  if (r < 0)
    return lh_error(L, r);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, fds[0]);
  lua_setfield(L, -2, "read");
  lua_pushinteger(L, fds[1]);
  lua_setfield(L, -2, "write");
  return 1;
}

static const luaL_Reg pipe_functions[] = {
    {"new_pipe", pipe_new},
    {"pipe_open", pipe_open},
    {"pipe_bind", pipe_bind},
    {"pipe_connect", pipe_connect},
    {"pipe_getsockname", pipe_getsockname},
    {"pipe_getpeername", pipe_getpeername},
    {"pipe_pending_instances", pipe_pending_instances},
    {"pipe_pending_count", pipe_pending_count},
    {"pipe_pending_type", pipe_pending_type},
    {"pipe_chmod", pipe_chmod},
    {"pipe", pipe_pipe},
    {NULL, NULL},
};

static const luaL_Reg pipe_methods[] = {
    {"open", pipe_open},
    {"bind", pipe_bind},
    {"connect", pipe_connect},
    {"getsockname", pipe_getsockname},
    {"getpeername", pipe_getpeername},
    {"pending_instances", pipe_pending_instances},
    {"pending_count", pipe_pending_count},
    {"pending_type", pipe_pending_type},
    {"chmod", pipe_chmod},
    {NULL, NULL},
};

void lh_open_pipe(lua_State* L) {
  luaL_setfuncs(L, pipe_functions, 0);
  lh_new_handle_type(L, UV_NAMED_PIPE, "uv_pipe", pipe_methods);
  lh_add_methods(L, UV_NAMED_PIPE, lh_stream_methods);
}
