/* HTTP/1.1 server connections: accept, parse with llhttp, one Lua call per
 * request, write responses, keep-alive, pipelining (answered in order: the
 * parser pauses after a request until its response is done), limits and
 * timeouts. The request and response userdata are in http_message.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "http.h"

#define HEAD_MIN 512
#define COPY_LIMIT 4096 /* bodies up to this are copied next to the head */

static llhttp_settings_t settings;

/* Date ------------------------------------------------------------------------
 */

static time_t date_second = -1;
static char date_line[HTTP_DATE_LINE_MAX];
static size_t date_len;

/* "Date: Thu, 27 Nov 2026 13:24:05 GMT\r\n", made once a second. */
/* Writes the Date line, made once a second; returns its length. */
size_t http_date_put(char* out) {
  time_t now = time(NULL);
  if (now != date_second) {
    struct tm tm;
    gmtime_r(&now, &tm);
    date_len = strftime(date_line, sizeof(date_line),
                        "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    date_second = now;
  }
  memcpy(out, date_line, date_len);
  return date_len;
}

/* The connection table: requests and responses find their connection by
 * slot and generation (see http_ref_t). */

static http_conn_t** slots;
static uint32_t* slot_gens;
static uint32_t nslots, free_slot = UINT32_MAX;

static int slot_take(http_conn_t* c) {
  uint32_t i;
  if (free_slot != UINT32_MAX) {
    i = free_slot;
    free_slot = (uint32_t)(uintptr_t)slots[i];
  } else {
    if ((nslots & (nslots - 1)) == 0 && nslots >= 64) { /* powers of two */
      http_conn_t** s2 = realloc(slots, sizeof(*s2) * nslots * 2);
      uint32_t* g2;
      if (s2 == NULL)
        return -1;
      slots = s2;
      g2 = realloc(slot_gens, sizeof(*g2) * nslots * 2);
      if (g2 == NULL)
        return -1;
      slot_gens = g2;
    } else if (nslots == 0) {
      slots = malloc(sizeof(*slots) * 64);
      slot_gens = malloc(sizeof(*slot_gens) * 64);
      if (slots == NULL || slot_gens == NULL)
        return -1;
    }
    i = nslots++;
    slot_gens[i] = 0;
  }
  slots[i] = c;
  c->slot = i;
  return 0;
}

static void slot_give(http_conn_t* c) {
  uint32_t i = c->slot;
  slot_gens[i]++;
  slots[i] = (http_conn_t*)(uintptr_t)free_slot; /* the free list */
  free_slot = i;
}

void http_conn_ref(http_conn_t* c, http_ref_t* ref) {
  ref->slot = c->slot;
  ref->slot_gen = slot_gens[c->slot];
  ref->gen = c->gen;
}

/* The connection of an exchange while it lasts, or NULL. */
http_conn_t* http_conn_lookup(const http_ref_t* ref) {
  http_conn_t* c;
  if (ref->slot >= nslots || slot_gens[ref->slot] != ref->slot_gen)
    return NULL;
  c = slots[ref->slot];
  return c->gen == ref->gen && c->active && !c->closing ? c : NULL;
}

/* Lua calls
 * -------------------------------------------------------------------- */

static void push_ref(lua_State* co, int ref) {
  lua_rawgeti(co, LUA_REGISTRYINDEX, ref);
}

/* Calls the server's event function (obj, name [, chunk]). */
static void emit(http_conn_t* c, int objref, const char* name, const char* data,
                 size_t len) {
  http_server_t* s = c->server;
  lua_State* co;
  if (objref == LUA_NOREF || s->cb[HTTP_CB_EVENT] == LUA_NOREF)
    return;
  co = lh_cb_begin(s->rt);
  if (co == NULL)
    return;
  push_ref(co, s->cb[HTTP_CB_EVENT]);
  push_ref(co, objref);
  lua_pushstring(co, name);
  if (data != NULL)
    lua_pushlstring(co, data, len);
  else
    lua_pushnil(co);
  lh_cb_run(s->rt, co, 3);
}

void http_conn_emit(http_conn_t* c, int objref, const char* name) {
  emit(c, objref, name, NULL, 0);
}

static void log_error(http_server_t* s, const char* msg) {
  lua_State* co;
  if (s->cb[HTTP_CB_ERROR] == LUA_NOREF)
    return;
  co = lh_cb_begin(s->rt);
  if (co == NULL)
    return;
  push_ref(co, s->cb[HTTP_CB_ERROR]);
  lua_pushstring(co, msg);
  lh_cb_run(s->rt, co, 1);
}

/* Server life
 * ------------------------------------------------------------------ */

static void stop_sweep(http_server_t* s);

static void server_maybe_closed(http_server_t* s) {
  lua_State* co;
  if (!s->closing || s->listening || s->nconns > 0)
    return;
  if (s->cb[HTTP_CB_CLOSED] != LUA_NOREF) {
    int ref = s->cb[HTTP_CB_CLOSED];
    s->cb[HTTP_CB_CLOSED] = LUA_NOREF; /* once */
    co = lh_cb_begin(s->rt);
    if (co != NULL) {
      push_ref(co, ref);
      lh_cb_run(s->rt, co, 0);
    }
    luaL_unref(s->rt->L, LUA_REGISTRYINDEX, ref);
  }
  stop_sweep(s);
  /* Nothing runs for it any more: Lua may collect the server. */
  luaL_unref(s->rt->L, LUA_REGISTRYINDEX, s->self_ref);
  s->self_ref = LUA_NOREF;
}

/* Timers
 * ------------------------------------------------------------------------ */

/* Sets the connection's deadline (0: none); the sweep checks it. A store
 * per request instead of a timer heap update. */
static void arm(http_conn_t* c, uint64_t ms) {
  c->deadline = ms ? uv_now(c->server->rt->loop) + ms : 0;
}

/* Freeing
 * ----------------------------------------------------------------------- */

/* Request heads are parsed into one shared buffer; only a connection that
 * still needs its head when a read is done (a head split across reads, a
 * handler that waits) copies it into a buffer of its own. Idle
 * keep-alive connections hold no head at all. */
static int live_servers;
static struct {
  char* head;
  uint32_t head_cap;
  http_field_t* fields;
  uint32_t fields_cap;
  http_conn_t* user; /* the connection parsing into it, or NULL */
} scratch;

/* At a message's start: the shared buffer if it is free. */
static void head_take(http_conn_t* c) {
  if (c->head_scratch || c->head != NULL || scratch.user != NULL)
    return;
  scratch.user = c;
  c->head_scratch = 1;
  c->head = scratch.head;
  c->head_cap = scratch.head_cap;
  c->fields = scratch.fields;
  c->fields_cap = scratch.fields_cap;
}

static void head_forget(http_conn_t* c) {
  if (c->head_scratch) {
    scratch.user = NULL;
    c->head_scratch = 0;
  } else {
    free(c->head);
    free(c->fields);
  }
  c->head = NULL;
  c->fields = NULL;
  c->head_cap = c->fields_cap = 0;
}

/* The connection goes: its head with it. */
static void head_drop(http_conn_t* c) {
  head_forget(c);
  c->head_len = c->nfields = 0;
}

/* After a read: a head still needed moves out of the shared buffer. */
static void head_release(http_conn_t* c) {
  char* head;
  http_field_t* fields;
  if (!c->head_scratch)
    return;
  if (!c->active && !(c->in_request && !c->head_done)) {
    head_forget(c);
    return;
  }
  head = malloc(c->head_len ? c->head_len : 1);
  fields = malloc(sizeof(*fields) * (c->nfields ? c->nfields : 1));
  if (head == NULL || fields == NULL) {
    free(head);
    free(fields);
    head_drop(c);
    http_conn_close(c);
    return;
  }
  /* Either may be NULL when empty, and memcpy's pointers must not be. */
  if (c->head_len)
    memcpy(head, c->head, c->head_len);
  if (c->nfields)
    memcpy(fields, c->fields, sizeof(*fields) * c->nfields);
  scratch.user = NULL;
  c->head_scratch = 0;
  c->head = head;
  c->head_cap = c->head_len;
  c->fields = fields;
  c->fields_cap = c->nfields;
}

/* Grows the head buffer (the shared one stays shared). */
static int head_grow(http_conn_t* c, size_t need) {
  uint32_t cap = c->head_cap ? c->head_cap : HEAD_MIN;
  char* grown;
  while (cap < need)
    cap *= 2;
  grown = realloc(c->head, cap);
  if (grown == NULL)
    return -1;
  c->head = grown;
  c->head_cap = cap;
  if (c->head_scratch) {
    scratch.head = grown;
    scratch.head_cap = cap;
  }
  return 0;
}

static int fields_grow(http_conn_t* c) {
  uint32_t cap = c->fields_cap ? c->fields_cap * 2 : 16;
  http_field_t* grown = realloc(c->fields, sizeof(*grown) * cap);
  if (grown == NULL)
    return -1;
  c->fields = grown;
  c->fields_cap = cap;
  if (c->head_scratch) {
    scratch.fields = grown;
    scratch.fields_cap = cap;
  }
  return 0;
}

/* With the last server gone, nothing parses: the shared buffer goes. */
static void scratch_free(void) {
  if (scratch.user != NULL)
    return;
  free(scratch.head);
  free(scratch.fields);
  memset(&scratch, 0, sizeof(scratch));
  http_response_scratch_free();
}

static void conn_free(http_conn_t* c) {
  http_server_t* s = c->server;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->nconns--;
  slot_give(c);
  head_drop(c);
  free(c->pending);
  free(c->bodyq);
  http_response_release(&c->res);
  free(c);
  server_maybe_closed(s);
}

/* free_extra of the TCP handle: runs in its close callback, also when the
 * runtime's teardown closes it. */
static void tcp_closed(void* extra) {
  conn_free(extra);
}

/* Ends the exchange: its request and response no longer match. */
static void detach(http_conn_t* c) {
  lua_State* L = c->server->rt->L;
  c->active = 0;
  luaL_unref(L, LUA_REGISTRYINDEX, c->req_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, c->res_ref);
  c->req_ref = c->res_ref = LUA_NOREF;
  luaL_unref(L, LUA_REGISTRYINDEX, c->res.reason_ref);
  c->res.reason_ref = LUA_NOREF;
}

void http_conn_close(http_conn_t* c) {
  int res_ref = c->res_ref, req_ref = c->req_ref;
  if (c->closing)
    return;
  c->closing = 1;
  c->deadline = 0;
  if (c->reading)
    uv_read_stop((uv_stream_t*)c->tcp);
  c->reading = 0;
  /* A handler still at work hears of it (its waits end with 'closed'). */
  if (c->want_close || c->want_drain || c->want_body) {
    c->want_close = c->want_drain = 0;
    if (c->want_body && !c->complete)
      emit(c, req_ref, "close", NULL, 0);
    c->want_body = 0;
    emit(c, res_ref, "close", NULL, 0);
  }
  detach(c);
  if (!uv_is_closing((uv_handle_t*)c->tcp)) /* else: the teardown's */
    uv_close((uv_handle_t*)c->tcp, lh_handle_closed);
}

/* Closes once the queued writes are out. close() sends the FIN after the
 * data, so no shutdown() first: one syscall and one callback less for
 * every Connection: close. */
static void close_after_writes(http_conn_t* c) {
  if (c->closing)
    return;
  if (c->reading)
    uv_read_stop((uv_stream_t*)c->tcp);
  c->reading = 0;
  c->paused = 1; /* parse nothing more */
  if (uv_stream_get_write_queue_size((uv_stream_t*)c->tcp) == 0)
    http_conn_close(c);
  else
    c->close_when_drained = 1;
}

/* Writing
 * ------------------------------------------------------------------------ */

typedef struct {
  uv_write_t w;
  http_conn_t* c;
  int pin_ref;
  size_t len;
  char data[1];
} conn_write_t;

size_t http_conn_queue_size(http_conn_t* c) {
  return uv_stream_get_write_queue_size((uv_stream_t*)c->tcp);
}

static void write_cb(uv_write_t* w, int status) {
  conn_write_t* cw = (conn_write_t*)w;
  http_conn_t* c = cw->c;
  lh_runtime_t* rt = c->server->rt;
  if (cw->pin_ref != LUA_NOREF)
    luaL_unref(rt->L, LUA_REGISTRYINDEX, cw->pin_ref);
  free(cw);
  if (status < 0) {
    if (status != UV_ECANCELED)
      http_conn_close(c);
    return;
  }
  if (c->close_when_drained) {
    if (http_conn_queue_size(c) == 0)
      http_conn_close(c);
    return;
  }
  if (c->want_drain && !c->closing &&
      http_conn_queue_size(c) <= c->server->hwm) {
    c->want_drain = 0;
    emit(c, c->res_ref, "drain", NULL, 0);
  }
}

/* Drops the first `done` bytes of the three parts. */
static void skip(const char** p, size_t* len, size_t* done) {
  size_t n = *len < *done ? *len : *done;
  *p += n;
  *len -= n;
  *done -= n;
}

/* Writes head, body and tail in this order. With nothing queued it first
 * tries a plain write (no request, no callback: the common case). What
 * the kernel did not take is queued: head copied, body copied when small
 * or else pinned (the Lua string at body_idx), tail static. */
static void send3(http_conn_t* c, const char* head, size_t hlen,
                  const char* body, size_t blen, const char* tail, size_t tlen,
                  lua_State* L, int body_idx) {
  conn_write_t* cw;
  uv_buf_t bufs[3];
  unsigned n = 0;
  size_t inline_len;
  int copy_body, r;
  if (c->closing)
    return;
  if (uv_stream_get_write_queue_size((uv_stream_t*)c->tcp) == 0) {
    size_t done;
    if (hlen)
      bufs[n++] = uv_buf_init((char*)head, (unsigned)hlen);
    if (blen)
      bufs[n++] = uv_buf_init((char*)body, (unsigned)blen);
    if (tlen)
      bufs[n++] = uv_buf_init((char*)tail, (unsigned)tlen);
    if (n == 0)
      return;
    r = uv_try_write((uv_stream_t*)c->tcp, bufs, n);
    if (r < 0 && r != UV_EAGAIN) {
      http_conn_close(c);
      return;
    }
    done = r > 0 ? (size_t)r : 0;
    skip(&head, &hlen, &done);
    skip(&body, &blen, &done);
    skip(&tail, &tlen, &done);
    if (hlen + blen + tlen == 0)
      return;
    n = 0;
  }
  copy_body = blen <= COPY_LIMIT || body_idx == 0;
  inline_len = hlen + (copy_body ? blen : 0);
  cw = malloc(sizeof(*cw) + inline_len);
  if (cw == NULL) {
    http_conn_close(c);
    return;
  }
  cw->c = c;
  cw->pin_ref = LUA_NOREF;
  if (hlen)
    memcpy(cw->data, head, hlen);
  if (copy_body) {
    if (blen > 0)
      memcpy(cw->data + hlen, body, blen);
    if (inline_len)
      bufs[n++] = uv_buf_init(cw->data, (unsigned)inline_len);
  } else {
    if (hlen)
      bufs[n++] = uv_buf_init(cw->data, (unsigned)hlen);
    bufs[n++] = uv_buf_init((char*)body, (unsigned)blen);
    lua_pushvalue(L, body_idx);
    cw->pin_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  if (tlen > 0)
    bufs[n++] = uv_buf_init((char*)tail, (unsigned)tlen);
  r = uv_write(&cw->w, (uv_stream_t*)c->tcp, bufs, n, write_cb);
  if (r < 0) {
    if (cw->pin_ref != LUA_NOREF)
      luaL_unref(L, LUA_REGISTRYINDEX, cw->pin_ref);
    free(cw);
    http_conn_close(c);
  }
}

void http_conn_write(http_conn_t* c, const char* data, size_t len, lua_State* L,
                     int pin_idx) {
  if (pin_idx == 0)
    send3(c, data, len, NULL, 0, NULL, 0, L, 0);
  else
    send3(c, "", 0, data, len, NULL, 0, L, pin_idx);
}

/* bufs[0] is copied; bufs[1] is the pinned body; bufs[2] static. */
void http_conn_writev(http_conn_t* c, uv_buf_t* bufs, unsigned n, lua_State* L,
                      int pin_idx) {
  send3(c, bufs[0].base, bufs[0].len, n > 1 ? bufs[1].base : NULL,
        n > 1 ? bufs[1].len : 0, n > 2 ? bufs[2].base : NULL,
        n > 2 ? bufs[2].len : 0, L, pin_idx);
}

void http_conn_send_continue(http_conn_t* c) {
  static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
  if (c->continued || !c->expect_continue)
    return;
  c->continued = 1;
  send3(c, cont, sizeof(cont) - 1, NULL, 0, NULL, 0, NULL, 0);
}

/* Answers a request the parser rejected, then closes. */
static void reject(http_conn_t* c, int status) {
  char buf[160];
  int n;
  if (c->closing)
    return;
  if (c->active && c->res.head_sent) { /* too late for a status */
    http_conn_close(c);
    return;
  }
  n = snprintf(buf, sizeof(buf),
               "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Length: 0\r\n"
               "\r\n",
               status, http_status_text(status));
  send3(c, buf, (size_t)n, NULL, 0, NULL, 0, NULL, 0);
  detach(c);
  close_after_writes(c);
}

/* Reading and parsing --------------------------------------------------------
 */

static void execute(http_conn_t* c, const char* data, size_t len);

/* Keeps bytes after the pause point (appended to what waits already). */
static void keep_pending(http_conn_t* c, const char* from, size_t len) {
  if (len == 0)
    return;
  if (c->pending_len + len > c->pending_cap) {
    size_t cap = c->pending_len + len;
    char* grown = realloc(c->pending, cap);
    if (grown == NULL) {
      http_conn_close(c);
      return;
    }
    c->pending = grown;
    c->pending_cap = cap;
  }
  memmove(c->pending + c->pending_len, from, len);
  c->pending_len += len;
}

/* While a handler works on a complete request the socket is still read,
 * so a client that leaves is noticed (res 'close'); what it pipelines
 * waits, up to this much. */
#define PENDING_MAX (64 * 1024)

static int reads_while_paused(http_conn_t* c) {
  return c->active && c->complete && !c->close_when_drained &&
         c->pending_len < PENDING_MAX;
}

static void stop_reading(http_conn_t* c);

static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  http_conn_t* c = ((lh_handle_t*)s->data)->extra;
  if (nread > 0) {
    if (c->paused) { /* the parser waits for a response */
      keep_pending(c, buf->base, (size_t)nread);
      if (!c->closing && !reads_while_paused(c))
        stop_reading(c);
      return;
    }
    execute(c, buf->base, (size_t)nread);
    return;
  }
  if (nread == 0)
    return;
  uv_read_stop(s);
  c->reading = 0;
  if (nread != UV_EOF) { /* reset, or worse */
    http_conn_close(c);
    return;
  }
  /* The peer ended its side: the handler hears of it ('close'), as in
   * Node. A response it still sends goes out (a half-closed client),
   * then the connection closes. */
  c->keep_alive = 0;
  if (c->active && !c->res.finished && c->complete) {
    if (c->want_close) {
      c->want_close = 0;
      emit(c, c->res_ref, "close", NULL, 0);
    }
    return;
  }
  close_after_writes(c);
}

static void start_reading(http_conn_t* c) {
  if (c->reading || c->closing || c->body_paused ||
      (c->paused && !reads_while_paused(c)))
    return;
  if (uv_read_start((uv_stream_t*)c->tcp, lh_read_alloc, on_read) == 0)
    c->reading = 1;
}

static void stop_reading(http_conn_t* c) {
  if (!c->reading)
    return;
  uv_read_stop((uv_stream_t*)c->tcp);
  c->reading = 0;
}

/* Keeps the bytes after the pause point for later. */
static void upgrade(http_conn_t* c, const char* rest, size_t len);

static void execute(http_conn_t* c, const char* data, size_t len) {
  llhttp_errno_t err;
  c->in_execute = 1;
  err = llhttp_execute(&c->parser, data, len);
  c->in_execute = 0;
  if (err == HPE_PAUSED_UPGRADE && !c->closing) {
    const char* pos = llhttp_get_error_pos(&c->parser);
    upgrade(c, pos, (size_t)(data + len - pos));
    return;
  }
  head_release(c);
  if (c->closing)
    return;
  if (err == HPE_OK) {
    if (c->body_paused)
      stop_reading(c);
    return;
  }
  if (err == HPE_PAUSED) {
    const char* pos = llhttp_get_error_pos(&c->parser);
    keep_pending(c, pos, (size_t)(data + len - pos));
    if (!c->closing && !reads_while_paused(c))
      stop_reading(c);
    return;
  }
  /* A malformed or refused request: 400 unless a limit said otherwise. */
  reject(c, c->error_status ? c->error_status : 400);
}

/* After a response is done: parse what waited, or read on. */
static void resume_parsing(http_conn_t* c) {
  char* data;
  size_t len;
  if (c->closing || !c->paused)
    return;
  c->paused = 0;
  llhttp_resume(&c->parser);
  if (c->pending_len > 0) {
    data = c->pending;
    len = c->pending_len;
    c->pending = NULL;
    c->pending_len = c->pending_cap = 0;
    execute(c, data, len);
    free(data);
  }
  if (!c->closing && !c->paused)
    start_reading(c);
}

void http_conn_body_flow(http_conn_t* c, int paused) {
  c->body_paused = (uint8_t)paused;
  if (paused)
    stop_reading(c);
  else if (!c->paused)
    start_reading(c);
}

/* The response is complete (everything queued): next request, or close. */
void http_conn_exchange_done(http_conn_t* c) {
  http_server_t* s = c->server;
  if (c->want_finish) {
    c->want_finish = 0;
    emit(c, c->res_ref, "finish", NULL, 0);
  }
  if (c->want_close) { /* as in Node: 'close' ends every response */
    c->want_close = 0;
    emit(c, c->res_ref, "close", NULL, 0);
  }
  c->want_drain = 0;
  c->bodyq_len = 0; /* a body nobody read is dropped */
  if (c->complete || !c->in_request)
    c->want_body = 0;
  detach(c);
  /* Nothing of the exchange is needed now: an idle connection holds no
   * buffers (the shared ones go back at the end of the read). */
  if (!c->head_scratch)
    head_forget(c);
  http_response_release(&c->res);
  free(c->bodyq);
  c->bodyq = NULL;
  c->bodyq_cap = 0;
  if (!c->keep_alive || s->closing) {
    close_after_writes(c);
    return;
  }
  if (c->complete) {
    arm(c, s->keepalive_timeout);
    /* Inside the parser, on_message_complete goes on by itself. */
    if (!c->in_execute)
      resume_parsing(c);
  } else {
    /* The body is still coming: it is read and dropped. */
    c->want_body = 0;
    c->body_paused = 0;
    start_reading(c);
  }
}

/* llhttp callbacks -----------------------------------------------------------
 */

#define CONN(p) ((http_conn_t*)(p)->data)

static int head_append(http_conn_t* c, const char* at, size_t len) {
  c->head_bytes += (uint32_t)len;
  if (c->head_bytes > c->server->max_head) {
    c->error_status = 431;
    return HPE_USER;
  }
  if (c->head_len + len > c->head_cap && head_grow(c, c->head_len + len) < 0)
    return HPE_USER;
  memcpy(c->head + c->head_len, at, len);
  c->head_len += (uint32_t)len;
  return 0;
}

static int on_message_begin(llhttp_t* p) {
  http_conn_t* c = CONN(p);
  http_server_t* s = c->server;
  c->in_request = 1;
  c->complete = 0;
  c->head_done = 0;
  c->head_len = 0;
  head_take(c);
  c->nfields = 0;
  c->in_value = 0;
  c->head_bytes = 0;
  c->body_bytes = 0;
  c->url_off = c->url_len = 0;
  c->error_status = 0;
  c->expect_continue = c->continued = 0;
  c->bodyq_len = 0;
  arm(c, s->headers_timeout < s->request_timeout || !s->request_timeout
             ? s->headers_timeout
             : s->request_timeout);
  return 0;
}

static int on_url(llhttp_t* p, const char* at, size_t len) {
  http_conn_t* c = CONN(p);
  if (c->url_len == 0)
    c->url_off = c->head_len;
  c->url_len += (uint32_t)len;
  return head_append(c, at, len);
}

static int on_header_field(llhttp_t* p, const char* at, size_t len) {
  http_conn_t* c = CONN(p);
  http_field_t* f;
  if (c->nfields == 0 || c->in_value) { /* a new field line */
    if (c->nfields >= c->server->max_headers) {
      c->error_status = 431;
      return HPE_USER;
    }
    if (c->nfields == c->fields_cap && fields_grow(c) < 0)
      return HPE_USER;
    f = &c->fields[c->nfields++];
    f->name = c->head_len;
    f->name_len = 0;
    f->value = c->head_len;
    f->value_len = 0;
    c->in_value = 0;
  }
  f = &c->fields[c->nfields - 1];
  f->name_len += (uint32_t)len;
  return head_append(c, at, len);
}

static int on_header_field_complete(llhttp_t* p) {
  http_conn_t* c = CONN(p);
  c->in_value = 1; /* the next field callback starts a new line */
  if (c->nfields > 0)
    c->fields[c->nfields - 1].value = c->head_len;
  return 0;
}

static int on_header_value(llhttp_t* p, const char* at, size_t len) {
  http_conn_t* c = CONN(p);
  if (c->nfields == 0)
    return 0;
  c->fields[c->nfields - 1].value_len += (uint32_t)len;
  return head_append(c, at, len);
}

static int field_is(http_conn_t* c, http_field_t* f, const char* name,
                    const char* value) {
  size_t vn = strlen(value);
  if (f->name_len != strlen(name) ||
      strncasecmp(c->head + f->name, name, f->name_len) != 0)
    return 0;
  if (value[0] == '\0')
    return 1;
  return f->value_len >= vn && strncasecmp(c->head + f->value, value, vn) == 0;
}

/* The request and response of an exchange, or nil, nil once it is over. */
static void push_exchange(lua_State* L, const http_ref_t* ref) {
  http_conn_t* c = http_conn_lookup(ref);
  if (c == NULL || !c->active) {
    lua_pushnil(L);
    lua_pushnil(L);
    return;
  }
  http_push_request(L, c);
  http_push_response(L, c);
}

typedef struct {
  http_server_t* server;
  http_ref_t ref;
} http_failure_t;

/* A handler raised before it waited: the server's failure function gets
 * the report (with the handler's traceback) and the exchange. */
static void handler_failed(lh_runtime_t* rt, lua_State* co, void* data) {
  http_failure_t* f = data;
  lua_State* h;
  if (f->server->cb[HTTP_CB_FAILED] == LUA_NOREF ||
      (h = lh_cb_begin(rt)) == NULL) {
    lh_uncaught(rt, co);
    return;
  }
  push_ref(h, f->server->cb[HTTP_CB_FAILED]);
  lua_xmove(co, h, 1);
  lh_push_report(h, 2, co); /* fn err report */
  lua_remove(h, 2);
  push_exchange(h, &f->ref);
  lh_cb_run(rt, h, 3);
}

static int guard_done(lua_State* L, int status, lua_KContext ctx) {
  (void)L, (void)status, (void)ctx;
  return 0;
}

/* guard(err, report): a handler raised after it waited. Upvalues: the
 * server userdata, then the exchange's slot, slot_gen and gen. */
static int handler_guard(lua_State* L) {
  http_server_t* s = *(http_server_t**)lua_touserdata(L, lua_upvalueindex(1));
  http_ref_t ref;
  if (s == NULL || s->cb[HTTP_CB_FAILED] == LUA_NOREF) {
    lua_settop(L, 1);
    return lua_error(L);
  }
  ref.slot = (uint32_t)lua_tointeger(L, lua_upvalueindex(2));
  ref.slot_gen = (uint32_t)lua_tointeger(L, lua_upvalueindex(3));
  ref.gen = (uint32_t)lua_tointeger(L, lua_upvalueindex(4));
  lua_settop(L, 2);
  push_ref(L, s->cb[HTTP_CB_FAILED]);
  lua_pushvalue(L, 2);
  push_exchange(L, &ref);
  lua_callk(L, 3, 0, 0, guard_done);
  return 0;
}

static void push_guard(lua_State* L, void* data) {
  http_failure_t* f = data;
  push_ref(L, f->server->self_ref);
  lua_pushinteger(L, f->ref.slot);
  lua_pushinteger(L, f->ref.slot_gen);
  lua_pushinteger(L, f->ref.gen);
  lua_pushcclosure(L, handler_guard, 4);
}

static int on_headers_complete(llhttp_t* p) {
  http_conn_t* c = CONN(p);
  http_server_t* s = c->server;
  lua_State* co;
  uint32_t i;
  int has_host = 0;
  for (i = 0; i < c->nfields; i++) {
    http_field_t* f = &c->fields[i];
    /* Trailing spaces belong to no value (leading ones llhttp drops). */
    while (f->value_len > 0 && (c->head[f->value + f->value_len - 1] == ' ' ||
                                c->head[f->value + f->value_len - 1] == '\t'))
      f->value_len--;
    if (field_is(c, f, "host", ""))
      has_host = 1;
    if (field_is(c, f, "expect", "100-continue"))
      c->expect_continue = 1;
  }
  if (p->http_major == 1 && p->http_minor >= 1 && !has_host) {
    c->error_status = 400; /* HTTP/1.1 requires Host */
    return -1;
  }
  c->keep_alive = (uint8_t)(llhttp_should_keep_alive(p) && !s->closing);
  c->head_request = p->method == HTTP_HEAD;
  c->gen++;
  c->head_done = 1;
  http_response_begin(&c->res);
  c->res.no_body = c->head_request;
  c->want_body = c->want_drain = c->want_close = 0;
  c->body_paused = 0;
  if (s->request_timeout)
    arm(c, s->request_timeout);
  if (p->upgrade && s->cb[HTTP_CB_UPGRADE] != LUA_NOREF) {
    c->upgrading = 1;
    return 0; /* llhttp pauses with HPE_PAUSED_UPGRADE */
  }
  if (s->auto_continue)
    http_conn_send_continue(c);
  co = lh_cb_begin(s->rt);
  if (co == NULL)
    return -1;
  push_ref(co, s->cb[HTTP_CB_REQUEST]);
  /* Pinned only when Lua asks for events (body, drain, close, finish):
   * the registry stays untouched on the common path. */
  http_push_request(co, c);
  http_push_response(co, c);
  c->active = 1;
  {
    http_failure_t f;
    f.server = s;
    http_conn_ref(c, &f.ref);
    if (lh_cb_run_guarded(s->rt, co, 2, handler_failed, &f) == LUA_YIELD)
      lh_cb_guard(s->rt, co, push_guard, &f);
  }
  if (c->active) /* the handler answers later: its headers move out */
    http_response_keep(&c->res);
  if (c->closing)
    return HPE_USER;
  return 0;
}

static int on_body(llhttp_t* p, const char* at, size_t len) {
  http_conn_t* c = CONN(p);
  http_server_t* s = c->server;
  c->body_bytes += len;
  if (s->max_body && c->body_bytes > s->max_body) {
    c->error_status = 413;
    return HPE_USER;
  }
  if (c->want_body) {
    emit(c, c->req_ref, "body", at, len);
  } else if (c->active && !c->res.finished) {
    /* Kept until the handler asks; past the mark the socket waits. */
    if (c->bodyq_len + len > c->bodyq_cap) {
      size_t cap = c->bodyq_cap ? c->bodyq_cap : 4096;
      char* grown;
      while (cap < c->bodyq_len + len)
        cap *= 2;
      grown = realloc(c->bodyq, cap);
      if (grown == NULL)
        return HPE_USER;
      c->bodyq = grown;
      c->bodyq_cap = cap;
    }
    memcpy(c->bodyq + c->bodyq_len, at, len);
    c->bodyq_len += len;
    if (c->bodyq_len > s->hwm)
      c->body_paused = 1;
  }
  if (c->closing)
    return HPE_USER;
  return 0;
}

static int on_message_complete(llhttp_t* p) {
  http_conn_t* c = CONN(p);
  c->in_request = 0;
  c->complete = 1;
  if (c->upgrading)
    return 0;
  if (c->want_body) {
    c->want_body = 0;
    emit(c, c->req_ref, "end", NULL, 0);
    if (c->closing)
      return HPE_USER;
  }
  if (c->active && !c->res.finished) {
    arm(c, 0); /* the handler takes its time; no timeout for responses */
    c->paused = 1;
    return HPE_PAUSED;
  }
  if (!c->keep_alive || c->server->closing) {
    c->paused = 1;
    return HPE_PAUSED;
  }
  arm(c, c->server->keepalive_timeout);
  return 0;
}

static void on_timeout(http_conn_t* c) {
  c->deadline = 0;
  if (c->in_request)
    reject(c, 408); /* the head or body took too long */
  else if (!c->active)
    http_conn_close(c); /* idle keep-alive connection */
}

/* Upgrade and CONNECT: the connection leaves the engine for Lua. */
static void upgrade(http_conn_t* c, const char* rest, size_t len) {
  http_server_t* s = c->server;
  lua_State* co = lh_cb_begin(s->rt);
  lh_handle_t* h = c->tcp->data;
  if (co == NULL) {
    http_conn_close(c);
    return;
  }
  stop_reading(c);
  push_ref(co, s->cb[HTTP_CB_UPGRADE]);
  http_push_request(co, c);
  /* The TCP handle becomes a Lua handle; the connection record goes. */
  lh_handle_adopt(co, c->tcp);
  lua_pushlstring(co, rest, len);
  h->extra = NULL;
  h->free_extra = NULL;
  c->closing = 1;
  detach(c);
  conn_free(c);
  lh_cb_run(s->rt, co, 3);
}

/* Timeouts: one timer for all connections */

static void on_sweep(uv_timer_t* t) {
  http_server_t* s = ((lh_handle_t*)t->data)->extra;
  uint64_t now = uv_now(s->rt->loop);
  http_conn_t* c;
  http_conn_t* next;
  for (c = s->conns; c != NULL; c = next) {
    next = c->next; /* closing frees nothing before the close callback */
    if (c->closing)
      continue;
    if (c->deadline != 0 && now >= c->deadline)
      on_timeout(c);
  }
}

/* The runtime's teardown may close the server's own handles before the
 * server closes them: their close callbacks clear the server's pointer. */
static void sweep_closed(void* extra) {
  ((http_server_t*)extra)->sweep = NULL;
}

static void listener_closed(void* extra) {
  ((http_server_t*)extra)->listener = NULL;
}

/* Closes one of the server's own handles (unless the teardown did). */
static void close_own(uv_handle_t* handle) {
  lh_handle_t* h = handle->data;
  h->free_extra = NULL; /* the server forgets it now */
  if (!uv_is_closing(handle))
    uv_close(handle, lh_handle_closed);
}

/* Checks deadlines often enough for the shortest timeout (within a
 * quarter of it, at most once a second, at least every 10 ms). */
static void start_sweep(http_server_t* s) {
  uint64_t interval = 1000, t;
  lh_handle_t* h;
  if (s->sweep != NULL)
    return;
  t = s->keepalive_timeout;
  if (s->headers_timeout && (t == 0 || s->headers_timeout < t))
    t = s->headers_timeout;
  if (s->request_timeout && (t == 0 || s->request_timeout < t))
    t = s->request_timeout;
  if (t > 0 && t / 4 < interval)
    interval = t / 4;
  if (interval < 10)
    interval = 10;
  s->sweep = lh_handle_alloc(s->rt, UV_TIMER);
  if (s->sweep == NULL)
    return;
  h = s->sweep->data;
  h->flags = LH_HIDDEN | LH_RUNTIME;
  h->extra = s;
  h->free_extra = sweep_closed;
  uv_timer_init(s->rt->loop, s->sweep);
  uv_timer_start(s->sweep, on_sweep, interval, interval);
  uv_unref((uv_handle_t*)s->sweep); /* connections keep the loop alive */
}

static void stop_sweep(http_server_t* s) {
  if (s->sweep == NULL)
    return;
  close_own((uv_handle_t*)s->sweep);
  s->sweep = NULL;
}

/* Accepting -------------------------------------------------------------------
 */

/* The request is often in before the connection is accepted: read it now,
 * before the socket joins epoll (a Connection: close exchange then never
 * does). Nothing there yet, or an error: the loop reads as usual. */
static void read_now(http_conn_t* c) {
  uv_buf_t buf;
  uv_os_fd_t fd;
  ssize_t n;
  if (uv_fileno((uv_handle_t*)c->tcp, &fd) == 0) {
    lh_read_alloc((uv_handle_t*)c->tcp, 65536, &buf);
    do
      n = read(fd, buf.base, buf.len);
    while (n < 0 && errno == EINTR);
    if (n > 0)
      execute(c, buf.base, (size_t)n);
    if (c->closing)
      return;
  }
  start_reading(c);
}

static void on_connection(uv_stream_t* listener, int status) {
  http_server_t* s = ((lh_handle_t*)listener->data)->extra;
  lh_runtime_t* rt = s->rt;
  uv_tcp_t* tcp;
  http_conn_t* c;
  lh_handle_t* h;
  if (status < 0) {
    log_error(s, uv_strerror(status));
    return;
  }
  tcp = lh_handle_alloc(rt, UV_TCP);
  if (tcp == NULL)
    return;
  h = tcp->data;
  h->flags = LH_HIDDEN | LH_HTTP_CONN;
  h->site = ((lh_handle_t*)listener->data)->site;
  uv_tcp_init(rt->loop, tcp);
  if (uv_accept(listener, (uv_stream_t*)tcp) < 0 ||
      (s->max_connections && s->nconns >= s->max_connections) ||
      (c = calloc(1, sizeof(*c))) == NULL) {
    uv_close((uv_handle_t*)tcp, lh_handle_closed);
    return;
  }
  if (slot_take(c) < 0) {
    free(c);
    uv_close((uv_handle_t*)tcp, lh_handle_closed);
    return;
  }
  c->server = s;
  c->tcp = tcp;
  h->extra = c;
  h->free_extra = tcp_closed;
  c->req_ref = c->res_ref = LUA_NOREF;
  c->res.reason_ref = LUA_NOREF;
  llhttp_init(&c->parser, HTTP_REQUEST, &settings);
  c->parser.data = c;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  arm(c, s->headers_timeout);
  read_now(c);
}

/* The server userdata
 * ---------------------------------------------------------- */

static http_server_t* check_server(lua_State* L, int idx) {
  http_server_t** ud = luaL_checkudata(L, idx, "luvhost.http_server");
  if (*ud == NULL)
    luaL_error(L, "attempt to use a closed http server");
  return *ud;
}

static uint64_t opt_ms(lua_State* L, int idx, const char* key, uint64_t dflt) {
  lua_Integer v;
  lua_getfield(L, idx, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return dflt;
  }
  v = luaL_checkinteger(L, -1);
  if (v < 0)
    luaL_error(L, "http server option '%s' must not be negative", key);
  lua_pop(L, 1);
  return (uint64_t)v;
}

static void set_cb(lua_State* L, http_server_t* s, int slot, int idx) {
  luaL_unref(L, LUA_REGISTRYINDEX, s->cb[slot]);
  s->cb[slot] = LUA_NOREF;
  if (lua_isnoneornil(L, idx))
    return;
  lh_check_callable(L, idx);
  lua_pushvalue(L, idx);
  s->cb[slot] = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* server(opts, handler, on_event [, on_upgrade] [, on_error]
 *        [, on_failed]) */
static int server_new(lua_State* L) {
  http_server_t* s;
  http_server_t** ud;
  int i;
  luaL_checktype(L, 1, LUA_TTABLE);
  lh_check_callable(L, 2);
  lh_check_callable(L, 3);
  ud = lua_newuserdatauv(L, sizeof(*ud), 0);
  *ud = NULL;
  luaL_setmetatable(L, "luvhost.http_server");
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return luaL_error(L, "not enough memory");
  *ud = s;
  live_servers++;
  s->rt = lh_runtime(L);
  s->self_ref = LUA_NOREF;
  for (i = 0; i < HTTP_CB_MAX; i++)
    s->cb[i] = LUA_NOREF;
  s->max_head = (uint32_t)opt_ms(L, 1, "maxHeaderSize", 16384);
  s->max_headers = (uint32_t)opt_ms(L, 1, "maxHeadersCount", 2000);
  s->max_body = opt_ms(L, 1, "maxBodySize", 64 * 1024 * 1024);
  s->headers_timeout = opt_ms(L, 1, "headersTimeout", 60000);
  s->request_timeout = opt_ms(L, 1, "requestTimeout", 300000);
  s->keepalive_timeout = opt_ms(L, 1, "keepAliveTimeout", 5000);
  s->max_connections = (uint32_t)opt_ms(L, 1, "maxConnections", 0);
  s->hwm = (uint32_t)opt_ms(L, 1, "highWaterMark", 65536);
  lua_getfield(L, 1, "autoContinue");
  s->auto_continue = lua_toboolean(L, -1);
  lua_pop(L, 1);
  set_cb(L, s, HTTP_CB_REQUEST, 2);
  set_cb(L, s, HTTP_CB_EVENT, 3);
  set_cb(L, s, HTTP_CB_UPGRADE, 4);
  set_cb(L, s, HTTP_CB_ERROR, 5);
  set_cb(L, s, HTTP_CB_FAILED, 6);
  return 1;
}

/* handler(fn): the function each request calls, (req, res). */
static int server_handler(lua_State* L) {
  http_server_t* s = check_server(L, 1);
  lh_check_callable(L, 2);
  set_cb(L, s, HTTP_CB_REQUEST, 2);
  return 0;
}

/* listen(host, port [, backlog] [, { ipv6only, reuseport }]) -> 0 | fail */
static int server_listen(lua_State* L) {
  http_server_t* s = check_server(L, 1);
  struct sockaddr_storage addr;
  int backlog = (int)luaL_optinteger(L, 4, 511);
  unsigned flags = 0;
  int reuseport = 0;
  lh_handle_t* h;
  int r;
  if (s->listener != NULL)
    return luaL_error(L, "the server is listening");
  r = lh_parse_addr(L, 2, 3, &addr);
  if (r < 0)
    return lh_error(L, r);
  if (lua_istable(L, 5)) {
    lua_getfield(L, 5, "ipv6only");
    if (lua_toboolean(L, -1))
      flags |= UV_TCP_IPV6ONLY;
    lua_getfield(L, 5, "reuseport");
    reuseport = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  s->listener = lh_handle_alloc(s->rt, UV_TCP);
  if (s->listener == NULL)
    return luaL_error(L, "not enough memory");
  h = s->listener->data;
  h->flags = LH_HIDDEN | LH_HTTP_SERVER;
  h->site = lh_site(L);
  h->extra = s;
  h->free_extra = listener_closed;
  uv_tcp_init_ex(s->rt->loop, s->listener, addr.ss_family);
  if (reuseport) {
    uv_os_fd_t fd;
    int on = 1;
    if (uv_fileno((uv_handle_t*)s->listener, &fd) == 0)
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
  }
  r = uv_tcp_bind(s->listener, (struct sockaddr*)&addr, flags);
  if (r == 0)
    r = uv_listen((uv_stream_t*)s->listener, backlog, on_connection);
  if (r < 0) {
    close_own((uv_handle_t*)s->listener);
    s->listener = NULL;
    return lh_error(L, r);
  }
  s->listening = 1;
  s->closing = 0;
  start_sweep(s);
  if (s->self_ref == LUA_NOREF) {
    lua_pushvalue(L, 1);
    s->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_pushinteger(L, 0);
  return 1;
}

static int server_address(lua_State* L) {
  http_server_t* s = check_server(L, 1);
  struct sockaddr_storage addr;
  int len = sizeof(addr);
  if (s->listener == NULL)
    return 0;
  if (uv_tcp_getsockname(s->listener, (struct sockaddr*)&addr, &len) < 0)
    return 0;
  lh_push_sockaddr(L, (struct sockaddr*)&addr);
  return 1;
}

/* close([cb]): stops accepting; idle connections close now, busy ones
 * after their response; cb() once every connection is gone. */
static int server_close(lua_State* L) {
  http_server_t* s = check_server(L, 1);
  http_conn_t* c;
  http_conn_t* next;
  set_cb(L, s, HTTP_CB_CLOSED, 2);
  s->closing = 1;
  if (s->listener != NULL) {
    close_own((uv_handle_t*)s->listener);
    s->listener = NULL;
  }
  s->listening = 0;
  for (c = s->conns; c != NULL; c = next) {
    next = c->next;
    if (!c->active && !c->in_request)
      http_conn_close(c);
  }
  if (s->self_ref == LUA_NOREF && s->cb[HTTP_CB_CLOSED] != LUA_NOREF) {
    lua_pushvalue(L, 1); /* held until the callback ran */
    s->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  server_maybe_closed(s);
  return 0;
}

/* upgrades(fn | nil): who takes Upgrade and CONNECT requests; without
 * one they are served as plain requests. */
static int server_upgrades(lua_State* L) {
  set_cb(L, check_server(L, 1), HTTP_CB_UPGRADE, 2);
  return 0;
}

static int server_connections(lua_State* L) {
  lua_pushinteger(L, check_server(L, 1)->nconns);
  return 1;
}

static int server_ref(lua_State* L) {
  http_server_t* s = check_server(L, 1);
  if (s->listener) {
    if (lua_toboolean(L, 2))
      uv_ref((uv_handle_t*)s->listener);
    else
      uv_unref((uv_handle_t*)s->listener);
  }
  return 0;
}

static int server_gc(lua_State* L) {
  http_server_t** ud = lua_touserdata(L, 1);
  http_server_t* s = *ud;
  int i;
  if (s == NULL)
    return 0;
  *ud = NULL;
  /* Only reached with no listener and no connection (they pin us), or at
   * lua_close, after the loop closed every handle. */
  for (i = 0; i < HTTP_CB_MAX; i++)
    luaL_unref(L, LUA_REGISTRYINDEX, s->cb[i]);
  if (s->nconns == 0 && s->listener == NULL)
    free(s);
  if (--live_servers == 0)
    scratch_free();
  return 0;
}

static const luaL_Reg server_methods[] = {
    {"listen", server_listen},
    {"handler", server_handler},
    {"address", server_address},
    {"close", server_close},
    {"connections", server_connections},
    {"upgrades", server_upgrades},
    {"ref", server_ref},
    {NULL, NULL},
};

static int http_status(lua_State* L) {
  lua_pushstring(L, http_status_text((int)luaL_checkinteger(L, 1)));
  return 1;
}

static const luaL_Reg http_functions[] = {
    {"server", server_new},
    {"status_text", http_status},
    {"set_methods", lh_http_set_methods},
    {NULL, NULL},
};

int luaopen_internal_http(lua_State* L) {
  llhttp_settings_init(&settings);
  settings.on_message_begin = on_message_begin;
  settings.on_url = on_url;
  settings.on_header_field = on_header_field;
  settings.on_header_field_complete = on_header_field_complete;
  settings.on_header_value = on_header_value;
  settings.on_headers_complete = on_headers_complete;
  settings.on_body = on_body;
  settings.on_message_complete = on_message_complete;
  if (luaL_newmetatable(L, "luvhost.http_server")) {
    lua_pushcfunction(L, server_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, server_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lh_open_http_message(L);
  luaL_newlib(L, http_functions);
  return 1;
}
