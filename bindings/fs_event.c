/* uv_fs_event_t: watches a file or directory with the system's notifier
 * (inotify here). cb(err, filename, events) gets the errno name or nil,
 * the name of what changed (relative to a watched directory), and
 * { change = true } and/or { rename = true } (luv: absent flags are nil);
 * libuv reports a create or delete as a rename. */
#include <stdlib.h>

#include "lh_bind.h"

#define PATH_BUF 4096

static uv_fs_event_t* check_fs_event(lua_State* L, int idx) {
  return lh_check_uv(L, idx, UV_FS_EVENT, uv_fs_event_t);
}

static int fs_event_new(lua_State* L) {
  uv_fs_event_t* e = lh_handle_new(L, UV_FS_EVENT);
  int r = uv_fs_event_init(lh_runtime(L)->loop, e);
  if (r < 0) {
    lh_handle_abort(L, e);
    return lh_error(L, r);
  }
  lh_handle_ready(L, e);
  return 1;
}

static void fs_event_cb(uv_fs_event_t* e, const char* filename, int events,
                        int status) {
  lh_handle_t* h = e->data;
  lua_State* co = lh_callback_begin(h, LH_CB_EVENT);
  if (co == NULL)
    return;
  lh_push_errname(co, status);
  if (filename != NULL)
    lua_pushstring(co, filename);
  else
    lua_pushnil(co);
  lua_createtable(co, 0, 2);
  if (events & UV_CHANGE) {
    lua_pushboolean(co, 1);
    lua_setfield(co, -2, "change");
  }
  if (events & UV_RENAME) {
    lua_pushboolean(co, 1);
    lua_setfield(co, -2, "rename");
  }
  lh_cb_run_err(h->rt, co, 3);
}

static unsigned flag(lua_State* L, int idx, const char* name, unsigned bit) {
  unsigned set;
  lua_getfield(L, idx, name);
  set = lua_toboolean(L, -1) ? bit : 0;
  lua_pop(L, 1);
  return set;
}

/* start(fs_event, path, { watch_entry, stat, recursive }, cb) -> 0 | fail
 */
static int fs_event_start(lua_State* L) {
  lh_handle_t* h = lh_check_handle(L, 1, UV_FS_EVENT);
  const char* path = luaL_checkstring(L, 2);
  unsigned flags = 0;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    flags |= flag(L, 3, "watch_entry", UV_FS_EVENT_WATCH_ENTRY);
    flags |= flag(L, 3, "stat", UV_FS_EVENT_STAT);
    flags |= flag(L, 3, "recursive", UV_FS_EVENT_RECURSIVE);
  }
  lh_set_callback(L, h, LH_CB_EVENT, 4);
  return lh_result(
      L, uv_fs_event_start((uv_fs_event_t*)lh_uv(h), fs_event_cb, path, flags));
}

static int fs_event_stop(lua_State* L) {
  return lh_result(L, uv_fs_event_stop(check_fs_event(L, 1)));
}

/* getpath(fs_event) -> string | fail (EINVAL when not started) */
static int fs_event_getpath(lua_State* L) {
  uv_fs_event_t* e = check_fs_event(L, 1);
  char buf[PATH_BUF];
  char* big;
  size_t size = sizeof(buf);
  int r = uv_fs_event_getpath(e, buf, &size);
  if (r == 0) {
    lua_pushlstring(L, buf, size);
    return 1;
  }
  if (r != UV_ENOBUFS)
    return lh_error(L, r);
  big = malloc(size);
  if (big == NULL)
    return luaL_error(L, "not enough memory");
  r = uv_fs_event_getpath(e, big, &size);
  if (r == 0)
    lua_pushlstring(L, big, size);
  free(big);
  return r == 0 ? 1 : lh_error(L, r);
}

static const luaL_Reg fs_event_functions[] = {
    {"new_fs_event", fs_event_new},
    {"fs_event_start", fs_event_start},
    {"fs_event_stop", fs_event_stop},
    {"fs_event_getpath", fs_event_getpath},
    {NULL, NULL},
};

static const luaL_Reg fs_event_methods[] = {
    {"start", fs_event_start},
    {"stop", fs_event_stop},
    {"getpath", fs_event_getpath},
    {NULL, NULL},
};

void lh_open_fs_event(lua_State* L) {
  luaL_setfuncs(L, fs_event_functions, 0);
  lh_new_handle_type(L, UV_FS_EVENT, "uv_fs_event", fs_event_methods);
}
