/* prepare, check and idle: watchers that run once per loop turn, before
 * polling, after polling, and instead of blocking. One shape, three types;
 * callbacks get no arguments (luv). */
#include "lh_bind.h"

#define PHASE(kind, KIND)                                                     \
  static void kind##_cb(uv_##kind##_t* w) {                                   \
    lh_handle_t* h = w->data;                                                 \
    lua_State* co = lh_callback_begin(h, LH_CB_EVENT);                        \
    if (co != NULL)                                                           \
      lh_cb_run(h->rt, co, 0);                                                \
    if (UV_##KIND == UV_PREPARE) /* the loop waits next: not busy */          \
      lh_watch_poll(h->rt);                                                   \
  }                                                                           \
  static int kind##_new(lua_State* L) {                                       \
    uv_##kind##_t* w = lh_handle_new(L, UV_##KIND);                           \
    int r = uv_##kind##_init(lh_runtime(L)->loop, w);                         \
    if (r < 0) {                                                              \
      lh_handle_abort(L, w);                                                  \
      return lh_error(L, r);                                                  \
    }                                                                         \
    lh_handle_ready(L, w);                                                    \
    return 1;                                                                 \
  }                                                                           \
  static int kind##_start(lua_State* L) {                                     \
    lh_handle_t* h = lh_check_handle(L, 1, UV_##KIND);                        \
    lh_set_callback(L, h, LH_CB_EVENT, 2);                                    \
    return lh_result(L,                                                       \
                     uv_##kind##_start((uv_##kind##_t*)lh_uv(h), kind##_cb)); \
  }                                                                           \
  static int kind##_stop(lua_State* L) {                                      \
    return lh_result(                                                         \
        L, uv_##kind##_stop(lh_check_uv(L, 1, UV_##KIND, uv_##kind##_t)));    \
  }                                                                           \
  static const luaL_Reg kind##_functions[] = {                                \
      {"new_" #kind, kind##_new},                                             \
      {#kind "_start", kind##_start},                                         \
      {#kind "_stop", kind##_stop},                                           \
      {NULL, NULL},                                                           \
  };                                                                          \
  static const luaL_Reg kind##_methods[] = {                                  \
      {"start", kind##_start},                                                \
      {"stop", kind##_stop},                                                  \
      {NULL, NULL},                                                           \
  };

PHASE(prepare, PREPARE)
PHASE(check, CHECK)
PHASE(idle, IDLE)

void lh_open_phase(lua_State* L) {
  luaL_setfuncs(L, prepare_functions, 0);
  lh_new_handle_type(L, UV_PREPARE, "uv_prepare", prepare_methods);
  luaL_setfuncs(L, check_functions, 0);
  lh_new_handle_type(L, UV_CHECK, "uv_check", check_methods);
  luaL_setfuncs(L, idle_functions, 0);
  lh_new_handle_type(L, UV_IDLE, "uv_idle", idle_methods);
}
