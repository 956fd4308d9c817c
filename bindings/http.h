/* The HTTP/1.1 server engine: connections parsed with llhttp in C, one call
 * into Lua per request, responses serialised in C. Shared by
 * http_server.c (connections, parsing, writing) and http_message.c (the
 * request and response userdata). */
#ifndef LH_HTTP_H
#define LH_HTTP_H

#include <llhttp.h>

#include "lh_bind.h"

typedef struct http_server_s http_server_t;
typedef struct http_conn_s http_conn_t;

/* A header line of the request head: offsets into the head buffer. */
typedef struct {
  uint32_t name, name_len, value, value_len;
} http_field_t;

/* Lua callbacks the server makes (http.lua installs them). */
enum {
  HTTP_CB_REQUEST, /* (req, res) for each request */
  HTTP_CB_EVENT,   /* (obj, name, arg): 'body', 'end', 'drain', 'close' */
  HTTP_CB_UPGRADE, /* (req, tcp handle, head bytes) */
  HTTP_CB_ERROR,   /* (message): a problem to log (bad requests are not) */
  HTTP_CB_CLOSED,  /* (): the server closed and its connections are gone */
  HTTP_CB_FAILED,  /* (report, req, res): the request handler raised */
  HTTP_CB_MAX
};

struct http_server_s {
  lh_runtime_t* rt;
  uv_tcp_t* listener;
  int self_ref; /* pins the server userdata while it listens or serves */
  int cb[HTTP_CB_MAX];
  /* limits and timeouts (ms), Node's defaults */
  uint32_t max_head;
  uint32_t max_headers;
  uint64_t max_body;
  uint64_t headers_timeout;
  uint64_t request_timeout;
  uint64_t keepalive_timeout;
  uint32_t max_connections;
  uint32_t hwm;
  int auto_continue;
  /* one timer checks every connection's deadline (no timer each) */
  uv_timer_t* sweep;
  /* state */
  http_conn_t* conns; /* every open connection */
  uint32_t nconns;
  int closing;
  int listening;
};

#define HTTP_REQ_MAGIC 0x68747271U /* tells our userdata from any other */
#define HTTP_RES_MAGIC 0x68747273U

/* Request and response userdata find their connection by slot: no
 * pointers from C to them, so they need no finalizer (cheap to collect),
 * and a connection gone or on its next exchange simply does not match. */
typedef struct {
  uint32_t slot, slot_gen; /* the connection */
  uint32_t gen;            /* its exchange */
} http_ref_t;

/* Request userdata: the head is copied in, so it outlives the connection. */
typedef struct {
  uint32_t magic;
  http_ref_t ref;
  uint8_t method;
  uint8_t major;
  uint8_t minor;
  uint8_t upgrade;
  uint32_t url_off, url_len;
  uint32_t nfields;
  http_field_t* fields;
  char* data;
  /* fields[nfields] and data bytes follow */
} http_req_t;

typedef struct {
  uint32_t magic;
  http_ref_t ref;
} http_res_t;

/* Response state of the current exchange (one at a time per connection). */
typedef struct {
  int status;
  int reason_ref; /* Lua string, or LUA_NOREF for the standard text */
  char* hbuf;     /* "Name: value\r\n" lines set by the script */
  uint32_t hlen, hcap;
  uint8_t head_sent;    /* the status line and headers are written */
  uint8_t head_fixed;   /* writeHead was called: no more header changes */
  uint8_t hbuf_scratch; /* hbuf is the shared buffer */
  uint8_t finished;     /* finish() was called */
  uint8_t chunked;      /* body framed as chunks */
  uint8_t has_length;   /* the script set Content-Length */
  uint8_t has_te;       /* ... Transfer-Encoding */
  uint8_t has_date;
  uint8_t has_conn;   /* ... Connection */
  uint8_t conn_close; /* ... and it says close */
  uint8_t no_body;    /* HEAD, 204, 304: headers only */
  uint64_t length;    /* Content-Length the script set */
  uint64_t sent;      /* body bytes written */
} http_response_t;

struct http_conn_s {
  http_server_t* server;
  http_conn_t *prev, *next;
  uv_tcp_t* tcp;     /* an lh handle (lh_handle_alloc); its extra is this */
  uint64_t deadline; /* loop time (ms) of the running timeout, or 0 */
  llhttp_t parser;
  /* the head of the message being parsed */
  char* head;
  uint32_t head_len, head_cap;
  http_field_t* fields;
  uint32_t nfields, fields_cap;
  uint32_t url_off, url_len;
  uint8_t in_value;
  uint8_t head_scratch; /* head and fields are the shared buffers */
  uint8_t head_done;    /* the head of this message is complete */
  uint32_t head_bytes;
  uint64_t body_bytes;
  /* body bytes that came before the handler asked for them */
  char* bodyq;
  size_t bodyq_len, bodyq_cap;
  /* bytes that arrived while a response was still pending */
  char* pending;
  size_t pending_len, pending_cap;
  /* state */
  uint8_t reading;     /* uv_read_start is on */
  uint8_t paused;      /* the parser waits for the response to finish */
  uint8_t body_paused; /* Lua holds enough unread body */
  uint8_t closing;
  uint8_t close_when_drained; /* close once the write queue is empty */
  uint8_t in_execute;
  uint8_t keep_alive;  /* this exchange may be followed by another */
  uint8_t in_request;  /* between message begin and complete */
  uint8_t complete;    /* the request message is complete */
  uint8_t want_body;   /* Lua wants body events */
  uint8_t want_drain;  /* Lua waits for the write queue to drain */
  uint8_t want_close;  /* Lua wants to hear if the connection closes */
  uint8_t want_finish; /* Lua wants to hear when the response is done */
  uint8_t expect_continue;
  uint8_t continued;
  uint8_t head_request;
  uint8_t upgrading;
  uint8_t active;        /* an exchange is under way (handler called) */
  uint16_t error_status; /* a parse error to answer: 400, 413, 431 */
  uint32_t gen;          /* exchange generation */
  uint32_t slot;         /* in the connection table (http_conn_lookup) */
  int req_ref;           /* the userdata, pinned while the exchange lasts */
  int res_ref;
  http_response_t res;
};

/* http_server.c */
http_conn_t* http_conn_lookup(const http_ref_t* ref);
void http_conn_ref(http_conn_t* c, http_ref_t* ref);
void http_conn_write(http_conn_t* c, const char* data, size_t len, lua_State* L,
                     int pin_idx);
void http_conn_writev(http_conn_t* c, uv_buf_t* bufs, unsigned n, lua_State* L,
                      int pin_idx);
void http_conn_exchange_done(http_conn_t* c);
void http_conn_close(http_conn_t* c);
void http_conn_send_continue(http_conn_t* c);
void http_conn_body_flow(http_conn_t* c, int paused);
void http_conn_emit(http_conn_t* c, int objref, const char* name);
size_t http_conn_queue_size(http_conn_t* c);
#define HTTP_DATE_LINE_MAX 64
size_t http_date_put(char* out);

/* http_message.c */
void http_push_request(lua_State* L, http_conn_t* c);
void http_push_response(lua_State* L, http_conn_t* c);
void http_response_begin(http_response_t* r);
void http_response_keep(http_response_t* r);
void http_response_release(http_response_t* r);
void http_response_scratch_free(void);
const char* http_status_text(int status);
void lh_open_http_message(lua_State* L);
void http_push_headers(lua_State* L, const char* data,
                       const http_field_t* fields, uint32_t n);
void http_push_raw_headers(lua_State* L, const char* data,
                           const http_field_t* fields, uint32_t n);
int lh_http_set_methods(lua_State* L);

#endif
