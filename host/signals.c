/* Ctrl-C while Lua runs interrupts it, as in lua.c: the handler only sets a
 * hook (lua_sethook is safe in a signal handler) and the hook raises the
 * error inside the VM. With no Lua running, SIGINT keeps its default and
 * ends the process. A script that listens for SIGINT (a uv signal handle)
 * takes the signal over; when it lets go, lh_signals_rearm restores ours.
 *
 * While the prompt is open (host/repl.c sets rt->sigint_async), Ctrl-C
 * belongs to it: the hook goes only on the entry that is running, or on
 * whatever runs when an earlier Ctrl-C is still unanswered (a callback
 * that never returns); anything else wakes the prompt through the async
 * handle (uv_async_send is async-signal-safe). */
#include <lauxlib.h>
#include <signal.h>
#include <string.h>

#include "runtime.h"

#define INTERRUPT_MASK \
  (LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT)

static lh_runtime_t* signal_rt;

static void interrupt_hook(lua_State* L, lua_Debug* ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void on_sigint(int sig) {
  lh_runtime_t* rt = signal_rt;
  lua_State* running = rt ? rt->running : NULL;
  if (rt != NULL && rt->sigint_async != NULL) {
    if (running != NULL &&
        (running == rt->sigint_target || rt->sigint_pending)) {
      /* A second press for something busy: the first is used up too. */
      if (running != rt->sigint_target)
        rt->sigint_pending = 2;
      lua_sethook(running, interrupt_hook, INTERRUPT_MASK, 1);
      return;
    }
    rt->sigint_pending = 1;
    uv_async_send(rt->sigint_async);
    return;
  }
  if (running != NULL) {
    lua_sethook(running, interrupt_hook, INTERRUPT_MASK, 1);
    return;
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

static void install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
}

void lh_signals_init(lh_runtime_t* rt) {
  struct sigaction old;
  signal_rt = rt;
  /* A peer that goes away must give EPIPE, not kill the process. */
  signal(SIGPIPE, SIG_IGN);
  /* Respect an inherited 'ignore' (nohup, background jobs). */
  if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler == SIG_IGN)
    return;
  install();
}

void lh_signals_rearm(void) {
  struct sigaction old;
  if (signal_rt == NULL)
    return;
  if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
    install();
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
