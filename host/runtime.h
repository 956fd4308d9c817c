/* The runtime: one lua_State, one uv_loop_t, and the one gateway through
 * which C calls Lua. Bindings include this header to call back into Lua. */
#ifndef LH_RUNTIME_H
#define LH_RUNTIME_H

#include <lua.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#define LH_VERSION "0.1.0"
#define LH_POOL_MAX 64

typedef struct lh_pooled_s {
  lua_State* co;
  int ref;
} lh_pooled_t;

/* Buckets of the loop-delay histogram (µs, 8 per power of two). */
#define LH_DELAY_BUCKETS 320

/* The loop's turns, as the watchdog and process.loopStats see them
 * (host/watchdog.c). The loop thread owns all of it but busy_since and
 * c_call, which the watchdog thread reads. */
typedef struct lh_watch_s {
  _Atomic uint64_t busy_since; /* ns: when the loop woke to run Lua; 0
                                  while it waits or is not running */
  _Atomic(const char*) c_call; /* a blocking C call running now, or NULL */
  _Atomic int arming;          /* the watchdog thread is setting a hook */
  int awake;                   /* Lua ran since the loop last waited */
  int in_loop;                 /* uv_run is on the stack */
  int measuring;               /* loopStats was called: time every turn */
  uint64_t wake_ns;            /* when the loop woke */
  uint64_t idle_from;          /* when it started waiting (measuring) */
  _Atomic uint64_t warn_ns;    /* --warn-blocking (0: off) */
  _Atomic uint64_t max_ns;     /* --max-blocking (0: off) */
  /* loopStats, since its last call */
  uint64_t stats_from, turns, busy_ns, idle_ns, stalls;
  uint64_t samples, delay_sum, delay_min, delay_max; /* µs */
  uint32_t delay_hist[LH_DELAY_BUCKETS];
} lh_watch_t;

typedef struct lh_runtime_s {
  uv_loop_t* loop;
  lua_State* L;     /* main thread: registry work only */
  lua_State* from;  /* thread that runs uv_run now (lua_resume's 'from') */
  lua_State* cb_co; /* coroutine the gateway resumed most recently */
  /* The coroutine running Lua now, for signals and the watchdog thread:
   * read it with lh_running, change it with lh_set_running. */
  _Atomic(lua_State*) running;
  lua_State* main_co; /* runs the command line's chunks and the script */
  int main_co_ref;
  int loop_depth;  /* > 0 while uv_run is on the C stack */
  int run_mode;    /* the running uv_run_mode, or -1 */
  int exiting;     /* exit requested or fatal error: Lua gets no more calls */
  int exit_forced; /* exit_code was fixed by os.exit or a fatal error */
  int exit_code;
  int tick_pending; /* process.nextTick queue is not empty */
  int tick_ref;     /* Lua hooks installed by the bootstrap */
  int uncaught_ref;
  int exit_ref;
  int threads_ref; /* weak set of the runtime's own coroutines */
  int in_uncaught;
  int begin_ref; /* pairs lh_cb_begin with lh_cb_run */
  int draining;  /* a process.nextTick drain is on the C stack */
  int exit_emitted;
  int gc_stress; /* LUVHOST_GC_STRESS: full collection after callbacks */
  int expose_internals;
  int shutdown_ref;     /* Lua: fn(signal name, timeout ms) */
  int shutdown_started; /* the loop took a shutdown request */
  uint64_t shutdown_timeout_ms;
  int trace_errors;  /* --trace-errors */
  int why_alive;     /* --why-alive */
  int why_alive_ref; /* Lua: fn(reason) prints the handles keeping it alive */
  lh_watch_t watch;
  const char* progname;
  void (*close_all)(
      uv_loop_t* loop); /* set by bindings: closes their handles */
  int pool_len;
  lh_pooled_t pool[LH_POOL_MAX];
  /* The prompt's Ctrl-C routing (host/repl.c): while sigint_async is set, a
   * SIGINT interrupts Lua only when it is sigint_target (the entry) that
   * runs, or when an earlier SIGINT is still pending (something is busy;
   * sigint_pending becomes 2: that earlier one is answered); otherwise it
   * wakes sigint_async and the prompt decides. */
  uv_async_t* volatile sigint_async;
  lua_State* volatile sigint_target;
  volatile sig_atomic_t sigint_pending;
} lh_runtime_t;

/* The runtime a Lua thread belongs to (kept in the thread's extra space). */
static inline lh_runtime_t* lh_runtime(lua_State* L) {
  return *(lh_runtime_t**)lua_getextraspace(L);
}

/* watchdog.c: the loop's turns (lh_watch_*) and the blocking watchdog.
 * The gateway tells lh_watch_enter of each call the loop makes into Lua
 * (the first after a wait marks the loop awake); a prepare handle marks
 * the start of each wait. */
void lh__watch_wake(lh_runtime_t* rt);
void lh_watch_init(lh_runtime_t* rt);
void lh_watch_loop(lh_runtime_t* rt, int entering);
void lh_watch_poll(lh_runtime_t* rt);
int lh_watchdog_start(lh_runtime_t* rt);
void lh_watchdog_stop(void);
int lh_watch_stats(lua_State* L);
int lh_watch_limits(lua_State* L);

static inline lua_State* lh_running(lh_runtime_t* rt) {
  return atomic_load_explicit(&rt->running, memory_order_relaxed);
}

/* The watchdog thread sets its hook on the running coroutine. A coroutine
 * that stops running may be collected soon after, so the switch waits
 * while the thread is setting a hook (it checks `running` after raising
 * `arming`, the switch checks `arming` after changing `running`: one of
 * them sees the other). The wait is rare and lasts a lua_sethook. */
static inline void lh_set_running(lh_runtime_t* rt, lua_State* co) {
  atomic_store(&rt->running, co);
  while (atomic_load(&rt->watch.arming))
    sched_yield();
}

static inline void lh_watch_enter(lh_runtime_t* rt) {
  if (!rt->watch.awake)
    lh__watch_wake(rt);
}

/* Marks a C call that may block the loop (a *Sync call, os.execute), so a
 * stall report can name it while it lasts. name: a static string; a name
 * without a dot is a uv function ("fs_read" is uv.fs_read). */
static inline const char* lh_blocking_begin(lh_runtime_t* rt,
                                            const char* name) {
  return atomic_exchange_explicit(&rt->watch.c_call, name,
                                  memory_order_relaxed);
}

static inline void lh_blocking_end(lh_runtime_t* rt, const char* prev) {
  atomic_store_explicit(&rt->watch.c_call, prev, memory_order_relaxed);
}

/* diag.c: what the diagnostics tell about Lua code. */
void lh_diag_init(lua_State* L);
int lh__is_passthrough(lua_State* L);
int lh_push_exported_name(lua_State* L, int fidx);
void lh_push_funcname(lua_State* L, int fidx, const lua_Debug* ar);
void lh_push_where(lua_State* L);
int lh_push_blocking_name(lua_State* L, int c_blocked);

/* coroutine.c: the coroutine library as the runtime needs it, and why a
 * coroutine cannot wait. */
enum {
  LH_UNYIELDABLE_MAIN = 1, /* Lua's main thread */
  LH_UNYIELDABLE_REQUIRE,  /* a module's main chunk */
  LH_UNYIELDABLE_GC,       /* a finalizer */
  LH_UNYIELDABLE_HOOK,     /* a debug hook */
  LH_UNYIELDABLE_C,        /* a C function that called Lua */
  LH_UNYIELDABLE_OTHER
};
int lh_push_unyieldable(lua_State* L, int level);
void lh_coroutine_install(lua_State* L);

/* errtrace.c: --trace-errors. */
void lh_trace_errback(lua_State* L, int fidx, int eidx);
int lh_cb_run_err(lh_runtime_t* rt, lua_State* co, int nargs);

/* runtime.c */
int lh_runtime_init(lh_runtime_t* rt, lua_State* L, const char* progname);
int lh_runtime_run_loop(lh_runtime_t* rt, lua_State* from, uv_run_mode mode);
void lh_runtime_stop(lh_runtime_t* rt, int code);
int lh_runtime_exit(lua_State* L, int code, int close);
int lh_runtime_emit_exit(lh_runtime_t* rt);
void lh_runtime_close(lh_runtime_t* rt);

/* call.c: the gateway. lh_cb_begin returns the coroutine to push the
 * function and its arguments on, or NULL when Lua must not run (exiting).
 * lh_cb_run resumes it, routes any error and drains process.nextTick. */
lua_State* lh_cb_begin(lh_runtime_t* rt);
int lh_cb_run(lh_runtime_t* rt, lua_State* co, int nargs);
int lh_cb_run_from(lh_runtime_t* rt, lua_State* co, int nargs, lua_State* from);
int lh_run_main(lh_runtime_t* rt, int nargs);
/* A run whose errors go to guard (the error on top of co) instead of the
 * uncaught route. If it parks (returns LUA_YIELD), lh_cb_guard routes its
 * later errors to the function push_guard pushes, as fn(err, report). */
typedef void (*lh_guard_fn)(lh_runtime_t* rt, lua_State* co, void* data);
int lh_cb_run_guarded(lh_runtime_t* rt, lua_State* co, int nargs,
                      lh_guard_fn guard, void* data);
void lh_cb_guard(lh_runtime_t* rt, lua_State* co,
                 void (*push_guard)(lua_State* L, void* data), void* data);
void lh_push_report(lua_State* L, int err, lua_State* co);
void lh_drain_ticks(lh_runtime_t* rt, lua_State* from);
int lh_spawn(lua_State* L);
int lh_cb_call_ref(lh_runtime_t* rt, int ref);
void lh_uncaught(lh_runtime_t* rt, lua_State* co);
int lh_is_runtime_thread(lh_runtime_t* rt, lua_State* L);
void lh_pool_clear(lh_runtime_t* rt);
int lh_resume(lua_State* L);

/* shutdown.c */
void lh_shutdown_init(lh_runtime_t* rt);
int lh_shutdown_request(int sig);
int lh_shutdown_seen(void);

/* reaper.c */
void lh_reaper_init(uv_loop_t* loop);

/* workers.c */
int lh_workers_run(int argc, char** argv, int n, const char* progname);

/* signals.c */
void lh_signals_init(lh_runtime_t* rt);
void lh_signals_rearm(void);
void lh_signals_interrupt(lua_State* L);
void lh_signals_clear(lua_State* L);

/* loader.c */
void lh_loader_init(lua_State* L);

/* binding.c */
int luaopen_internal_binding(lua_State* L);
void lh_binding_install_os_exit(lua_State* L);

/* repl.c */
int lh_repl_start(lua_State* L);
void lh_repl_before_output(const char* data, size_t len);
void lh_repl_close(lh_runtime_t* rt);

#endif
