/* The prompt's terminal side. lib/lua/internal/repl.lua is the prompt (it
 * reads stdin on the loop, edits lines, runs each entry on its own
 * coroutine); this file gives it what Lua cannot do well:
 *
 * - The prompt line on the screen. Lua hands over the bytes that draw the
 *   prompt and the line being typed, and the bytes that erase them. Output
 *   from anything else (a timer's print, io.write, io.stderr, process.stdout)
 *   first erases the prompt; before the loop waits again (a prepare
 *   handle), the prompt is drawn again below that output.
 * - The stdio guard: C's stdout and stderr (print, io.write, io.stdout,
 *   io.stderr, fprintf) are swapped for fopencookie streams that write to
 *   the same fds, so every write passes through that check.
 * - Ctrl-C: signals.c sends SIGINT here through an async handle when it
 *   should not interrupt Lua itself; the prompt decides what it means.
 */
#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "runtime.h"

typedef struct {
  char* data;
  size_t len;
} bytes_t;

typedef struct {
  FILE* orig;     /* the C library's stream */
  FILE* cookie;   /* ours, writing to the same fd */
  int stream_ref; /* io.stdout / io.stderr, repointed at cookie */
} guarded_t;

static struct {
  lh_runtime_t* rt;
  int started;
  int at_line_start; /* the terminal's cursor is at column 0 */
  int active;        /* a prompt is being edited */
  int shown;         /* ... and is on the screen now */
  bytes_t draw;      /* draws the prompt and the line, cursor in place */
  bytes_t erase;     /* takes them off again, cursor at column 0 */
  int guarding;
  guarded_t out, err;
  int prepare_open;
  uv_prepare_t prepare;
  int async_open;
  uv_async_t async;
  int sigint_ref;
} repl;

static void write_all(int fd, const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        struct pollfd p;
        p.fd = fd;
        p.events = POLLOUT;
        poll(&p, 1, -1);
        continue;
      }
      return; /* the terminal is gone: nothing to be done */
    }
    s += w;
    n -= (size_t)w;
  }
}

static void term_put(const char* s, size_t n) {
  if (n == 0)
    return;
  write_all(STDOUT_FILENO, s, n);
  repl.at_line_start = s[n - 1] == '\n';
}

static void set_bytes(bytes_t* b, const char* s, size_t n) {
  char* p = realloc(b->data, n + 1);
  if (p == NULL)
    return; /* keeps the old bytes */
  memcpy(p, s, n);
  b->data = p;
  b->len = n;
}

static void erase_prompt(void) {
  if (!repl.shown)
    return;
  term_put(repl.erase.data, repl.erase.len);
  repl.shown = 0;
  repl.at_line_start = 1;
}

static void show_prompt(void) {
  if (!repl.at_line_start)
    term_put("\r\n", 2);
  term_put(repl.draw.data, repl.draw.len);
  repl.shown = 1;
  repl.at_line_start = 0;
}

static void flush_stdio(void) {
  if (repl.guarding) {
    fflush(stdout);
    fflush(stderr);
  }
}

/* Output from anything but the prompt is about to reach the terminal. */
void lh_repl_before_output(const char* data, size_t len) {
  if (!repl.started || len == 0)
    return;
  erase_prompt();
  repl.at_line_start = data[len - 1] == '\n';
}

static ssize_t cookie_write(void* cookie, const char* buf, size_t n) {
  lh_repl_before_output(buf, n);
  write_all((int)(intptr_t)cookie, buf, n);
  return (ssize_t)n;
}

/* Before the loop waits: what print() buffered goes out, and a prompt that
 * output took away comes back. */
static void on_prepare(uv_prepare_t* h) {
  (void)h;
  flush_stdio();
  if (repl.active && !repl.shown)
    show_prompt();
}

/* io.stdout or io.stderr, when it still is the C library's stream. */
static luaL_Stream* io_stream(lua_State* L, const char* name, FILE* f) {
  luaL_Stream* s;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, LUA_IOLIBNAME);
  lua_remove(L, -2);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  s = luaL_testudata(L, -1, LUA_FILEHANDLE);
  if (s == NULL || s->f != f) {
    lua_pop(L, 1);
    return NULL;
  }
  return s; /* left on the stack */
}

static void guard_one(lua_State* L, guarded_t* g, FILE** std, int fd,
                      const char* name, int mode) {
  cookie_io_functions_t io = {NULL, cookie_write, NULL, NULL};
  luaL_Stream* s;
  g->orig = *std;
  g->stream_ref = LUA_NOREF;
  g->cookie = fopencookie((void*)(intptr_t)fd, "w", io);
  if (g->cookie == NULL)
    return;
  setvbuf(g->cookie, NULL, mode, mode == _IONBF ? 0 : BUFSIZ);
  fflush(g->orig);
  s = io_stream(L, name, g->orig);
  if (s != NULL) {
    s->f = g->cookie;
    g->stream_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  *std = g->cookie;
}

static void unguard_one(lua_State* L, guarded_t* g, FILE** std) {
  if (g->cookie == NULL)
    return;
  fflush(g->cookie);
  *std = g->orig;
  if (g->stream_ref != LUA_NOREF && L != NULL) {
    luaL_Stream* s;
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->stream_ref);
    s = luaL_testudata(L, -1, LUA_FILEHANDLE);
    if (s != NULL && s->f == g->cookie)
      s->f = g->orig;
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, g->stream_ref);
  }
  g->stream_ref = LUA_NOREF;
  fclose(g->cookie);
  g->cookie = NULL;
}

static void guard(lua_State* L, int on) {
  if (on == repl.guarding)
    return;
  if (on) {
    guard_one(L, &repl.out, &stdout, STDOUT_FILENO, "stdout", _IOLBF);
    if (isatty(STDERR_FILENO))
      guard_one(L, &repl.err, &stderr, STDERR_FILENO, "stderr", _IONBF);
    if (!repl.prepare_open) {
      uv_prepare_init(repl.rt->loop, &repl.prepare);
      uv_unref((uv_handle_t*)&repl.prepare);
      repl.prepare_open = 1;
    }
    uv_prepare_start(&repl.prepare, on_prepare);
  } else {
    unguard_one(L, &repl.err, &stderr);
    unguard_one(L, &repl.out, &stdout);
    if (repl.prepare_open)
      uv_prepare_stop(&repl.prepare);
  }
  repl.guarding = on;
}

/* host.write(s): control sequences (a bell, modes) straight to the
 * terminal; they move no cursor. */
static int host_write(lua_State* L) {
  size_t n;
  const char* s = luaL_checklstring(L, 1, &n);
  flush_stdio();
  write_all(STDOUT_FILENO, s, n);
  return 0;
}

/* host.draw(draw, erase): the prompt as it looks now (drawn over the old
 * one), and how to take it off the screen. */
static int host_draw(lua_State* L) {
  size_t nd, ne;
  const char* d = luaL_checklstring(L, 1, &nd);
  const char* e = luaL_checklstring(L, 2, &ne);
  flush_stdio();
  erase_prompt();
  set_bytes(&repl.draw, d, nd);
  set_bytes(&repl.erase, e, ne);
  repl.active = 1;
  show_prompt();
  return 0;
}

/* host.commit(s [, at_line_start]): the prompt stays on the screen as it
 * is, s follows it (a newline, "^C"), and no prompt is being edited. */
static int host_commit(lua_State* L) {
  size_t n;
  const char* s = luaL_optlstring(L, 1, "", &n);
  flush_stdio();
  if (repl.active && !repl.shown)
    show_prompt();
  term_put(s, n);
  repl.active = repl.shown = 0;
  if (!lua_isnoneornil(L, 2))
    repl.at_line_start = lua_toboolean(L, 2);
  return 0;
}

/* host.hide(): takes the prompt off the screen; none is being edited. */
static int host_hide(lua_State* L) {
  (void)L;
  flush_stdio();
  erase_prompt();
  repl.active = 0;
  return 0;
}

/* host.guard(on): the stdio guard and the prepare handle. */
static int host_guard(lua_State* L) {
  guard(L, lua_toboolean(L, 1));
  return 0;
}

static void on_async(uv_async_t* h) {
  int pending = repl.rt->sigint_pending;
  (void)h;
  repl.rt->sigint_pending = 0;
  if (pending != 2 && repl.sigint_ref != LUA_NOREF)
    lh_cb_call_ref(repl.rt, repl.sigint_ref);
}

static void stop_sigint(lua_State* L) {
  repl.rt->sigint_async = NULL;
  repl.rt->sigint_target = NULL;
  repl.rt->sigint_pending = 0;
  if (L != NULL)
    luaL_unref(L, LUA_REGISTRYINDEX, repl.sigint_ref);
  repl.sigint_ref = LUA_NOREF;
  if (repl.async_open && !uv_is_closing((uv_handle_t*)&repl.async))
    uv_close((uv_handle_t*)&repl.async, NULL);
}

/* host.on_sigint(fn | nil): Ctrl-C that is not an interrupt of the entry
 * calls fn on the loop; nil gives SIGINT back to signals.c's defaults. */
static int host_on_sigint(lua_State* L) {
  if (lua_isnoneornil(L, 1)) {
    stop_sigint(L);
    return 0;
  }
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (!repl.async_open) {
    int r = uv_async_init(repl.rt->loop, &repl.async, on_async);
    if (r != 0)
      return luaL_error(L, "repl: %s", uv_strerror(r));
    uv_unref((uv_handle_t*)&repl.async);
    repl.async_open = 1;
  }
  lua_pushvalue(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, repl.sigint_ref);
  repl.sigint_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  repl.rt->sigint_async = &repl.async;
  return 0;
}

/* host.set_entry(co | nil): the coroutine Ctrl-C interrupts while it runs. */
static int host_set_entry(lua_State* L) {
  repl.rt->sigint_target = lua_tothread(L, 1);
  return 0;
}

/* host.interrupt(co) -> boolean: a parked coroutine raises "interrupted!"
 * as soon as it is resumed. */
static int host_interrupt(lua_State* L) {
  lua_State* co = lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "thread");
  if (lua_status(co) != LUA_YIELD) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lh_signals_interrupt(co);
  lua_pushboolean(L, 1);
  return 1;
}

/* host.clear_interrupt(co): a Ctrl-C that came as the entry ended must
 * not hit the next callback that runs on its coroutine. */
static int host_clear_interrupt(lua_State* L) {
  lua_State* co = lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "thread");
  lh_signals_clear(co);
  return 0;
}

/* host.keep_isig(): after libuv's raw mode, Ctrl-C still raises SIGINT
 * (so it can interrupt Lua that never returns to the loop). */
static int host_keep_isig(lua_State* L) {
  struct termios t;
  (void)L;
  if (tcgetattr(STDIN_FILENO, &t) == 0 && !(t.c_lflag & ISIG)) {
    t.c_lflag |= ISIG;
    tcsetattr(STDIN_FILENO, TCSADRAIN, &t);
  }
  return 0;
}

/* host.drain_input() -> data, eof: what the terminal holds in normal
 * (canonical) mode: whole lines, and a Ctrl-D typed while an entry ran.
 * Read before raw mode starts, which would turn that Ctrl-D (an end-of-file
 * mark in the line buffer) into a NUL byte. */
static int host_drain_input(lua_State* L) {
  luaL_Buffer b;
  char chunk[1024];
  int eof = 0, i;
  luaL_buffinit(L, &b);
  for (i = 0; i < 64; i++) {
    struct pollfd p;
    ssize_t n;
    p.fd = STDIN_FILENO;
    p.events = POLLIN;
    if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP)))
      break;
    n = read(STDIN_FILENO, chunk, sizeof(chunk));
    if (n == 0)
      eof = 1;
    if (n <= 0)
      break;
    luaL_addlstring(&b, chunk, (size_t)n);
  }
  luaL_pushresult(&b);
  lua_pushboolean(L, eof);
  return 2;
}

static const luaL_Reg host_funcs[] = {
    {"write", host_write},
    {"draw", host_draw},
    {"commit", host_commit},
    {"hide", host_hide},
    {"guard", host_guard},
    {"on_sigint", host_on_sigint},
    {"set_entry", host_set_entry},
    {"interrupt", host_interrupt},
    {"clear_interrupt", host_clear_interrupt},
    {"keep_isig", host_keep_isig},
    {"drain_input", host_drain_input},
    {NULL, NULL},
};

int lh_repl_start(lua_State* L) {
  lh_runtime_t* rt = lh_runtime(L);
  int r;
  if (repl.started)
    return 0;
  repl.rt = rt;
  repl.started = 1;
  repl.at_line_start = 1;
  repl.sigint_ref = LUA_NOREF;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "internal.repl");
  rt->expose_internals++;
  r = lua_pcall(L, 1, 1, 0);
  rt->expose_internals--;
  if (r != LUA_OK)
    return lua_error(L);
  lua_getfield(L, -1, "start");
  luaL_newlib(L, host_funcs);
  lua_call(L, 1, 0);
  lua_pop(L, 1);
  return 0;
}

/* Teardown: the C library's stdio back, the handles closed, and a prompt
 * still on the screen left with a newline after it. */
void lh_repl_close(lh_runtime_t* rt) {
  if (!repl.started)
    return;
  if (repl.shown)
    term_put("\r\n", 2);
  repl.active = repl.shown = 0;
  if (repl.guarding) /* a terminal: bracketed paste off again */
    write_all(STDOUT_FILENO, "\33[?2004l", 8);
  guard(rt->L, 0);
  stop_sigint(rt->L);
  if (repl.prepare_open && !uv_is_closing((uv_handle_t*)&repl.prepare))
    uv_close((uv_handle_t*)&repl.prepare, NULL);
  free(repl.draw.data);
  free(repl.erase.data);
  repl.draw.data = repl.erase.data = NULL;
  repl.draw.len = repl.erase.len = 0;
  repl.started = 0;
}
