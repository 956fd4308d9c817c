/* uv_fs_poll_t: watches a path by stat()ing it every interval ms (works
 * where fs events do not). cb(err, prev, curr) gets the errno name or nil
 * and luv's stat tables of before and after the change; while the path
 * cannot be stat()ed, err is its error (once, until that changes) and the
 * missing side is all zeros. */
#include <stdlib.h>

#include "lh_bind.h"

#define PATH_BUF 4096

static uv_fs_poll_t* check_fs_poll(lua_State* L, int idx) {
  return lh_check_uv(L, idx, UV_FS_POLL, uv_fs_poll_t);
}

static int fs_poll_new(lua_State* L) {
  uv_fs_poll_t* p = lh_handle_new(L, UV_FS_POLL);
  int r = uv_fs_poll_init(lh_runtime(L)->loop, p);
  if (r < 0) {
    lh_handle_abort(L, p);
    return lh_error(L, r);
  }
  lh_handle_ready(L, p);
  return 1;
}

static void fs_poll_cb(uv_fs_poll_t* p, int status, const uv_stat_t* prev,
                       const uv_stat_t* curr) {
  lh_handle_t* h = p->data;
  lua_State* co = lh_callback_begin(h, LH_CB_EVENT);
  if (co == NULL)
    return;
  lh_push_errname(co, status);
  if (prev != NULL)
    lh_push_stat(co, prev);
  else
    lua_pushnil(co);
  if (curr != NULL)
    lh_push_stat(co, curr);
  else
    lua_pushnil(co);
  lh_cb_run_err(h->rt, co, 3);
}

/* start(fs_poll, path, interval, cb) -> 0 | fail */
static int fs_poll_start(lua_State* L) {
  lh_handle_t* h = lh_check_handle(L, 1, UV_FS_POLL);
  const char* path = luaL_checkstring(L, 2);
  lua_Integer interval = luaL_checkinteger(L, 3);
  luaL_argcheck(L, interval >= 0 && interval <= 0xffffffffLL, 3,
                "out of range");
  lh_set_callback(L, h, LH_CB_EVENT, 4);
  return lh_result(L, uv_fs_poll_start((uv_fs_poll_t*)lh_uv(h), fs_poll_cb,
                                       path, (unsigned)interval));
}

static int fs_poll_stop(lua_State* L) {
  return lh_result(L, uv_fs_poll_stop(check_fs_poll(L, 1)));
}

/* getpath(fs_poll) -> string | fail (EINVAL when not started) */
static int fs_poll_getpath(lua_State* L) {
  uv_fs_poll_t* p = check_fs_poll(L, 1);
  char buf[PATH_BUF];
  char* big;
  size_t size = sizeof(buf);
  int r = uv_fs_poll_getpath(p, buf, &size);
  if (r == 0) {
    lua_pushlstring(L, buf, size);
    return 1;
  }
  if (r != UV_ENOBUFS)
    return lh_error(L, r);
  big = malloc(size);
  if (big == NULL)
    return luaL_error(L, "not enough memory");
  r = uv_fs_poll_getpath(p, big, &size);
  if (r == 0)
    lua_pushlstring(L, big, size);
  free(big);
  return r == 0 ? 1 : lh_error(L, r);
}

static const luaL_Reg fs_poll_functions[] = {
    {"new_fs_poll", fs_poll_new},
    {"fs_poll_start", fs_poll_start},
    {"fs_poll_stop", fs_poll_stop},
    {"fs_poll_getpath", fs_poll_getpath},
    {NULL, NULL},
};

static const luaL_Reg fs_poll_methods[] = {
    {"start", fs_poll_start},
    {"stop", fs_poll_stop},
    {"getpath", fs_poll_getpath},
    {NULL, NULL},
};

void lh_open_fs_poll(lua_State* L) {
  luaL_setfuncs(L, fs_poll_functions, 0);
  lh_new_handle_type(L, UV_FS_POLL, "uv_fs_poll", fs_poll_methods);
}
