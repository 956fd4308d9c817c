/* --trace-errors: an error-first callback about to get an error is
 * checked for whether its code ever reads its first parameter. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#define BUILTIN_PREFIX "@builtin/"

static int is_builtin(const char* source) {
  return strncmp(source, BUILTIN_PREFIX, sizeof(BUILTIN_PREFIX) - 1) == 0;
}

/* Lua 5.4's precompiled chunk format (ldump.c) and opcodes (lopcodes.h):
 * enough of them to tell whether a function reads its register 0, the
 * first parameter. Checked at first use against two known functions. */
#define OP_MOVE 0
#define OP_SETUPVAL 10
#define OP_GETTABLE 12
#define OP_GETI 13
#define OP_GETFIELD 14
#define OP_SETTABUP 15
#define OP_SETTABLE 16
#define OP_SETI 17
#define OP_SETFIELD 18
#define OP_SELF 20
#define OP_ADDI 21
#define OP_SHLI 33
#define OP_ADD 34
#define OP_SHR 45
#define OP_MMBIN 46
#define OP_MMBINI 47
#define OP_MMBINK 48
#define OP_UNM 49
#define OP_LEN 52
#define OP_CONCAT 53
#define OP_TBC 55
#define OP_EQ 57
#define OP_LE 59
#define OP_EQK 60
#define OP_TEST 66
#define OP_TESTSET 67
#define OP_CALL 68
#define OP_TAILCALL 69
#define OP_RETURN 70
#define OP_RETURN1 72
#define OP_FORLOOP 73
#define OP_TFORLOOP 77
#define OP_SETLIST 78
#define OP_CLOSURE 79

typedef struct {
  const unsigned char* p;
  const unsigned char* end;
  int bad;
} reader_t;

static unsigned rd_byte(reader_t* r) {
  if (r->p >= r->end) {
    r->bad = 1;
    return 0;
  }
  return *r->p++;
}

static size_t rd_size(reader_t* r) {
  size_t x = 0;
  unsigned b;
  do {
    b = rd_byte(r);
    x = (x << 7) | (b & 0x7f);
  } while (!(b & 0x80) && !r->bad);
  return x;
}

static void rd_skip(reader_t* r, size_t n) {
  if ((size_t)(r->end - r->p) < n) {
    r->bad = 1;
    r->p = r->end;
  } else {
    r->p += n;
  }
}

static void rd_string(reader_t* r) {
  size_t n = rd_size(r);
  if (n > 0)
    rd_skip(r, n - 1);
}

/* Whether instruction i reads register 0 (captures: which of the
 * function's closures capture it). */
static int reads_r0(uint32_t i, const unsigned char* captures, size_t nprotos) {
  unsigned op = i & 0x7f, a = (i >> 7) & 0xff, k = (i >> 15) & 1;
  unsigned b = (i >> 16) & 0xff, c = (i >> 24) & 0xff;
  size_t bx = i >> 15;
  switch (op) {
    case OP_MOVE:
    case OP_GETI:
    case OP_GETFIELD:
    case OP_TESTSET:
      return b == 0;
    case OP_SETUPVAL:
    case OP_MMBINI:
    case OP_MMBINK:
    case OP_CONCAT:
    case OP_TBC:
    case OP_CALL:
    case OP_TAILCALL:
    case OP_RETURN1:
    case OP_SETLIST:
      return a == 0;
    case OP_GETTABLE:
      return b == 0 || c == 0;
    case OP_SETTABUP:
      return !k && c == 0;
    case OP_SETTABLE:
      return a == 0 || b == 0 || (!k && c == 0);
    case OP_SETI:
    case OP_SETFIELD:
      return a == 0 || (!k && c == 0);
    case OP_SELF:
      return b == 0 || (!k && c == 0);
    case OP_MMBIN:
      return a == 0 || b == 0;
    case OP_RETURN:
      return a == 0 && b != 1;
    case OP_CLOSURE:
      return bx < nprotos && captures[bx];
    default:
      break;
  }
  if (op >= OP_ADDI && op <= OP_SHLI)
    return b == 0;
  if (op >= OP_ADD && op <= OP_SHR)
    return b == 0 || c == 0;
  if (op >= OP_UNM && op <= OP_LEN)
    return b == 0;
  if (op >= OP_EQ && op <= OP_LE)
    return a == 0 || b == 0;
  if (op >= OP_EQK && op <= OP_TEST)
    return a == 0;
  if (op >= OP_FORLOOP && op <= OP_TFORLOOP)
    return a == 0;
  return 0;
}

typedef struct {
  int nparams, vararg, reads;
} usage_t;

/* Reads one function of a dump. For the outermost (u != NULL): whether it
 * reads register 0; for a nested one: whether it captures its parent's
 * register 0 (*captures). */
static void read_function(reader_t* r, usage_t* u, unsigned char* captures) {
  const unsigned char* code;
  unsigned char* nested = NULL;
  size_t i, n, ncode, nprotos;
  rd_string(r);
  rd_size(r);
  rd_size(r);
  n = rd_byte(r);
  if (u != NULL) {
    u->nparams = (int)n;
    u->vararg = (int)rd_byte(r);
  } else {
    rd_byte(r);
  }
  rd_byte(r); /* maxstacksize */
  ncode = rd_size(r);
  code = r->p;
  if (ncode > (size_t)(r->end - r->p) / 4) {
    r->bad = 1;
    return;
  }
  rd_skip(r, ncode * 4);
  n = rd_size(r); /* constants */
  for (i = 0; i < n && !r->bad; i++) {
    unsigned t = rd_byte(r);
    if (t == 0x03 || t == 0x13) /* integer, float */
      rd_skip(r, 8);
    else if (t == 0x04 || t == 0x14) /* short, long string */
      rd_string(r);
  }
  n = rd_size(r); /* upvalues: instack, idx, kind */
  for (i = 0; i < n && !r->bad; i++) {
    unsigned instack = rd_byte(r), idx = rd_byte(r);
    rd_byte(r);
    if (captures != NULL && instack && idx == 0)
      *captures = 1;
  }
  nprotos = rd_size(r);
  if (u != NULL && nprotos > 0 && nprotos < (size_t)(r->end - r->p))
    nested = calloc(nprotos, 1);
  for (i = 0; i < nprotos && !r->bad; i++)
    read_function(r, NULL, nested ? &nested[i] : NULL);
  n = rd_size(r); /* debug info: stripped, but read it anyway */
  rd_skip(r, n);
  n = rd_size(r);
  for (i = 0; i < n && !r->bad; i++) {
    rd_size(r);
    rd_size(r);
  }
  n = rd_size(r);
  for (i = 0; i < n && !r->bad; i++) {
    rd_string(r);
    rd_size(r);
    rd_size(r);
  }
  n = rd_size(r);
  for (i = 0; i < n && !r->bad; i++)
    rd_string(r);
  if (u != NULL) {
    u->reads = nprotos > 0 && nested == NULL; /* out of memory: say yes */
    for (i = 0; i < ncode && !u->reads && !r->bad; i++) {
      uint32_t ins;
      memcpy(&ins, code + 4 * i, 4);
      u->reads = reads_r0(ins, nested, nprotos);
    }
  }
  free(nested);
}

typedef struct {
  char* data;
  size_t len, cap;
} dump_t;

static int dump_writer(lua_State* L, const void* p, size_t n, void* ud) {
  dump_t* d = ud;
  (void)L;
  if (d->len + n > d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 1024;
    char* grown;
    while (cap < d->len + n)
      cap *= 2;
    grown = realloc(d->data, cap);
    if (grown == NULL)
      return 1;
    d->data = grown;
    d->cap = cap;
  }
  memcpy(d->data + d->len, p, n);
  d->len += n;
  return 0;
}

/* How the Lua function on top of L uses its parameters; 0 if unknown. */
static int usage_of(lua_State* L, usage_t* u) {
  static const char header[] = "\x1bLua\x54\x00\x19\x93\r\n\x1a\n";
  dump_t d = {NULL, 0, 0};
  reader_t r;
  int ok;
  if (lua_dump(L, dump_writer, &d, 1) != 0 || d.len < sizeof(header) + 20 ||
      memcmp(d.data, header, sizeof(header) - 1) != 0 ||
      d.data[sizeof(header) - 1] != 4 || /* Instruction, */
      d.data[sizeof(header)] != 8 ||     /* lua_Integer, */
      d.data[sizeof(header) + 1] != 8) { /* lua_Number */
    free(d.data);
    return 0;
  }
  r.p = (const unsigned char*)d.data + sizeof(header) - 1 + 3 + 16;
  r.end = (const unsigned char*)d.data + d.len;
  r.bad = 0;
  rd_byte(&r); /* number of upvalues */
  read_function(&r, u, NULL);
  ok = !r.bad;
  free(d.data);
  return ok;
}

static char reported_key; /* registry: "source:line" of reported callbacks */

/* 1 if the reader works with this Lua (tried on two known functions). */
static int reader_works(lua_State* L) {
  static int works = -1;
  usage_t a, b;
  int ok_a, ok_b;
  if (works >= 0)
    return works;
  works = 0;
  if (luaL_loadstring(L,
                      "return function(e) if e then return 1 end end, "
                      "function(e, d) return d end") != LUA_OK ||
      lua_pcall(L, 0, 2, 0) != LUA_OK) {
    lua_pop(L, 1);
    return 0;
  }
  ok_b = usage_of(L, &b); /* the second function, on top */
  lua_pop(L, 1);
  ok_a = usage_of(L, &a);
  lua_pop(L, 1);
  works = ok_a && ok_b && a.reads && !b.reads;
  return works;
}

/* --trace-errors: the callback at fidx gets the error at eidx (not nil).
 * If it is the script's Lua function and never reads its first
 * parameter, say so on stderr, once per function. */
void lh_trace_errback(lua_State* L, int fidx, int eidx) {
  lh_runtime_t* rt = lh_runtime(L);
  lua_Debug ar;
  usage_t u;
  const char* param;
  int known;
  if (lua_type(L, fidx) != LUA_TFUNCTION || lua_iscfunction(L, fidx) ||
      lua_isnoneornil(L, eidx) ||
      (lua_isboolean(L, eidx) && !lua_toboolean(L, eidx)) ||
      !lua_checkstack(L, 8))
    return;
  fidx = lua_absindex(L, fidx);
  eidx = lua_absindex(L, eidx);
  lua_pushvalue(L, fidx);
  lua_getinfo(L, ">S", &ar);
  if (is_builtin(ar.source))
    return;
  lua_pushvalue(L, fidx);
  param = lua_getlocal(L, NULL, 1);
  lua_pop(L, 1);
  if (param != NULL && param[0] == '_')
    return; /* ignored on purpose */
  if (!reader_works(L))
    return;
  lua_pushvalue(L, fidx);
  known = usage_of(L, &u);
  lua_pop(L, 1);
  if (!known || (u.nparams > 0 && u.reads) || (u.vararg && u.nparams == 0))
    return; /* (with no parameters, register 0 is not the error) */
  /* once per function */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &reported_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &reported_key);
  }
  lua_pushfstring(L, "%s:%d", ar.short_src, ar.linedefined);
  if (lua_rawget(L, -2) != LUA_TNIL) {
    lua_pop(L, 2);
    return;
  }
  lua_pop(L, 1);
  lua_pushfstring(L, "%s:%d", ar.short_src, ar.linedefined);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  luaL_tolstring(L, eidx, NULL);
  fflush(stdout);
  if (param != NULL || u.nparams > 0)
    fprintf(stderr,
            "%s: error passed to a callback that never reads it: %s\n"
            "\t%s:%d: the callback's first parameter '%s' is never used "
            "(--trace-errors)\n",
            rt->progname, lua_tostring(L, -1), ar.short_src, ar.linedefined,
            param != NULL ? param : "?");
  else
    fprintf(stderr,
            "%s: error passed to a callback that never reads it: %s\n"
            "\t%s:%d: the callback takes no parameters (--trace-errors)\n",
            rt->progname, lua_tostring(L, -1), ar.short_src, ar.linedefined);
  fflush(stderr);
  lua_pop(L, 1);
}

static int trace_errback_protected(lua_State* L) {
  lh_trace_errback(L, 1, 2);
  return 0;
}

/* lh_cb_run for error-first callbacks: co holds fn, err, ... */
int lh_cb_run_err(lh_runtime_t* rt, lua_State* co, int nargs) {
  if (rt->trace_errors && nargs >= 1 && !lua_isnil(co, -nargs) &&
      lua_checkstack(co, 4)) {
    int fn = lua_absindex(co, -nargs - 1);
    lua_pushcfunction(co, trace_errback_protected);
    lua_pushvalue(co, fn);
    lua_pushvalue(co, fn + 1);
    if (lua_pcall(co, 2, 0, 0) != LUA_OK)
      lua_pop(co, 1);
  }
  return lh_cb_run(rt, co, nargs);
}
