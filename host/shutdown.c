/* Graceful shutdown. SIGTERM and SIGINT (unless a script listens for them)
 * only note the request and wake the loop; there the Lua side
 * (lib/lua/internal/shutdown.lua) stops the servers, lets in-flight
 * requests finish and exits. A second signal ends the process at once. */
#include <lauxlib.h>
#include <signal.h>
#include <unistd.h>

#include "runtime.h"

static lh_runtime_t* shutdown_rt;
static uv_async_t wake;
static volatile sig_atomic_t requested; /* the first signal's number */

static void on_wake(uv_async_t* handle) {
  lh_runtime_t* rt = handle->data;
  lua_State* co;
  int sig = requested;
  rt->shutdown_started = 1;
  if (rt->shutdown_ref == LUA_NOREF || (co = lh_cb_begin(rt)) == NULL) {
    lh_runtime_stop(rt, 0);
    return;
  }
  lua_rawgeti(co, LUA_REGISTRYINDEX, rt->shutdown_ref);
  lua_pushstring(co, sig == SIGINT ? "SIGINT" : "SIGTERM");
  lua_pushinteger(co, (lua_Integer)rt->shutdown_timeout_ms);
  lh_cb_run(rt, co, 2);
}

void lh_shutdown_init(lh_runtime_t* rt) {
  shutdown_rt = rt;
  if (uv_async_init(rt->loop, &wake, on_wake) != 0)
    return;
  wake.data = rt;
  uv_unref((uv_handle_t*)&wake); /* it keeps nothing alive */
}

/* From a signal handler: only async-signal-safe calls. Returns 0 for the
 * first request, 1 when one was made already (the caller ends it). */
int lh_shutdown_request(int sig) {
  if (shutdown_rt == NULL || uv_is_closing((uv_handle_t*)&wake))
    return 1;
  if (requested)
    return 1;
  requested = sig;
  uv_async_send(&wake);
  return 0;
}

/* Whether the loop has seen the request yet (the interrupt hook asks). */
int lh_shutdown_seen(void) {
  return shutdown_rt != NULL && shutdown_rt->shutdown_started;
}
