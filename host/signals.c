/* Ctrl-C while Lua runs interrupts it, as in lua.c: the handler only sets a
 * hook (lua_sethook is safe in a signal handler) and the hook raises the
 * error inside the VM. With no Lua running, SIGINT keeps its default and
 * ends the process. A script that listens for SIGINT (a uv signal handle)
 * takes the signal over; when it lets go, lh_signals_rearm restores ours. */
#include <lauxlib.h>
#include <signal.h>
#include <string.h>

#include "runtime.h"

static lh_runtime_t* signal_rt;

static void interrupt_hook(lua_State* L, lua_Debug* ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void on_sigint(int sig) {
  lua_State* running = signal_rt ? signal_rt->running : NULL;
  if (running != NULL) {
    int mask = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
    lua_sethook(running, interrupt_hook, mask, 1);
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
