/* uv_signal_t. Signals are given as numbers or names ("sigint", "SIGINT",
 * "int"); the callback gets the signal's name, lowercase (luv). */
#include <ctype.h>
#include <string.h>

#include "lh_bind.h"

typedef struct {
  const char* name;
  int num;
} signal_name_t;

static const signal_name_t signal_names[] = {
    {"sighup", SIGHUP},
    {"sigint", SIGINT},
    {"sigquit", SIGQUIT},
    {"sigill", SIGILL},
    {"sigtrap", SIGTRAP},
    {"sigabrt", SIGABRT},
    {"sigbus", SIGBUS},
    {"sigfpe", SIGFPE},
    {"sigkill", SIGKILL},
    {"sigusr1", SIGUSR1},
    {"sigsegv", SIGSEGV},
    {"sigusr2", SIGUSR2},
    {"sigpipe", SIGPIPE},
    {"sigalrm", SIGALRM},
    {"sigterm", SIGTERM},
    {"sigchld", SIGCHLD},
    {"sigcont", SIGCONT},
    {"sigstop", SIGSTOP},
    {"sigtstp", SIGTSTP},
    {"sigttin", SIGTTIN},
    {"sigttou", SIGTTOU},
    {"sigurg", SIGURG},
    {"sigxcpu", SIGXCPU},
    {"sigxfsz", SIGXFSZ},
    {"sigvtalrm", SIGVTALRM},
    {"sigprof", SIGPROF},
    {"sigwinch", SIGWINCH},
    {"sigio", SIGIO},
    {"sigpwr", SIGPWR},
    {"sigsys", SIGSYS},
    {NULL, 0},
};

const char* lh_signal_name(int num) {
  const signal_name_t* s;
  for (s = signal_names; s->name != NULL; s++)
    if (s->num == num)
      return s->name;
  return NULL;
}

/* A signal number from a number or a name; raises on anything else. */
int lh_check_signal(lua_State* L, int idx) {
  char lower[16];
  const char* name;
  const signal_name_t* s;
  size_t i, len;
  if (lua_type(L, idx) == LUA_TNUMBER)
    return (int)lua_tointeger(L, idx);
  name = luaL_checklstring(L, idx, &len);
  if (len + 4 >= sizeof(lower))
    return luaL_argerror(L, idx, "unknown signal");
  i = 0;
  if (!(len > 3 && (name[0] == 's' || name[0] == 'S') &&
        (name[1] == 'i' || name[1] == 'I') &&
        (name[2] == 'g' || name[2] == 'G'))) {
    memcpy(lower, "sig", 3);
    i = 3;
  }
  for (; *name; name++)
    lower[i++] = (char)tolower((unsigned char)*name);
  lower[i] = '\0';
  for (s = signal_names; s->name != NULL; s++)
    if (strcmp(s->name, lower) == 0)
      return s->num;
  return luaL_argerror(
      L, idx, lua_pushfstring(L, "unknown signal '%s'", lua_tostring(L, idx)));
}

static void signal_cb(uv_signal_t* sig, int signum) {
  lh_handle_t* h = sig->data;
  lua_State* co = lh_callback_begin(h, LH_CB_EVENT);
  const char* name = lh_signal_name(signum);
  if (co == NULL)
    return;
  if (name != NULL)
    lua_pushstring(co, name);
  else
    lua_pushinteger(co, signum);
  lh_cb_run(h->rt, co, 1);
}

static int signal_new(lua_State* L) {
  uv_signal_t* s = lh_handle_new(L, UV_SIGNAL);
  int r = uv_signal_init(lh_runtime(L)->loop, s);
  if (r < 0) {
    lh_handle_abort(L, s);
    return lh_error(L, r);
  }
  lh_handle_ready(L, s);
  return 1;
}

static int start(lua_State* L, int oneshot) {
  lh_handle_t* h = lh_check_handle(L, 1, UV_SIGNAL);
  int signum = lh_check_signal(L, 2);
  uv_signal_t* s = (uv_signal_t*)lh_uv(h);
  int r;
  if (!lua_isnoneornil(L, 3))
    lh_set_callback(L, h, LH_CB_EVENT, 3);
  r = oneshot ? uv_signal_start_oneshot(s, signal_cb, signum)
              : uv_signal_start(s, signal_cb, signum);
  return lh_result(L, r);
}

static int signal_start(lua_State* L) {
  return start(L, 0);
}

static int signal_start_oneshot(lua_State* L) {
  return start(L, 1);
}

static int signal_stop(lua_State* L) {
  int r = uv_signal_stop(lh_check_uv(L, 1, UV_SIGNAL, uv_signal_t));
  lh_signals_rearm();
  return lh_result(L, r);
}

static int signal_getsignum(lua_State* L) {
  uv_signal_t* s = lh_check_uv(L, 1, UV_SIGNAL, uv_signal_t);
  lua_pushinteger(L, s->signum);
  return 1;
}

static const luaL_Reg signal_functions[] = {
    {"new_signal", signal_new},
    {"signal_start", signal_start},
    {"signal_start_oneshot", signal_start_oneshot},
    {"signal_stop", signal_stop},
    {NULL, NULL},
};

static const luaL_Reg signal_methods[] = {
    {"start", signal_start},
    {"start_oneshot", signal_start_oneshot},
    {"stop", signal_stop},
    {"getsignum", signal_getsignum},
    {NULL, NULL},
};

void lh_open_signal(lua_State* L) {
  luaL_setfuncs(L, signal_functions, 0);
  lh_new_handle_type(L, UV_SIGNAL, "uv_signal", signal_methods);
}
