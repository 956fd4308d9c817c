/* libuv errors as luv reports them: nil, "ENAME: message", "ENAME". */
#include "lh_bind.h"

int lh_error(lua_State* L, int status) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", uv_err_name(status), uv_strerror(status));
  lua_pushstring(L, uv_err_name(status));
  return 3;
}

int lh_result(lua_State* L, int status) {
  if (status < 0)
    return lh_error(L, status);
  lua_pushinteger(L, status);
  return 1;
}

/* For error-first callbacks: the error's name, or nil on success. */
void lh_push_errname(lua_State* L, int status) {
  if (status < 0)
    lua_pushstring(L, uv_err_name(status));
  else
    lua_pushnil(L);
}

static int errors_strerror(lua_State* L) {
  lua_pushstring(L, uv_strerror((int)luaL_checkinteger(L, 1)));
  return 1;
}

static int errors_err_name(lua_State* L) {
  lua_pushstring(L, uv_err_name((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* translate_sys_error(errno) -> "ENAME: message", "ENAME" */
static int errors_translate_sys_error(lua_State* L) {
  int status = uv_translate_sys_error((int)luaL_checkinteger(L, 1));
  if (status >= 0)
    return 0;
  lua_pushfstring(L, "%s: %s", uv_err_name(status), uv_strerror(status));
  lua_pushstring(L, uv_err_name(status));
  return 2;
}

static const luaL_Reg errors_functions[] = {
    {"strerror", errors_strerror},
    {"err_name", errors_err_name},
    {"translate_sys_error", errors_translate_sys_error},
    {NULL, NULL},
};

/* uv.errno: { E2BIG = -7, ... }, plus the functions above. */
void lh_open_errno(lua_State* L) {
  luaL_setfuncs(L, errors_functions, 0);
  lua_newtable(L);
#define XX(code, _)              \
  lua_pushinteger(L, UV_##code); \
  lua_setfield(L, -2, #code);
  UV_ERRNO_MAP(XX)
#undef XX
  lua_setfield(L, -2, "errno");
}
