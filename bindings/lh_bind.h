/* Shared by the C bindings: handles as Lua userdata, the luv error triple,
 * argument checks. Bindings call Lua only through the runtime's gateway
 * (host/runtime.h). */
#ifndef LH_BIND_H
#define LH_BIND_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <uv.h>

#include "runtime.h"

/* Callback slots of a handle. */
enum { LH_CB_CLOSE, LH_CB_EVENT, LH_CB_EXTRA, LH_CB_MAX };

/* Handle flags. */
enum {
  LH_HIDDEN = 1,      /* not the script's own: skipped by uv.walk */
  LH_RUNTIME = 2,     /* the runtime's machinery: never reported as alive */
  LH_HTTP_SERVER = 4, /* an HTTP server's listening socket */
  LH_HTTP_CONN = 8    /* a connection an HTTP server accepted */
};

/* Lives in front of the uv handle, in one allocation; uv handle->data
 * points back here. Freed only in the close callback. */
#define LH_HANDLE_MAGIC 0x6c68686eU

typedef struct lh_handle_s {
  unsigned magic; /* tells our handles from the host's in uv_walk */
  lh_runtime_t* rt;
  void** udata; /* the userdata's slot; NULL once Lua let go */
  int self_ref; /* pins the userdata until the handle is closed */
  int cb[LH_CB_MAX];
  unsigned flags;
  int site;    /* where Lua made it (lh_site), 0 if unknown */
  void* extra; /* per-type state, freed with the handle */
  void (*free_extra)(void* extra);
} lh_handle_t;

#define LH_HANDLE_OFFSET                                                       \
  ((sizeof(lh_handle_t) + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) * \
   _Alignof(max_align_t))
#define lh_uv(h) ((uv_handle_t*)((char*)(h) + LH_HANDLE_OFFSET))

/* A request (write, connect, shutdown, getaddrinfo, ...) is a userdata:
 * lh_req_t followed by the uv request. It is pinned from the start of the
 * operation until its callback, so Lua may drop it meanwhile. */
typedef struct lh_req_s {
  lh_runtime_t* rt;
  int self_ref; /* pins the userdata until the callback */
  int cb_ref;   /* the Lua callback, or LUA_NOREF */
  int data_ref; /* what libuv points into (write buffers), or LUA_NOREF */
  int active;   /* between the start and the callback */
} lh_req_t;

#define LH_REQ_OFFSET                                                       \
  ((sizeof(lh_req_t) + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) * \
   _Alignof(max_align_t))
#define lh_ureq(r) ((void*)((char*)(r) + LH_REQ_OFFSET))
#define lh_req_of(ureq) ((lh_req_t*)((char*)(ureq)-LH_REQ_OFFSET))

/* req.c */
void* lh_req_new(lua_State* L, uv_req_type type, size_t extra, int cb_idx);
lua_State* lh_req_callback(lh_req_t* r);
void lh_req_done(lh_req_t* r);
void lh_open_req(lua_State* L);

/* sockaddr.c */
int lh_parse_addr(lua_State* L, int host_idx, int port_idx,
                  struct sockaddr_storage* out);
void lh_push_sockaddr(lua_State* L, const struct sockaddr* addr);
int lh_check_family(lua_State* L, int idx);
const char* lh_family_name(int family);

/* stream.c */
lh_handle_t* lh_check_stream(lua_State* L, int idx);
void lh_add_methods(lua_State* L, uv_handle_type type, const luaL_Reg* m);
extern const luaL_Reg lh_stream_methods[];
void lh_read_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
int lh_check_bufs(lua_State* L, int idx, uv_buf_t* small, int nsmall,
                  uv_buf_t** bufs, size_t* total);
int lh_pin_data(lua_State* L, int idx);

/* errors.c */
int lh_error(lua_State* L, int status);
int lh_result(lua_State* L, int status); /* 0 pushes 0; else the triple */
void lh_push_errname(lua_State* L, int status);
void lh_open_errno(lua_State* L);

/* handle.c */
void* lh_handle_new(lua_State* L, uv_handle_type type);
void lh_handle_ready(lua_State* L, void* uvh);
void lh_handle_abort(lua_State* L, void* uvh);
void* lh_handle_alloc(lh_runtime_t* rt, uv_handle_type type);
void lh_handle_adopt(lua_State* L, void* uvh);
lh_handle_t* lh_check_handle(lua_State* L, int idx, uv_handle_type type);
lh_handle_t* lh_opt_handle(lua_State* L, int idx);
void lh_set_callback(lua_State* L, lh_handle_t* h, int slot, int idx);
void lh_clear_callback(lh_handle_t* h, int slot);
lua_State* lh_callback_begin(lh_handle_t* h, int slot);
void lh_handle_close_all(uv_loop_t* loop);
void lh_handle_closed(uv_handle_t* uvh);
int lh_site(lua_State* L);
int lh_handle_list(lua_State* L);
int lh_is_callable(lua_State* L, int idx);
void lh_check_callable(lua_State* L, int idx);
void lh_open_handle(lua_State* L);
void lh_new_handle_type(lua_State* L, uv_handle_type type, const char* name,
                        const luaL_Reg* methods);
extern const luaL_Reg lh_handle_functions[];
extern const luaL_Reg lh_handle_methods[];

#define lh_check_uv(L, idx, type, ctype) \
  ((ctype*)lh_uv(lh_check_handle((L), (idx), (type))))

/* fs.c */
void lh_push_stat(lua_State* L, const uv_stat_t* s);

/* signal.c */
const char* lh_signal_name(int num);
int lh_check_signal(lua_State* L, int idx);

/* Per-family registration: each file exports its functions (uv.*) and
 * opens its metatable. */
void lh_open_loop(lua_State* L);
void lh_open_timer(lua_State* L);
void lh_open_phase(lua_State* L);
void lh_open_async(lua_State* L);
void lh_open_signal(lua_State* L);
void lh_open_misc(lua_State* L);
void lh_open_os(lua_State* L);
void lh_open_constants(lua_State* L);
void lh_open_stream(lua_State* L);
void lh_open_tcp(lua_State* L);
void lh_open_pipe(lua_State* L);
void lh_open_tty(lua_State* L);
void lh_open_udp(lua_State* L);
void lh_open_dns(lua_State* L);
void lh_open_fs(lua_State* L);
void lh_open_fs_event(lua_State* L);
void lh_open_fs_poll(lua_State* L);
void lh_open_process(lua_State* L);

int luaopen_uv(lua_State* L);
int luaopen_internal_uv(lua_State* L);
int luaopen_internal_http(lua_State* L);
int luaopen_internal_http_parser(lua_State* L);

#endif
