/* uv_udp_t: datagram sockets over IPv4 and IPv6, with luv's API. Sends are
 * zero-copy like stream writes (the request pins the Lua strings until its
 * callback); each received datagram is copied once into a Lua string. A
 * socket made with mmsgs > 1 reads batches with recvmmsg(2) into a buffer
 * of its own; the others share the streams' read buffer. Addresses are
 * numeric (resolve names with getaddrinfo first). */
#include <stdlib.h>
#include <string.h>

#include "lh_bind.h"

#define SMALL_BUFS 8
#define DGRAM_MAX 65536 /* libuv reads one datagram per 64 KiB of buffer */
#define MMSGS_MAX 20    /* libuv's largest recvmmsg batch */

typedef struct {
  size_t len;
  char data[];
} udp_buf_t;

static uv_udp_t* check_udp(lua_State* L, int idx) {
  return lh_check_uv(L, idx, UV_UDP, uv_udp_t);
}

/* The family on top of the stack (new_udp's flags.family). */
static int family_field(lua_State* L) {
  static const char* const names[] = {"unspec", "inet", "inet6", NULL};
  static const int values[] = {AF_UNSPEC, AF_INET, AF_INET6};
  const char* name;
  int i;
  if (lua_type(L, -1) == LUA_TNUMBER)
    return (int)lua_tointeger(L, -1);
  name = lua_tostring(L, -1);
  for (i = 0; name != NULL && names[i] != NULL; i++)
    if (strcmp(name, names[i]) == 0)
      return values[i];
  return luaL_argerror(L, 1, "family must be \"inet\", \"inet6\" or a number");
}

/* new_udp([flags]) -> udp | fail. flags: nil, a family (name or number),
 * an integer of uv_udp_init_ex flags, or { family =, mmsgs = }. With a
 * family the socket exists at once (options can be set before bind). */
static int udp_new(lua_State* L) {
  unsigned flags = AF_UNSPEC;
  lua_Integer mmsgs = 1;
  lh_handle_t* h;
  uv_udp_t* u;
  int r;
  switch (lua_type(L, 1)) {
    case LUA_TNONE:
    case LUA_TNIL:
      break;
    case LUA_TNUMBER:
      flags = (unsigned)luaL_checkinteger(L, 1);
      break;
    case LUA_TSTRING:
      flags = (unsigned)lh_check_family(L, 1);
      break;
    case LUA_TTABLE:
      lua_getfield(L, 1, "family");
      if (!lua_isnil(L, -1))
        flags = (unsigned)family_field(L);
      lua_getfield(L, 1, "mmsgs");
      if (!lua_isnil(L, -1)) {
        luaL_argcheck(L, lua_isinteger(L, -1), 1, "mmsgs must be an integer");
        mmsgs = lua_tointeger(L, -1);
        luaL_argcheck(L, mmsgs >= 1, 1, "mmsgs must be at least 1");
      }
      lua_pop(L, 2);
      break;
    default:
      return luaL_typeerror(L, 1, "nil, string, integer or table");
  }
  if (mmsgs > 1)
    flags |= UV_UDP_RECVMMSG;
  u = lh_handle_new(L, UV_UDP);
  h = ((uv_handle_t*)u)->data;
  if (mmsgs > 1) {
    size_t n = (size_t)(mmsgs < MMSGS_MAX ? mmsgs : MMSGS_MAX);
    udp_buf_t* buf = malloc(sizeof(udp_buf_t) + n * DGRAM_MAX);
    if (buf == NULL) {
      lh_handle_abort(L, u);
      return luaL_error(L, "not enough memory");
    }
    buf->len = n * DGRAM_MAX;
    h->extra = buf;
    h->free_extra = free;
  }
  r = uv_udp_init_ex(lh_runtime(L)->loop, u, flags);
  if (r < 0) {
    lh_handle_abort(L, u);
    return lh_error(L, r);
  }
  lh_handle_ready(L, u);
  return 1;
}

static int udp_open(lua_State* L) {
  uv_udp_t* u = check_udp(L, 1);
  return lh_result(L, uv_udp_open(u, (uv_os_sock_t)luaL_checkinteger(L, 2)));
}

static int flag(lua_State* L, int idx, const char* name) {
  int set;
  if (lua_isnoneornil(L, idx))
    return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, name);
  set = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return set;
}

/* bind(udp, host, port [, { ipv6only = bool, reuseaddr = bool }]) -> 0 |
 * fail (EINVAL for a host that is not a numeric address) */
static int udp_bind(lua_State* L) {
  uv_udp_t* u = check_udp(L, 1);
  struct sockaddr_storage addr;
  unsigned flags = 0;
  int r = lh_parse_addr(L, 2, 3, &addr);
  if (flag(L, 4, "ipv6only"))
    flags |= UV_UDP_IPV6ONLY;
  if (flag(L, 4, "reuseaddr"))
    flags |= UV_UDP_REUSEADDR;
  if (r < 0)
    return lh_error(L, r);
  return lh_result(L, uv_udp_bind(u, (struct sockaddr*)&addr, flags));
}

/* The peer at host_idx, port_idx: both nil gives *out = NULL (the
 * connected peer, or a disconnect); one of them nil raises. Returns 0 or
 * UV_EINVAL for a host that is not a numeric address. */
static int opt_addr(lua_State* L, int host_idx, int port_idx,
                    struct sockaddr_storage* ss, const struct sockaddr** out) {
  int no_host = lua_isnoneornil(L, host_idx);
  int no_port = lua_isnoneornil(L, port_idx);
  int r;
  *out = NULL;
  if (no_host && no_port)
    return 0;
  if (no_host || no_port)
    luaL_argerror(L, no_host ? host_idx : port_idx,
                  "host and port must both be given, or both be nil");
  r = lh_parse_addr(L, host_idx, port_idx, ss);
  if (r == 0)
    *out = (const struct sockaddr*)ss;
  return r;
}

/* connect(udp, host, port) -> 0 | fail; connect(udp, nil, nil)
 * disconnects (ENOTCONN when not connected). */
static int udp_connect(lua_State* L) {
  uv_udp_t* u = check_udp(L, 1);
  struct sockaddr_storage ss;
  const struct sockaddr* addr;
  int r = opt_addr(L, 2, 3, &ss, &addr);
  if (r < 0)
    return lh_error(L, r);
  return lh_result(L, uv_udp_connect(u, addr));
}

typedef int (*name_fn)(const uv_udp_t*, struct sockaddr*, int*);

static int push_name(lua_State* L, name_fn fn) {
  uv_udp_t* u = check_udp(L, 1);
  struct sockaddr_storage addr;
  int len = sizeof(addr);
  int r = fn(u, (struct sockaddr*)&addr, &len);
  if (r < 0)
    return lh_error(L, r);
  lh_push_sockaddr(L, (struct sockaddr*)&addr);
  return 1;
}

static int udp_getsockname(lua_State* L) {
  return push_name(L, uv_udp_getsockname);
}

static int udp_getpeername(lua_State* L) {
  return push_name(L, uv_udp_getpeername);
}

/* The datagram at idx as uv_bufs; an empty array is one empty datagram
 * (libuv wants at least one buffer). */
static unsigned check_dgram(lua_State* L, int idx, uv_buf_t* small,
                            uv_buf_t** bufs) {
  size_t total;
  int n;
  if (lua_type(L, idx) == LUA_TTABLE) {
    /* Only strings: a number would be converted into a string that
     * nothing pins. */
    int i, len = (int)lua_rawlen(L, idx);
    for (i = 1; i <= len; i++) {
      int t = lua_rawgeti(L, idx, i);
      lua_pop(L, 1);
      if (t != LUA_TSTRING)
        luaL_argerror(L, idx, "array holds a value that is not a string");
    }
  }
  n = lh_check_bufs(L, idx, small, SMALL_BUFS, bufs, &total);
  if (n == 0) {
    small[0] = uv_buf_init(NULL, 0);
    *bufs = small;
    n = 1;
  }
  return (unsigned)n;
}

static void send_cb(uv_udp_send_t* req, int status) {
  lh_req_t* r = lh_req_of(req);
  lh_runtime_t* rt = r->rt;
  lua_State* co = lh_req_callback(r);
  lh_req_done(r);
  if (co == NULL)
    return;
  lh_push_errname(co, status);
  lh_cb_run_err(rt, co, 1);
}

/* send(udp, data, host, port [, cb]) -> uv_udp_send_t | fail; cb(err).
 * data: a string or an array of strings (one datagram). host and port are
 * nil on a connected socket. */
static int udp_send(lua_State* L) {
  uv_udp_t* u = check_udp(L, 1);
  struct sockaddr_storage ss;
  const struct sockaddr* addr;
  uv_buf_t small[SMALL_BUFS];
  uv_buf_t* bufs;
  uv_udp_send_t* req;
  unsigned n;
  int cb_idx = lua_isnoneornil(L, 5) ? 0 : 5;
  int r = opt_addr(L, 3, 4, &ss, &addr);
  if (cb_idx != 0)
    lh_check_callable(L, cb_idx);
  if (r < 0)
    return lh_error(L, r);
  n = check_dgram(L, 2, small, &bufs);
  req = lh_req_new(L, UV_UDP_SEND, 0, cb_idx);
  lh_req_of(req)->data_ref = lh_pin_data(L, 2);
  r = uv_udp_send(req, u, bufs, n, addr, send_cb);
  if (bufs != small)
    free(bufs);
  if (r < 0) {
    lh_req_done(lh_req_of(req));
    return lh_error(L, r);
  }
  return 1;
}

/* try_send(udp, data, host, port) -> bytes sent | fail (EAGAIN: it would
 * have to wait). */
static int udp_try_send(lua_State* L) {
  uv_udp_t* u = check_udp(L, 1);
  struct sockaddr_storage ss;
  const struct sockaddr* addr;
  uv_buf_t small[SMALL_BUFS];
  uv_buf_t* bufs;
  unsigned n;
  int r = opt_addr(L, 3, 4, &ss, &addr);
  if (r < 0)
    return lh_error(L, r);
  n = check_dgram(L, 2, small, &bufs);
  r = uv_udp_try_send(u, bufs, n, addr);
  if (bufs != small)
    free(bufs);
  return lh_result(L, r);
}

static void recv_alloc(uv_handle_t* uvh, size_t suggested, uv_buf_t* buf) {
  lh_handle_t* h = uvh->data;
  udp_buf_t* own = h->extra;
  if (own == NULL) {
    lh_read_alloc(uvh, suggested, buf);
    return;
  }
  buf->base = own->data;
  buf->len = own->len;
}

/* cb(err, data, addr, flags), as luv: data is "" for an empty datagram;
 * data and addr are nil when there is nothing more to read for now. */
static void recv_cb(uv_udp_t* u, ssize_t nread, const uv_buf_t* buf,
                    const struct sockaddr* addr, unsigned flags) {
  lh_handle_t* h = u->data;
  lua_State* co;
  if ((flags & UV_UDP_MMSG_FREE) || uv_is_closing((uv_handle_t*)u))
    return; /* the buffer is the handle's: nothing to free */
  co = lh_callback_begin(h, LH_CB_EVENT);
  if (co == NULL)
    return;
  lh_push_errname(co, nread < 0 ? (int)nread : 0);
  if (nread > 0)
    lua_pushlstring(co, buf->base, (size_t)nread);
  else if (nread == 0 && addr != NULL)
    lua_pushliteral(co, "");
  else
    lua_pushnil(co);
  if (addr != NULL)
    lh_push_sockaddr(co, addr);
  else
    lua_pushnil(co);
  lua_createtable(co, 0, 2);
  if (flags & UV_UDP_PARTIAL) {
    lua_pushboolean(co, 1);
    lua_setfield(co, -2, "partial");
  }
  if (flags & UV_UDP_MMSG_CHUNK) {
    lua_pushboolean(co, 1);
    lua_setfield(co, -2, "mmsg_chunk");
  }
  lh_cb_run_err(h->rt, co, 4);
}

/* recv_start(udp, cb) -> 0 | fail. Starting again replaces the callback. */
static int udp_recv_start(lua_State* L) {
  lh_handle_t* h = lh_check_handle(L, 1, UV_UDP);
  int r;
  lh_set_callback(L, h, LH_CB_EVENT, 2);
  r = uv_udp_recv_start((uv_udp_t*)lh_uv(h), recv_alloc, recv_cb);
  if (r == UV_EALREADY)
    r = 0;
  return lh_result(L, r);
}

static int udp_recv_stop(lua_State* L) {
  return lh_result(L, uv_udp_recv_stop(check_udp(L, 1)));
}

static uv_membership check_membership(lua_State* L, int idx) {
  static const char* const names[] = {"leave", "join", NULL};
  static const uv_membership values[] = {UV_LEAVE_GROUP, UV_JOIN_GROUP};
  return values[luaL_checkoption(L, idx, NULL, names)];
}

/* set_membership(udp, multicast_addr, interface_addr|nil, "join"|"leave") */
static int udp_set_membership(lua_State* L) {
  uv_udp_t* u = check_udp(L, 1);
  const char* group = luaL_checkstring(L, 2);
  const char* iface = luaL_optstring(L, 3, NULL);
  uv_membership m = check_membership(L, 4);
  return lh_result(L, uv_udp_set_membership(u, group, iface, m));
}

/* set_source_membership(udp, multicast_addr, interface_addr|nil,
 * source_addr, "join"|"leave") */
static int udp_set_source_membership(lua_State* L) {
  uv_udp_t* u = check_udp(L, 1);
  const char* group = luaL_checkstring(L, 2);
  const char* iface = luaL_optstring(L, 3, NULL);
  const char* source = luaL_checkstring(L, 4);
  uv_membership m = check_membership(L, 5);
  return lh_result(L, uv_udp_set_source_membership(u, group, iface, source, m));
}

static int udp_set_multicast_loop(lua_State* L) {
  uv_udp_t* u = check_udp(L, 1);
  luaL_checktype(L, 2, LUA_TBOOLEAN);
  return lh_result(L, uv_udp_set_multicast_loop(u, lua_toboolean(L, 2)));
}

static int udp_set_multicast_ttl(lua_State* L) {
  uv_udp_t* u = check_udp(L, 1);
  int ttl = (int)luaL_checkinteger(L, 2);
  return lh_result(L, uv_udp_set_multicast_ttl(u, ttl));
}

static int udp_set_multicast_interface(lua_State* L) {
  uv_udp_t* u = check_udp(L, 1);
  const char* iface = luaL_optstring(L, 2, NULL);
  return lh_result(L, uv_udp_set_multicast_interface(u, iface));
}

static int udp_set_broadcast(lua_State* L) {
  uv_udp_t* u = check_udp(L, 1);
  luaL_checktype(L, 2, LUA_TBOOLEAN);
  return lh_result(L, uv_udp_set_broadcast(u, lua_toboolean(L, 2)));
}

static int udp_set_ttl(lua_State* L) {
  uv_udp_t* u = check_udp(L, 1);
  int ttl = (int)luaL_checkinteger(L, 2);
  return lh_result(L, uv_udp_set_ttl(u, ttl));
}

static int udp_get_send_queue_size(lua_State* L) {
  uv_udp_t* u = check_udp(L, 1);
  lua_pushinteger(L, (lua_Integer)uv_udp_get_send_queue_size(u));
  return 1;
}

static int udp_get_send_queue_count(lua_State* L) {
  uv_udp_t* u = check_udp(L, 1);
  lua_pushinteger(L, (lua_Integer)uv_udp_get_send_queue_count(u));
  return 1;
}

static const luaL_Reg udp_functions[] = {
    {"new_udp", udp_new},
    {"udp_open", udp_open},
    {"udp_bind", udp_bind},
    {"udp_connect", udp_connect},
    {"udp_getsockname", udp_getsockname},
    {"udp_getpeername", udp_getpeername},
    {"udp_send", udp_send},
    {"udp_try_send", udp_try_send},
    {"udp_recv_start", udp_recv_start},
    {"udp_recv_stop", udp_recv_stop},
    {"udp_set_membership", udp_set_membership},
    {"udp_set_source_membership", udp_set_source_membership},
    {"udp_set_multicast_loop", udp_set_multicast_loop},
    {"udp_set_multicast_ttl", udp_set_multicast_ttl},
    {"udp_set_multicast_interface", udp_set_multicast_interface},
    {"udp_set_broadcast", udp_set_broadcast},
    {"udp_set_ttl", udp_set_ttl},
    {"udp_get_send_queue_size", udp_get_send_queue_size},
    {"udp_get_send_queue_count", udp_get_send_queue_count},
    {NULL, NULL},
};

static const luaL_Reg udp_methods[] = {
    {"open", udp_open},
    {"bind", udp_bind},
    {"connect", udp_connect},
    {"getsockname", udp_getsockname},
    {"getpeername", udp_getpeername},
    {"send", udp_send},
    {"try_send", udp_try_send},
    {"recv_start", udp_recv_start},
    {"recv_stop", udp_recv_stop},
    {"set_membership", udp_set_membership},
    {"set_source_membership", udp_set_source_membership},
    {"set_multicast_loop", udp_set_multicast_loop},
    {"set_multicast_ttl", udp_set_multicast_ttl},
    {"set_multicast_interface", udp_set_multicast_interface},
    {"set_broadcast", udp_set_broadcast},
    {"set_ttl", udp_set_ttl},
    {"get_send_queue_size", udp_get_send_queue_size},
    {"get_send_queue_count", udp_get_send_queue_count},
    {NULL, NULL},
};

void lh_open_udp(lua_State* L) {
  luaL_setfuncs(L, udp_functions, 0);
  lh_new_handle_type(L, UV_UDP, "uv_udp", udp_methods);
}
