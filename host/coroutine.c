/* Coroutines as the runtime needs to see them: coroutine.resume and wrap
 * tell it which coroutine runs (the watchdog and Ctrl-C set their hooks
 * on that one), and where a coroutine cannot be suspended, the error of
 * coroutine.yield and of every waiting call says why and what to do. */
#include <lauxlib.h>
#include <string.h>

#include "runtime.h"

/* Why a coroutine cannot wait -------------------------------------- */

static const struct {
  const char* name;
  const char* where;
} known_callers[] = {
    {"require", "in the main chunk of a module that require is loading"},
    {"table.sort", "inside a table.sort comparator"},
    {"string.gsub", "inside a string.gsub replacement function"},
    {"tostring", "inside a __tostring metamethod"},
    {"print", "inside a __tostring metamethod"},
    {"load", "inside a load reader function"},
    {NULL, NULL},
};

/* Pushes a phrase that says where the code at `level` runs such that its
 * coroutine cannot be suspended ("inside a table.sort comparator");
 * returns its kind (LH_UNYIELDABLE_*). */
int lh_push_unyieldable(lua_State* L, int level) {
  lh_runtime_t* rt = lh_runtime(L);
  lua_Debug ar;
  int i, last;
  if (lua_pushthread(L)) {
    lua_pop(L, 1);
    lua_pushliteral(L, "outside any coroutine (on Lua's main thread)");
    return LH_UNYIELDABLE_MAIN;
  }
  lua_pop(L, 1);
  for (; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Snf", &ar))
      continue;
    if (strcmp(ar.namewhat, "hook") == 0) {
      lua_pop(L, 1);
      lua_pushliteral(L, "inside a debug hook");
      return LH_UNYIELDABLE_HOOK;
    }
    if (strcmp(ar.namewhat, "metamethod") == 0 && ar.name != NULL &&
        strcmp(ar.name, "__gc") == 0) {
      lua_pop(L, 1);
      lua_pushliteral(L,
                      "inside a __gc metamethod (a finalizer: the garbage "
                      "collector calls it)");
      return LH_UNYIELDABLE_GC;
    }
    if (ar.what[0] != 'C') {
      lua_pop(L, 1);
      continue;
    }
    /* A C function: pcall and its kind let a yield through, and so does
     * the runner at the bottom of the main coroutine. */
    if (lh__is_passthrough(L))
      continue;
    last = !lua_getstack(L, level + 1, &ar) && L == rt->main_co;
    if (last)
      continue;
    lua_getstack(L, level, &ar);
    lua_getinfo(L, "nf", &ar);
    lh_push_funcname(L, -1, &ar);
    lua_remove(L, -2); /* the function */
    for (i = 0; known_callers[i].name != NULL; i++) {
      if (strcmp(lua_tostring(L, -1), known_callers[i].name) == 0) {
        lua_pushfstring(L,
                        "%s (%s is a C function: Lua cannot suspend a "
                        "coroutine across it)",
                        known_callers[i].where, known_callers[i].name);
        lua_remove(L, -2);
        return i == 0 ? LH_UNYIELDABLE_REQUIRE : LH_UNYIELDABLE_C;
      }
    }
    lua_pushfstring(L,
                    "inside a function that %s calls (a C function: Lua "
                    "cannot suspend a coroutine across it)",
                    lua_tostring(L, -1));
    lua_remove(L, -2);
    return LH_UNYIELDABLE_C;
  }
  lua_pushliteral(L, "here (this coroutine cannot be suspended)");
  return LH_UNYIELDABLE_OTHER;
}

/* coroutine.resume, wrap and yield --------------------------------- */

/* resume(co, ...): Lua's, with the runtime told which coroutine runs (the
 * watchdog and Ctrl-C set their hooks on it). */
static int resume_told(lua_State* L) {
  lh_runtime_t* rt = lh_runtime(L);
  lua_State* co = lua_tothread(L, 1);
  lua_State* prev = lh_running(rt);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  if (co != NULL)
    lh_set_running(rt, co);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET); /* raises for bad args only */
  lh_set_running(rt, prev);
  return lua_gettop(L);
}

/* The function wrap returns: Lua's, called with the runtime told. The
 * coroutine's errors pass through it, so it calls under pcall to set
 * things back first. */
static int wrapped_told(lua_State* L) {
  lh_runtime_t* rt = lh_runtime(L);
  lua_State* prev = lh_running(rt);
  int status;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lh_set_running(rt, lua_tothread(L, lua_upvalueindex(2)));
  status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  lh_set_running(rt, prev);
  if (status != LUA_OK)
    return lua_error(L);
  return lua_gettop(L);
}

static int wrap_told(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1); /* Lua's wrap(f) */
  if (lua_getupvalue(L, -1, 1) == NULL || !lua_isthread(L, -1)) {
    lua_settop(L, 2);
    return 1; /* not the shape we know: Lua's own, untracked */
  }
  lua_pushcclosure(L, wrapped_told, 2);
  return 1;
}

/* yield(...): Lua's, but where it cannot, the error says why. */
static int yield_or_say_why(lua_State* L) {
  if (!lua_isyieldable(L)) {
    lh_push_where(L);
    lua_pushliteral(L,
                    "attempt to yield across a C-call boundary: the code "
                    "runs ");
    lh_push_unyieldable(L, 1);
    lua_pushliteral(L,
                    "; run the code that waits in a coroutine of its own "
                    "(coro.spawn) instead");
    lua_concat(L, 4);
    return lua_error(L);
  }
  return lua_yield(L, lua_gettop(L));
}

void lh_coroutine_install(lua_State* L) {
  if (lua_getglobal(L, "coroutine") != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  lua_getfield(L, -1, "resume");
  lua_pushcclosure(L, resume_told, 1);
  lua_setfield(L, -2, "resume");
  lua_getfield(L, -1, "wrap");
  lua_pushcclosure(L, wrap_told, 1);
  lua_setfield(L, -2, "wrap");
  lua_pushcfunction(L, yield_or_say_why);
  lua_setfield(L, -2, "yield");
  lua_pop(L, 1);
}
