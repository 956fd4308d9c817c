/* getaddrinfo and getnameinfo, with luv's API. With a callback they run on
 * libuv's thread pool and return the request, which uv.cancel can stop
 * while it waits for a thread (the callback then gets "EAI_CANCELED");
 * without one they block the loop and return the results. Failures carry
 * libuv's EAI_* names. */
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "lh_bind.h"

typedef struct {
  const char* name;
  int value;
} named_t;

static const named_t families[] = {
    {"unspec", AF_UNSPEC}, {"inet", AF_INET}, {"inet6", AF_INET6},
    {"unix", AF_UNIX},     {NULL, 0},
};

static const named_t socktypes[] = {
    {"stream", SOCK_STREAM}, {"dgram", SOCK_DGRAM},         {"raw", SOCK_RAW},
    {"rdm", SOCK_RDM},       {"seqpacket", SOCK_SEQPACKET}, {NULL, 0},
};

/* The names of /etc/protocols, fixed here: the file may be missing. */
static const named_t protocols[] = {
    {"ip", IPPROTO_IP},
    {"icmp", IPPROTO_ICMP},
    {"tcp", IPPROTO_TCP},
    {"udp", IPPROTO_UDP},
    {"ipv6", IPPROTO_IPV6},
    {"ipv6-icmp", IPPROTO_ICMPV6},
    {"sctp", IPPROTO_SCTP},
    {"raw", IPPROTO_RAW},
    {NULL, 0},
};

static void push_named(lua_State* L, const named_t* table, int value) {
  for (; table->name != NULL; table++) {
    if (table->value == value) {
      lua_pushstring(L, table->name);
      return;
    }
  }
  lua_pushinteger(L, value);
}

/* hints[field]: absent, a number, or one of the table's names. */
static int hint_value(lua_State* L, int idx, const char* field,
                      const named_t* table) {
  int value = 0;
  switch (lua_getfield(L, idx, field)) {
    case LUA_TNIL:
      break;
    case LUA_TNUMBER:
      value = (int)lua_tointeger(L, -1);
      break;
    case LUA_TSTRING: {
      const char* name = lua_tostring(L, -1);
      for (; table->name != NULL; table++)
        if (strcmp(table->name, name) == 0)
          break;
      if (table->name == NULL)
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "unknown %s '%s'", field, name));
      value = table->value;
      break;
    }
    default:
      luaL_argerror(L, idx,
                    lua_pushfstring(L, "%s must be a string or number", field));
  }
  lua_pop(L, 1);
  return value;
}

static int hint_flag(lua_State* L, int idx, const char* field, int flag) {
  int set;
  lua_getfield(L, idx, field);
  set = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return set ? flag : 0;
}

static void check_hints(lua_State* L, int idx, struct addrinfo* hints) {
  memset(hints, 0, sizeof(*hints));
  hints->ai_family = hint_value(L, idx, "family", families);
  hints->ai_socktype = hint_value(L, idx, "socktype", socktypes);
  hints->ai_protocol = hint_value(L, idx, "protocol", protocols);
  hints->ai_flags = hint_flag(L, idx, "addrconfig", AI_ADDRCONFIG) |
                    hint_flag(L, idx, "v4mapped", AI_V4MAPPED) |
                    hint_flag(L, idx, "all", AI_ALL) |
                    hint_flag(L, idx, "numerichost", AI_NUMERICHOST) |
                    hint_flag(L, idx, "passive", AI_PASSIVE) |
                    hint_flag(L, idx, "numericserv", AI_NUMERICSERV) |
                    hint_flag(L, idx, "canonname", AI_CANONNAME);
}

/* An array of { addr, family, port, socktype, protocol, canonname } for
 * the IPv4 and IPv6 entries; port only when not 0. */
static void push_addrinfo(lua_State* L, const struct addrinfo* res) {
  const struct addrinfo* ai;
  int n = 0;
  lua_newtable(L);
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    char ip[INET6_ADDRSTRLEN];
    int port;
    if (ai->ai_family == AF_INET) {
      const struct sockaddr_in* a4 = (const struct sockaddr_in*)ai->ai_addr;
      uv_ip4_name(a4, ip, sizeof(ip));
      port = ntohs(a4->sin_port);
    } else if (ai->ai_family == AF_INET6) {
      const struct sockaddr_in6* a6 = (const struct sockaddr_in6*)ai->ai_addr;
      uv_ip6_name(a6, ip, sizeof(ip));
      port = ntohs(a6->sin6_port);
    } else {
      continue;
    }
    lua_createtable(L, 0, 6);
    lua_pushstring(L, ip);
    lua_setfield(L, -2, "addr");
    push_named(L, families, ai->ai_family);
    lua_setfield(L, -2, "family");
    if (port != 0) {
      lua_pushinteger(L, port);
      lua_setfield(L, -2, "port");
    }
    push_named(L, socktypes, ai->ai_socktype);
    lua_setfield(L, -2, "socktype");
    push_named(L, protocols, ai->ai_protocol);
    lua_setfield(L, -2, "protocol");
    if (ai->ai_canonname != NULL) {
      lua_pushstring(L, ai->ai_canonname);
      lua_setfield(L, -2, "canonname");
    }
    lua_rawseti(L, -2, ++n);
  }
}

static void getaddrinfo_cb(uv_getaddrinfo_t* req, int status,
                           struct addrinfo* res) {
  lh_req_t* r = lh_req_of(req);
  lh_runtime_t* rt = r->rt;
  lua_State* co = lh_req_callback(r);
  lh_req_done(r); /* r may be collected from here on */
  if (co != NULL) {
    lh_push_errname(co, status);
    if (status < 0)
      lua_pushnil(co);
    else
      push_addrinfo(co, res);
  }
  uv_freeaddrinfo(res);
  if (co != NULL)
    lh_cb_run_err(rt, co, 2);
}

/* getaddrinfo(host, service [, hints] [, cb]): without cb, the array of
 * addresses | fail; with cb, uv_getaddrinfo_t | fail and later
 * cb(err, addresses). host or service may be nil, not both. */
static int dns_getaddrinfo(lua_State* L) {
  const char* node = luaL_optstring(L, 1, NULL);
  const char* service = luaL_optstring(L, 2, NULL);
  struct addrinfo hints;
  struct addrinfo* hp = NULL;
  uv_loop_t* loop = lh_runtime(L)->loop;
  int r;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    check_hints(L, 3, &hints);
    hp = &hints;
  }
  if (lua_isnoneornil(L, 4)) {
    uv_getaddrinfo_t req;
    const char* prev = lh_blocking_begin(lh_runtime(L), "getaddrinfo");
    r = uv_getaddrinfo(loop, &req, NULL, node, service, hp);
    lh_blocking_end(lh_runtime(L), prev);
    if (r < 0)
      return lh_error(L, r);
    push_addrinfo(L, req.addrinfo);
    uv_freeaddrinfo(req.addrinfo);
    return 1;
  } else {
    uv_getaddrinfo_t* req = lh_req_new(L, UV_GETADDRINFO, 0, 4);
    r = uv_getaddrinfo(loop, req, getaddrinfo_cb, node, service, hp);
    if (r < 0) {
      lh_req_done(lh_req_of(req));
      return lh_error(L, r);
    }
    return 1;
  }
}

static void getnameinfo_cb(uv_getnameinfo_t* req, int status, const char* host,
                           const char* service) {
  lh_req_t* r = lh_req_of(req);
  lh_runtime_t* rt = r->rt;
  lua_State* co = lh_req_callback(r);
  if (co != NULL) {
    lh_push_errname(co, status);
    if (status < 0) {
      lua_pushnil(co);
      lua_pushnil(co);
    } else {
      lua_pushstring(co, host);
      lua_pushstring(co, service);
    }
  }
  lh_req_done(r); /* host and service live in req: release it after */
  if (co != NULL)
    lh_cb_run_err(rt, co, 3);
}

/* The address of getnameinfo's table { ip, port, family }. Returns 0, or
 * UV_EINVAL for an ip that is not a numeric address. */
static int check_name_addr(lua_State* L, struct sockaddr_storage* ss) {
  const char* ip = NULL;
  lua_Integer port = 0;
  int r = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(ss, 0, sizeof(*ss));
  lua_getfield(L, 1, "ip");
  if (!lua_isnil(L, -1)) {
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "ip must be a string");
    ip = lua_tostring(L, -1);
  }
  lua_getfield(L, 1, "port");
  if (!lua_isnil(L, -1)) {
    luaL_argcheck(L, lua_isinteger(L, -1), 1, "port must be an integer");
    port = lua_tointeger(L, -1);
    luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port out of range");
  }
  if (ip != NULL || port != 0) {
    if (ip == NULL)
      ip = "0.0.0.0";
    if (uv_ip4_addr(ip, (int)port, (struct sockaddr_in*)ss) != 0 &&
        uv_ip6_addr(ip, (int)port, (struct sockaddr_in6*)ss) != 0)
      r = UV_EINVAL;
  }
  lua_pop(L, 2);
  if (lua_getfield(L, 1, "family") != LUA_TNIL)
    ss->ss_family = (sa_family_t)hint_value(L, 1, "family", families);
  lua_pop(L, 1);
  return r;
}

/* getnameinfo({ ip =, port =, family = } [, cb]): without cb, host,
 * service | fail; with cb, uv_getnameinfo_t | fail and later
 * cb(err, host, service). */
static int dns_getnameinfo(lua_State* L) {
  struct sockaddr_storage ss;
  uv_loop_t* loop = lh_runtime(L)->loop;
  int r = check_name_addr(L, &ss);
  if (!lua_isnoneornil(L, 2))
    lh_check_callable(L, 2);
  if (r < 0)
    return lh_error(L, r);
  if (lua_isnoneornil(L, 2)) {
    uv_getnameinfo_t req;
    const char* prev = lh_blocking_begin(lh_runtime(L), "getnameinfo");
    r = uv_getnameinfo(loop, &req, NULL, (struct sockaddr*)&ss, 0);
    lh_blocking_end(lh_runtime(L), prev);
    if (r < 0)
      return lh_error(L, r);
    lua_pushstring(L, req.host);
    lua_pushstring(L, req.service);
    return 2;
  } else {
    uv_getnameinfo_t* req = lh_req_new(L, UV_GETNAMEINFO, 0, 2);
    r = uv_getnameinfo(loop, req, getnameinfo_cb, (struct sockaddr*)&ss, 0);
    if (r < 0) {
      lh_req_done(lh_req_of(req));
      return lh_error(L, r);
    }
    return 1;
  }
}

static const luaL_Reg dns_functions[] = {
    {"getaddrinfo", dns_getaddrinfo},
    {"getnameinfo", dns_getnameinfo},
    {NULL, NULL},
};

void lh_open_dns(lua_State* L) {
  luaL_setfuncs(L, dns_functions, 0);
}
