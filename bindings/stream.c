/* Streams (tcp, pipe, tty): reading, writing, listening. Writes are
 * zero-copy: libuv points into the Lua strings, which the request pins
 * until its callback. Reads land in one shared buffer and are copied once
 * into a Lua string before the next read can happen. */
#include <stdlib.h>
#include <string.h>

#include "lh_bind.h"

#define READ_BUF_SIZE 65536
#define SMALL_BUFS 8

static char read_buf[READ_BUF_SIZE];

lh_handle_t* lh_check_stream(lua_State* L, int idx) {
  lh_handle_t* h = lh_opt_handle(L, idx);
  uv_handle_type t;
  if (h == NULL)
    luaL_error(L, "attempt to use a closed stream handle");
  t = lh_uv(h)->type;
  if (t != UV_TCP && t != UV_NAMED_PIPE && t != UV_TTY)
    luaL_typeerror(L, idx, "uv_stream");
  if (uv_is_closing(lh_uv(h)))
    luaL_error(L, "attempt to use a closing %s handle", uv_handle_type_name(t));
  return h;
}

#define stream_of(h) ((uv_stream_t*)lh_uv(h))

/* Reads go through one buffer: each is copied out before the next. */
void lh_read_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
  (void)h;
  (void)suggested;
  buf->base = read_buf;
  buf->len = sizeof(read_buf);
}

/* Checks a string or an array of strings at idx and fills uv_bufs
 * pointing into them (*bufs is `small` or a malloc'd array the caller
 * frees). Returns the count. */
int lh_check_bufs(lua_State* L, int idx, uv_buf_t* small, int nsmall,
                  uv_buf_t** bufs, size_t* total) {
  size_t len;
  int i, n;
  *total = 0;
  if (lua_type(L, idx) == LUA_TSTRING) {
    const char* s = lua_tolstring(L, idx, &len);
    small[0] = uv_buf_init((char*)s, (unsigned)len);
    *bufs = small;
    *total = len;
    return 1;
  }
  luaL_argexpected(L, lua_type(L, idx) == LUA_TTABLE, idx,
                   "string or array of strings");
  n = (int)lua_rawlen(L, idx);
  *bufs = n <= nsmall ? small : malloc(sizeof(uv_buf_t) * (size_t)n);
  if (*bufs == NULL)
    luaL_error(L, "not enough memory");
  for (i = 0; i < n; i++) {
    const char* s;
    /* Test the type first: lua_tolstring would turn a number into a new,
     * unpinned string in place. */
    if (lua_rawgeti(L, idx, i + 1) != LUA_TSTRING) {
      if (*bufs != small)
        free(*bufs);
      luaL_argerror(L, idx, "array holds a value that is not a string");
    }
    s = lua_tolstring(L, -1, &len);
    (*bufs)[i] = uv_buf_init((char*)s, (unsigned)len);
    *total += len;
    lua_pop(L, 1); /* still referenced by the array */
  }
  return n;
}

/* Pins what libuv will point into: the string itself, or a copy of the
 * array (the caller's array may change before the write completes). */
int lh_pin_data(lua_State* L, int idx) {
  if (lua_type(L, idx) == LUA_TTABLE) {
    int i, n = (int)lua_rawlen(L, idx);
    lua_createtable(L, n, 0);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      lua_rawseti(L, -2, i);
    }
  } else {
    lua_pushvalue(L, idx);
  }
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

static void read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  lh_handle_t* h = s->data;
  lua_State* co;
  int nargs = 0;
  if (nread == 0)
    return; /* EAGAIN */
  co = lh_callback_begin(h, LH_CB_EVENT);
  if (co == NULL)
    return;
  if (nread > 0) {
    lua_pushnil(co);
    lua_pushlstring(co, buf->base, (size_t)nread);
    nargs = 2;
  } else if (nread != UV_EOF) {
    lh_push_errname(co, (int)nread);
    nargs = 1;
  }
  lh_cb_run_err(h->rt, co, nargs);
}

static int stream_read_start(lua_State* L) {
  lh_handle_t* h = lh_check_stream(L, 1);
  int r;
  lh_set_callback(L, h, LH_CB_EVENT, 2);
  r = uv_read_start(stream_of(h), lh_read_alloc, read_cb);
  if (r == UV_EALREADY)
    r = 0; /* new callback, same reading */
  return lh_result(L, r);
}

static int stream_read_stop(lua_State* L) {
  return lh_result(L, uv_read_stop(stream_of(lh_check_stream(L, 1))));
}

static void write_cb(uv_write_t* w, int status) {
  lh_req_t* r = lh_req_of(w);
  lua_State* co = lh_req_callback(r);
  lh_req_done(r);
  if (co == NULL)
    return;
  lh_push_errname(co, status);
  lh_cb_run_err(r->rt, co, 1);
}

static int do_write(lua_State* L, int send_idx) {
  lh_handle_t* h = lh_check_stream(L, 1);
  uv_buf_t small[SMALL_BUFS];
  uv_buf_t* bufs;
  size_t total;
  int n = lh_check_bufs(L, 2, small, SMALL_BUFS, &bufs, &total);
  int cb_idx = send_idx ? 4 : 3;
  uv_stream_t* send = NULL;
  uv_write_t* w;
  int r;
  if (send_idx) { /* libuv passes TCP, pipe and UDP handles */
    lh_handle_t* sh = lh_check_handle(L, send_idx, UV_UNKNOWN_HANDLE);
    uv_handle_type t = lh_uv(sh)->type;
    if (t != UV_TCP && t != UV_NAMED_PIPE && t != UV_UDP)
      luaL_typeerror(L, send_idx, "uv_tcp, uv_pipe or uv_udp");
    send = stream_of(sh);
  }
  if (lua_isnoneornil(L, cb_idx))
    cb_idx = 0;
  w = lh_req_new(L, UV_WRITE, 0, cb_idx);
  lh_req_of(w)->data_ref = lh_pin_data(L, 2);
  r = send ? uv_write2(w, stream_of(h), bufs, (unsigned)n, send, write_cb)
           : uv_write(w, stream_of(h), bufs, (unsigned)n, write_cb);
  if (bufs != small)
    free(bufs);
  if (r < 0) {
    lh_req_done(lh_req_of(w));
    return lh_error(L, r);
  }
  return 1;
}

/* write(stream, data [, cb]) -> uv_write_t | fail; cb(err) */
static int stream_write(lua_State* L) {
  return do_write(L, 0);
}

/* write2(stream, data, send_handle [, cb]): passes a handle over IPC. */
static int stream_write2(lua_State* L) {
  return do_write(L, 3);
}

/* try_write(stream, data) -> bytes written | fail (EAGAIN: none now) */
static int stream_try_write(lua_State* L) {
  lh_handle_t* h = lh_check_stream(L, 1);
  uv_buf_t small[SMALL_BUFS];
  uv_buf_t* bufs;
  size_t total;
  int n = lh_check_bufs(L, 2, small, SMALL_BUFS, &bufs, &total);
  int r = uv_try_write(stream_of(h), bufs, (unsigned)n);
  if (bufs != small)
    free(bufs);
  return lh_result(L, r);
}

static int stream_try_write2(lua_State* L) {
  lh_handle_t* h = lh_check_stream(L, 1);
  uv_buf_t small[SMALL_BUFS];
  uv_buf_t* bufs;
  size_t total;
  int n = lh_check_bufs(L, 2, small, SMALL_BUFS, &bufs, &total);
  uv_stream_t* send = stream_of(lh_check_stream(L, 3));
  int r = uv_try_write2(stream_of(h), bufs, (unsigned)n, send);
  if (bufs != small)
    free(bufs);
  return lh_result(L, r);
}

static void shutdown_cb(uv_shutdown_t* req, int status) {
  lh_req_t* r = lh_req_of(req);
  lua_State* co = lh_req_callback(r);
  lh_req_done(r);
  if (co == NULL)
    return;
  lh_push_errname(co, status);
  lh_cb_run_err(r->rt, co, 1);
}

/* shutdown(stream [, cb]) -> uv_shutdown_t | fail: ends the writing side
 * once queued writes are done. */
static int stream_shutdown(lua_State* L) {
  lh_handle_t* h = lh_check_stream(L, 1);
  uv_shutdown_t* req =
      lh_req_new(L, UV_SHUTDOWN, 0, lua_isnoneornil(L, 2) ? 0 : 2);
  int r = uv_shutdown(req, stream_of(h), shutdown_cb);
  if (r < 0) {
    lh_req_done(lh_req_of(req));
    return lh_error(L, r);
  }
  return 1;
}

static void connection_cb(uv_stream_t* server, int status) {
  lh_handle_t* h = server->data;
  lua_State* co = lh_callback_begin(h, LH_CB_EXTRA);
  if (co == NULL)
    return;
  lh_push_errname(co, status);
  lh_cb_run_err(h->rt, co, 1);
}

/* listen(stream, backlog, cb) -> 0 | fail; cb(err) for each connection */
static int stream_listen(lua_State* L) {
  lh_handle_t* h = lh_check_stream(L, 1);
  int backlog = (int)luaL_optinteger(L, 2, 511);
  lh_set_callback(L, h, LH_CB_EXTRA, 3);
  return lh_result(L, uv_listen(stream_of(h), backlog, connection_cb));
}

static int stream_accept(lua_State* L) {
  lh_handle_t* server = lh_check_stream(L, 1);
  lh_handle_t* client = lh_check_stream(L, 2);
  return lh_result(L, uv_accept(stream_of(server), stream_of(client)));
}

static int stream_is_readable(lua_State* L) {
  lua_pushboolean(L, uv_is_readable(stream_of(lh_check_stream(L, 1))));
  return 1;
}

static int stream_is_writable(lua_State* L) {
  lua_pushboolean(L, uv_is_writable(stream_of(lh_check_stream(L, 1))));
  return 1;
}

static int stream_set_blocking(lua_State* L) {
  lh_handle_t* h = lh_check_stream(L, 1);
  luaL_checktype(L, 2, LUA_TBOOLEAN);
  return lh_result(L,
                   uv_stream_set_blocking(stream_of(h), lua_toboolean(L, 2)));
}

static int stream_get_write_queue_size(lua_State* L) {
  lh_handle_t* h = lh_check_stream(L, 1);
  lua_pushinteger(L, (lua_Integer)uv_stream_get_write_queue_size(stream_of(h)));
  return 1;
}

static const luaL_Reg stream_functions[] = {
    {"read_start", stream_read_start},
    {"read_stop", stream_read_stop},
    {"write", stream_write},
    {"write2", stream_write2},
    {"try_write", stream_try_write},
    {"try_write2", stream_try_write2},
    {"shutdown", stream_shutdown},
    {"listen", stream_listen},
    {"accept", stream_accept},
    {"is_readable", stream_is_readable},
    {"is_writable", stream_is_writable},
    {"stream_set_blocking", stream_set_blocking},
    {"stream_get_write_queue_size", stream_get_write_queue_size},
    {NULL, NULL},
};

const luaL_Reg lh_stream_methods[] = {
    {"read_start", stream_read_start},
    {"read_stop", stream_read_stop},
    {"write", stream_write},
    {"write2", stream_write2},
    {"try_write", stream_try_write},
    {"try_write2", stream_try_write2},
    {"shutdown", stream_shutdown},
    {"listen", stream_listen},
    {"accept", stream_accept},
    {"is_readable", stream_is_readable},
    {"is_writable", stream_is_writable},
    {"set_blocking", stream_set_blocking},
    {"get_write_queue_size", stream_get_write_queue_size},
    {NULL, NULL},
};

void lh_open_stream(lua_State* L) {
  luaL_setfuncs(L, stream_functions, 0);
}
