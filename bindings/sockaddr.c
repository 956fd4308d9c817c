/* Socket addresses between Lua and C: "host", port <-> sockaddr, and
 * { ip, family, port } tables as luv gives them. */
#include <string.h>
#include <sys/un.h>

#include "lh_bind.h"

const char* lh_family_name(int family) {
  switch (family) {
    case AF_INET:
      return "inet";
    case AF_INET6:
      return "inet6";
    case AF_UNIX:
      return "unix";
    case AF_UNSPEC:
      return "unspec";
    default:
      return NULL;
  }
}

/* A family from a name ("inet", "inet6", "unix", "unspec") or a number. */
int lh_check_family(lua_State* L, int idx) {
  static const char* const names[] = {"unspec", "inet", "inet6", "unix", NULL};
  static const int values[] = {AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX};
  if (lua_type(L, idx) == LUA_TNUMBER)
    return (int)lua_tointeger(L, idx);
  return values[luaL_checkoption(L, idx, NULL, names)];
}

/* Fills out from a numeric IPv4 or IPv6 host and a port. Returns 0, or a
 * libuv error (EINVAL) for a host that is not a numeric address. */
int lh_parse_addr(lua_State* L, int host_idx, int port_idx,
                  struct sockaddr_storage* out) {
  const char* host = luaL_checkstring(L, host_idx);
  lua_Integer port = luaL_checkinteger(L, port_idx);
  luaL_argcheck(L, port >= 0 && port <= 65535, port_idx, "port out of range");
  memset(out, 0, sizeof(*out));
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in*)out) == 0)
    return 0;
  if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6*)out) == 0)
    return 0;
  return UV_EINVAL;
}

void lh_push_sockaddr(lua_State* L, const struct sockaddr* addr) {
  char ip[INET6_ADDRSTRLEN];
  int port = 0;
  lua_createtable(L, 0, 3);
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in* a4 = (const struct sockaddr_in*)addr;
    uv_ip4_name(a4, ip, sizeof(ip));
    port = ntohs(a4->sin_port);
  } else if (addr->sa_family == AF_INET6) {
    const struct sockaddr_in6* a6 = (const struct sockaddr_in6*)addr;
    uv_ip6_name(a6, ip, sizeof(ip));
    port = ntohs(a6->sin6_port);
  } else {
    ip[0] = '\0';
  }
  lua_pushstring(L, ip);
  lua_setfield(L, -2, "ip");
  if (lh_family_name(addr->sa_family) != NULL)
    lua_pushstring(L, lh_family_name(addr->sa_family));
  else
    lua_pushinteger(L, addr->sa_family);
  lua_setfield(L, -2, "family");
  lua_pushinteger(L, port);
  lua_setfield(L, -2, "port");
}
