/* uv_tty_t: terminals as streams, their modes and window size. libuv
 * reopens the terminal (ttyname_r) so that making it non-blocking does not
 * affect other processes sharing it. */
#include "lh_bind.h"

static uv_tty_t* check_tty(lua_State* L, int idx) {
  return lh_check_uv(L, idx, UV_TTY, uv_tty_t);
}

/* new_tty(fd, readable) -> tty | fail (EINVAL for an fd that is neither a
 * terminal, a pipe nor a socket) */
static int tty_new(lua_State* L) {
  uv_file fd = (uv_file)luaL_checkinteger(L, 1);
  uv_tty_t* t;
  int r;
  luaL_checktype(L, 2, LUA_TBOOLEAN);
  t = lh_handle_new(L, UV_TTY);
  r = uv_tty_init(lh_runtime(L)->loop, t, fd, lua_toboolean(L, 2));
  if (r < 0) {
    lh_handle_abort(L, t);
    return lh_error(L, r);
  }
  lh_handle_ready(L, t);
  return 1;
}

/* A mode from a name or luv's numbers (TTY_MODE_*). "raw_vt" (3) is libuv
 * 1.49's name for raw mode with terminal-side escape processing; on Unix it
 * is raw mode, which is what libuv 1.44 gets. Returns -1 for an unknown
 * number. */
static int check_mode(lua_State* L, int idx) {
  static const char* const names[] = {"normal", "raw", "io", "raw_vt", NULL};
  static const int values[] = {UV_TTY_MODE_NORMAL, UV_TTY_MODE_RAW,
                               UV_TTY_MODE_IO, UV_TTY_MODE_RAW};
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer mode = luaL_checkinteger(L, idx);
    if (mode < 0 || mode > 3)
      return -1;
    return values[mode];
  }
  return values[luaL_checkoption(L, idx, NULL, names)];
}

/* set_mode(tty, mode) -> 0 | fail */
static int tty_set_mode(lua_State* L) {
  uv_tty_t* t = check_tty(L, 1);
  int mode = check_mode(L, 2);
  if (mode < 0)
    return lh_error(L, UV_EINVAL);
  return lh_result(L, uv_tty_set_mode(t, (uv_tty_mode_t)mode));
}

/* tty_reset_mode() -> 0 | fail: restores the terminal settings seen when
 * the first tty left normal mode (async-signal-safe in libuv). */
static int tty_reset_mode(lua_State* L) {
  return lh_result(L, uv_tty_reset_mode());
}

/* get_winsize(tty) -> width, height | fail */
static int tty_get_winsize(lua_State* L) {
  uv_tty_t* t = check_tty(L, 1);
  int width, height;
  int r = uv_tty_get_winsize(t, &width, &height);
  if (r < 0)
    return lh_error(L, r);
  lua_pushinteger(L, width);
  lua_pushinteger(L, height);
  return 2;
}

static const char* const vterm_names[] = {"supported", "unsupported", NULL};

/* tty_set_vterm_state("supported" | "unsupported"): Windows only; libuv
 * ignores it on Unix. */
static int tty_set_vterm_state(lua_State* L) {
  static const uv_tty_vtermstate_t values[] = {UV_TTY_SUPPORTED,
                                               UV_TTY_UNSUPPORTED};
  uv_tty_set_vterm_state(values[luaL_checkoption(L, 1, NULL, vterm_names)]);
  return 0;
}

/* tty_get_vterm_state() -> "supported" | "unsupported" | fail (ENOTSUP on
 * Unix) */
static int tty_get_vterm_state(lua_State* L) {
  uv_tty_vtermstate_t state;
  int r = uv_tty_get_vterm_state(&state);
  if (r < 0)
    return lh_error(L, r);
  lua_pushstring(L, vterm_names[state == UV_TTY_SUPPORTED ? 0 : 1]);
  return 1;
}

static const luaL_Reg tty_functions[] = {
    {"new_tty", tty_new},
    {"tty_set_mode", tty_set_mode},
    {"tty_reset_mode", tty_reset_mode},
    {"tty_get_winsize", tty_get_winsize},
    {"tty_set_vterm_state", tty_set_vterm_state},
    {"tty_get_vterm_state", tty_get_vterm_state},
    {NULL, NULL},
};

static const luaL_Reg tty_methods[] = {
    {"set_mode", tty_set_mode},
    {"get_winsize", tty_get_winsize},
    {NULL, NULL},
};

void lh_open_tty(lua_State* L) {
  luaL_setfuncs(L, tty_functions, 0);
  lh_new_handle_type(L, UV_TTY, "uv_tty", tty_methods);
  lh_add_methods(L, UV_TTY, lh_stream_methods);
}
