/* luvhost --workers N: a supervisor that runs N copies of the command line,
 * each a worker with its own loop (process.workerId = 1..N); listening
 * sockets use SO_REUSEPORT in workers, so the kernel spreads connections.
 * The supervisor forwards signals, restarts a worker that crashes (with a
 * growing delay), replaces the workers one by one on SIGHUP (a rolling
 * restart: each drains gracefully while the others serve) and exits once
 * every worker is gone after a shutdown. It runs no Lua. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

#define MAX_BACKOFF_MS 30000
#define STABLE_MS 10000 /* up this long: delays start over */
#define ROLL_GAP_MS 500 /* a new worker listens before the next goes */

typedef struct {
  int id;
  uv_process_t proc;
  uv_timer_t restart;
  int running;
  uint64_t started;
  uint64_t backoff_ms;
  int replace; /* retired by a rolling restart: start anew when it ends */
} worker_t;

static struct {
  uv_loop_t* loop;
  const char* progname;
  char* exe;
  char** argv;
  worker_t* w;
  int n;
  int alive;
  int stopping;
  int failed;  /* some worker ended badly */
  int rolling; /* index of the next worker a rolling restart replaces */
  uv_timer_t roll;
  uv_signal_t sig[3];
} sup;

static void start_worker(worker_t* w);
static void roll_next(uv_timer_t* t);

static void on_restart(uv_timer_t* t) {
  worker_t* w = t->data;
  if (!sup.stopping)
    start_worker(w);
}

/* The process handle is reusable now: a worker replaced by a rolling
 * restart starts again at once. */
static void on_proc_closed(uv_handle_t* handle) {
  worker_t* w = handle->data;
  if (!w->replace)
    return;
  w->replace = 0;
  if (sup.stopping)
    return;
  start_worker(w);
  uv_timer_start(&sup.roll, roll_next, ROLL_GAP_MS, 0);
}

static void on_worker_exit(uv_process_t* proc, int64_t status, int signo) {
  worker_t* w = proc->data;
  uint64_t lived = uv_now(sup.loop) - w->started;
  int crashed = status != 0 || signo != 0;
  w->running = 0;
  sup.alive--;
  uv_close((uv_handle_t*)proc, on_proc_closed);
  if (w->replace && !sup.stopping)
    return; /* the new one starts once the handle is closed */
  if (sup.stopping || !crashed) {
    if (crashed && !(sup.stopping && (signo == SIGTERM || signo == SIGINT)))
      sup.failed = 1;
    if (sup.alive == 0)
      uv_stop(sup.loop);
    return;
  }
  if (lived >= STABLE_MS)
    w->backoff_ms = 0;
  w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : 100;
  if (w->backoff_ms > MAX_BACKOFF_MS)
    w->backoff_ms = MAX_BACKOFF_MS;
  if (signo != 0)
    fprintf(stderr,
            "%s: worker %d (pid %d) killed by signal %d; restarting "
            "in %.1f s\n",
            sup.progname, w->id, proc->pid, signo,
            (double)w->backoff_ms / 1000);
  else
    fprintf(stderr,
            "%s: worker %d (pid %d) exited with status %d; "
            "restarting in %.1f s\n",
            sup.progname, w->id, proc->pid, (int)status,
            (double)w->backoff_ms / 1000);
  fflush(stderr);
  uv_timer_start(&w->restart, on_restart, w->backoff_ms, 0);
}

/* The environment with LUVHOST_WORKER_ID set (a new array each time). */
static char** worker_env(int id, char* idvar, size_t size) {
  size_t n = 0, i, k = 0;
  char** env;
  while (environ[n] != NULL)
    n++;
  env = malloc(sizeof(char*) * (n + 2));
  if (env == NULL)
    return NULL;
  for (i = 0; i < n; i++)
    if (strncmp(environ[i], "LUVHOST_WORKER_ID=", 18) != 0)
      env[k++] = environ[i];
  snprintf(idvar, size, "LUVHOST_WORKER_ID=%d", id);
  env[k++] = idvar;
  env[k] = NULL;
  return env;
}

static void start_worker(worker_t* w) {
  uv_process_options_t o;
  uv_stdio_container_t stdio[3];
  char idvar[32];
  int i, r;
  char** env = worker_env(w->id, idvar, sizeof(idvar));
  if (env == NULL) {
    fprintf(stderr, "%s: not enough memory\n", sup.progname);
    exit(EXIT_FAILURE);
  }
  memset(&o, 0, sizeof(o));
  for (i = 0; i < 3; i++) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = i;
  }
  o.file = sup.exe;
  o.args = sup.argv;
  o.env = env;
  o.stdio = stdio;
  o.stdio_count = 3;
  o.exit_cb = on_worker_exit;
  w->proc.data = w;
  r = uv_spawn(sup.loop, &w->proc, &o);
  free(env);
  if (r != 0) {
    fprintf(stderr, "%s: cannot start worker %d: %s\n", sup.progname, w->id,
            uv_strerror(r));
    uv_close((uv_handle_t*)&w->proc, NULL);
    sup.failed = 1;
    if (sup.alive == 0 && sup.stopping)
      uv_stop(sup.loop);
    return;
  }
  w->running = 1;
  w->started = uv_now(sup.loop);
  sup.alive++;
}

/* Rolling restart: the next worker drains (SIGTERM) and a new one takes
 * its place when it is gone; the rest serve meanwhile. */
static void roll_next(uv_timer_t* t) {
  worker_t* w;
  (void)t;
  while (sup.rolling >= 0 && sup.rolling < sup.n && !sup.w[sup.rolling].running)
    sup.rolling++;
  if (sup.rolling < 0 || sup.rolling >= sup.n || sup.stopping) {
    sup.rolling = -1;
    return;
  }
  w = &sup.w[sup.rolling++];
  w->replace = 1;
  uv_process_kill(&w->proc, SIGTERM);
}

/* TERM and INT start a shutdown: workers drain and exit, none restarts.
 * HUP replaces the workers one by one. Other signals go on to them. */
static void on_signal(uv_signal_t* s, int signo) {
  int i;
  (void)s;
  if (signo == SIGHUP) {
    if (sup.rolling < 0 && !sup.stopping) {
      sup.rolling = 0;
      roll_next(NULL);
    }
    return;
  }
  if (signo == SIGTERM || signo == SIGINT) {
    sup.stopping = 1;
    for (i = 0; i < sup.n; i++)
      uv_timer_stop(&sup.w[i].restart);
  }
  for (i = 0; i < sup.n; i++)
    if (sup.w[i].running)
      uv_process_kill(&sup.w[i].proc, signo);
  if (sup.stopping && sup.alive == 0)
    uv_stop(sup.loop);
}

static void close_all(uv_handle_t* h, void* arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

int lh_workers_run(int argc, char** argv, int n, const char* progname) {
  static const int signals[3] = {SIGTERM, SIGINT, SIGHUP};
  char exe[4096];
  size_t size = sizeof(exe);
  int i;
  (void)argc;
  memset(&sup, 0, sizeof(sup));
  sup.loop = uv_default_loop();
  sup.progname = progname;
  sup.argv = argv;
  if (uv_exepath(exe, &size) != 0) {
    fprintf(stderr, "%s: cannot find its own executable\n", progname);
    return EXIT_FAILURE;
  }
  sup.exe = exe;
  sup.n = n > 0 ? n : (int)uv_available_parallelism();
  sup.w = calloc((size_t)sup.n, sizeof(worker_t));
  if (sup.w == NULL)
    return EXIT_FAILURE;
  signal(SIGPIPE, SIG_IGN);
  lh_reaper_init(sup.loop);
  sup.rolling = -1;
  uv_timer_init(sup.loop, &sup.roll);
  uv_unref((uv_handle_t*)&sup.roll);
  for (i = 0; i < 3; i++) {
    uv_signal_init(sup.loop, &sup.sig[i]);
    uv_signal_start(&sup.sig[i], on_signal, signals[i]);
    uv_unref((uv_handle_t*)&sup.sig[i]);
  }
  for (i = 0; i < sup.n; i++) {
    sup.w[i].id = i + 1;
    uv_timer_init(sup.loop, &sup.w[i].restart);
    sup.w[i].restart.data = &sup.w[i];
    uv_unref((uv_handle_t*)&sup.w[i].restart);
    start_worker(&sup.w[i]);
  }
  if (sup.alive > 0)
    uv_run(sup.loop, UV_RUN_DEFAULT);
  uv_walk(sup.loop, close_all, NULL);
  uv_run(sup.loop, UV_RUN_DEFAULT);
  uv_loop_close(sup.loop);
  free(sup.w);
  return sup.failed || sup.alive > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
