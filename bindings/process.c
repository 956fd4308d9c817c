/* uv_process_t: child processes, spawned as luv spawns them.
 *
 * uv.spawn(path, options, on_exit) starts a child and returns its handle
 * and pid. on_exit(code, signal) runs through the gateway once libuv has
 * reaped the child. The handle stays open, and pinned, until the script
 * closes it (usually in on_exit), even when no Lua value refers to it.
 *
 * libuv initialises the handle before anything can fail, so a failed
 * uv_spawn still needs uv_close; the memory is freed in the close callback
 * and the caller gets the fail triple.
 *
 * SIGCHLD belongs to libuv: the first spawn starts its internal watcher,
 * which reaps only the children of process handles (waitpid by pid). The
 * host's own signal code touches SIGINT and SIGPIPE only, and the child
 * starts with every signal at its default disposition and none blocked. */
#include <string.h>

#include "lh_bind.h"

/* More stdio entries than any child would use: bounds the allocation. */
#define STDIO_MAX 1024

/* Fixed stack slots of uv.spawn while it builds the options. */
enum {
  ARG_PATH = 1,
  ARG_OPTIONS,
  ARG_ON_EXIT,
  SLOT_ANCHOR, /* table: strings converted from numbers, kept alive */
  SLOT_ARGS,   /* options.args */
  SLOT_STDIO,  /* options.stdio */
  SLOT_ENV,    /* options.env */
  SLOT_CWD     /* options.cwd */
};

static uv_process_t* check_process(lua_State* L, int idx) {
  return lh_check_uv(L, idx, UV_PROCESS, uv_process_t);
}

static void exit_cb(uv_process_t* p, int64_t exit_status, int term_signal) {
  lh_handle_t* h = p->data;
  lua_State* co = lh_callback_begin(h, LH_CB_EVENT);
  if (co == NULL)
    return;
  lua_pushinteger(co, (lua_Integer)exit_status);
  lua_pushinteger(co, term_signal);
  lh_cb_run(h->rt, co, 2);
}

/* options[name] at the top of the stack: nil or of the given type, else
 * raises. */
static void get_option(lua_State* L, const char* name, int type) {
  int t = lua_getfield(L, ARG_OPTIONS, name);
  if (t != LUA_TNIL && t != type) {
    const char* msg = lua_pushfstring(L, "options.%s must be a %s or nil", name,
                                      lua_typename(L, type));
    luaL_argerror(L, ARG_OPTIONS, msg);
  }
}

/* A string from the array at idx, position i (a number is converted and
 * the string kept in the anchor table, so it outlives uv_spawn). */
static const char* array_string(lua_State* L, int idx, lua_Integer i,
                                const char* name) {
  const char* s;
  switch (lua_rawgeti(L, idx, i)) {
    case LUA_TSTRING:
      s = lua_tostring(L, -1);
      lua_pop(L, 1); /* still held by the array */
      return s;
    case LUA_TNUMBER:
      s = lua_tostring(L, -1);
      lua_rawseti(L, SLOT_ANCHOR, (lua_Integer)lua_rawlen(L, SLOT_ANCHOR) + 1);
      return s;
    default:
      luaL_argerror(
          L, ARG_OPTIONS,
          lua_pushfstring(L, "options.%s[%I] must be a string", name, i));
      return NULL;
  }
}

/* Pushes a NULL-terminated array of the strings in the array at idx,
 * after `first` if it is not NULL (argv[0]). The array is a userdata: a
 * raise anywhere leaves nothing to free. */
static char** push_string_array(lua_State* L, int idx, const char* first,
                                const char* name) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  lua_Integer i, at = 0;
  char** a = lua_newuserdatauv(
      L, sizeof(char*) * (size_t)(n + (first != NULL) + 1), 0);
  if (first != NULL)
    a[at++] = (char*)first;
  for (i = 1; i <= n; i++)
    a[at++] = (char*)array_string(L, idx, i, name);
  a[at] = NULL;
  return a;
}

/* The number of stdio entries: the largest positive integer key, so that
 * nil holes count ({nil, out} has two). A table with other keys counts up
 * to its border, #t (luv). */
static lua_Integer stdio_count(lua_State* L, int idx) {
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    int is_int = 0;
    lua_Integer k = 0;
    lua_pop(L, 1); /* the value */
    if (lua_type(L, -1) == LUA_TNUMBER)
      k = lua_tointegerx(L, -1, &is_int);
    if (!is_int || k < 1) {
      lua_pop(L, 1); /* the key */
      return (lua_Integer)lua_rawlen(L, idx);
    }
    if (k > n)
      n = k;
  }
  return n;
}

/* The open stream at the top of the stack, or raises. */
static uv_stream_t* stdio_stream(lua_State* L, lua_Integer i) {
  static const char* const types[] = {"uv_pipe", "uv_tcp", "uv_tty"};
  size_t t;
  for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
    lh_handle_t** ud = luaL_testudata(L, -1, types[t]);
    if (ud == NULL)
      continue;
    if (*ud == NULL || uv_is_closing(lh_uv(*ud)))
      luaL_argerror(L, ARG_OPTIONS,
                    lua_pushfstring(L, "options.stdio[%I] is closed", i));
    return (uv_stream_t*)lh_uv(*ud);
  }
  luaL_argerror(L, ARG_OPTIONS,
                lua_pushfstring(L,
                                "options.stdio[%I] must be nil, an integer "
                                "fd or a stream handle",
                                i));
  return NULL;
}

/* Pushes the stdio containers for options.stdio (at SLOT_STDIO). A
 * stream that is not open yet gets a new pipe to the child, readable by
 * the child for stdin, writable for stdout and stderr, both for higher
 * fds (luv); an open stream's fd is inherited. */
static uv_stdio_container_t* push_stdio(lua_State* L, int* count) {
  lua_Integer n = stdio_count(L, SLOT_STDIO), i;
  uv_stdio_container_t* c;
  luaL_argcheck(L, n <= STDIO_MAX, ARG_OPTIONS, "too many stdio entries");
  c = lua_newuserdatauv(L, sizeof(*c) * (size_t)(n > 0 ? n : 1), 0);
  for (i = 0; i < n; i++) {
    uv_stdio_container_t* e = &c[i];
    int t = lua_rawgeti(L, SLOT_STDIO, i + 1);
    if (t == LUA_TNIL) {
      e->flags = UV_IGNORE;
      e->data.stream = NULL;
    } else if (t == LUA_TNUMBER) {
      int is_int;
      lua_Integer fd = lua_tointegerx(L, -1, &is_int);
      if (!is_int || fd < 0 || fd > 0x7fffffff)
        luaL_argerror(
            L, ARG_OPTIONS,
            lua_pushfstring(L, "options.stdio[%I] is not a valid fd", i + 1));
      e->flags = UV_INHERIT_FD;
      e->data.fd = (int)fd;
    } else {
      uv_os_fd_t fd;
      uv_stream_t* s = stdio_stream(L, i + 1);
      if (uv_fileno((uv_handle_t*)s, &fd) == 0) {
        e->flags = UV_INHERIT_STREAM;
      } else {
        int flags = UV_CREATE_PIPE;
        if (i == 0 || i > 2)
          flags |= UV_READABLE_PIPE;
        if (i != 0)
          flags |= UV_WRITABLE_PIPE;
        e->flags = (uv_stdio_flags)flags;
      }
      e->data.stream = s;
    }
    lua_pop(L, 1);
  }
  *count = (int)n;
  return c;
}

/* options.uid / options.gid: a non-negative integer, or nil (0 returned,
 * *set left alone). */
static unsigned opt_id(lua_State* L, const char* name, int* set) {
  lua_Integer id = 0;
  int is_int;
  get_option(L, name, LUA_TNUMBER);
  if (!lua_isnil(L, -1)) {
    id = lua_tointegerx(L, -1, &is_int);
    if (!is_int || id < 0 || id > 0xffffffffLL)
      luaL_argerror(L, ARG_OPTIONS,
                    lua_pushfstring(L, "options.%s is not a valid id", name));
    *set = 1;
  }
  lua_pop(L, 1);
  return (unsigned)id;
}

static int opt_flag(lua_State* L, const char* name) {
  int on;
  lua_getfield(L, ARG_OPTIONS, name);
  on = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return on;
}

/* spawn(path, options [, on_exit]) -> process, pid | fail;
 * on_exit(code, signal). */
static int process_spawn(lua_State* L) {
  uv_process_options_t opts;
  uv_process_t* p;
  lh_handle_t* h;
  int set_uid = 0, set_gid = 0;
  int r;
  memset(&opts, 0, sizeof(opts));
  opts.file = luaL_checkstring(L, ARG_PATH);
  luaL_checktype(L, ARG_OPTIONS, LUA_TTABLE);
  if (!lua_isnoneornil(L, ARG_ON_EXIT))
    lh_check_callable(L, ARG_ON_EXIT);
  lua_settop(L, ARG_ON_EXIT);
  lua_newtable(L);                    /* SLOT_ANCHOR */
  get_option(L, "args", LUA_TTABLE);  /* SLOT_ARGS */
  get_option(L, "stdio", LUA_TTABLE); /* SLOT_STDIO */
  get_option(L, "env", LUA_TTABLE);   /* SLOT_ENV */
  get_option(L, "cwd", LUA_TSTRING);  /* SLOT_CWD */

  /* The arrays are userdata above the slots, alive until we return. */
  if (lua_isnil(L, SLOT_ARGS)) {
    char** a = lua_newuserdatauv(L, sizeof(char*) * 2, 0);
    a[0] = (char*)opts.file;
    a[1] = NULL;
    opts.args = a;
  } else {
    opts.args = push_string_array(L, SLOT_ARGS, opts.file, "args");
  }
  if (!lua_isnil(L, SLOT_STDIO))
    opts.stdio = push_stdio(L, &opts.stdio_count);
  if (!lua_isnil(L, SLOT_ENV))
    opts.env = push_string_array(L, SLOT_ENV, NULL, "env");
  if (!lua_isnil(L, SLOT_CWD))
    opts.cwd = lua_tostring(L, SLOT_CWD);
  opts.uid = (uv_uid_t)opt_id(L, "uid", &set_uid);
  opts.gid = (uv_gid_t)opt_id(L, "gid", &set_gid);
  if (set_uid)
    opts.flags |= UV_PROCESS_SETUID;
  if (set_gid)
    opts.flags |= UV_PROCESS_SETGID;
  if (opt_flag(L, "verbatim"))
    opts.flags |= UV_PROCESS_WINDOWS_VERBATIM_ARGUMENTS;
  if (opt_flag(L, "detached"))
    opts.flags |= UV_PROCESS_DETACHED;
  if (opt_flag(L, "hide"))
    opts.flags |= UV_PROCESS_WINDOWS_HIDE;
  opts.exit_cb = exit_cb;

  p = lh_handle_new(L, UV_PROCESS); /* ... process */
  h = (lh_handle_t*)((char*)p - LH_HANDLE_OFFSET);
  r = uv_spawn(lh_runtime(L)->loop, p, &opts);
  if (r < 0) {
    /* The handle is in the loop's list even so: close it. Lua never owned
     * it (the userdata stays closed), so the close callback only frees. */
    p->data = h;
    h->udata = NULL;
    uv_close((uv_handle_t*)p, lh_handle_closed);
    return lh_error(L, r);
  }
  lh_handle_ready(L, p);
  if (!lua_isnoneornil(L, ARG_ON_EXIT))
    lh_set_callback(L, h, LH_CB_EVENT, ARG_ON_EXIT);
  lua_pushinteger(L, p->pid);
  return 2;
}

/* kill(process [, signum]) -> 0 | fail. signum is a number or a name
 * (default "sigterm"). A child that has exited gives ESRCH: its pid may
 * belong to another process by now. */
static int process_kill(lua_State* L) {
  uv_process_t* p = check_process(L, 1);
  int signum = lua_isnoneornil(L, 2) ? SIGTERM : lh_check_signal(L, 2);
  if (!uv_is_active((uv_handle_t*)p))
    return lh_error(L, UV_ESRCH);
  return lh_result(L, uv_process_kill(p, signum));
}

/* get_pid(process) -> integer */
static int process_get_pid(lua_State* L) {
  lua_pushinteger(L, uv_process_get_pid(check_process(L, 1)));
  return 1;
}

/* disable_stdio_inheritance(): fds inherited from our parent get
 * close-on-exec, so children do not inherit them in turn. */
static int process_disable_stdio_inheritance(lua_State* L) {
  (void)L;
  uv_disable_stdio_inheritance();
  return 0;
}

static const luaL_Reg process_functions[] = {
    {"spawn", process_spawn},
    {"process_kill", process_kill},
    {"process_get_pid", process_get_pid},
    {"disable_stdio_inheritance", process_disable_stdio_inheritance},
    {NULL, NULL},
};

static const luaL_Reg process_methods[] = {
    {"kill", process_kill},
    {"get_pid", process_get_pid},
    {NULL, NULL},
};

void lh_open_process(lua_State* L) {
  luaL_setfuncs(L, process_functions, 0);
  lh_new_handle_type(L, UV_PROCESS, "uv_process", process_methods);
}
