/* The runtime's life: set-up, running the loop, exit requests, and the
 * teardown in its fixed order ('exit' event, close handles, drain the loop,
 * close Lua). */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

int lh_runtime_init(lh_runtime_t* rt, lua_State* L, const char* progname) {
  const char* stress = getenv("LUVHOST_GC_STRESS");
  memset(rt, 0, sizeof(*rt));
  rt->L = L;
  rt->from = L;
  rt->run_mode = -1;
  rt->progname = progname;
  rt->main_co_ref = rt->tick_ref = rt->uncaught_ref = LUA_NOREF;
  rt->exit_ref = rt->threads_ref = rt->begin_ref = LUA_NOREF;
  rt->shutdown_ref = rt->why_alive_ref = LUA_NOREF;
  rt->shutdown_timeout_ms = 10000;
  rt->gc_stress = stress != NULL && stress[0] != '\0' && strcmp(stress, "0");
  rt->loop = uv_default_loop();
  if (rt->loop == NULL)
    return -1;
  rt->loop->data = rt;
  lh_watch_init(rt);
  /* Threads copy the main thread's extra space: every coroutine finds
   * its runtime without a registry lookup. */
  *(lh_runtime_t**)lua_getextraspace(L) = rt;
  lua_newtable(L); /* weak set of the runtime's own coroutines */
  lua_newtable(L);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  rt->threads_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  rt->main_co = lua_newthread(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->threads_ref);
  lua_pushvalue(L, -2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  rt->main_co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* Runs the loop with 'from' as the thread that resumes callbacks. Returns
 * -1 when the loop is already running (uv_run is not reentrant). */
int lh_runtime_run_loop(lh_runtime_t* rt, lua_State* from, uv_run_mode mode) {
  lua_State* prev = rt->from;
  lua_State* prev_running;
  int r;
  if (rt->loop_depth > 0)
    return -1;
  /* Ticks queued by code that ran outside the loop go first. */
  if (rt->tick_pending)
    lh_drain_ticks(rt, from);
  if (rt->exiting)
    return 0;
  rt->from = from;
  rt->loop_depth++;
  rt->run_mode = (int)mode;
  /* Callbacks of this loop are outermost calls even when uv.run was called
   * from a coroutine: they drain nextTick when they return. */
  prev_running = lh_running(rt);
  lh_set_running(rt, NULL);
  lh_watch_loop(rt, 1);
  r = uv_run(rt->loop, mode);
  lh_watch_loop(rt, 0);
  lh_set_running(rt, prev_running);
  rt->run_mode = -1;
  rt->loop_depth--;
  rt->from = prev;
  return r;
}

/* No more Lua after this: the loop stops and the teardown follows. */
void lh_runtime_stop(lh_runtime_t* rt, int code) {
  if (!rt->exit_forced) {
    rt->exit_code = code;
    rt->exit_forced = 1;
  }
  rt->exiting = 1;
  uv_stop(rt->loop);
}

/* Emits process 'exit' once; listeners may change process.exitCode. */
int lh_runtime_emit_exit(lh_runtime_t* rt) {
  int was_exiting = rt->exiting;
  int was_draining = rt->draining;
  lua_State* co;
  if (rt->exit_emitted || rt->exit_ref == LUA_NOREF)
    return 0;
  rt->exit_emitted = 1;
  rt->exiting = 0;
  rt->draining = 1; /* nextTick callbacks queued now never run, as in Node */
  co = lh_cb_begin(rt);
  lua_rawgeti(co, LUA_REGISTRYINDEX, rt->exit_ref);
  lua_pushinteger(co, rt->exit_code);
  lua_pushboolean(co, rt->exit_forced);
  lh_cb_run(rt, co, 2);
  rt->draining = was_draining;
  rt->exiting = rt->exiting || was_exiting;
  return 1;
}

/* os.exit and process.exit. On a coroutine the runtime resumed, the
 * coroutine is abandoned with a yield and the normal teardown follows; in
 * any other place (a metamethod, a coroutine of the script's own) it ends
 * the process here, as lua.c does. */
int lh_runtime_exit(lua_State* L, int code, int close) {
  lh_runtime_t* rt = lh_runtime(L);
  rt->exit_code = code;
  rt->exit_forced = 1;
  lh_runtime_stop(rt, code);
  if (lua_isyieldable(L) && lh_is_runtime_thread(rt, L))
    return lua_yield(L, 0);
  rt->from = L;
  lh_runtime_emit_exit(rt);
  lh_repl_close(rt);
  fflush(stdout);
  fflush(stderr);
  uv_tty_reset_mode();
  if (close) {
    lh_watchdog_stop();
    if (rt->loop_depth == 0) {
      lh_runtime_close(rt);
    } else {
      /* uv_run is on the stack and cannot be reentered: close what can be
       * closed and let the process end take the rest. */
      if (rt->close_all)
        rt->close_all(rt->loop);
      lua_close(rt->L);
    }
  }
  exit(rt->exit_code);
  return 0;
}

static void close_stray(uv_handle_t* handle, void* arg) {
  (void)arg;
  if (!uv_is_closing(handle))
    uv_close(handle, NULL);
}

void lh_runtime_close(lh_runtime_t* rt) {
  rt->exiting = 1;
  lh_watchdog_stop(); /* before the state it watches goes */
  lh_repl_close(rt);
  uv_tty_reset_mode(); /* a script that set raw mode leaves a sane terminal */
  if (rt->close_all)
    rt->close_all(rt->loop);
  uv_walk(rt->loop, close_stray, NULL);
  while (uv_run(rt->loop, UV_RUN_DEFAULT) != 0) {
  }
  if (uv_loop_close(rt->loop) != 0)
    fprintf(stderr, "%s: internal: the loop did not close cleanly\n",
            rt->progname);
  lh_pool_clear(rt);
  lua_close(rt->L);
  rt->L = NULL;
}
