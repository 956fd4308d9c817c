/* The request and response objects a handler gets. Both are small
 * userdata; the request carries a copy of its head and builds Lua values
 * (headers table, url string) only when they are read. The response keeps
 * its headers in a C buffer and serialises the status line, headers and
 * body in C. lib/lua/http.lua adds the methods that wait. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

/* Registry refs of the metatables: an array slot, cheaper than a key. */
static int req_mt_ref = LUA_NOREF, res_mt_ref = LUA_NOREF;

/* Decimal digits of v at out; returns the count (no snprintf: it costs
 * more than the rest of a response head). */
static size_t put_dec(char* out, unsigned long long v) {
  char tmp[24];
  size_t n = 0, i;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  return n;
}

/* "<hex>\r\n" for a chunk size; returns the length. */
static size_t put_chunk_size(char* out, size_t v) {
  static const char digits[] = "0123456789abcdef";
  char tmp[20];
  size_t n = 0, i;
  do {
    tmp[n++] = digits[v & 15];
    v >>= 4;
  } while (v != 0);
  for (i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  out[n] = '\r';
  out[n + 1] = '\n';
  return n + 2;
}
static char req_getters_key, req_methods_key, res_methods_key;

const char* http_status_text(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 102:
      return "Processing";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 207:
      return "Multi-Status";
    case 208:
      return "Already Reported";
    case 226:
      return "IM Used";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 305:
      return "Use Proxy";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 418:
      return "I'm a Teapot";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Entity";
    case 423:
      return "Locked";
    case 424:
      return "Failed Dependency";
    case 425:
      return "Too Early";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 451:
      return "Unavailable For Legal Reasons";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    case 506:
      return "Variant Also Negotiates";
    case 507:
      return "Insufficient Storage";
    case 508:
      return "Loop Detected";
    case 509:
      return "Bandwidth Limit Exceeded";
    case 510:
      return "Not Extended";
    case 511:
      return "Network Authentication Required";
    default:
      return "Unknown";
  }
}

/* Requests
 * ----------------------------------------------------------------------- */

void http_push_request(lua_State* L, http_conn_t* c) {
  size_t fsize = sizeof(http_field_t) * c->nfields;
  http_req_t* r =
      lua_newuserdatauv(L, sizeof(http_req_t) + fsize + c->head_len, 1);
  r->magic = HTTP_REQ_MAGIC;
  http_conn_ref(c, &r->ref);
  r->method = c->parser.method;
  r->major = c->parser.http_major;
  r->minor = c->parser.http_minor;
  r->upgrade = c->parser.upgrade;
  r->url_off = c->url_off;
  r->url_len = c->url_len;
  r->nfields = c->nfields;
  r->fields = (http_field_t*)(r + 1);
  r->data = (char*)(r->fields + c->nfields);
  if (fsize > 0)
    memcpy(r->fields, c->fields, fsize);
  if (c->head_len > 0)
    memcpy(r->data, c->head, c->head_len);
  lua_rawgeti(L, LUA_REGISTRYINDEX, req_mt_ref);
  lua_setmetatable(L, -2);
}

static http_req_t* check_req(lua_State* L, int idx) {
  http_req_t* r = lua_touserdata(L, idx);
  if (r == NULL || lua_rawlen(L, idx) < sizeof(*r) ||
      r->magic != HTTP_REQ_MAGIC)
    luaL_typeerror(L, idx, "http request");
  return r;
}

/* The live connection of a request's exchange, or NULL. */
static http_conn_t* req_conn(http_req_t* r) {
  return http_conn_lookup(&r->ref);
}

/* Pushes the cache table (user value 1), made on first use. */
static void push_cache(lua_State* L, int idx) {
  if (lua_getiuservalue(L, idx, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, idx, 1);
  }
}

static void push_lower(lua_State* L, const char* s, size_t n) {
  char buf[64];
  luaL_Buffer b;
  char* out = n <= sizeof(buf) ? buf : luaL_buffinitsize(L, &b, n);
  size_t i;
  for (i = 0; i < n; i++) {
    char ch = s[i];
    out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
  }
  if (out == buf)
    lua_pushlstring(L, buf, n);
  else
    luaL_pushresultsize(&b, n);
}

/* Node keeps the first of these when a request repeats them. */
static int keeps_first(const char* name) {
  static const char* const names[] = {"age",
                                      "authorization",
                                      "content-length",
                                      "content-type",
                                      "etag",
                                      "expires",
                                      "from",
                                      "host",
                                      "if-modified-since",
                                      "if-unmodified-since",
                                      "last-modified",
                                      "location",
                                      "max-forwards",
                                      "proxy-authorization",
                                      "referer",
                                      "retry-after",
                                      "server",
                                      "user-agent",
                                      NULL};
  int i;
  for (i = 0; names[i] != NULL; i++)
    if (strcmp(names[i], name) == 0)
      return 1;
  return 0;
}

/* headers: lower-cased names; repeats joined as Node joins them. The
 * fields are offsets into data (a request head here, a response head in
 * http_parser.c). */
void http_push_headers(lua_State* L, const char* data,
                       const http_field_t* fields, uint32_t n) {
  uint32_t i;
  lua_createtable(L, 0, (int)n);
  for (i = 0; i < n; i++) {
    const http_field_t* f = &fields[i];
    const char* name;
    push_lower(L, data + f->name, f->name_len); /* t name */
    name = lua_tostring(L, -1);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TNIL) { /* t name old */
      lua_pop(L, 1);
      if (strcmp(name, "set-cookie") == 0) {
        lua_createtable(L, 1, 0);
        lua_pushlstring(L, data + f->value, f->value_len);
        lua_rawseti(L, -2, 1);
      } else {
        lua_pushlstring(L, data + f->value, f->value_len);
      }
      lua_rawset(L, -3);
    } else if (strcmp(name, "set-cookie") == 0) {
      lua_pushlstring(L, data + f->value, f->value_len);
      lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
      lua_pop(L, 2);
    } else if (keeps_first(name)) {
      lua_pop(L, 2);
    } else { /* t name old */
      lua_pushstring(L, strcmp(name, "cookie") == 0 ? "; " : ", ");
      lua_pushlstring(L, data + f->value, f->value_len);
      lua_concat(L, 3);
      lua_rawset(L, -3);
    }
  }
}

/* rawHeaders: { name1, value1, name2, value2, ... } as received. */
void http_push_raw_headers(lua_State* L, const char* data,
                           const http_field_t* fields, uint32_t n) {
  uint32_t i;
  lua_createtable(L, (int)n * 2, 0);
  for (i = 0; i < n; i++) {
    const http_field_t* f = &fields[i];
    lua_pushlstring(L, data + f->name, f->name_len);
    lua_rawseti(L, -2, i * 2 + 1);
    lua_pushlstring(L, data + f->value, f->value_len);
    lua_rawseti(L, -2, i * 2 + 2);
  }
}

static int push_version(lua_State* L, int major, int minor) {
  lua_pushfstring(L, "%d.%d", major, minor);
  return 1;
}

/* Fields read from the head; NULL-terminated names map to cases. */
static int req_index(lua_State* L) {
  http_req_t* r = lua_touserdata(L, 1);
  size_t klen;
  const char* key = lua_tolstring(L, 2, &klen);
  /* Methods first: the common case, one table lookup. */
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
    return 1;
  lua_pop(L, 1);
  if (key != NULL && lua_type(L, 2) == LUA_TSTRING) {
    switch (key[0]) {
      case 'm':
        if (strcmp(key, "method") == 0) {
          lua_pushstring(L, llhttp_method_name(r->method));
          return 1;
        }
        break;
      case 'u':
        if (strcmp(key, "url") == 0) {
          lua_pushlstring(L, r->data + r->url_off, r->url_len);
          return 1;
        }
        if (strcmp(key, "upgrade") == 0) {
          lua_pushboolean(L, r->upgrade);
          return 1;
        }
        break;
      case 'h':
        if (strcmp(key, "httpVersion") == 0)
          return push_version(L, r->major, r->minor);
        if (strcmp(key, "httpVersionMajor") == 0) {
          lua_pushinteger(L, r->major);
          return 1;
        }
        if (strcmp(key, "httpVersionMinor") == 0) {
          lua_pushinteger(L, r->minor);
          return 1;
        }
        break;
      case 'c':
        if (strcmp(key, "complete") == 0) {
          http_conn_t* c = req_conn(r);
          lua_pushboolean(L, c == NULL || c->complete);
          return 1;
        }
        break;
      default:
        break;
    }
  }
  /* What is cached or set by the script. */
  if (lua_getiuservalue(L, 1, 1) == LUA_TTABLE) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL)
      return 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (key == NULL)
    return 0;
  if (strcmp(key, "headers") == 0) {
    http_push_headers(L, r->data, r->fields, r->nfields);
  } else if (strcmp(key, "rawHeaders") == 0) {
    http_push_raw_headers(L, r->data, r->fields, r->nfields);
  } else {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &req_getters_key);
    if (!lua_istable(L, -1))
      return 0;
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) == LUA_TNIL)
      return 0;
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
  }
  /* Computed once: cache[key] = value */
  push_cache(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return 1;
}

static int req_newindex(lua_State* L) {
  push_cache(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

/* req:_want() -> queued body bytes (or nil), more to come (boolean):
 * 'body' and 'end' events follow from now on; sends 100 Continue to a
 * client waiting for it. */
static int req_want(lua_State* L) {
  http_conn_t* c = req_conn(check_req(L, 1));
  if (c == NULL) {
    lua_pushnil(L);
    lua_pushboolean(L, 0);
    return 2;
  }
  if (c->bodyq_len > 0)
    lua_pushlstring(L, c->bodyq, c->bodyq_len);
  else
    lua_pushnil(L);
  c->bodyq_len = 0;
  lua_pushboolean(L, !c->complete);
  if (!c->complete) {
    http_conn_send_continue(c);
    c->want_body = 1;
    if (c->req_ref == LUA_NOREF) { /* body events need the request */
      lua_pushvalue(L, 1);
      c->req_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    if (c->body_paused)
      http_conn_body_flow(c, 0);
  }
  return 2;
}

/* req:_flow(paused): stop or restart reading the body from the socket. */
static int req_flow(lua_State* L) {
  http_conn_t* c = req_conn(check_req(L, 1));
  if (c != NULL)
    http_conn_body_flow(c, lua_toboolean(L, 2));
  return 0;
}

/* req:_peer() -> remote ip, port, family, local ip, local port */
static int req_peer(lua_State* L) {
  http_conn_t* c = req_conn(check_req(L, 1));
  struct sockaddr_storage addr;
  int len = sizeof(addr);
  if (c == NULL ||
      uv_tcp_getpeername(c->tcp, (struct sockaddr*)&addr, &len) < 0)
    return 0;
  lh_push_sockaddr(L, (struct sockaddr*)&addr);
  len = sizeof(addr);
  if (uv_tcp_getsockname(c->tcp, (struct sockaddr*)&addr, &len) < 0)
    return 1;
  lh_push_sockaddr(L, (struct sockaddr*)&addr);
  return 2;
}

static const luaL_Reg req_c_methods[] = {
    {"_want", req_want},
    {"_flow", req_flow},
    {"_peer", req_peer},
    {NULL, NULL},
};

/* Responses
 * ---------------------------------------------------------------------- */

/* Header lines are built in one shared buffer while a handler runs; a
 * response still open when its handler returns (it answers later) moves
 * them into a buffer of its own. */
static struct {
  char* buf;
  uint32_t cap;
  http_response_t* user;
} hscratch;

void http_response_begin(http_response_t* r) {
  http_response_release(r);
  memset(r, 0, sizeof(*r));
  r->status = 200;
  r->reason_ref = LUA_NOREF;
  if (hscratch.user == NULL) {
    hscratch.user = r;
    r->hbuf_scratch = 1;
    r->hbuf = hscratch.buf;
    r->hcap = hscratch.cap;
  }
}

void http_response_keep(http_response_t* r) {
  char* own;
  if (!r->hbuf_scratch)
    return;
  own = r->hlen ? malloc(r->hlen) : NULL;
  if (own != NULL)
    memcpy(own, r->hbuf, r->hlen);
  hscratch.user = NULL;
  r->hbuf_scratch = 0;
  r->hbuf = own;
  r->hcap = own != NULL ? r->hlen : 0;
  r->hlen = r->hcap; /* out of memory: the headers are lost, not corrupt */
}

void http_response_scratch_free(void) {
  if (hscratch.user != NULL)
    return;
  free(hscratch.buf);
  hscratch.buf = NULL;
  hscratch.cap = 0;
}

void http_response_release(http_response_t* r) {
  if (r->hbuf_scratch)
    hscratch.user = NULL;
  else
    free(r->hbuf);
  r->hbuf_scratch = 0;
  r->hbuf = NULL;
  r->hcap = r->hlen = 0;
}

void http_push_response(lua_State* L, http_conn_t* c) {
  http_res_t* r = lua_newuserdatauv(L, sizeof(http_res_t), 1);
  r->magic = HTTP_RES_MAGIC;
  http_conn_ref(c, &r->ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, res_mt_ref);
  lua_setmetatable(L, -2);
}

static http_res_t* check_res(lua_State* L, int idx) {
  http_res_t* r = lua_touserdata(L, idx);
  if (r == NULL || lua_rawlen(L, idx) < sizeof(*r) ||
      r->magic != HTTP_RES_MAGIC)
    luaL_typeerror(L, idx, "http response");
  return r;
}

/* Pins the response (at idx) so the engine can send it events. */
static void pin_res(lua_State* L, http_conn_t* c, int idx) {
  if (c->res_ref != LUA_NOREF)
    return;
  lua_pushvalue(L, idx);
  c->res_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

static http_conn_t* res_conn(http_res_t* r) {
  return http_conn_lookup(&r->ref);
}

/* The connection of a response still being written; raises otherwise. */
static http_conn_t* live_res(lua_State* L, int idx, int* gone) {
  http_res_t* r = check_res(L, idx);
  http_conn_t* c = res_conn(r);
  *gone = c == NULL;
  return c;
}

/* RFC 9110 token characters. */
static const unsigned char token_chars[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1,
    ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,
    ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1,
    ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,
    ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1,
    ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

#define is_token_char(ch) (token_chars[(unsigned char)(ch)])

static void check_name(lua_State* L, const char* name, size_t n) {
  size_t i;
  if (n == 0)
    luaL_error(L, "header name must not be empty");
  for (i = 0; i < n; i++)
    if (!is_token_char((unsigned char)name[i]))
      luaL_error(L, "invalid character in header name '%s'", name);
}

/* Control characters but tab: CR and LF would split the response. */
static const unsigned char bad_value_chars[256] = {
    [0] = 1,  [1] = 1,  [2] = 1,  [3] = 1,   [4] = 1,  [5] = 1,  [6] = 1,
    [7] = 1,  [8] = 1,  [10] = 1, [11] = 1,  [12] = 1, [13] = 1, [14] = 1,
    [15] = 1, [16] = 1, [17] = 1, [18] = 1,  [19] = 1, [20] = 1, [21] = 1,
    [22] = 1, [23] = 1, [24] = 1, [25] = 1,  [26] = 1, [27] = 1, [28] = 1,
    [29] = 1, [30] = 1, [31] = 1, [127] = 1,
};

static void check_value(lua_State* L, const char* name, const char* v,
                        size_t n) {
  const unsigned char* p = (const unsigned char*)v;
  const unsigned char* end = p + n;
  unsigned char bad = 0;
  while (p < end)
    bad |= bad_value_chars[*p++];
  if (bad)
    luaL_error(L, "invalid character in the value of header '%s'", name);
}

static int hbuf_reserve(http_response_t* r, size_t more) {
  if (r->hlen + more > r->hcap) {
    uint32_t cap = r->hcap ? r->hcap : 256;
    char* grown;
    while (cap < r->hlen + more)
      cap *= 2;
    grown = realloc(r->hbuf, cap);
    if (grown == NULL)
      return 0;
    r->hbuf = grown;
    r->hcap = cap;
    if (r->hbuf_scratch) {
      hscratch.buf = grown;
      hscratch.cap = cap;
    }
  }
  return 1;
}

/* Finds the line of a header: its start and length, from *from on. */
static int find_line(http_response_t* r, const char* name, size_t n,
                     uint32_t* from, uint32_t* len) {
  uint32_t pos = *from;
  while (pos < r->hlen) {
    char* line = r->hbuf + pos;
    char* end = memchr(line, '\n', r->hlen - pos);
    uint32_t l = (uint32_t)(end - line) + 1;
    if (l > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
      *from = pos;
      *len = l;
      return 1;
    }
    pos += l;
  }
  return 0;
}

static void remove_header(http_response_t* r, const char* name, size_t n) {
  uint32_t from = 0, len;
  while (find_line(r, name, n, &from, &len)) {
    memmove(r->hbuf + from, r->hbuf + from + len, r->hlen - from - len);
    r->hlen -= len;
  }
}

/* Notes the headers the engine would otherwise write itself. */
static void note_header(http_response_t* r, const char* name, size_t n,
                        const char* v, size_t vn, int set) {
  if (n == 14 && strncasecmp(name, "content-length", n) == 0) {
    r->has_length = (uint8_t)set;
    r->length = set ? strtoull(v, NULL, 10) : 0;
  } else if (n == 17 && strncasecmp(name, "transfer-encoding", n) == 0) {
    r->has_te = (uint8_t)set;
    r->chunked =
        (uint8_t)(set && vn >= 7 && strncasecmp(v + vn - 7, "chunked", 7) == 0);
  } else if (n == 4 && strncasecmp(name, "date", n) == 0) {
    r->has_date = (uint8_t)set;
  } else if (n == 10 && strncasecmp(name, "connection", n) == 0) {
    r->has_conn = (uint8_t)set;
    r->conn_close =
        (uint8_t)(set && vn >= 5 && strncasecmp(v, "close", 5) == 0);
  }
}

static void add_line(lua_State* L, http_response_t* r, const char* name,
                     size_t n, int vidx) {
  size_t vn;
  const char* v;
  if (lua_type(L, vidx) == LUA_TNUMBER) {
    lua_pushvalue(L, vidx);
    v = lua_tolstring(L, -1, &vn);
    lua_pop(L, 1); /* a number's string is interned while we copy */
  } else {
    v = luaL_checklstring(L, vidx, &vn);
  }
  check_value(L, name, v, vn);
  if (!hbuf_reserve(r, n + vn + 4))
    luaL_error(L, "not enough memory");
  memcpy(r->hbuf + r->hlen, name, n);
  r->hlen += (uint32_t)n;
  memcpy(r->hbuf + r->hlen, ": ", 2);
  memcpy(r->hbuf + r->hlen + 2, v, vn);
  r->hlen += (uint32_t)vn + 2;
  memcpy(r->hbuf + r->hlen, "\r\n", 2);
  r->hlen += 2;
  note_header(r, name, n, v, vn, 1);
}

/* Sets a header from the value at vidx: a string, a number, or an array
 * of them (one line each). Replaces earlier lines of the same name. */
static void set_header(lua_State* L, http_response_t* r, int nidx, int vidx) {
  size_t n;
  const char* name = luaL_checklstring(L, nidx, &n);
  check_name(L, name, n);
  remove_header(r, name, n);
  note_header(r, name, n, "", 0, 0);
  if (lua_type(L, vidx) == LUA_TTABLE) {
    lua_Integer i, len = luaL_len(L, vidx);
    for (i = 1; i <= len; i++) {
      lua_rawgeti(L, vidx, i);
      add_line(L, r, name, n, lua_gettop(L));
      lua_pop(L, 1);
    }
  } else {
    add_line(L, r, name, n, vidx);
  }
}

static int res_set_header(lua_State* L) {
  int gone;
  http_conn_t* c = live_res(L, 1, &gone);
  luaL_checkany(L, 3);
  if (gone || c->res.head_sent || c->res.head_fixed)
    return luaL_error(L, "cannot set headers after they are sent");
  set_header(L, &c->res, 2, 3);
  lua_settop(L, 1);
  return 1;
}

/* getHeader(name) -> value | array of values | nil */
static int res_get_header(lua_State* L) {
  int gone;
  http_conn_t* c = live_res(L, 1, &gone);
  size_t n;
  const char* name = luaL_checklstring(L, 2, &n);
  uint32_t from = 0, len;
  int count = 0;
  if (gone)
    return 0;
  while (find_line(&c->res, name, n, &from, &len)) {
    const char* v = c->res.hbuf + from + n + 2;
    size_t vn = len - n - 4;
    if (count == 1) { /* a second one: make an array */
      lua_createtable(L, 2, 0);
      lua_insert(L, -2);
      lua_rawseti(L, -2, 1);
    }
    lua_pushlstring(L, v, vn);
    if (count >= 1)
      lua_rawseti(L, -2, count + 1);
    count++;
    from += len;
  }
  return count > 0 ? 1 : 0;
}

static int res_has_header(lua_State* L) {
  int gone;
  http_conn_t* c = live_res(L, 1, &gone);
  size_t n;
  const char* name = luaL_checklstring(L, 2, &n);
  uint32_t from = 0, len;
  lua_pushboolean(L, !gone && find_line(&c->res, name, n, &from, &len));
  return 1;
}

static int res_remove_header(lua_State* L) {
  int gone;
  http_conn_t* c = live_res(L, 1, &gone);
  size_t n;
  const char* name = luaL_checklstring(L, 2, &n);
  if (gone || c->res.head_sent || c->res.head_fixed)
    return luaL_error(L, "cannot remove headers after they are sent");
  remove_header(&c->res, name, n);
  note_header(&c->res, name, n, "", 0, 0);
  return 0;
}

/* getHeaders() -> { [lower-case name] = value or array } */
static int res_get_headers(lua_State* L) {
  int gone;
  http_conn_t* c = live_res(L, 1, &gone);
  uint32_t pos = 0;
  lua_newtable(L);
  if (gone)
    return 1;
  while (pos < c->res.hlen) {
    char* line = c->res.hbuf + pos;
    char* colon = memchr(line, ':', c->res.hlen - pos);
    char* end = memchr(line, '\n', c->res.hlen - pos);
    push_lower(L, line, (size_t)(colon - line));
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushlstring(L, colon + 2, (size_t)(end - colon - 3));
    } else {
      if (lua_type(L, -1) != LUA_TTABLE) {
        lua_createtable(L, 2, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
      }
      lua_pushlstring(L, colon + 2, (size_t)(end - colon - 3));
      lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    }
    lua_rawset(L, -3);
    pos += (uint32_t)(end - line) + 1;
  }
  return 1;
}

static int no_body_status(int status) {
  return status == 204 || status == 304 || (status >= 100 && status < 200);
}

/* Writes the status line and headers; body_len is the body's length when
 * finish() knows it, or -1 for a streamed body. Returns the head's length
 * in buf (which the caller frees when it is not `small`). */
#define PUT(lit)                           \
  do {                                     \
    memcpy(buf + n, lit, sizeof(lit) - 1); \
    n += sizeof(lit) - 1;                  \
  } while (0)

static size_t build_head(http_conn_t* c, long long body_len, char** out,
                         char* small, size_t small_size) {
  http_response_t* r = &c->res;
  const char* reason = NULL;
  size_t reason_len = 0, need, n = 0;
  char* buf;
  lua_State* L = c->server->rt->L;
  int status = r->status;
  int keep = c->keep_alive && !c->server->closing && !r->conn_close;
  int v10 = c->parser.http_major == 1 && c->parser.http_minor == 0;
  int framing = 0; /* 1: Content-Length, 2: chunked */
  if (r->reason_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->reason_ref);
    reason = lua_tolstring(L, -1, &reason_len);
    lua_pop(L, 1); /* anchored by the registry */
  } else if (status != 200) {
    reason = http_status_text(status);
    reason_len = strlen(reason);
  }
  if (no_body_status(status)) {
    r->no_body = 1;
  } else if (!r->has_length && !r->has_te) {
    if (body_len >= 0) {
      framing = 1;
    } else if (!v10) {
      framing = 2;
      r->chunked = 1;
    } else {
      keep = 0; /* HTTP/1.0 without a length: the end of the body is EOF */
    }
  }
  c->keep_alive = (uint8_t)keep;
  need = 16 + reason_len + r->hlen + HTTP_DATE_LINE_MAX + 48 + 32;
  buf = need <= small_size ? small : malloc(need);
  if (buf == NULL)
    return 0;
  if (status == 200 && reason == NULL) {
    PUT("HTTP/1.1 200 OK\r\n");
  } else {
    PUT("HTTP/1.1 ");
    n += put_dec(buf + n, (unsigned long long)status);
    buf[n++] = ' ';
    memcpy(buf + n, reason, reason_len);
    n += reason_len;
    PUT("\r\n");
  }
  if (r->hlen > 0) /* hbuf is NULL until a header is set */
    memcpy(buf + n, r->hbuf, r->hlen);
  n += r->hlen;
  if (!r->has_date)
    n += http_date_put(buf + n);
  if (framing == 1) {
    PUT("Content-Length: ");
    n += put_dec(buf + n, (unsigned long long)body_len);
    PUT("\r\n");
  } else if (framing == 2) {
    PUT("Transfer-Encoding: chunked\r\n");
  }
  if (!r->has_conn) {
    if (!keep)
      PUT("Connection: close\r\n");
    else if (v10)
      PUT("Connection: keep-alive\r\n");
  }
  PUT("\r\n");
  r->head_sent = 1;
  *out = buf;
  return n;
}

static int res_status_check(lua_State* L, int status) {
  if (status < 100 || status > 999)
    return luaL_error(L, "invalid status code %d", status);
  return status;
}

/* writeHead(status [, reason] [, headers]) -> res */
static int res_write_head(lua_State* L) {
  int gone;
  http_conn_t* c = live_res(L, 1, &gone);
  int status = res_status_check(L, (int)luaL_checkinteger(L, 2));
  int hidx = 3;
  if (gone)
    return luaL_error(L, "the response has already ended");
  if (c->res.head_sent || c->res.head_fixed)
    return luaL_error(L, "cannot write the head twice (headers sent)");
  c->res.status = status;
  if (lua_type(L, 3) == LUA_TSTRING) {
    size_t n;
    const char* reason = lua_tolstring(L, 3, &n);
    check_value(L, "status message", reason, n);
    luaL_unref(L, LUA_REGISTRYINDEX, c->res.reason_ref);
    lua_pushvalue(L, 3);
    c->res.reason_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    hidx = 4;
  }
  if (!lua_isnoneornil(L, hidx)) {
    luaL_checktype(L, hidx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, hidx)) {
      if (lua_type(L, -2) == LUA_TSTRING)
        set_header(L, &c->res, lua_gettop(L) - 1, lua_gettop(L));
      lua_pop(L, 1);
    }
  }
  /* Fixed now, sent with the first write or finish (then with a
   * Content-Length when finish brings the whole body). */
  c->res.head_fixed = 1;
  lua_settop(L, 1);
  return 1;
}

/* Sends the head if it is not out yet (streaming: no known length). */
static void ensure_head(http_conn_t* c) {
  char small[1024];
  char* head;
  size_t n;
  if (c->res.head_sent)
    return;
  n = build_head(c, -1, &head, small, sizeof(small));
  if (n == 0) {
    http_conn_close(c);
    return;
  }
  http_conn_write(c, head, n, NULL, 0);
  if (head != small)
    free(head);
}

/* _write(chunk) -> below the high-water mark (boolean) | nil, 'closed' */
static int res_write(lua_State* L) {
  int gone;
  http_conn_t* c = live_res(L, 1, &gone);
  size_t n;
  const char* data = luaL_checklstring(L, 2, &n);
  if (gone) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  if (c->res.finished)
    return luaL_error(L, "write after end");
  ensure_head(c);
  if (n > 0 && !c->res.no_body && !c->closing) {
    if (c->res.chunked) {
      char size_line[24];
      uv_buf_t bufs[3];
      size_t sl = put_chunk_size(size_line, n);
      bufs[0] = uv_buf_init(size_line, (unsigned)sl);
      bufs[1] = uv_buf_init((char*)data, (unsigned)n);
      bufs[2] = uv_buf_init((char*)"\r\n", 2);
      http_conn_writev(c, bufs, 3, L, 2);
    } else {
      http_conn_write(c, data, n, L, 2);
    }
    c->res.sent += n;
  }
  lua_pushboolean(L,
                  c->closing ? 0 : http_conn_queue_size(c) <= c->server->hwm);
  if (c->closing) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  return 1;
}

/* finish([body]) -> res: the last of the response; with everything known
 * up front, the head and body go in one write. */
static int res_finish(lua_State* L) {
  int gone;
  http_conn_t* c = live_res(L, 1, &gone);
  size_t n = 0;
  const char* body = NULL;
  if (!lua_isnoneornil(L, 2))
    body = luaL_checklstring(L, 2, &n);
  if (gone) {
    lua_settop(L, 1);
    return 1; /* finishing twice, or after the client left, is harmless */
  }
  if (c->res.finished) {
    lua_settop(L, 1);
    return 1;
  }
  if (!c->res.head_sent) {
    char small[1024];
    char* head;
    size_t hn = build_head(c, (long long)n, &head, small, sizeof(small));
    if (hn == 0)
      return luaL_error(L, "not enough memory");
    if (c->res.no_body || n == 0) {
      http_conn_write(c, head, hn, NULL, 0);
    } else {
      uv_buf_t bufs[2];
      bufs[0] = uv_buf_init(head, (unsigned)hn);
      bufs[1] = uv_buf_init((char*)body, (unsigned)n);
      http_conn_writev(c, bufs, 2, L, 2);
    }
    if (head != small)
      free(head);
  } else if (!c->res.no_body) {
    if (c->res.chunked) {
      char size_line[24];
      uv_buf_t bufs[3];
      if (n > 0) {
        size_t sl = put_chunk_size(size_line, n);
        bufs[0] = uv_buf_init(size_line, (unsigned)sl);
        bufs[1] = uv_buf_init((char*)body, (unsigned)n);
        bufs[2] = uv_buf_init((char*)"\r\n0\r\n\r\n", 7);
        http_conn_writev(c, bufs, 3, L, 2);
      } else {
        http_conn_write(c, "0\r\n\r\n", 5, NULL, 0);
      }
    } else if (n > 0) {
      http_conn_write(c, body, n, L, 2);
    }
  }
  c->res.sent += n;
  c->res.finished = 1;
  http_conn_exchange_done(c);
  lua_settop(L, 1);
  return 1;
}

static int res_flush_headers(lua_State* L) {
  int gone;
  http_conn_t* c = live_res(L, 1, &gone);
  if (!gone)
    ensure_head(c);
  return 0;
}

/* _wantDrain() -> true while the response waits for the queue to drain */
static int res_want_drain(lua_State* L) {
  int gone;
  http_conn_t* c = live_res(L, 1, &gone);
  if (gone || http_conn_queue_size(c) <= c->server->hwm) {
    lua_pushboolean(L, 0);
    return 1;
  }
  c->want_drain = 1;
  pin_res(L, c, 1);
  lua_pushboolean(L, 1);
  return 1;
}

static int res_want_finish(lua_State* L) {
  int gone;
  http_conn_t* c = live_res(L, 1, &gone);
  if (!gone) {
    c->want_finish = 1;
    pin_res(L, c, 1);
  }
  lua_pushboolean(L, !gone);
  return 1;
}

static int res_want_close(lua_State* L) {
  int gone;
  http_conn_t* c = live_res(L, 1, &gone);
  if (!gone) {
    c->want_close = 1;
    pin_res(L, c, 1);
  }
  lua_pushboolean(L, !gone);
  return 1;
}

/* _destroy(): drop the connection (an error after the head was sent). */
static int res_destroy(lua_State* L) {
  int gone;
  http_conn_t* c = live_res(L, 1, &gone);
  if (!gone)
    http_conn_close(c);
  return 0;
}

static int res_index(lua_State* L) {
  http_res_t* r = lua_touserdata(L, 1);
  http_conn_t* c = res_conn(r);
  const char* key = lua_tostring(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
    return 1;
  lua_pop(L, 1);
  if (key != NULL && lua_type(L, 2) == LUA_TSTRING) {
    if (strcmp(key, "statusCode") == 0) {
      if (c == NULL)
        return 0;
      lua_pushinteger(L, c->res.status);
      return 1;
    }
    if (strcmp(key, "headersSent") == 0) {
      lua_pushboolean(L, c == NULL || c->res.head_sent || c->res.head_fixed);
      return 1;
    }
    if (strcmp(key, "finished") == 0 || strcmp(key, "writableEnded") == 0) {
      lua_pushboolean(L, c == NULL || c->res.finished);
      return 1;
    }
    if (strcmp(key, "statusMessage") == 0) {
      if (c == NULL)
        return 0;
      if (c->res.reason_ref != LUA_NOREF)
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->res.reason_ref);
      else
        lua_pushstring(L, http_status_text(c->res.status));
      return 1;
    }
  }
  if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE)
    return 0;
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int res_newindex(lua_State* L) {
  http_res_t* r = lua_touserdata(L, 1);
  http_conn_t* c = res_conn(r);
  const char* key = lua_tostring(L, 2);
  if (key != NULL && strcmp(key, "statusCode") == 0) {
    int status = res_status_check(L, (int)luaL_checkinteger(L, 3));
    if (c != NULL && !c->res.head_sent && !c->res.head_fixed)
      c->res.status = status;
    return 0;
  }
  if (key != NULL && strcmp(key, "statusMessage") == 0) {
    size_t n;
    const char* reason = luaL_checklstring(L, 3, &n);
    check_value(L, "status message", reason, n);
    if (c != NULL && !c->res.head_sent && !c->res.head_fixed) {
      luaL_unref(L, LUA_REGISTRYINDEX, c->res.reason_ref);
      lua_pushvalue(L, 3);
      c->res.reason_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 0;
  }
  push_cache(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

static int res_tostring(lua_State* L) {
  lua_pushfstring(L, "http response: %p", lua_touserdata(L, 1));
  return 1;
}

static int req_tostring(lua_State* L) {
  lua_pushfstring(L, "http request: %p", lua_touserdata(L, 1));
  return 1;
}

static const luaL_Reg res_c_methods[] = {
    {"setHeader", res_set_header},   {"getHeader", res_get_header},
    {"hasHeader", res_has_header},   {"removeHeader", res_remove_header},
    {"getHeaders", res_get_headers}, {"writeHead", res_write_head},
    {"finish", res_finish},          {"flushHeaders", res_flush_headers},
    {"_write", res_write},           {"_wantDrain", res_want_drain},
    {"_wantClose", res_want_close},  {"_wantFinish", res_want_finish},
    {"_destroy", res_destroy},       {NULL, NULL},
};

/* Copies the Lua table at idx into the methods table under key; the C
 * methods stay (they are set again after). */
static void merge(lua_State* L, int idx, void* key, const luaL_Reg* c) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  luaL_setfuncs(L, c, 0);
  lua_pop(L, 1);
}

/* set_methods(req_methods, req_getters, res_methods): http.lua's methods
 * join the C ones; getters compute fields such as req.path on first use. */
static int set_methods(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  merge(L, 1, &req_methods_key, req_c_methods);
  lua_pushvalue(L, 2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &req_getters_key);
  merge(L, 3, &res_methods_key, res_c_methods);
  return 0;
}

/* Pushes a new methods table with the C methods, kept under key. */
static void new_methods(lua_State* L, void* key, const luaL_Reg* c) {
  lua_newtable(L);
  luaL_setfuncs(L, c, 0);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

void lh_open_http_message(lua_State* L) {
  lua_createtable(L, 0, 4);
  new_methods(L, &req_methods_key, req_c_methods);
  lua_pushcclosure(L, req_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, req_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, req_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "IncomingMessage");
  lua_setfield(L, -2, "__name");
  req_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_createtable(L, 0, 4);
  new_methods(L, &res_methods_key, res_c_methods);
  lua_pushcclosure(L, res_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, res_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, res_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "ServerResponse");
  lua_setfield(L, -2, "__name");
  res_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

int lh_http_set_methods(lua_State* L) {
  return set_methods(L);
}
