/* uv_timer_t. The callback gets no arguments (luv). */
#include "lh_bind.h"

static uv_timer_t* check_timer(lua_State* L, int idx) {
  return lh_check_uv(L, idx, UV_TIMER, uv_timer_t);
}

static int timer_new(lua_State* L) {
  uv_timer_t* t = lh_handle_new(L, UV_TIMER);
  int r = uv_timer_init(lh_runtime(L)->loop, t);
  if (r < 0) {
    lh_handle_abort(L, t);
    return lh_error(L, r);
  }
  lh_handle_ready(L, t);
  return 1;
}

static void timer_cb(uv_timer_t* t) {
  lh_handle_t* h = t->data;
  lua_State* co = lh_callback_begin(h, LH_CB_EVENT);
  if (co != NULL)
    lh_cb_run(h->rt, co, 0);
}

static uint64_t check_ms(lua_State* L, int idx) {
  lua_Integer ms = luaL_checkinteger(L, idx);
  luaL_argcheck(L, ms >= 0, idx, "must not be negative");
  return (uint64_t)ms;
}

static int timer_start(lua_State* L) {
  lh_handle_t* h = lh_check_handle(L, 1, UV_TIMER);
  uint64_t timeout = check_ms(L, 2);
  uint64_t repeat = check_ms(L, 3);
  lh_set_callback(L, h, LH_CB_EVENT, 4);
  return lh_result(
      L, uv_timer_start((uv_timer_t*)lh_uv(h), timer_cb, timeout, repeat));
}

static int timer_stop(lua_State* L) {
  return lh_result(L, uv_timer_stop(check_timer(L, 1)));
}

static int timer_again(lua_State* L) {
  return lh_result(L, uv_timer_again(check_timer(L, 1)));
}

static int timer_set_repeat(lua_State* L) {
  uv_timer_set_repeat(check_timer(L, 1), check_ms(L, 2));
  return 0;
}

static int timer_get_repeat(lua_State* L) {
  lua_pushinteger(L, (lua_Integer)uv_timer_get_repeat(check_timer(L, 1)));
  return 1;
}

static int timer_get_due_in(lua_State* L) {
  lua_pushinteger(L, (lua_Integer)uv_timer_get_due_in(check_timer(L, 1)));
  return 1;
}

static const luaL_Reg timer_functions[] = {
    {"new_timer", timer_new},
    {"timer_start", timer_start},
    {"timer_stop", timer_stop},
    {"timer_again", timer_again},
    {"timer_set_repeat", timer_set_repeat},
    {"timer_get_repeat", timer_get_repeat},
    {"timer_get_due_in", timer_get_due_in},
    {NULL, NULL},
};

static const luaL_Reg timer_methods[] = {
    {"start", timer_start},
    {"stop", timer_stop},
    {"again", timer_again},
    {"set_repeat", timer_set_repeat},
    {"get_repeat", timer_get_repeat},
    {"get_due_in", timer_get_due_in},
    {NULL, NULL},
};

void lh_open_timer(lua_State* L) {
  luaL_setfuncs(L, timer_functions, 0);
  lh_new_handle_type(L, UV_TIMER, "uv_timer", timer_methods);
}
