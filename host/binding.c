/* 'internal.binding': what lib/lua's internals need from the runtime
 * (hooks for errors, exit and nextTick; resuming parked coroutines), and
 * luvhost's os.exit. Only built-in modules can require it. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime.h"

static void set_ref(lua_State* L, int* ref, const char* field) {
  lua_getfield(L, 1, field);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  luaL_checktype(L, -1, LUA_TFUNCTION);
  luaL_unref(L, LUA_REGISTRYINDEX, *ref);
  *ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* set_hooks{uncaught = fn(err, report), exit = fn(code, forced),
 *           tick = fn(), shutdown = fn(signal name, timeout ms),
 *           why_alive = fn(reason)} */
static int binding_set_hooks(lua_State* L) {
  lh_runtime_t* rt = lh_runtime(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  set_ref(L, &rt->uncaught_ref, "uncaught");
  set_ref(L, &rt->exit_ref, "exit");
  set_ref(L, &rt->tick_ref, "tick");
  set_ref(L, &rt->shutdown_ref, "shutdown");
  set_ref(L, &rt->why_alive_ref, "why_alive");
  return 0;
}

static int binding_tick_pending(lua_State* L) {
  lh_runtime(L)->tick_pending = lua_toboolean(L, 1);
  return 0;
}

/* fatal(report): an error nobody handled. */
static int binding_fatal(lua_State* L) {
  lh_runtime_t* rt = lh_runtime(L);
  const char* report = luaL_checkstring(L, 1);
  fflush(stdout);
  fprintf(stderr, "%s: %s\n", rt->progname, report);
  fflush(stderr);
  lh_runtime_stop(rt, 1);
  return 0;
}

static int exit_status(lua_State* L, int idx) {
  if (lua_isboolean(L, idx))
    return lua_toboolean(L, idx) ? EXIT_SUCCESS : EXIT_FAILURE;
  return (int)luaL_optinteger(L, idx, EXIT_SUCCESS);
}

static int binding_exit(lua_State* L) {
  return lh_runtime_exit(L, exit_status(L, 1), 1);
}

/* os.exit([code [, close]]): as in Lua, but a clean teardown whenever the
 * runtime can unwind to its loop (see lh_runtime_exit). */
static int os_exit(lua_State* L) {
  return lh_runtime_exit(L, exit_status(L, 1), lua_toboolean(L, 2));
}

static int binding_set_exit_code(lua_State* L) {
  lh_runtime(L)->exit_code = (int)luaL_checkinteger(L, 1);
  return 0;
}

static int binding_exiting(lua_State* L) {
  lua_pushboolean(L, lh_runtime(L)->exiting);
  return 1;
}

static int binding_progname(lua_State* L) {
  lua_pushstring(L, lh_runtime(L)->progname);
  return 1;
}

/* exit_emitted() -> boolean: the 'exit' event ran or runs (the loop will
 * not turn again). */
static int binding_exit_emitted(lua_State* L) {
  lua_pushboolean(L, lh_runtime(L)->exit_emitted);
  return 1;
}

/* unyieldable() -> phrase, kind: why the calling code cannot wait
 * ("inside a table.sort comparator"; kind: 'main', 'require', 'gc',
 * 'hook', 'c' or 'other'). */
static int binding_unyieldable(lua_State* L) {
  static const char* const kinds[] = {"",     "main", "require", "gc",
                                      "hook", "c",    "other"};
  int kind = lh_push_unyieldable(L, 1);
  lua_pushstring(L, kinds[kind]);
  return 2;
}

static int binding_trace_errors(lua_State* L) {
  lua_pushboolean(L, lh_runtime(L)->trace_errors);
  return 1;
}

/* trace_errback(cb, err): --trace-errors' check of a callback about to get
 * the error err. */
static int binding_trace_errback(lua_State* L) {
  if (lh_runtime(L)->trace_errors)
    lh_trace_errback(L, 1, 2);
  return 0;
}

/* before_output(data): process.stdout and process.stderr are about to
 * write data (a string or an array of strings) to a terminal; an open
 * prompt steps aside (host/repl.c). */
static int binding_before_output(lua_State* L) {
  size_t n = 0;
  const char* s = NULL;
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_Integer i;
    for (i = (lua_Integer)lua_rawlen(L, 1); i > 0 && n == 0; i--) {
      lua_rawgeti(L, 1, i);
      s = lua_tolstring(L, -1, &n);
      lua_pop(L, 1); /* the array keeps the string alive */
    }
  } else {
    s = lua_tolstring(L, 1, &n);
  }
  if (s != NULL && n > 0)
    lh_repl_before_output(s, n);
  return 0;
}

static const luaL_Reg binding_funcs[] = {
    {"set_hooks", binding_set_hooks},
    {"tick_pending", binding_tick_pending},
    {"fatal", binding_fatal},
    {"exit", binding_exit},
    {"set_exit_code", binding_set_exit_code},
    {"exiting", binding_exiting},
    {"progname", binding_progname},
    {"resume", lh_resume},
    {"spawn", lh_spawn},
    {"exit_emitted", binding_exit_emitted},
    {"unyieldable", binding_unyieldable},
    {"trace_errors", binding_trace_errors},
    {"trace_errback", binding_trace_errback},
    {"loop_stats", lh_watch_stats},
    {"blocking_limits", lh_watch_limits},
    {"before_output", binding_before_output},
    {NULL, NULL},
};

int luaopen_internal_binding(lua_State* L) {
  luaL_newlib(L, binding_funcs);
  return 1;
}

void lh_binding_install_os_exit(lua_State* L) {
  lua_getglobal(L, "os");
  lua_pushcfunction(L, os_exit);
  lua_setfield(L, -2, "exit");
  lua_pop(L, 1);
}
