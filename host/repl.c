/* A simple interactive prompt that lives on the loop: stdin is read without
 * blocking, so servers and timers keep running while it waits. Each entry
 * is compiled and run by lib/lua/internal/repl.lua on its own coroutine
 * (waiting calls work); reading pauses until the entry is done. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#define REPL_READ_SIZE 4096

typedef enum { INPUT_NONE, INPUT_STREAM, INPUT_FILE } input_kind_t;

static struct {
  lh_runtime_t* rt;
  input_kind_t kind;
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tty_t tty;
    uv_pipe_t pipe;
  } in;
  uv_fs_t fs_req;
  uv_idle_t kick; /* continues after an entry that had to wait */
  int in_run;     /* process_lines is running an entry right now */
  int64_t file_offset;
  char chunk[REPL_READ_SIZE];
  char* buf;
  size_t len, cap;
  int eval_ref;
  int busy; /* an entry runs */
  int eof;
  int incomplete;
  int reading;
} repl;

static void process_lines(void);

static void print_prompt(void) {
  lua_State* L = repl.rt->L;
  const char* name = repl.incomplete ? "_PROMPT2" : "_PROMPT";
  const char* prompt;
  lua_getglobal(L, name);
  prompt = lua_tostring(L, -1);
  if (prompt == NULL)
    prompt = repl.incomplete ? ">> " : "> ";
  fputs(prompt, stdout);
  fflush(stdout);
  lua_pop(L, 1);
}

static void append(const char* data, size_t n) {
  if (repl.len + n > repl.cap) {
    size_t cap = repl.cap ? repl.cap * 2 : 256;
    char* grown;
    while (cap < repl.len + n)
      cap *= 2;
    grown = realloc(repl.buf, cap);
    if (grown == NULL) {
      fprintf(stderr, "%s: repl: out of memory\n", repl.rt->progname);
      return;
    }
    repl.buf = grown;
    repl.cap = cap;
  }
  memcpy(repl.buf + repl.len, data, n);
  repl.len += n;
}

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* b) {
  (void)h;
  (void)suggested;
  b->base = repl.chunk;
  b->len = sizeof(repl.chunk);
}

static void finish(void) {
  if (repl.kind == INPUT_NONE)
    return;
  fputs("\n", stdout);
  fflush(stdout);
  if (repl.kind == INPUT_STREAM && !uv_is_closing(&repl.in.handle))
    uv_close(&repl.in.handle, NULL);
  if (!uv_is_closing((uv_handle_t*)&repl.kick))
    uv_close((uv_handle_t*)&repl.kick, NULL);
  repl.kind = INPUT_NONE;
  luaL_unref(repl.rt->L, LUA_REGISTRYINDEX, repl.eval_ref);
  repl.eval_ref = LUA_NOREF;
  free(repl.buf);
  repl.buf = NULL;
  repl.len = repl.cap = 0;
}

static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* b) {
  (void)s;
  if (nread > 0)
    append(b->base, (size_t)nread);
  if (nread < 0) {
    repl.eof = 1;
    uv_read_stop(&repl.in.stream);
    repl.reading = 0;
  }
  process_lines();
}

static void on_file_read(uv_fs_t* req) {
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  repl.reading = 0;
  if (n > 0) {
    append(repl.chunk, (size_t)n);
    repl.file_offset += n;
  } else {
    repl.eof = 1;
  }
  process_lines();
}

static void want_input(void) {
  uv_buf_t b;
  if (repl.reading || repl.eof)
    return;
  repl.reading = 1;
  if (repl.kind == INPUT_STREAM) {
    uv_read_start(&repl.in.stream, on_alloc, on_read);
    return;
  }
  b = uv_buf_init(repl.chunk, sizeof(repl.chunk));
  if (uv_fs_read(repl.rt->loop, &repl.fs_req, 0, &b, 1, repl.file_offset,
                 on_file_read) != 0) {
    repl.reading = 0;
    repl.eof = 1;
  }
}

static void pause_input(void) {
  if (repl.kind == INPUT_STREAM && repl.reading) {
    uv_read_stop(&repl.in.stream);
    repl.reading = 0;
  }
}

/* Hands complete lines to Lua, one at a time. */
static void process_lines(void) {
  while (!repl.busy && repl.kind != INPUT_NONE && !repl.rt->exiting) {
    char* nl = repl.len ? memchr(repl.buf, '\n', repl.len) : NULL;
    size_t n;
    lua_State* co;
    if (nl == NULL && !(repl.eof && repl.len > 0)) {
      if (repl.eof) {
        finish();
        return;
      }
      want_input();
      return;
    }
    n = nl ? (size_t)(nl - repl.buf) : repl.len;
    pause_input();
    co = lh_cb_begin(repl.rt);
    if (co == NULL)
      return;
    lua_rawgeti(co, LUA_REGISTRYINDEX, repl.eval_ref);
    lua_pushlstring(co, repl.buf, n > 0 && repl.buf[n - 1] == '\r' ? n - 1 : n);
    repl.len -= nl ? n + 1 : n;
    memmove(repl.buf, repl.buf + (nl ? n + 1 : n), repl.len);
    repl.busy = 1;
    repl.in_run = 1;
    lh_cb_run(repl.rt, co, 1);
    repl.in_run = 0;
    if (repl.busy)
      return; /* the entry waits; repl_ready continues */
  }
}

static void on_kick(uv_idle_t* h) {
  uv_idle_stop(h);
  process_lines();
}

/* binding.repl_ready(incomplete): the entry is done; prompt again. */
static int repl_ready(lua_State* L) {
  repl.incomplete = lua_toboolean(L, 1);
  if (repl.kind == INPUT_NONE)
    return 0;
  repl.busy = 0;
  print_prompt();
  if (!repl.in_run) /* the entry had waited: continue from the loop */
    uv_idle_start(&repl.kick, on_kick);
  return 0;
}

int lh_repl_start(lua_State* L) {
  lh_runtime_t* rt = lh_runtime(L);
  uv_handle_type type = uv_guess_handle(0);
  int r;
  if (repl.kind != INPUT_NONE)
    return 0;
  memset(&repl, 0, sizeof(repl));
  repl.rt = rt;
  repl.eval_ref = LUA_NOREF;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "internal.repl");
  rt->expose_internals++;
  r = lua_pcall(L, 1, 1, 0);
  rt->expose_internals--;
  if (r != LUA_OK)
    return lua_error(L);
  lua_pushcfunction(L, repl_ready);
  lua_setfield(L, -2, "ready_hook");
  lua_getfield(L, -1, "eval");
  repl.eval_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  if (type == UV_TTY) {
    r = uv_tty_init(rt->loop, &repl.in.tty, 0, 1);
    repl.kind = INPUT_STREAM;
  } else if (type == UV_NAMED_PIPE || type == UV_TCP) {
    r = uv_pipe_init(rt->loop, &repl.in.pipe, 0);
    if (r == 0)
      r = uv_pipe_open(&repl.in.pipe, 0);
    repl.kind = INPUT_STREAM;
  } else {
    r = 0;
    repl.kind = INPUT_FILE;
  }
  if (r != 0) {
    repl.kind = INPUT_NONE;
    return luaL_error(L, "cannot read stdin: %s", uv_strerror(r));
  }
  uv_idle_init(rt->loop, &repl.kick);
  print_prompt();
  process_lines();
  return 0;
}
