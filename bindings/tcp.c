/* uv_tcp_t: sockets over IPv4 and IPv6, plus socketpair. Addresses are
 * numeric (resolve names with getaddrinfo first), as in luv. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lh_bind.h"

static uv_tcp_t* check_tcp(lua_State* L, int idx) {
  return lh_check_uv(L, idx, UV_TCP, uv_tcp_t);
}

/* new_tcp([family]) -> tcp | fail; with a family the socket exists at
 * once (needed to set options before bind). */
static int tcp_new(lua_State* L) {
  unsigned flags = AF_UNSPEC;
  uv_tcp_t* t;
  int r;
  if (!lua_isnoneornil(L, 1))
    flags = (unsigned)lh_check_family(L, 1);
  t = lh_handle_new(L, UV_TCP);
  r = uv_tcp_init_ex(lh_runtime(L)->loop, t, flags);
  if (r < 0) {
    lh_handle_abort(L, t);
    return lh_error(L, r);
  }
  lh_handle_ready(L, t);
  return 1;
}

static int tcp_open(lua_State* L) {
  uv_tcp_t* t = check_tcp(L, 1);
  return lh_result(L, uv_tcp_open(t, (uv_os_sock_t)luaL_checkinteger(L, 2)));
}

static int tcp_nodelay(lua_State* L) {
  uv_tcp_t* t = check_tcp(L, 1);
  luaL_checktype(L, 2, LUA_TBOOLEAN);
  return lh_result(L, uv_tcp_nodelay(t, lua_toboolean(L, 2)));
}

static int tcp_keepalive(lua_State* L) {
  uv_tcp_t* t = check_tcp(L, 1);
  unsigned delay = 0;
  luaL_checktype(L, 2, LUA_TBOOLEAN);
  if (lua_toboolean(L, 2))
    delay = (unsigned)luaL_checkinteger(L, 3);
  return lh_result(L, uv_tcp_keepalive(t, lua_toboolean(L, 2), delay));
}

static int tcp_simultaneous_accepts(lua_State* L) {
  uv_tcp_t* t = check_tcp(L, 1);
  luaL_checktype(L, 2, LUA_TBOOLEAN);
  return lh_result(L, uv_tcp_simultaneous_accepts(t, lua_toboolean(L, 2)));
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

/* SO_REUSEPORT must be set before bind, so the socket must exist: make one
 * of the address's family unless the handle already has one. */
static int set_reuseport(uv_tcp_t* t, int family) {
  uv_os_fd_t fd;
  int on = 1;
  if (uv_fileno((uv_handle_t*)t, &fd) != 0) {
    int r;
    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return uv_translate_sys_error(errno);
    r = uv_tcp_open(t, fd);
    if (r < 0) {
      close(fd);
      return r;
    }
  }
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0)
    return uv_translate_sys_error(errno);
  return 0;
}

/* bind(tcp, host, port [, { ipv6only = bool, reuseport = bool }]) */
static int tcp_bind(lua_State* L) {
  uv_tcp_t* t = check_tcp(L, 1);
  struct sockaddr_storage addr;
  unsigned flags = 0;
  int r = lh_parse_addr(L, 2, 3, &addr);
  if (r < 0)
    return lh_error(L, r);
  if (flag(L, 4, "ipv6only"))
    flags |= UV_TCP_IPV6ONLY;
  if (flag(L, 4, "reuseport")) {
    r = set_reuseport(t, addr.ss_family);
    if (r < 0)
      return lh_error(L, r);
  }
  return lh_result(L, uv_tcp_bind(t, (struct sockaddr*)&addr, flags));
}

typedef int (*name_fn)(const uv_tcp_t*, struct sockaddr*, int*);

static int push_name(lua_State* L, name_fn fn) {
  uv_tcp_t* t = check_tcp(L, 1);
  struct sockaddr_storage addr;
  int len = sizeof(addr);
  int r = fn(t, (struct sockaddr*)&addr, &len);
  if (r < 0)
    return lh_error(L, r);
  lh_push_sockaddr(L, (struct sockaddr*)&addr);
  return 1;
}

static int tcp_getsockname(lua_State* L) {
  return push_name(L, uv_tcp_getsockname);
}

static int tcp_getpeername(lua_State* L) {
  return push_name(L, uv_tcp_getpeername);
}

static void connect_cb(uv_connect_t* req, int status) {
  lh_req_t* r = lh_req_of(req);
  lua_State* co = lh_req_callback(r);
  lh_req_done(r);
  if (co == NULL)
    return;
  lh_push_errname(co, status);
  lh_cb_run_err(r->rt, co, 1);
}

/* connect(tcp, host, port, cb) -> uv_connect_t | fail; cb(err) */
static int tcp_connect(lua_State* L) {
  uv_tcp_t* t = check_tcp(L, 1);
  struct sockaddr_storage addr;
  uv_connect_t* req;
  int r = lh_parse_addr(L, 2, 3, &addr);
  if (r < 0)
    return lh_error(L, r);
  req = lh_req_new(L, UV_CONNECT, 0, 4);
  r = uv_tcp_connect(req, t, (struct sockaddr*)&addr, connect_cb);
  if (r < 0) {
    lh_req_done(lh_req_of(req));
    return lh_error(L, r);
  }
  return 1;
}

static int tcp_write_queue_size(lua_State* L) {
  uv_tcp_t* t = check_tcp(L, 1);
  lua_pushinteger(L, (lua_Integer)t->write_queue_size);
  return 1;
}

/* close_reset(tcp [, cb]): closes with RST instead of FIN. */
static int tcp_close_reset(lua_State* L) {
  lh_handle_t* h = lh_check_handle(L, 1, UV_TCP);
  int r;
  if (!lua_isnoneornil(L, 2))
    lh_set_callback(L, h, LH_CB_CLOSE, 2);
  r = uv_tcp_close_reset((uv_tcp_t*)lh_uv(h), lh_handle_closed);
  return lh_result(L, r);
}

static int socktype(lua_State* L, int idx) {
  static const char* const names[] = {"stream", "dgram",     "raw",
                                      "rdm",    "seqpacket", NULL};
  static const int values[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_RDM,
                               SOCK_SEQPACKET};
  if (lua_isnoneornil(L, idx))
    return SOCK_STREAM;
  if (lua_type(L, idx) == LUA_TNUMBER)
    return (int)lua_tointeger(L, idx);
  return values[luaL_checkoption(L, idx, NULL, names)];
}

/* socketpair([socktype] [, protocol] [, flags0] [, flags1]) -> { fd, fd } */
static int tcp_socketpair(lua_State* L) {
  int type = socktype(L, 1);
  int protocol = (int)luaL_optinteger(L, 2, 0);
  int flags0 = flag(L, 3, "nonblock") ? UV_NONBLOCK_PIPE : 0;
  int flags1 = flag(L, 4, "nonblock") ? UV_NONBLOCK_PIPE : 0;
  uv_os_sock_t fds[2];
  int r = uv_socketpair(type, protocol, fds, flags0, flags1);
  if (r < 0)
    return lh_error(L, r);
  lua_createtable(L, 2, 0);
  lua_pushinteger(L, fds[0]);
  lua_rawseti(L, -2, 1);
  lua_pushinteger(L, fds[1]);
  lua_rawseti(L, -2, 2);
  return 1;
}

static const luaL_Reg tcp_functions[] = {
    {"new_tcp", tcp_new},
    {"tcp_open", tcp_open},
    {"tcp_nodelay", tcp_nodelay},
    {"tcp_keepalive", tcp_keepalive},
    {"tcp_simultaneous_accepts", tcp_simultaneous_accepts},
    {"tcp_bind", tcp_bind},
    {"tcp_getsockname", tcp_getsockname},
    {"tcp_getpeername", tcp_getpeername},
    {"tcp_connect", tcp_connect},
    {"tcp_write_queue_size", tcp_write_queue_size},
    {"tcp_close_reset", tcp_close_reset},
    {"socketpair", tcp_socketpair},
    {NULL, NULL},
};

static const luaL_Reg tcp_methods[] = {
    {"open", tcp_open},
    {"nodelay", tcp_nodelay},
    {"keepalive", tcp_keepalive},
    {"simultaneous_accepts", tcp_simultaneous_accepts},
    {"bind", tcp_bind},
    {"getsockname", tcp_getsockname},
    {"getpeername", tcp_getpeername},
    {"connect", tcp_connect},
    {"write_queue_size", tcp_write_queue_size},
    {"close_reset", tcp_close_reset},
    {NULL, NULL},
};

void lh_open_tcp(lua_State* L) {
  luaL_setfuncs(L, tcp_functions, 0);
  lh_new_handle_type(L, UV_TCP, "uv_tcp", tcp_methods);
  lh_add_methods(L, UV_TCP, lh_stream_methods);
}
