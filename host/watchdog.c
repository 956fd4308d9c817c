/* The loop's turns, and the blocking watchdog.
 *
 * The gateway calls lh_watch_enter when the loop calls into Lua: the first
 * such call after a wait marks the loop awake (busy_since = the loop's
 * time, which libuv took when the wait ended). A prepare handle, which
 * runs right before the loop waits for events, marks it waiting again and
 * counts the turn; a coarse clock (no system call, no TSC read) tells if
 * the turn was long enough to look closer. Once process.loopStats has
 * been called, both ends read the precise clock, to sample every turn's
 * delay. No lock, no system call per callback.
 *
 * The watchdog is a thread that looks at busy_since every quarter of the
 * limit. When the loop has been busy longer than --warn-blocking, it sets
 * a hook on the coroutine running now (lua_sethook, which lua.c calls from
 * a signal handler for the same reason); the hook runs in the Lua thread
 * at its next instruction, or when a blocking C call returns, and records
 * the traceback. The report is printed once, when the loop waits again,
 * with the whole duration. A stall that lasts five times the limit (at
 * least a second) gets an early note, so an endless loop is seen too.
 * With --max-blocking the hook raises an error in the blocking code
 * instead. The thread never touches the Lua state but through
 * lua_sethook, and reads only atomics. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime.h"

#define NS_PER_MS 1000000ULL

enum { WANT_CAPTURE = 1, WANT_NOTE = 2, WANT_RAISE = 4 };

static struct {
  lh_runtime_t* rt;
  uv_prepare_t prepare; /* marks each wait: not a Lua handle, never listed */
  int running;          /* the thread runs */
  uv_thread_t thread;
  uv_mutex_t lock; /* guards stop, trace, name */
  uv_cond_t cond;
  int stop;
  _Atomic uint64_t tick_ns; /* how often the thread looks */
  _Atomic uint64_t note_ns; /* a stall this long gets a note first */
  /* Set by the thread, read by the hook. */
  _Atomic uint64_t armed_since; /* the stall the hook is set for */
  _Atomic int want;             /* WANT_*: what the hook has not done yet */
  /* The hook had not run by the next look: a C call blocks (the C
   * function the hook then sees return is the one to name). */
  _Atomic uint64_t in_c_since;
  /* Set by the hook (or, for the note, whichever prints it). */
  _Atomic uint64_t captured_since;   /* the stall trace and name are of */
  _Atomic uint64_t named_since;      /* ... when the capture named a call */
  _Atomic uint64_t recaptured_since; /* the stall captured once more */
  _Atomic uint64_t noted_since;      /* the stall that got its note */
  _Atomic uint64_t raised_since;     /* the stall that got an error */
  _Atomic int raises;                /* errors raised in that stall */
  char* trace;                       /* traceback where the hook ran */
  char* name; /* the blocking call (fs.readFileSync), or NULL */
} wd;

static uint64_t ms_of(uint64_t ns) {
  return (ns + NS_PER_MS / 2) / NS_PER_MS;
}

/* The monotonic clock at its coarse resolution (a few ms), in ns: the
 * cheapest read there is. */
static uint64_t coarse_ns(void) {
  struct timespec t;
  if (clock_gettime(CLOCK_MONOTONIC_COARSE, &t) != 0)
    return uv_hrtime();
  return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

/* Statistics --------------------------------------------------------- */

/* Bucket of a delay in µs: exact below 16, then 8 per power of two. */
static int bucket_of(uint64_t us) {
  int e, b;
  if (us < 16)
    return (int)us;
  e = 60 - __builtin_clzll(us); /* us >> e is in [8, 16) */
  b = 16 + (e - 1) * 8 + (int)((us >> e) & 7);
  return b < LH_DELAY_BUCKETS ? b : LH_DELAY_BUCKETS - 1;
}

/* The largest delay (µs) that falls in bucket b. */
static uint64_t bucket_top(int b) {
  int e;
  if (b < 16)
    return (uint64_t)b;
  e = (b - 16) / 8 + 1;
  return ((uint64_t)(8 + (b - 16) % 8 + 1) << e) - 1;
}

static void stats_reset(lh_watch_t* w, uint64_t now) {
  w->stats_from = now;
  w->turns = w->busy_ns = w->idle_ns = w->stalls = 0;
  w->samples = w->delay_sum = w->delay_max = 0;
  w->delay_min = UINT64_MAX;
  memset(w->delay_hist, 0, sizeof(w->delay_hist));
}

static void sample(lh_watch_t* w, uint64_t busy_ns) {
  uint64_t us = busy_ns / 1000;
  w->samples++;
  w->delay_sum += us;
  if (us > w->delay_max)
    w->delay_max = us;
  if (us < w->delay_min)
    w->delay_min = us;
  w->delay_hist[bucket_of(us)]++;
}

/* The delay (ms) below which a fraction q of the samples lie. */
static double percentile(const lh_watch_t* w, double q) {
  uint64_t want = (uint64_t)(q * (double)w->samples + 0.999999);
  uint64_t seen = 0;
  uint64_t top;
  int b;
  if (w->samples == 0)
    return 0;
  if (want < 1)
    want = 1;
  for (b = 0; b < LH_DELAY_BUCKETS; b++) {
    seen += w->delay_hist[b];
    if (seen >= want)
      break;
  }
  top = b < LH_DELAY_BUCKETS ? bucket_top(b) : w->delay_max;
  if (top > w->delay_max)
    top = w->delay_max;
  if (top < w->delay_min)
    top = w->delay_min;
  return (double)top / 1000.0;
}

static void set_number(lua_State* L, const char* field, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, field);
}

/* binding.loop_stats() -> table; the counting starts again. The first
 * call starts the measuring: before it, only turns are counted. */
int lh_watch_stats(lua_State* L) {
  lh_watch_t* w = &lh_runtime(L)->watch;
  uint64_t now = uv_hrtime();
  uint64_t idle = w->idle_ns, busy = 0;
  if (!w->measuring) {
    w->measuring = 1;
    idle = 0;
    w->stats_from = now;
    if (w->in_loop && w->awake)
      w->wake_ns = now; /* this turn counts from here */
  }
  /* the work or the wait in progress counts up to now */
  if (w->in_loop && w->awake && now > w->wake_ns)
    busy = now - w->wake_ns;
  else if (w->in_loop && !w->awake && now > w->idle_from)
    idle += now - w->idle_from;
  lua_createtable(L, 0, 10);
  lua_pushinteger(L, (lua_Integer)w->turns);
  lua_setfield(L, -2, "turns");
  set_number(L, "elapsed", (double)(now - w->stats_from) / 1e6);
  set_number(L, "luaTime", (double)(w->busy_ns + busy) / 1e6);
  set_number(L, "idleTime", (double)idle / 1e6);
  lua_pushinteger(L, (lua_Integer)w->stalls);
  lua_setfield(L, -2, "stalls");
  lua_pushinteger(L, (lua_Integer)w->samples);
  lua_setfield(L, -2, "samples");
  set_number(L, "minDelay", w->samples ? (double)w->delay_min / 1000.0 : 0.0);
  set_number(L, "maxDelay", (double)w->delay_max / 1000.0);
  set_number(
      L, "meanDelay",
      w->samples ? (double)w->delay_sum / (double)w->samples / 1000.0 : 0.0);
  set_number(L, "p50Delay", percentile(w, 0.50));
  set_number(L, "p99Delay", percentile(w, 0.99));
  stats_reset(w, now);
  if (w->in_loop && !w->awake)
    w->idle_from = now;
  else if (w->in_loop)
    w->busy_ns = 0 - busy; /* what this turn did before now is counted */
  return 1;
}

/* Reports ------------------------------------------------------------ */

static void take_capture(uint64_t since, char** trace, char** name) {
  *trace = *name = NULL;
  if (!wd.running)
    return;
  uv_mutex_lock(&wd.lock);
  if (atomic_load(&wd.captured_since) == since) {
    *trace = wd.trace;
    *name = wd.name;
    wd.trace = wd.name = NULL;
  }
  uv_mutex_unlock(&wd.lock);
}

/* "luvhost: event loop blocked for 230 ms[what][ in name]" and the
 * traceback. */
static void print_report(lh_runtime_t* rt, uint64_t ms, const char* what,
                         const char* name, const char* trace) {
  lh_repl_before_output("\n", 1); /* an open prompt steps aside */
  fflush(stdout);
  fprintf(stderr, "%s: event loop blocked for %llu ms%s", rt->progname,
          (unsigned long long)ms, what);
  if (name != NULL)
    fprintf(stderr, " in %s", name);
  if (trace != NULL)
    fprintf(stderr, "\n%s\n", trace);
  else
    fprintf(stderr,
            " (no traceback: no Lua code ran while the watchdog "
            "looked)\n");
  fflush(stderr);
}

/* The thread's note on a long stall in a C call (the hook cannot run
 * until it returns): its name if it is a marked one. (From the thread: it
 * leaves the prompt alone.) */
static void print_c_note(lh_runtime_t* rt, uint64_t ms, const char* call) {
  int dotted = call != NULL && strpbrk(call, ".:") != NULL;
  fflush(stdout);
  if (call != NULL)
    fprintf(stderr,
            "%s: event loop blocked for %llu ms so far (still blocked) "
            "in %s%s\n",
            rt->progname, (unsigned long long)ms, dotted ? "" : "uv.", call);
  else
    fprintf(stderr,
            "%s: event loop blocked for %llu ms so far (still blocked) "
            "in a C function\n",
            rt->progname, (unsigned long long)ms);
  fflush(stderr);
}

/* The loop is about to wait (or to leave uv_run): the busy time since it
 * woke ends; a stall gets its report. */
static void rest(lh_runtime_t* rt) {
  lh_watch_t* w = &rt->watch;
  uint64_t since = w->wake_ns;
  uint64_t stall = atomic_load_explicit(&w->busy_since, memory_order_relaxed);
  uint64_t warn = atomic_load_explicit(&w->warn_ns, memory_order_relaxed);
  uint64_t now, busy;
  char *trace, *name;
  atomic_store_explicit(&w->busy_since, 0, memory_order_release);
  /* a marked call that raised did not unmark itself */
  atomic_store_explicit(&w->c_call, NULL, memory_order_relaxed);
  w->awake = 0;
  if (w->measuring) {
    now = uv_hrtime();
    busy = now > since ? now - since : 0;
    w->idle_from = now;
    w->busy_ns += busy;
    sample(w, busy);
  } else {
    /* a short turn (the coarse clock may lag by a few ms): done */
    if (warn == 0 || coarse_ns() + 10 * NS_PER_MS < since + warn)
      return;
    now = uv_hrtime();
    busy = now > since ? now - since : 0;
  }
  if (warn == 0 || busy < warn)
    return;
  w->stalls++;
  take_capture(stall, &trace, &name);
  /* --max-blocking raised an error about it already */
  if (!(w->max_ns && atomic_load(&wd.raised_since) == stall))
    print_report(rt, ms_of(busy), "", name, trace);
  free(trace);
  free(name);
}

void lh__watch_wake(lh_runtime_t* rt) {
  lh_watch_t* w = &rt->watch;
  uint64_t now;
  w->awake = 1;
  if (!w->in_loop)
    return;
  if (w->measuring) {
    now = uv_hrtime();
    if (now > w->idle_from)
      w->idle_ns += now - w->idle_from;
  } else {
    /* libuv's time of the loop: taken when the wait ended */
    now = uv_now(rt->loop) * NS_PER_MS + 1;
  }
  w->wake_ns = now;
  atomic_store_explicit(&w->busy_since, now, memory_order_release);
}

/* A user's prepare callback ran Lua after ours: the loop waits next. */
void lh_watch_poll(lh_runtime_t* rt) {
  if (rt->watch.awake && rt->watch.in_loop)
    rest(rt);
}

static void on_prepare(uv_prepare_t* handle) {
  lh_runtime_t* rt = wd.rt;
  (void)handle;
  rt->watch.turns++;
  if (rt->watch.awake)
    rest(rt);
}

/* uv_run starts (entering) or returns. */
void lh_watch_loop(lh_runtime_t* rt, int entering) {
  lh_watch_t* w = &rt->watch;
  if (entering) {
    w->in_loop = 1;
    w->awake = 0;
    if (w->measuring)
      w->idle_from = uv_hrtime();
    return;
  }
  if (w->awake) {
    rest(rt);
  } else if (w->measuring) {
    uint64_t now = uv_hrtime();
    if (now > w->idle_from)
      w->idle_ns += now - w->idle_from;
  }
  w->in_loop = 0;
  w->awake = 0;
}

void lh_watch_init(lh_runtime_t* rt) {
  wd.rt = rt;
  stats_reset(&rt->watch, uv_hrtime());
  atomic_init(&rt->watch.busy_since, 0);
  atomic_init(&rt->watch.c_call, NULL);
  atomic_init(&rt->watch.arming, 0);
  if (uv_prepare_init(rt->loop, &wd.prepare) == 0) {
    wd.prepare.data = NULL;
    uv_prepare_start(&wd.prepare, on_prepare);
    uv_unref((uv_handle_t*)&wd.prepare); /* it keeps nothing alive */
  }
}

/* The hook: runs in the Lua thread ----------------------------------- */

/* Records where the Lua thread is now, for the stall that began at since. */
static void capture(lua_State* L, uint64_t since, int in_c) {
  const char* tb;
  char *trace, *name = NULL;
  luaL_traceback(L, L, NULL, 0);
  tb = lua_tostring(L, -1);
  trace = tb ? strdup(tb) : NULL;
  if (lh_push_blocking_name(L, in_c)) {
    const char* s = lua_tostring(L, -1);
    name = s ? strdup(s) : NULL;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  uv_mutex_lock(&wd.lock);
  free(wd.trace);
  free(wd.name);
  wd.trace = trace;
  wd.name = name;
  if (name != NULL)
    atomic_store(&wd.named_since, since);
  atomic_store(&wd.captured_since, since);
  uv_mutex_unlock(&wd.lock);
}

static void watch_hook(lua_State* L, lua_Debug* ar) {
  lh_runtime_t* rt = wd.rt;
  uint64_t since = atomic_load(&rt->watch.busy_since);
  uint64_t now, expected, in_c_since;
  int want;
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (since == 0 || atomic_load(&wd.armed_since) != since)
    return; /* set for a stall that is over */
  want = atomic_exchange(&wd.want, 0);
  now = uv_hrtime();
  in_c_since = atomic_exchange(&wd.in_c_since, 0);
  if (want & (WANT_CAPTURE | WANT_NOTE))
    capture(L, since, in_c_since == since);
  expected = atomic_load(&wd.noted_since);
  if ((want & WANT_NOTE) && expected != since &&
      atomic_compare_exchange_strong(&wd.noted_since, &expected, since)) {
    char *trace, *name;
    uv_mutex_lock(&wd.lock);
    trace = wd.trace ? strdup(wd.trace) : NULL;
    name = wd.name ? strdup(wd.name) : NULL;
    uv_mutex_unlock(&wd.lock);
    print_report(rt, ms_of(now - since), " so far (still blocked)", name,
                 trace);
    free(trace);
    free(name);
  }
  if (want & WANT_RAISE) {
    if (atomic_load(&wd.raised_since) != since) {
      atomic_store(&wd.raises, 0);
      atomic_store(&wd.raised_since, since);
    }
    atomic_fetch_add(&wd.raises, 1);
    lh_push_where(L);
    lua_pushfstring(L,
                    "blocked the event loop for more than %d ms "
                    "(--max-blocking)",
                    (int)ms_of(rt->watch.max_ns));
    lua_concat(L, 2);
    lua_error(L);
  }
}

/* The thread --------------------------------------------------------- */

static void arm(lh_runtime_t* rt, uint64_t since, int want) {
  lua_State* L;
  lua_Hook current;
  /* While `arming` is up, the coroutine read here stays alive: the loop
   * thread waits for it to come down before it runs anything else (see
   * lh_set_running). */
  atomic_store(&rt->watch.arming, 1);
  L = atomic_load(&rt->running);
  if (L == NULL || atomic_load(&rt->watch.busy_since) != since)
    goto done; /* between callbacks, or over: the next look tries again */
  current = lua_gethook(L);
  if (current != NULL && current != watch_hook)
    goto done; /* a debugger's hook, or Ctrl-C's: leave it */
  if (atomic_exchange(&wd.armed_since, since) != since)
    atomic_store(&wd.want, 0); /* asked for a stall that is over */
  else if (atomic_load(&wd.want) != 0)
    atomic_store(&wd.in_c_since, since); /* not done since the last look */
  atomic_fetch_or(&wd.want, want);
  lua_sethook(L, watch_hook, LUA_MASKCOUNT | LUA_MASKRET, 1);
done:
  atomic_store(&rt->watch.arming, 0);
}

static void look(lh_runtime_t* rt, uint64_t now, uint64_t* note_armed) {
  lh_watch_t* w = &rt->watch;
  uint64_t since = atomic_load(&w->busy_since);
  uint64_t elapsed, expected;
  int want = 0;
  if (since == 0 || now <= since)
    return;
  elapsed = now - since;
  if (w->warn_ns && elapsed >= w->warn_ns) {
    if (atomic_load(&wd.captured_since) != since) {
      want |= WANT_CAPTURE;
    } else if (atomic_load(&wd.named_since) != since &&
               atomic_load(&w->c_call) != NULL &&
               (atomic_load(&wd.recaptured_since) != since ||
                atomic_load(&wd.want) != 0)) {
      /* Taken in Lua code before a blocking call began (slow code, or a
       * slow machine): once more, to name the call (asking again while
       * the hook waits tells it that a C call blocks). */
      atomic_store(&wd.recaptured_since, since);
      want |= WANT_CAPTURE;
    }
    expected = atomic_load(&wd.noted_since);
    if (elapsed >= wd.note_ns && expected != since) {
      if (*note_armed == since) {
        /* The hook did not run since the last look: a C call blocks. The
         * note names the call, without a traceback. */
        if (atomic_compare_exchange_strong(&wd.noted_since, &expected, since))
          print_c_note(rt, ms_of(elapsed), atomic_load(&w->c_call));
      } else {
        want |= WANT_NOTE;
        *note_armed = since;
      }
    }
  }
  if (w->max_ns) {
    uint64_t raises = atomic_load(&wd.raised_since) == since
                          ? (uint64_t)atomic_load(&wd.raises)
                          : 0;
    if (elapsed >= w->max_ns * (raises + 1))
      want |= WANT_RAISE;
  }
  if (want)
    arm(rt, since, want);
}

static void watch_thread(void* arg) {
  lh_runtime_t* rt = arg;
  uint64_t note_armed = 0;
  uv_mutex_lock(&wd.lock);
  while (!wd.stop) {
    uv_cond_timedwait(&wd.cond, &wd.lock, wd.tick_ns);
    if (wd.stop)
      break;
    uv_mutex_unlock(&wd.lock);
    look(rt, uv_hrtime(), &note_armed);
    uv_mutex_lock(&wd.lock);
  }
  uv_mutex_unlock(&wd.lock);
}

/* How often the thread looks: a quarter of the smaller limit, from 1 to
 * 100 ms. */
static void set_timing(const lh_watch_t* w) {
  uint64_t warn = atomic_load(&w->warn_ns), max = atomic_load(&w->max_ns);
  uint64_t limit = warn, tick, note;
  if (limit == 0 || (max && max < limit))
    limit = max;
  tick = limit / 4;
  if (tick > 100 * NS_PER_MS)
    tick = 100 * NS_PER_MS;
  if (tick < NS_PER_MS)
    tick = NS_PER_MS;
  note = 5 * warn;
  if (note < 1000 * NS_PER_MS)
    note = 1000 * NS_PER_MS;
  atomic_store(&wd.tick_ns, tick);
  atomic_store(&wd.note_ns, note);
}

/* Starts the thread if a limit is set. Returns 0, or a libuv error. */
int lh_watchdog_start(lh_runtime_t* rt) {
  lh_watch_t* w = &rt->watch;
  int r;
  if (wd.running || (w->warn_ns == 0 && w->max_ns == 0))
    return 0;
  set_timing(w);
  if ((r = uv_mutex_init(&wd.lock)) != 0)
    return r;
  if ((r = uv_cond_init(&wd.cond)) != 0) {
    uv_mutex_destroy(&wd.lock);
    return r;
  }
  wd.stop = 0;
  if ((r = uv_thread_create(&wd.thread, watch_thread, rt)) != 0) {
    uv_cond_destroy(&wd.cond);
    uv_mutex_destroy(&wd.lock);
    return r;
  }
  wd.running = 1;
  return 0;
}

/* binding.blocking_limits([warn_ms [, max_ms]]) -> warn_ms, max_ms: the
 * limits before the call; a nil argument keeps that one, 0 turns it off. */
int lh_watch_limits(lua_State* L) {
  lh_runtime_t* rt = lh_runtime(L);
  lh_watch_t* w = &rt->watch;
  uint64_t warn = atomic_load(&w->warn_ns), max = atomic_load(&w->max_ns);
  int i, r;
  for (i = 1; i <= 2; i++) {
    lua_Integer ms;
    if (lua_isnoneornil(L, i))
      continue;
    ms = luaL_checkinteger(L, i);
    luaL_argcheck(L, ms >= 0 && ms <= 86400000, i, "out of range");
    atomic_store(i == 1 ? &w->warn_ns : &w->max_ns, (uint64_t)ms * NS_PER_MS);
  }
  if (wd.running) {
    uv_mutex_lock(&wd.lock);
    set_timing(w);
    uv_mutex_unlock(&wd.lock);
  } else if ((r = lh_watchdog_start(rt)) != 0) {
    return luaL_error(L, "cannot start the watchdog: %s", uv_strerror(r));
  }
  lua_pushinteger(L, (lua_Integer)ms_of(warn));
  lua_pushinteger(L, (lua_Integer)ms_of(max));
  return 2;
}

/* Stops and joins the thread (before the Lua state closes). */
void lh_watchdog_stop(void) {
  if (!wd.running)
    return;
  uv_mutex_lock(&wd.lock);
  wd.stop = 1;
  uv_cond_signal(&wd.cond);
  uv_mutex_unlock(&wd.lock);
  uv_thread_join(&wd.thread);
  uv_cond_destroy(&wd.cond);
  uv_mutex_destroy(&wd.lock);
  wd.running = 0;
  free(wd.trace);
  free(wd.name);
  wd.trace = wd.name = NULL;
}
