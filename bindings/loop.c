/* The loop: run, stop, walk and time. The runtime owns the one loop; a
 * script may still drive it with uv.run() where the loop is not already
 * running (luv-style scripts end with uv.run()). */
#include <string.h>

#include "lh_bind.h"

static const char* const run_modes[] = {"default", "once", "nowait", NULL};

static int loop_run(lua_State* L) {
  lh_runtime_t* rt = lh_runtime(L);
  uv_run_mode mode = (uv_run_mode)luaL_checkoption(L, 1, "default", run_modes);
  int r;
  if (rt->loop_depth > 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "loop already running");
    return 2;
  }
  r = lh_runtime_run_loop(rt, L, mode);
  /* A callback asked the process to exit (or failed fatally): unwind. */
  if (rt->exiting)
    return lh_runtime_exit(L, rt->exit_code, 1);
  lua_pushboolean(L, r != 0);
  return 1;
}

static int loop_stop(lua_State* L) {
  uv_stop(lh_runtime(L)->loop);
  return 0;
}

static int loop_alive(lua_State* L) {
  lua_pushboolean(L, uv_loop_alive(lh_runtime(L)->loop));
  return 1;
}

static int loop_mode(lua_State* L) {
  int mode = lh_runtime(L)->run_mode;
  if (mode < 0)
    lua_pushnil(L);
  else
    lua_pushstring(L, run_modes[mode]);
  return 1;
}

static int loop_now(lua_State* L) {
  lua_pushinteger(L, (lua_Integer)uv_now(lh_runtime(L)->loop));
  return 1;
}

static int loop_update_time(lua_State* L) {
  uv_update_time(lh_runtime(L)->loop);
  return 0;
}

static int loop_hrtime(lua_State* L) {
  lua_pushinteger(L, (lua_Integer)uv_hrtime());
  return 1;
}

static int loop_backend_fd(lua_State* L) {
  int fd = uv_backend_fd(lh_runtime(L)->loop);
  if (fd < 0)
    return 0;
  lua_pushinteger(L, fd);
  return 1;
}

static int loop_backend_timeout(lua_State* L) {
  lua_pushinteger(L, uv_backend_timeout(lh_runtime(L)->loop));
  return 1;
}

static int loop_configure(lua_State* L) {
  static const char* const options[] = {"block_signal", "metrics_idle_time",
                                        NULL};
  uv_loop_t* loop = lh_runtime(L)->loop;
  if (luaL_checkoption(L, 1, NULL, options) == 1)
    return lh_result(L, uv_loop_configure(loop, UV_METRICS_IDLE_TIME));
  if ((lua_type(L, 2) == LUA_TSTRING &&
       strcmp(lua_tostring(L, 2), "sigprof") == 0) ||
      (lua_type(L, 2) == LUA_TNUMBER && lua_tointeger(L, 2) == SIGPROF))
    return lh_result(L, uv_loop_configure(loop, UV_LOOP_BLOCK_SIGNAL, SIGPROF));
  return lh_error(L, UV_EINVAL);
}

static int loop_metrics_idle_time(lua_State* L) {
  lua_pushinteger(L, (lua_Integer)uv_metrics_idle_time(lh_runtime(L)->loop));
  return 1;
}

/* The runtime closes the loop when the process ends; this only reports
 * whether it could be closed now (luv's contract: 0, or EBUSY). */
static int loop_close(lua_State* L) {
  uv_loop_t* loop = lh_runtime(L)->loop;
  if (uv_loop_alive(loop) || lh_runtime(L)->loop_depth > 0)
    return lh_error(L, UV_EBUSY);
  lua_pushinteger(L, 0);
  return 1;
}

typedef struct {
  lua_State* L;
  int table;
  int n;
} walk_state_t;

static void collect(uv_handle_t* uvh, void* arg) {
  walk_state_t* w = arg;
  lh_handle_t* h = uvh->data;
  if (h == NULL || h->magic != LH_HANDLE_MAGIC || lh_uv(h) != uvh)
    return;
  if (h->udata == NULL || (h->flags & LH_HIDDEN))
    return;
  lua_rawgeti(w->L, LUA_REGISTRYINDEX, h->self_ref);
  lua_rawseti(w->L, w->table, ++w->n);
}

/* walk(fn): fn(handle) for each handle of the script's, collected first so
 * fn may close handles. */
static int loop_walk(lua_State* L) {
  walk_state_t w;
  int i;
  lh_check_callable(L, 1);
  lua_newtable(L);
  w.L = L;
  w.table = lua_gettop(L);
  w.n = 0;
  uv_walk(lh_runtime(L)->loop, collect, &w);
  for (i = 1; i <= w.n; i++) {
    lua_pushvalue(L, 1);
    lua_rawgeti(L, w.table, i);
    lua_call(L, 1, 0);
  }
  return 0;
}

static const luaL_Reg loop_functions[] = {
    {"run", loop_run},
    {"stop", loop_stop},
    {"loop_alive", loop_alive},
    {"loop_mode", loop_mode},
    {"now", loop_now},
    {"update_time", loop_update_time},
    {"hrtime", loop_hrtime},
    {"backend_fd", loop_backend_fd},
    {"backend_timeout", loop_backend_timeout},
    {"loop_configure", loop_configure},
    {"walk", loop_walk},
    {"metrics_idle_time", loop_metrics_idle_time},
    {"loop_close", loop_close},
    {NULL, NULL},
};

void lh_open_loop(lua_State* L) {
  luaL_setfuncs(L, loop_functions, 0);
}
