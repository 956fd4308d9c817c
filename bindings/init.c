/* The registration table: the modules the bindings provide, and the uv
 * table assembled from each family. require('uv') and require('luv') give
 * the same table. */
#include "embedded.h"
#include "lh_bind.h"

static char uv_table_key;

int luaopen_uv(lua_State* L) {
  lh_runtime_t* rt = lh_runtime(L);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &uv_table_key) == LUA_TTABLE)
    return 1;
  lua_pop(L, 1);
  rt->close_all = lh_handle_close_all;
  lua_newtable(L);
  lh_open_handle(L);
  lh_open_errno(L);
  lh_open_loop(L);
  lh_open_timer(L);
  lh_open_phase(L);
  lh_open_async(L);
  lh_open_signal(L);
  lh_open_misc(L);
  lh_open_os(L);
  lh_open_constants(L);
  lh_open_req(L);
  lh_open_stream(L);
  lh_open_tcp(L);
  lh_open_pipe(L);
  lh_open_tty(L);
  lh_open_udp(L);
  lh_open_dns(L);
  lh_open_fs(L);
  lh_open_fs_event(L);
  lh_open_fs_poll(L);
  lh_open_process(L);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &uv_table_key);
  return 1;
}

/* hide(handle): the handle belongs to lib/lua's machinery (the immediate
 * queue's watchers, process signal listeners); uv.walk skips it, and no
 * report counts it. */
static int internal_hide(lua_State* L) {
  lh_handle_t* h = lh_check_handle(L, 1, UV_UNKNOWN_HANDLE);
  h->flags |= LH_HIDDEN | LH_RUNTIME;
  return 0;
}

/* active_requests() -> n: requests in flight (they keep the loop alive). */
static int internal_active_requests(lua_State* L) {
  lua_pushinteger(L, (lua_Integer)lh_runtime(L)->loop->active_reqs.count);
  return 1;
}

/* signal_name(number) -> "sigterm" | nil */
static int internal_signal_name(lua_State* L) {
  const char* name = lh_signal_name((int)luaL_checkinteger(L, 1));
  if (name == NULL)
    return 0;
  lua_pushstring(L, name);
  return 1;
}

static const luaL_Reg internal_functions[] = {
    {"hide", internal_hide},
    {"handles", lh_handle_list},
    {"active_requests", internal_active_requests},
    {"signal_name", internal_signal_name},
    {NULL, NULL},
};

int luaopen_internal_uv(lua_State* L) {
  luaL_newlib(L, internal_functions);
  return 1;
}

const lh_c_module_t lh_binding_modules[] = {
    {"uv", luaopen_uv},
    {"luv", luaopen_uv},
    {"internal.uv", luaopen_internal_uv},
    {"internal.http", luaopen_internal_http},
    {"internal.http_parser", luaopen_internal_http_parser},
    {NULL, NULL},
};
