/* The call gateway: every call from C into Lua runs on a coroutine taken
 * from a pool, so any callback may wait. Errors leave through one route:
 * lh_uncaught, which hands them to process 'uncaughtException' listeners
 * or prints them and stops the runtime. */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "runtime.h"

static lua_State* pool_take(lh_runtime_t* rt, int* ref) {
  lua_State* L = rt->L;
  lua_State* co;
  if (rt->pool_len > 0) {
    lh_pooled_t* p = &rt->pool[--rt->pool_len];
    *ref = p->ref;
    return p->co;
  }
  co = lua_newthread(L); /* thread */
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->threads_ref);
  lua_pushvalue(L, -2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3); /* threads[co] = true */
  lua_pop(L, 1);
  *ref = luaL_ref(L, LUA_REGISTRYINDEX); /* pops thread */
  return co;
}

static void pool_put(lh_runtime_t* rt, lua_State* co, int ref) {
  if (rt->pool_len < LH_POOL_MAX) {
    rt->pool[rt->pool_len].co = co;
    rt->pool[rt->pool_len].ref = ref;
    rt->pool_len++;
  } else {
    luaL_unref(rt->L, LUA_REGISTRYINDEX, ref);
  }
}

void lh_pool_clear(lh_runtime_t* rt) {
  while (rt->pool_len > 0) {
    rt->pool_len--;
    luaL_unref(rt->L, LUA_REGISTRYINDEX, rt->pool[rt->pool_len].ref);
  }
}

int lh_is_runtime_thread(lh_runtime_t* rt, lua_State* L) {
  int found;
  if (L == rt->main_co || L == rt->cb_co)
    return 1;
  if (!lua_checkstack(L, 2))
    return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->threads_ref);
  lua_pushthread(L);
  found = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return found;
}

static lua_State* begin(lh_runtime_t* rt) {
  int ref;
  lua_State* co = pool_take(rt, &ref);
  rt->begin_ref = ref;
  return co;
}

lua_State* lh_cb_begin(lh_runtime_t* rt) {
  if (rt->exiting)
    return NULL;
  return begin(rt);
}

/* The message lua.c's msghandler would print, pushed on L. */
static const char* push_message(lua_State* L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
    lua_pushvalue(L, idx);
    return lua_tostring(L, -1);
  }
  if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
      return lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  return lua_pushfstring(L, "(error object is a %s value)",
                         luaL_typename(L, idx));
}

/* Like lua.c: a string-convertible error gets a traceback; an object whose
 * __tostring gives a string is printed as that string alone. */
void lh_push_report(lua_State* L, int err, lua_State* co) {
  int plain =
      lua_type(L, err) == LUA_TSTRING || lua_type(L, err) == LUA_TNUMBER;
  const char* msg = push_message(L, err);
  if (plain || lua_type(L, err) == LUA_TNIL ||
      luaL_getmetafield(L, err, "__tostring") == LUA_TNIL) {
    luaL_traceback(L, co, msg, 0);
    lua_remove(L, -2);
  } else {
    lua_pop(L, 1); /* the metafield */
  }
}

static void fatal(lh_runtime_t* rt, const char* report) {
  fflush(stdout);
  fprintf(stderr, "%s: %s\n", rt->progname, report);
  fflush(stderr);
  lh_runtime_stop(rt, 1);
}

/* Takes the error object from the top of co (a thread that just failed)
 * and routes it. co is left for the caller to reset. */
void lh_uncaught(lh_runtime_t* rt, lua_State* co) {
  int ref;
  lua_State* h = pool_take(rt, &ref);
  lua_xmove(co, h, 1);      /* err */
  lh_push_report(h, 1, co); /* err report */
  if (rt->uncaught_ref == LUA_NOREF || rt->in_uncaught || rt->exiting) {
    if (!rt->exiting || rt->in_uncaught)
      fatal(rt, lua_tostring(h, -1));
    lua_settop(h, 0);
    pool_put(rt, h, ref);
    return;
  }
  lua_rawgeti(h, LUA_REGISTRYINDEX, rt->uncaught_ref);
  lua_insert(h, 1); /* handler err report */
  rt->in_uncaught = 1;
  rt->begin_ref = ref;
  lh_cb_run_from(rt, h, 2, co);
  rt->in_uncaught = 0;
}

/* Runs process.nextTick callbacks queued by the call that just ended. */
void lh_drain_ticks(lh_runtime_t* rt, lua_State* from) {
  lua_State* co;
  if (rt->draining || rt->tick_ref == LUA_NOREF)
    return;
  rt->draining = 1;
  while (rt->tick_pending && !rt->exiting) {
    co = begin(rt);
    lua_rawgeti(co, LUA_REGISTRYINDEX, rt->tick_ref);
    if (lh_cb_run_from(rt, co, 0, from) == LUA_YIELD)
      break;
  }
  rt->draining = 0;
}

int lh_cb_run(lh_runtime_t* rt, lua_State* co, int nargs) {
  return lh_cb_run_from(rt, co, nargs, rt->from);
}

static int run(lh_runtime_t* rt, lua_State* co, int nargs, lua_State* from,
               lh_guard_fn guard, void* data) {
  int ref = rt->begin_ref;
  int nres = 0;
  int status;
  lua_State* prev_cb = rt->cb_co;
  lua_State* prev_running = lh_running(rt);
  rt->begin_ref = LUA_NOREF;
  /* A call the loop makes (not one nested in Lua code): the loop works. */
  if (prev_running == NULL && rt->loop_depth > 0)
    lh_watch_enter(rt);
  rt->cb_co = co;
  lh_set_running(rt, co);
  status = lua_resume(co, from, nargs, &nres);
  lh_set_running(rt, prev_running);
  rt->cb_co = prev_cb;
  if (status == LUA_OK) {
    lua_settop(co, 0);
    pool_put(rt, co, ref);
  } else if (status == LUA_YIELD) {
    /* It waits for something; whoever resumes it now owns it. */
    lua_pop(co, nres);
    luaL_unref(rt->L, LUA_REGISTRYINDEX, ref);
  } else {
    if (guard != NULL)
      guard(rt, co, data);
    else
      lh_uncaught(rt, co);
    lua_resetthread(co);
    lua_settop(co, 0);
    pool_put(rt, co, ref);
  }
  /* Ticks run when the outermost call returns to the loop, not after a
   * nested one (binding.spawn from Lua code). */
  if (rt->tick_pending && prev_running == NULL)
    lh_drain_ticks(rt, from);
  if (rt->gc_stress)
    lua_gc(rt->L, LUA_GCCOLLECT);
  return status;
}

int lh_cb_run_from(lh_runtime_t* rt, lua_State* co, int nargs,
                   lua_State* from) {
  return run(rt, co, nargs, from, NULL, NULL);
}

int lh_cb_run_guarded(lh_runtime_t* rt, lua_State* co, int nargs,
                      lh_guard_fn guard, void* data) {
  return run(rt, co, nargs, rt->from, guard, data);
}

/* The guard of a parked coroutine lives in the weak set of runtime
 * threads, in place of `true`: no extra table, gone with the thread. */
void lh_cb_guard(lh_runtime_t* rt, lua_State* co,
                 void (*push_guard)(lua_State* L, void* data), void* data) {
  lua_State* L = rt->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->threads_ref);
  lua_pushthread(co); /* anchored before anything can allocate */
  lua_xmove(co, L, 1);
  push_guard(L, data);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* Routes the error on top of co (which just failed) to its guard, if it
 * has one: guard(err, report) on a pooled coroutine. */
static int run_guard(lh_runtime_t* rt, lua_State* co, lua_State* from) {
  lua_State* L = rt->L;
  lua_State* h;
  int ref;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->threads_ref);
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  if (lua_rawget(L, -2) != LUA_TFUNCTION || rt->exiting) {
    lua_pop(L, 2);
    return 0;
  }
  h = pool_take(rt, &ref);
  lua_xmove(L, h, 1); /* guard */
  lua_pop(L, 1);      /* threads */
  lua_xmove(co, h, 1);
  lh_push_report(h, 2, co); /* guard err report */
  rt->begin_ref = ref;
  lh_cb_run_from(rt, h, 2, from);
  return 1;
}

/* The main coroutine: like a callback, but it is not pooled, and its death
 * (an error) is final. */
int lh_run_main(lh_runtime_t* rt, int nargs) {
  lua_State* co = rt->main_co;
  lua_State* prev_cb = rt->cb_co;
  int nres = 0;
  int status;
  rt->cb_co = co;
  lh_set_running(rt, co);
  status = lua_resume(co, rt->from, nargs, &nres);
  lh_set_running(rt, NULL);
  rt->cb_co = prev_cb;
  if (status == LUA_OK || status == LUA_YIELD)
    lua_pop(co, nres);
  else
    lh_uncaught(rt, co);
  if (rt->tick_pending)
    lh_drain_ticks(rt, rt->from);
  return status;
}

/* binding.spawn(fn, ...): runs fn now on its own pooled coroutine, so that
 * it may wait and its errors take the uncaught route on their own. */
int lh_spawn(lua_State* L) {
  lh_runtime_t* rt = lh_runtime(L);
  int n = lua_gettop(L);
  lua_State* co;
  luaL_checkany(L, 1);
  co = lh_cb_begin(rt);
  if (co == NULL)
    return 0;
  lua_xmove(L, co, n);
  lh_cb_run_from(rt, co, n - 1, L);
  return 0;
}

int lh_cb_call_ref(lh_runtime_t* rt, int ref) {
  lua_State* co = lh_cb_begin(rt);
  if (co == NULL)
    return 0;
  lua_rawgeti(co, LUA_REGISTRYINDEX, ref);
  lh_cb_run(rt, co, 0);
  return 1;
}

/* binding.resume(co, ...) -> true | false: resumes a coroutine parked by a
 * waiting call. Its errors take the uncaught route, not the resumer's. */
int lh_resume(lua_State* L) {
  lh_runtime_t* rt = lh_runtime(L);
  lua_State* co = lua_tothread(L, 1);
  lua_State* prev_running = lh_running(rt);
  int n = lua_gettop(L) - 1;
  int nres = 0;
  int status;
  luaL_argexpected(L, co != NULL, 1, "thread");
  if (co == L)
    return luaL_error(L, "cannot resume a running coroutine");
  if (lua_status(co) != LUA_YIELD &&
      (lua_status(co) != LUA_OK || lua_gettop(co) == 0)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (rt->exiting) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_xmove(L, co, n);
  lh_set_running(rt, co);
  status = lua_resume(co, L, n, &nres);
  lh_set_running(rt, prev_running);
  if (status == LUA_OK || status == LUA_YIELD) {
    lua_pop(co, nres);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (!run_guard(rt, co, L))
    lh_uncaught(rt, co);
  lua_pushboolean(L, 0);
  return 1;
}
