/* An llhttp response parser for the HTTP client (internal.http_parser):
 * one per client connection. parser:execute(bytes) runs llhttp over the
 * bytes and returns what happened as a list of events, so that no Lua code
 * runs inside llhttp's callbacks:
 *
 *   events, n [, code, reason] = parser:execute(data)
 *
 * events[2i-1] is a kind and events[2i] its value, for i = 1..n:
 *   'info'    head table of a 1xx response (other than a 101 upgrade)
 *   'head'    head table: statusCode, statusMessage, httpVersion,
 *             httpVersionMajor, httpVersionMinor, headers (lower-cased
 *             names, repeats joined as Node joins them), rawHeaders,
 *             upgrade
 *   'body'    a string: the body bytes of this call, chunked framing
 *             removed (consecutive pieces merged)
 *   'done'    the message is complete; the value says whether the
 *             connection may carry another exchange (keep-alive)
 *   'upgrade' the bytes after a 101 / CONNECT head: another protocol's
 * code and reason follow when parsing failed ('HPE_INVALID_CONSTANT',
 * 'Expected HTTP/'); the events before the failure still count. */
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define PARSER_MT "luvhost.http_parser"
#define HEAD_MIN 512

typedef struct {
  llhttp_t parser;
  lua_State* L; /* during execute: the events table is on its top */
  lua_Integer nevents;
  uint32_t max_head;
  /* the head of the message being parsed */
  char* head;
  uint32_t head_len, head_cap, head_bytes;
  http_field_t* fields;
  uint32_t nfields, fields_cap;
  uint32_t status_off, status_len;
  uint8_t in_value;
  uint8_t no_body; /* the request was HEAD: the response has no body */
  uint8_t info;    /* the message being parsed is a 1xx */
  uint8_t closed;
  const char* user_code; /* our own error code for HPE_USER */
  /* body bytes of this execute: one span into the caller's data, or a
   * copy once a second span joins it */
  const char* span;
  size_t span_len;
  char* body;
  size_t body_len, body_cap;
} http_parser_t;

static llhttp_settings_t settings;

#define PARSER(p) ((http_parser_t*)(p))

/* Events
 * ----------------------------------------------------------------------- */

/* Appends kind and the value on the stack top to the events table. */
static void add_event(http_parser_t* hp, const char* kind) {
  lua_State* L = hp->L; /* ... events value */
  lua_pushstring(L, kind);
  lua_rawseti(L, -3, hp->nevents * 2 + 1);
  lua_rawseti(L, -2, hp->nevents * 2 + 2); /* ... events */
  hp->nevents++;
}

/* The body bytes gathered so far become one 'body' event. */
static void flush_body(http_parser_t* hp) {
  if (hp->span_len > 0) {
    lua_pushlstring(hp->L, hp->span, hp->span_len);
    hp->span_len = 0;
  } else if (hp->body_len > 0) {
    lua_pushlstring(hp->L, hp->body, hp->body_len);
    hp->body_len = 0;
  } else {
    return;
  }
  add_event(hp, "body");
}

/* llhttp callbacks
 * ------------------------------------------------------------- */

static int fail_user(http_parser_t* hp, const char* code, const char* reason) {
  hp->user_code = code;
  llhttp_set_error_reason(&hp->parser, reason);
  return HPE_USER;
}

static int head_append(http_parser_t* hp, const char* at, size_t len) {
  hp->head_bytes += (uint32_t)len;
  if (hp->head_bytes > hp->max_head)
    return fail_user(hp, "HPE_HEADER_OVERFLOW", "Header overflow");
  if (hp->head_len + len > hp->head_cap) {
    uint32_t cap = hp->head_cap ? hp->head_cap : HEAD_MIN;
    char* grown;
    while (cap < hp->head_len + len)
      cap *= 2;
    grown = realloc(hp->head, cap);
    if (grown == NULL)
      return fail_user(hp, "ENOMEM", "not enough memory");
    hp->head = grown;
    hp->head_cap = cap;
  }
  memcpy(hp->head + hp->head_len, at, len);
  hp->head_len += (uint32_t)len;
  return 0;
}

static int on_message_begin(llhttp_t* p) {
  http_parser_t* hp = PARSER(p);
  hp->head_len = hp->head_bytes = 0;
  hp->nfields = 0;
  hp->in_value = 0;
  hp->status_off = hp->status_len = 0;
  hp->info = 0;
  return 0;
}

static int on_status(llhttp_t* p, const char* at, size_t len) {
  http_parser_t* hp = PARSER(p);
  if (hp->status_len == 0)
    hp->status_off = hp->head_len;
  hp->status_len += (uint32_t)len;
  return head_append(hp, at, len);
}

static int on_header_field(llhttp_t* p, const char* at, size_t len) {
  http_parser_t* hp = PARSER(p);
  http_field_t* f;
  if (hp->nfields == 0 || hp->in_value) { /* a new field line */
    if (hp->nfields == hp->fields_cap) {
      uint32_t cap = hp->fields_cap ? hp->fields_cap * 2 : 16;
      http_field_t* grown = realloc(hp->fields, sizeof(*grown) * cap);
      if (grown == NULL)
        return fail_user(hp, "ENOMEM", "not enough memory");
      hp->fields = grown;
      hp->fields_cap = cap;
    }
    f = &hp->fields[hp->nfields++];
    f->name = f->value = hp->head_len;
    f->name_len = f->value_len = 0;
    hp->in_value = 0;
  }
  hp->fields[hp->nfields - 1].name_len += (uint32_t)len;
  return head_append(hp, at, len);
}

static int on_header_field_complete(llhttp_t* p) {
  http_parser_t* hp = PARSER(p);
  hp->in_value = 1; /* the next field callback starts a new line */
  if (hp->nfields > 0)
    hp->fields[hp->nfields - 1].value = hp->head_len;
  return 0;
}

static int on_header_value(llhttp_t* p, const char* at, size_t len) {
  http_parser_t* hp = PARSER(p);
  if (hp->nfields == 0)
    return 0;
  hp->fields[hp->nfields - 1].value_len += (uint32_t)len;
  return head_append(hp, at, len);
}

/* Pushes the head table of the message parsed so far. */
static void push_head(http_parser_t* hp) {
  lua_State* L = hp->L;
  llhttp_t* p = &hp->parser;
  uint32_t i;
  for (i = 0; i < hp->nfields; i++) { /* trailing blanks are no value's */
    http_field_t* f = &hp->fields[i];
    while (f->value_len > 0 && (hp->head[f->value + f->value_len - 1] == ' ' ||
                                hp->head[f->value + f->value_len - 1] == '\t'))
      f->value_len--;
  }
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, p->status_code);
  lua_setfield(L, -2, "statusCode");
  lua_pushlstring(L, hp->head + hp->status_off, hp->status_len);
  lua_setfield(L, -2, "statusMessage");
  lua_pushfstring(L, "%d.%d", p->http_major, p->http_minor);
  lua_setfield(L, -2, "httpVersion");
  lua_pushinteger(L, p->http_major);
  lua_setfield(L, -2, "httpVersionMajor");
  lua_pushinteger(L, p->http_minor);
  lua_setfield(L, -2, "httpVersionMinor");
  http_push_headers(L, hp->head, hp->fields, hp->nfields);
  lua_setfield(L, -2, "headers");
  http_push_raw_headers(L, hp->head, hp->fields, hp->nfields);
  lua_setfield(L, -2, "rawHeaders");
  lua_pushboolean(L, p->upgrade);
  lua_setfield(L, -2, "upgrade");
}

static int on_headers_complete(llhttp_t* p) {
  http_parser_t* hp = PARSER(p);
  int status = p->status_code;
  push_head(hp);
  if (p->upgrade) { /* 101, or a CONNECT answer: llhttp pauses after it */
    add_event(hp, "head");
    return 0;
  }
  if (status >= 100 && status < 200) {
    hp->info = 1; /* a 100 Continue, 103 Early Hints...: the real one follows */
    add_event(hp, "info");
    return 1;
  }
  add_event(hp, "head");
  /* No body after HEAD, 204 and 304, whatever the framing headers say
   * (a 304 may announce the length of what it did not send). */
  if (hp->no_body || status == 204 || status == 304)
    return 1;
  return 0;
}

static int on_body(llhttp_t* p, const char* at, size_t len) {
  http_parser_t* hp = PARSER(p);
  if (hp->span_len == 0 && hp->body_len == 0) {
    hp->span = at; /* the common case: one piece, no copy */
    hp->span_len = len;
    return 0;
  }
  if (hp->span_len + hp->body_len + len > hp->body_cap) {
    size_t cap = hp->body_cap ? hp->body_cap : 4096;
    char* grown;
    while (cap < hp->span_len + hp->body_len + len)
      cap *= 2;
    grown = realloc(hp->body, cap);
    if (grown == NULL)
      return fail_user(hp, "ENOMEM", "not enough memory");
    hp->body = grown;
    hp->body_cap = cap;
  }
  if (hp->span_len > 0) { /* the first piece joins the copy */
    memcpy(hp->body, hp->span, hp->span_len);
    hp->body_len = hp->span_len;
    hp->span_len = 0;
  }
  memcpy(hp->body + hp->body_len, at, len);
  hp->body_len += len;
  return 0;
}

static int on_message_complete(llhttp_t* p) {
  http_parser_t* hp = PARSER(p);
  if (hp->info) { /* the final response is still to come */
    hp->info = 0;
    return 0;
  }
  flush_body(hp);
  lua_pushboolean(hp->L, llhttp_should_keep_alive(p));
  add_event(hp, "done");
  hp->no_body = 0; /* it applied to this response only */
  return 0;
}

/* The userdata
 * ----------------------------------------------------------------- */

static void parser_release(http_parser_t* hp) {
  free(hp->head);
  free(hp->fields);
  free(hp->body);
  hp->head = hp->body = NULL;
  hp->fields = NULL;
  hp->head_cap = hp->fields_cap = 0;
  hp->body_cap = 0;
  hp->closed = 1;
}

static http_parser_t* check_parser(lua_State* L, int idx) {
  http_parser_t* hp = luaL_checkudata(L, idx, PARSER_MT);
  if (hp->closed)
    luaL_error(L, "attempt to use a closed http parser");
  return hp;
}

/* new([maxHeaderSize]) -> parser for responses */
static int parser_new(lua_State* L) {
  lua_Integer max_head = luaL_optinteger(L, 1, 16384);
  http_parser_t* hp;
  luaL_argcheck(L, max_head > 0 && max_head <= UINT32_MAX, 1,
                "maxHeaderSize must be a positive integer");
  hp = lua_newuserdatauv(L, sizeof(*hp), 0);
  memset(hp, 0, sizeof(*hp));
  hp->closed = 1; /* until it is set up: __gc has nothing to free */
  luaL_setmetatable(L, PARSER_MT);
  llhttp_init(&hp->parser, HTTP_RESPONSE, &settings);
  hp->max_head = (uint32_t)max_head;
  hp->closed = 0;
  return 1;
}

/* Ends a call: the events table on top, its count, and on failure the
 * error's code and reason. */
static int results(lua_State* L, http_parser_t* hp, llhttp_errno_t err) {
  hp->L = NULL;
  hp->span = NULL;
  hp->span_len = 0;
  lua_pushinteger(L, hp->nevents);
  if (err == HPE_OK)
    return 2;
  if (err == HPE_USER && hp->user_code != NULL)
    lua_pushstring(L, hp->user_code);
  else
    lua_pushstring(L, llhttp_errno_name(err));
  lua_pushstring(L, llhttp_get_error_reason(&hp->parser));
  return 4;
}

static void begin(lua_State* L, http_parser_t* hp) {
  lua_createtable(L, 4, 0);
  hp->L = L;
  hp->nevents = 0;
  hp->span = NULL;
  hp->span_len = 0;
  hp->body_len = 0;
  hp->user_code = NULL;
}

/* execute(data) -> events, n [, code, reason] */
static int parser_execute(lua_State* L) {
  http_parser_t* hp = check_parser(L, 1);
  size_t len;
  const char* data = luaL_checklstring(L, 2, &len);
  llhttp_errno_t err;
  lua_settop(L, 2);
  begin(L, hp);
  err = llhttp_execute(&hp->parser, data, len);
  flush_body(hp); /* the span points into data: copied before we return */
  if (err == HPE_PAUSED_UPGRADE) {
    const char* pos = llhttp_get_error_pos(&hp->parser);
    lua_pushlstring(L, pos, (size_t)(data + len - pos));
    add_event(hp, "upgrade");
    err = HPE_OK;
  }
  return results(L, hp, err);
}

/* finish() -> events, n [, code, reason]: the peer closed its side; a
 * body that runs to the end of the connection is complete now. */
static int parser_finish(lua_State* L) {
  http_parser_t* hp = check_parser(L, 1);
  llhttp_errno_t err;
  lua_settop(L, 1);
  begin(L, hp);
  err = llhttp_finish(&hp->parser);
  return results(L, hp, err);
}

/* expectNoBody(): the next response answers a HEAD request. */
static int parser_expect_no_body(lua_State* L) {
  check_parser(L, 1)->no_body = 1;
  return 0;
}

/* needsEof() -> true while the body being read ends at the end of the
 * connection (no length, not chunked). */
static int parser_needs_eof(lua_State* L) {
  http_parser_t* hp = check_parser(L, 1);
  lua_pushboolean(L, llhttp_message_needs_eof(&hp->parser));
  return 1;
}

/* close(): frees the buffers now (also done by the collector). */
static int parser_close(lua_State* L) {
  http_parser_t* hp = luaL_checkudata(L, 1, PARSER_MT);
  if (!hp->closed)
    parser_release(hp);
  return 0;
}

static int parser_tostring(lua_State* L) {
  http_parser_t* hp = luaL_checkudata(L, 1, PARSER_MT);
  lua_pushfstring(L, "http_parser: %p%s", (void*)hp,
                  hp->closed ? " (closed)" : "");
  return 1;
}

static const luaL_Reg parser_methods[] = {
    {"execute", parser_execute},
    {"finish", parser_finish},
    {"expectNoBody", parser_expect_no_body},
    {"needsEof", parser_needs_eof},
    {"close", parser_close},
    {NULL, NULL},
};

static const luaL_Reg parser_meta[] = {
    {"__gc", parser_close},
    {"__close", parser_close},
    {"__tostring", parser_tostring},
    {NULL, NULL},
};

static const luaL_Reg parser_functions[] = {
    {"new", parser_new},
    {NULL, NULL},
};

int luaopen_internal_http_parser(lua_State* L) {
  llhttp_settings_init(&settings);
  settings.on_message_begin = on_message_begin;
  settings.on_status = on_status;
  settings.on_header_field = on_header_field;
  settings.on_header_field_complete = on_header_field_complete;
  settings.on_header_value = on_header_value;
  settings.on_headers_complete = on_headers_complete;
  settings.on_body = on_body;
  settings.on_message_complete = on_message_complete;
  if (luaL_newmetatable(L, PARSER_MT)) {
    luaL_setfuncs(L, parser_meta, 0);
    luaL_newlib(L, parser_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, parser_functions);
  return 1;
}
