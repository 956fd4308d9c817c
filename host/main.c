/* luvhost's command line: the options and behaviour of the standalone lua
 * interpreter (lua.c), plus the event loop. The argument scan is a pure
 * pass; everything else runs in pmain under lua_pcall, and main() only
 * reports and picks the exit status. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

#define PROGNAME "luvhost"

enum {
  ARG_ERROR = 1,
  ARG_I = 2,       /* -i */
  ARG_V = 4,       /* -v (and -i) */
  ARG_E = 8,       /* -e */
  ARG_NOENV = 16,  /* -E */
  ARG_HELP = 32,   /* --help */
  ARG_VERSION = 64 /* --version */
};

typedef enum {
  STEP_INIT_STRING, /* LUA_INIT holding code */
  STEP_INIT_FILE,   /* LUA_INIT holding @file */
  STEP_EXEC,        /* -e stat */
  STEP_LIB,         /* -l mod, -l g=mod */
  STEP_WARN,        /* -W */
  STEP_SCRIPT,      /* the script (or '-') with its arguments */
  STEP_STDIN,       /* no script and stdin is not a terminal */
  STEP_REPL         /* -i, or no script on a terminal */
} step_kind_t;

typedef struct {
  step_kind_t kind;
  const char* text;
  const char* name; /* chunk name for LUA_INIT */
} step_t;

typedef struct {
  int n;
  char** argv;
  int script;
  step_t v[1]; /* n entries */
} steps_t;

static const char* progname = PROGNAME;

/* luvhost's options that take a value, and what the value must be. */
static const struct {
  const char* name;
  const char* want;
} value_options[] = {
    {"--workers", "a number of processes from 0 to 1024, or auto"},
    {"--shutdown-timeout", "seconds, 0 or more"},
    {"--warn-blocking", "milliseconds from 0 to 86400000"},
    {"--max-blocking", "milliseconds from 0 to 86400000"},
};

/* The entry of value_options that arg names (--name or --name=...). */
static int value_option_of(const char* arg) {
  size_t i, n;
  for (i = 0; i < sizeof value_options / sizeof value_options[0]; i++) {
    n = strlen(value_options[i].name);
    if (strncmp(arg, value_options[i].name, n) == 0 &&
        (arg[n] == '\0' || arg[n] == '='))
      return (int)i;
  }
  return -1;
}

static void print_usage(const char* badoption) {
  FILE* out = badoption ? stderr : stdout;
  int v;
  if (badoption != NULL) {
    if (badoption[0] == '-' && (badoption[1] == 'e' || badoption[1] == 'l'))
      fprintf(out, "%s: '%s' needs argument\n", progname, badoption);
    else if ((v = value_option_of(badoption)) >= 0)
      fprintf(out, "%s: '%s' needs a value: %s\n", progname, badoption,
              value_options[v].want);
    else
      fprintf(out, "%s: unrecognized option '%s'\n", progname, badoption);
  }
  fprintf(out,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -l g=mod  require library 'mod' into global 'g'\n"
          "  -v        show version information\n"
          "  -E        ignore environment variables\n"
          "  -W        turn warnings on\n"
          "  --workers N          run N worker processes sharing the ports "
          "(auto: one per CPU)\n"
          "  --shutdown-timeout S seconds a graceful shutdown may take "
          "(default 10)\n"
          "  --warn-blocking=MS   report Lua code that blocks the event "
          "loop longer\n"
          "                       (default 200; 0 turns it off)\n"
          "  --max-blocking=MS    raise an error in code that blocks it "
          "longer\n"
          "  --why-alive          after the script, list what keeps the "
          "loop alive\n"
          "  --trace-errors       report errors passed to callbacks that "
          "never read them\n"
          "  --        stop handling options\n"
          "  -         stop handling options and execute stdin\n"
          "  --version print luvhost's version and exit\n"
          "  --help    print this help and exit\n"
          "Without a script, luvhost reads stdin: an interactive prompt on "
          "a terminal,\na script otherwise. The event loop runs until "
          "nothing is left to wait for.\n",
          progname);
  fflush(out);
}

static void print_version(void) {
  printf("%s\nluvhost %s (libuv %s)\n", LUA_COPYRIGHT, LH_VERSION,
         uv_version_string());
  fflush(stdout);
}

static int long_option(const char* opt) {
  if (strcmp(opt, "--help") == 0)
    return ARG_HELP;
  if (strcmp(opt, "--version") == 0)
    return ARG_VERSION;
  return 0;
}

/* luvhost's own long options. */
typedef struct {
  int expose_internals;
  int workers; /* --workers N: -1 none, 0 one per CPU */
  int64_t shutdown_timeout_ms;
  int64_t warn_blocking_ms; /* -1: not given */
  int64_t max_blocking_ms;  /* -1: not given */
  int why_alive;
  int trace_errors;
} host_opts_t;

static void opts_init(host_opts_t* opts) {
  memset(opts, 0, sizeof(*opts));
  opts->workers = -1;
  opts->shutdown_timeout_ms = -1;
  opts->warn_blocking_ms = -1;
  opts->max_blocking_ms = -1;
}

/* Milliseconds: a whole number from 0 to a day; -1 if v is not one. */
static int64_t parse_ms(const char* v) {
  char* end;
  long long ms;
  if (v == NULL || v[0] < '0' || v[0] > '9')
    return -1;
  ms = strtoll(v, &end, 10);
  if (*end != '\0' || ms < 0 || ms > 86400000LL)
    return -1;
  return (int64_t)ms;
}

/* --name=value or --name value; returns the value or NULL. */
static const char* option_value(char** argv, int* i, const char* name) {
  size_t n = strlen(name);
  const char* a = argv[*i];
  if (strncmp(a, name, n) != 0)
    return NULL;
  if (a[n] == '=')
    return a + n + 1;
  if (a[n] == '\0' && argv[*i + 1] != NULL)
    return argv[++*i];
  return NULL;
}

static int host_option(char** argv, int* i, host_opts_t* opts) {
  const char* v;
  char* end;
  if (strcmp(argv[*i], "--expose-internals") == 0) {
    opts->expose_internals = 1;
    return 1;
  }
  if ((v = option_value(argv, i, "--workers")) != NULL) {
    long n = strcmp(v, "auto") == 0 ? 0 : strtol(v, &end, 10);
    if (strcmp(v, "auto") != 0 && (*end != '\0' || n < 0 || n > 1024))
      return 0;
    opts->workers = (int)n;
    return 1;
  }
  if (strcmp(argv[*i], "--why-alive") == 0) {
    opts->why_alive = 1;
    return 1;
  }
  if (strcmp(argv[*i], "--trace-errors") == 0) {
    opts->trace_errors = 1;
    return 1;
  }
  if ((v = option_value(argv, i, "--warn-blocking")) != NULL)
    return (opts->warn_blocking_ms = parse_ms(v)) >= 0;
  if ((v = option_value(argv, i, "--max-blocking")) != NULL)
    return (opts->max_blocking_ms = parse_ms(v)) >= 0;
  if ((v = option_value(argv, i, "--shutdown-timeout")) != NULL) {
    double sec = strtod(v, &end);
    if (*end != '\0' || end == v || sec < 0 || sec > 86400 * 365)
      return 0;
    opts->shutdown_timeout_ms = (int64_t)(sec * 1000);
    return 1;
  }
  return 0;
}

/* Scans the options (lua.c's rules). *first gets the script's index, or 0
 * when there is none; on an error it gets the offending argument's index. */
static int scan_args(char** argv, int* first, host_opts_t* opts) {
  int args = 0;
  int i;
  for (i = 1; argv[i] != NULL; i++) {
    const char* a = argv[i];
    *first = i;
    if (a[0] != '-')
      return args; /* the script */
    switch (a[1]) {
      case '\0': /* '-': the script is stdin */
        return args;
      case '-':
        if (a[2] == '\0') { /* '--' */
          *first = argv[i + 1] != NULL ? i + 1 : 0;
          return args;
        }
        if (!host_option(argv, &i, opts)) {
          int flag = long_option(a);
          if (flag == 0)
            return ARG_ERROR;
          args |= flag;
        }
        break;
      case 'E':
        if (a[2] != '\0')
          return ARG_ERROR;
        args |= ARG_NOENV;
        break;
      case 'W':
        if (a[2] != '\0')
          return ARG_ERROR;
        break;
      case 'i':
      case 'v':
        if (a[2] != '\0')
          return ARG_ERROR;
        args |= a[1] == 'i' ? ARG_I | ARG_V : ARG_V;
        break;
      case 'e':
      case 'l':
        if (a[1] == 'e')
          args |= ARG_E;
        if (a[2] == '\0') { /* the argument is the next word */
          if (argv[i + 1] == NULL || argv[i + 1][0] == '-')
            return ARG_ERROR;
          i++;
        }
        break;
      default:
        return ARG_ERROR;
    }
  }
  *first = 0;
  return args;
}

/* arg: the script at 0, its arguments after it, the interpreter and the
 * options before it at negative indices. */
static void create_arg_table(lua_State* L, char** argv, int argc, int script) {
  int i;
  int base = script > 0 ? script : 0;
  lua_createtable(L, argc - base - 1 > 0 ? argc - base - 1 : 0, base + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - base);
  }
  lua_setglobal(L, "arg");
}

static void report_load_error(lua_State* L) {
  const char* msg = lua_tostring(L, -1);
  fflush(stdout);
  fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(error object)");
  fflush(stderr);
  lua_pop(L, 1);
  lh_runtime_stop(lh_runtime(L), 1);
}

static int push_script_args(lua_State* L) {
  int i, n;
  if (lua_getglobal(L, "arg") != LUA_TTABLE)
    luaL_error(L, "'arg' is not a table");
  n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = 1; i <= n; i++)
    lua_rawgeti(L, -i, i);
  lua_remove(L, -i); /* the arg table */
  return n;
}

/* Pushes the step's function and arguments. Returns the number of
 * arguments, -1 when there is nothing to call, -2 after a load error. */
static int push_step(lua_State* L, const steps_t* s, const step_t* st,
                     int* nresults) {
  int status = LUA_OK;
  *nresults = 0;
  switch (st->kind) {
    case STEP_INIT_STRING:
      status = luaL_loadbuffer(L, st->text, strlen(st->text), st->name);
      break;
    case STEP_INIT_FILE:
      status = luaL_loadfile(L, st->text + 1);
      break;
    case STEP_EXEC:
      status =
          luaL_loadbuffer(L, st->text, strlen(st->text), "=(command line)");
      break;
    case STEP_LIB: {
      const char* eq = strchr(st->text, '=');
      lua_getglobal(L, "require");
      lua_pushstring(L, eq ? eq + 1 : st->text);
      *nresults = 1;
      return 1;
    }
    case STEP_WARN:
      lua_warning(L, "@on", 0);
      return -1;
    case STEP_SCRIPT: {
      const char* fname = s->argv[s->script];
      if (strcmp(fname, "-") == 0 && strcmp(s->argv[s->script - 1], "--"))
        fname = NULL; /* stdin */
      status = luaL_loadfile(L, fname);
      if (status == LUA_OK)
        return push_script_args(L);
      break;
    }
    case STEP_STDIN:
      status = luaL_loadfile(L, NULL);
      break;
    case STEP_REPL:
      lh_repl_start(L);
      return -1;
  }
  if (status != LUA_OK) {
    report_load_error(L);
    return -2;
  }
  return 0;
}

static void finish_step(lua_State* L, const step_t* st) {
  if (st->kind == STEP_LIB) { /* globname = require(modname) */
    const char* eq = strchr(st->text, '=');
    lua_pushglobaltable(L);
    if (eq != NULL)
      lua_pushlstring(L, st->text, (size_t)(eq - st->text));
    else
      lua_pushstring(L, st->text);
    lua_pushvalue(L, -3);
    lua_settable(L, -3);
    lua_pop(L, 2);
  }
}

/* A limit from the environment, or -1 (a bad value is said and ignored). */
static int64_t env_ms(const char* name) {
  const char* v = getenv(name);
  int64_t ms;
  if (v == NULL || v[0] == '\0')
    return -1;
  ms = parse_ms(v);
  if (ms < 0)
    fprintf(stderr, "%s: ignoring %s=%s (not a number of milliseconds)\n",
            progname, name, v);
  return ms;
}

/* The watchdog's limits: the option, else the environment, else 200 ms
 * for --warn-blocking in development (LUVHOST_ENV is not "production"). */
static void start_watchdog(lh_runtime_t* rt, const host_opts_t* opts) {
  int64_t warn = opts->warn_blocking_ms;
  int64_t max = opts->max_blocking_ms;
  const char* env = getenv("LUVHOST_ENV");
  int r;
  if (warn < 0)
    warn = env_ms("LUVHOST_WARN_BLOCKING");
  if (warn < 0)
    warn = env != NULL && strcmp(env, "production") == 0 ? 0 : 200;
  if (max < 0)
    max = env_ms("LUVHOST_MAX_BLOCKING");
  rt->watch.warn_ns = (uint64_t)warn * 1000000;
  rt->watch.max_ns = max > 0 ? (uint64_t)max * 1000000 : 0;
  if ((r = lh_watchdog_start(rt)) != 0)
    fprintf(stderr, "%s: warning: no blocking watchdog: %s\n", progname,
            uv_strerror(r));
}

/* --why-alive: the report once the command line's chunks are done. */
static void report_alive(lua_State* L) {
  lh_runtime_t* rt = lh_runtime(L);
  if (!rt->why_alive || rt->why_alive_ref == LUA_NOREF || rt->exiting)
    return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->why_alive_ref);
  lua_pushliteral(L, "after the main chunk");
  lua_call(L, 1, 0);
}

/* The main coroutine's body: the steps in order. A step may wait (yield);
 * lua_callk's continuation picks up after it. */
static int run_steps_k(lua_State* L, int status, lua_KContext ctx) {
  const steps_t* s = lua_touserdata(L, lua_upvalueindex(1));
  int i = (int)ctx;
  (void)status;
  if (i > 0)
    finish_step(L, &s->v[i - 1]);
  for (; i < s->n; i++) {
    int nresults;
    int nargs = push_step(L, s, &s->v[i], &nresults);
    if (nargs == -2)
      return 0;
    if (nargs == -1)
      continue;
    lua_callk(L, nargs, nresults, i + 1, run_steps_k);
    finish_step(L, &s->v[i]);
  }
  report_alive(L);
  return 0;
}

static int run_steps(lua_State* L) {
  return run_steps_k(L, LUA_OK, 0);
}

static void add_step(steps_t* s, step_kind_t kind, const char* text,
                     const char* name) {
  s->v[s->n].kind = kind;
  s->v[s->n].text = text;
  s->v[s->n].name = name;
  s->n++;
}

static void add_init_step(steps_t* s) {
  const char* name = "=LUA_INIT_" LUA_VERSION_MAJOR "_" LUA_VERSION_MINOR;
  const char* init = getenv(name + 1);
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init == NULL)
    return;
  add_step(s, init[0] == '@' ? STEP_INIT_FILE : STEP_INIT_STRING, init, name);
}

/* Pushes a userdata with the steps the command line asks for. */
static steps_t* build_steps(lua_State* L, char** argv, int argc, int script,
                            int args) {
  int i, last = script > 0 ? script : argc;
  steps_t* s = lua_newuserdatauv(
      L, sizeof(steps_t) + sizeof(step_t) * (size_t)(argc + 4), 0);
  s->n = 0;
  s->argv = argv;
  s->script = script;
  if (!(args & ARG_NOENV))
    add_init_step(s);
  for (i = 1; i < last; i++) {
    const char* a = argv[i];
    if (a[0] != '-')
      continue;
    if (a[1] == 'e' || a[1] == 'l') {
      const char* value = a[2] != '\0' ? a + 2 : argv[++i];
      add_step(s, a[1] == 'e' ? STEP_EXEC : STEP_LIB, value, NULL);
    } else if (a[1] == 'W') {
      add_step(s, STEP_WARN, NULL, NULL);
    }
  }
  if (script > 0)
    add_step(s, STEP_SCRIPT, NULL, NULL);
  if (args & ARG_I) {
    add_step(s, STEP_REPL, NULL, NULL);
  } else if (script == 0 && !(args & (ARG_E | ARG_V))) {
    if (isatty(STDIN_FILENO)) {
      print_version();
      add_step(s, STEP_REPL, NULL, NULL);
    } else {
      add_step(s, STEP_STDIN, NULL, NULL);
    }
  }
  return s;
}

static int run_bootstrap(lua_State* L, lh_runtime_t* rt) {
  int expose = rt->expose_internals;
  int status;
  rt->expose_internals = 1;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "internal.bootstrap");
  status = lua_pcall(L, 1, 0, 0);
  rt->expose_internals = expose;
  if (status != LUA_OK) {
    fprintf(stderr, "%s: bootstrap failed: %s\n", progname,
            lua_tostring(L, -1));
    return 0;
  }
  return 1;
}

static int pmain(lua_State* L) {
  int argc = (int)lua_tointeger(L, 1);
  char** argv = lua_touserdata(L, 2);
  lh_runtime_t* rt = lh_runtime(L);
  int script = 0;
  host_opts_t opts;
  int args;
  opts_init(&opts);
  args = scan_args(argv, &script, &opts);
  rt->expose_internals = opts.expose_internals;
  rt->trace_errors = opts.trace_errors;
  rt->why_alive = opts.why_alive;
  if (opts.shutdown_timeout_ms >= 0)
    rt->shutdown_timeout_ms = (uint64_t)opts.shutdown_timeout_ms;
  luaL_checkversion(L);
  if (args & ARG_ERROR) {
    print_usage(argv[script]);
    return 0;
  }
  if (args & ARG_HELP) {
    print_usage(NULL);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (args & ARG_VERSION) {
    printf("luvhost %s (%s, libuv %s)\n", LH_VERSION, LUA_RELEASE,
           uv_version_string());
    lua_pushboolean(L, 1);
    return 1;
  }
  if (args & ARG_V)
    print_version();
  if (args & ARG_NOENV) { /* the package library reads this */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  lh_diag_init(L);
  lh_coroutine_install(L);
  create_arg_table(L, argv, argc, script);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  lh_signals_init(rt);
  start_watchdog(rt, &opts);
  lh_loader_init(L);
  lh_binding_install_os_exit(L);
  if (!run_bootstrap(L, rt))
    return 0;

  build_steps(L, argv, argc, script, args);
  lua_pushcclosure(L, run_steps, 1);
  lua_xmove(L, rt->main_co, 1);
  lh_run_main(rt, 0);
  lh_runtime_run_loop(rt, L, UV_RUN_DEFAULT);
  if (!rt->exiting && lua_status(rt->main_co) == LUA_YIELD) {
    fprintf(stderr,
            "%s: warning: the main chunk is still waiting, but nothing is "
            "left that could wake it\n",
            progname);
    rt->exit_code = 13;
    rt->exit_forced = 1;
  }
  lh_runtime_emit_exit(rt);
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char** argv) {
  static lh_runtime_t rt;
  lua_State* L;
  int status, ok, code;
  argv = uv_setup_args(argc, argv);
  if (argv[0] != NULL && argv[0][0] != '\0')
    progname = argv[0];
  {
    host_opts_t opts;
    int first = 0;
    int args;
    opts_init(&opts);
    args = scan_args(argv, &first, &opts);
    if (!(args & (ARG_ERROR | ARG_HELP | ARG_VERSION)) && opts.workers >= 0 &&
        getenv("LUVHOST_WORKER_ID") == NULL)
      return lh_workers_run(argc, argv, opts.workers, progname);
  }
  L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
    return EXIT_FAILURE;
  }
  if (lh_runtime_init(&rt, L, progname) != 0) {
    fprintf(stderr, "%s: cannot create the event loop\n", progname);
    lua_close(L);
    return EXIT_FAILURE;
  }
  lua_gc(L, LUA_GCSTOP);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  ok = status == LUA_OK && lua_toboolean(L, -1);
  if (status != LUA_OK) {
    const char* msg = lua_tostring(L, -1);
    fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(error object)");
  }
  lua_settop(L, 0);
  code = rt.exit_forced || ok ? rt.exit_code : EXIT_FAILURE;
  fflush(stdout);
  lh_runtime_close(&rt);
  uv_library_shutdown();
  return code;
}
