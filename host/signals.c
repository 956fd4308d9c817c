/* SIGINT and SIGTERM ask for a graceful shutdown (shutdown.c); a second
 * one ends the process at once. SIGUSR2 prints what keeps the process
 * alive (lib/lua/internal/diagnostics.lua). Ctrl-C in Lua code that keeps
 * running (the loop does not get the request within a few million instructions)
 * also interrupts it, as in lua.c: the handler only sets a hook (lua_sethook is
 * safe in a signal handler) and the hook raises the error inside the VM.
 * A script that listens for a signal (a uv signal handle) takes it over;
 * when it lets go, lh_signals_rearm restores ours.
 *
 * While the prompt is open (host/repl.c sets rt->sigint_async), Ctrl-C
 * belongs to it: the hook goes only on the entry that is running, or on
 * whatever runs when an earlier Ctrl-C is still unanswered (a callback
 * that never returns); anything else wakes the prompt through the async
 * handle (uv_async_send is async-signal-safe). */
#include <lauxlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

#define INTERRUPT_MASK \
  (LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT)

static lh_runtime_t* signal_rt;
static uv_async_t usr2_wake; /* SIGUSR2: the why-alive report */
static int usr2_ready;

/* Instructions a callback may still run after Ctrl-C before it counts as
 * stuck: a request handler finishes well within them. */
#define INTERRUPT_GRACE 4000000

static void interrupt_hook(lua_State* L, lua_Debug* ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (lh_shutdown_seen())
    return; /* the loop turned: the shutdown runs */
  luaL_error(L, "interrupted!");
}

/* The prompt's Ctrl-C (see the top). */
static void prompt_sigint(lh_runtime_t* rt, lua_State* running) {
  if (running != NULL && (running == rt->sigint_target || rt->sigint_pending)) {
    /* A second press for something busy: the first is used up too. */
    if (running != rt->sigint_target)
      rt->sigint_pending = 2;
    lua_sethook(running, interrupt_hook, INTERRUPT_MASK, 1);
    return;
  }
  rt->sigint_pending = 1;
  uv_async_send(rt->sigint_async);
}

static void on_signal(int sig) {
  lh_runtime_t* rt = signal_rt;
  lua_State* running = rt ? lh_running(rt) : NULL;
  if (sig == SIGUSR2) {
    if (usr2_ready)
      uv_async_send(&usr2_wake);
    return;
  }
  if (sig == SIGINT && rt != NULL && rt->sigint_async != NULL) {
    prompt_sigint(rt, running);
    return;
  }
  if (lh_shutdown_request(sig))
    _exit(128 + sig); /* the second signal: at once */
  if (sig == SIGINT && running != NULL)
    lua_sethook(running, interrupt_hook, LUA_MASKCOUNT, INTERRUPT_GRACE);
}

static void install(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

/* Installs ours unless the signal is ignored (nohup, background jobs) or
 * someone else (a uv signal handle) has it. */
static void arm(int sig) {
  struct sigaction old;
  if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
    install(sig);
}

/* On the loop, after SIGUSR2: what keeps the process alive. */
static void on_usr2(uv_async_t* handle) {
  lh_runtime_t* rt = handle->data;
  lua_State* co;
  if (rt->why_alive_ref == LUA_NOREF || (co = lh_cb_begin(rt)) == NULL)
    return;
  lua_rawgeti(co, LUA_REGISTRYINDEX, rt->why_alive_ref);
  lua_pushliteral(co, "SIGUSR2");
  lh_cb_run(rt, co, 1);
}

void lh_signals_init(lh_runtime_t* rt) {
  signal_rt = rt;
  if (uv_async_init(rt->loop, &usr2_wake, on_usr2) == 0) {
    usr2_wake.data = rt;
    uv_unref((uv_handle_t*)&usr2_wake); /* it keeps nothing alive */
    usr2_ready = 1;
  }
  /* A peer that goes away must give EPIPE, not kill the process. */
  signal(SIGPIPE, SIG_IGN);
  lh_shutdown_init(rt);
  lh_reaper_init(rt->loop);
  arm(SIGINT);
  arm(SIGTERM);
  arm(SIGUSR2);
}

void lh_signals_rearm(void) {
  if (signal_rt == NULL)
    return;
  arm(SIGINT);
  arm(SIGTERM);
  arm(SIGUSR2);
}

/* The same for a coroutine parked in a waiting call: the error has no
 * position (that would be inside the waiting call); its traceback shows
 * where it waited. */
static void parked_hook(lua_State* L, lua_Debug* ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  lua_pushliteral(L, "interrupted!");
  lua_error(L);
}

/* Makes L, parked, raise "interrupted!" as soon as it is resumed. */
void lh_signals_interrupt(lua_State* L) {
  lua_sethook(L, parked_hook, INTERRUPT_MASK, 1);
}

/* Takes back an interrupt that came too late to hit anything. */
void lh_signals_clear(lua_State* L) {
  lua_Hook hook = lua_gethook(L);
  if (hook == interrupt_hook || hook == parked_hook)
    lua_sethook(L, NULL, 0, 0);
}
