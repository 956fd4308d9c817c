/* Process-level odds and ends: versions, working directory, title, sleep,
 * random bytes, handle type of a file descriptor, debugging dumps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lh_bind.h"

#define PATH_BUF 4096

static int misc_version(lua_State* L) {
  lua_pushinteger(L, uv_version());
  return 1;
}

static int misc_version_string(lua_State* L) {
  lua_pushstring(L, uv_version_string());
  return 1;
}

typedef int (*path_fn)(char* buf, size_t* size);

static int push_path(lua_State* L, path_fn fn) {
  char buf[PATH_BUF];
  size_t size = sizeof(buf);
  int r = fn(buf, &size);
  if (r < 0)
    return lh_error(L, r);
  lua_pushlstring(L, buf, size);
  return 1;
}

static int misc_cwd(lua_State* L) {
  return push_path(L, uv_cwd);
}

static int misc_exepath(lua_State* L) {
  return push_path(L, uv_exepath);
}

static int misc_chdir(lua_State* L) {
  return lh_result(L, uv_chdir(luaL_checkstring(L, 1)));
}

static int misc_get_process_title(lua_State* L) {
  char buf[PATH_BUF];
  int r = uv_get_process_title(buf, sizeof(buf));
  if (r < 0)
    return lh_error(L, r);
  lua_pushstring(L, buf);
  return 1;
}

static int misc_set_process_title(lua_State* L) {
  return lh_result(L, uv_set_process_title(luaL_checkstring(L, 1)));
}

/* Blocks the whole loop on purpose, as its name says. */
static int misc_sleep(lua_State* L) {
  lua_Integer ms = luaL_checkinteger(L, 1);
  const char* prev;
  luaL_argcheck(L, ms >= 0 && ms <= 0xffffffffLL, 1, "out of range");
  prev = lh_blocking_begin(lh_runtime(L), "sleep");
  uv_sleep((unsigned int)ms);
  lh_blocking_end(lh_runtime(L), prev);
  return 0;
}

typedef struct {
  uv_random_t req;
  lh_runtime_t* rt;
  int cb_ref;
  size_t len;
  char buf[1];
} random_req_t;

static void random_cb(uv_random_t* req, int status, void* buf, size_t len) {
  random_req_t* r = req->data;
  lua_State* co = lh_cb_begin(r->rt);
  if (co != NULL) {
    lua_rawgeti(co, LUA_REGISTRYINDEX, r->cb_ref);
    lh_push_errname(co, status);
    if (status < 0)
      lua_pushnil(co);
    else
      lua_pushlstring(co, buf, len);
  }
  luaL_unref(r->rt->L, LUA_REGISTRYINDEX, r->cb_ref);
  free(r);
  if (co != NULL)
    lh_cb_run_err(lh_runtime(co), co, 2);
}

/* random(len [, flags] [, cb]): bytes from the system's CSPRNG; with a
 * callback the read happens on the thread pool and cb(err, bytes) follows. */
static int misc_random(lua_State* L) {
  lua_Integer len = luaL_checkinteger(L, 1);
  int cb_idx = lh_is_callable(L, 2) ? 2 : 3;
  unsigned flags = 0;
  random_req_t* r;
  int status;
  luaL_argcheck(L, len >= 0 && len <= 0x7fffffff, 1, "out of range");
  if (cb_idx == 3 && !lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    flags = (unsigned)luaL_checkinteger(L, 2);
  if (lua_isnoneornil(L, cb_idx)) {
    luaL_Buffer b;
    char* p = luaL_buffinitsize(L, &b, (size_t)len);
    status = uv_random(NULL, NULL, p, (size_t)len, flags, NULL);
    if (status < 0)
      return lh_error(L, status);
    luaL_pushresultsize(&b, (size_t)len);
    return 1;
  }
  lh_check_callable(L, cb_idx);
  r = malloc(sizeof(*r) + (size_t)len);
  if (r == NULL)
    return luaL_error(L, "not enough memory");
  r->rt = lh_runtime(L);
  r->len = (size_t)len;
  r->req.data = r;
  lua_pushvalue(L, cb_idx);
  r->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  status = uv_random(r->rt->loop, &r->req, r->buf, r->len, flags, random_cb);
  if (status < 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, r->cb_ref);
    free(r);
    return lh_error(L, status);
  }
  lua_pushinteger(L, 0);
  return 1;
}

static int misc_guess_handle(lua_State* L) {
  uv_handle_type t = uv_guess_handle((uv_file)luaL_checkinteger(L, 1));
  switch (t) {
    case UV_TTY:
      lua_pushliteral(L, "tty");
      break;
    case UV_NAMED_PIPE:
      lua_pushliteral(L, "pipe");
      break;
    case UV_TCP:
      lua_pushliteral(L, "tcp");
      break;
    case UV_UDP:
      lua_pushliteral(L, "udp");
      break;
    case UV_FILE:
      lua_pushliteral(L, "file");
      break;
    default:
      lua_pushliteral(L, "unknown");
      break;
  }
  return 1;
}

static int misc_print_all_handles(lua_State* L) {
  uv_print_all_handles(lh_runtime(L)->loop, stderr);
  return 0;
}

static int misc_print_active_handles(lua_State* L) {
  uv_print_active_handles(lh_runtime(L)->loop, stderr);
  return 0;
}

static int misc_available_parallelism(lua_State* L) {
  lua_pushinteger(L, uv_available_parallelism());
  return 1;
}

static int misc_gettimeofday(lua_State* L) {
  uv_timeval64_t tv;
  int r = uv_gettimeofday(&tv);
  if (r < 0)
    return lh_error(L, r);
  lua_pushinteger(L, tv.tv_sec);
  lua_pushinteger(L, tv.tv_usec);
  return 2;
}

static int misc_kill(lua_State* L) {
  int pid = (int)luaL_checkinteger(L, 1);
  int signum = lua_isnoneornil(L, 2) ? SIGTERM : lh_check_signal(L, 2);
  return lh_result(L, uv_kill(pid, signum));
}

/* clock_gettime("monotonic" | "realtime") -> { sec, nsec } */
static int misc_clock_gettime(lua_State* L) {
  static const char* const clocks[] = {"monotonic", "realtime", NULL};
  int which = luaL_checkoption(L, 1, NULL, clocks);
  struct timespec ts;
  if (clock_gettime(which == 0 ? CLOCK_MONOTONIC : CLOCK_REALTIME, &ts) < 0)
    return lh_error(L, UV_EINVAL);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, ts.tv_sec);
  lua_setfield(L, -2, "sec");
  lua_pushinteger(L, ts.tv_nsec);
  lua_setfield(L, -2, "nsec");
  return 1;
}

static const luaL_Reg misc_functions[] = {
    {"version", misc_version},
    {"version_string", misc_version_string},
    {"cwd", misc_cwd},
    {"chdir", misc_chdir},
    {"exepath", misc_exepath},
    {"get_process_title", misc_get_process_title},
    {"set_process_title", misc_set_process_title},
    {"sleep", misc_sleep},
    {"random", misc_random},
    {"guess_handle", misc_guess_handle},
    {"print_all_handles", misc_print_all_handles},
    {"print_active_handles", misc_print_active_handles},
    {"available_parallelism", misc_available_parallelism},
    {"gettimeofday", misc_gettimeofday},
    {"kill", misc_kill},
    {"clock_gettime", misc_clock_gettime},
    {NULL, NULL},
};

void lh_open_misc(lua_State* L) {
  luaL_setfuncs(L, misc_functions, 0);
}
