/* Requests as userdata (luv's uv_req_t): created pinned, with their
 * callback and the data libuv points into; lh_req_done releases all three
 * in one place, after the callback was taken or when the start failed. */
#include <string.h>

#include "lh_bind.h"

static char req_mt_key;

/* Pushes a new request userdata of the given type with `extra` bytes after
 * the uv request, pinned, with the callback at cb_idx (0 for none). */
void* lh_req_new(lua_State* L, uv_req_type type, size_t extra, int cb_idx) {
  size_t size = LH_REQ_OFFSET + uv_req_size(type) + extra;
  lh_req_t* r;
  if (cb_idx != 0) {
    cb_idx = lua_absindex(L, cb_idx);
    lh_check_callable(L, cb_idx);
  }
  r = lua_newuserdatauv(L, size, 0);
  memset(r, 0, size);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &req_mt_key);
  lua_setmetatable(L, -2);
  r->rt = lh_runtime(L);
  r->cb_ref = r->data_ref = LUA_NOREF;
  if (cb_idx != 0) {
    lua_pushvalue(L, cb_idx);
    r->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_pushvalue(L, -1);
  r->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  ((uv_req_t*)lh_ureq(r))->data = r;
  r->active = 1;
  return lh_ureq(r);
}

/* For the completion callback: the coroutine with the Lua callback pushed,
 * or NULL when there is none (or the runtime is exiting). */
lua_State* lh_req_callback(lh_req_t* r) {
  lua_State* co;
  if (r->cb_ref == LUA_NOREF)
    return NULL;
  co = lh_cb_begin(r->rt);
  if (co != NULL)
    lua_rawgeti(co, LUA_REGISTRYINDEX, r->cb_ref);
  return co;
}

void lh_req_done(lh_req_t* r) {
  lua_State* L = r->rt->L;
  r->active = 0;
  luaL_unref(L, LUA_REGISTRYINDEX, r->cb_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, r->data_ref);
  r->cb_ref = r->data_ref = LUA_NOREF;
  luaL_unref(L, LUA_REGISTRYINDEX, r->self_ref); /* may be collected now */
  r->self_ref = LUA_NOREF;
}

static lh_req_t* check_req(lua_State* L, int idx) {
  return luaL_checkudata(L, idx, "uv_req");
}

static int req_cancel(lua_State* L) {
  lh_req_t* r = check_req(L, 1);
  if (!r->active)
    return lh_error(L, UV_EBUSY);
  return lh_result(L, uv_cancel(lh_ureq(r)));
}

static int req_get_type(lua_State* L) {
  uv_req_type type = ((uv_req_t*)lh_ureq(check_req(L, 1)))->type;
  const char* name = uv_req_type_name(type);
  lua_pushstring(L, name ? name : "unknown");
  lua_pushinteger(L, type);
  return 2;
}

static int req_tostring(lua_State* L) {
  lh_req_t* r = check_req(L, 1);
  const char* name = uv_req_type_name(((uv_req_t*)lh_ureq(r))->type);
  lua_pushfstring(L, "uv_%s_t: %p", name ? name : "req", (void*)r);
  return 1;
}

static const luaL_Reg req_functions[] = {
    {"cancel", req_cancel},
    {"req_get_type", req_get_type},
    {NULL, NULL},
};

static const luaL_Reg req_methods[] = {
    {"cancel", req_cancel},
    {"get_type", req_get_type},
    {NULL, NULL},
};

void lh_open_req(lua_State* L) {
  luaL_setfuncs(L, req_functions, 0);
  luaL_newmetatable(L, "uv_req");
  lua_pushcfunction(L, req_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, req_methods);
  lua_setfield(L, -2, "__index");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &req_mt_key);
}
