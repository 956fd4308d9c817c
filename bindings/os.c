/* The operating system: environment, users, host, priorities, and system
 * figures (CPUs, memory, load, uptime, resource usage, interfaces). */
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "lh_bind.h"

#define OS_BUF 4096

typedef int (*os_path_fn)(char* buf, size_t* size);

static int push_os_string(lua_State* L, os_path_fn fn) {
  char buf[OS_BUF];
  size_t size = sizeof(buf);
  int r = fn(buf, &size);
  if (r < 0)
    return lh_error(L, r);
  lua_pushlstring(L, buf, size);
  return 1;
}

static int os_homedir(lua_State* L) {
  return push_os_string(L, uv_os_homedir);
}

static int os_tmpdir(lua_State* L) {
  return push_os_string(L, uv_os_tmpdir);
}

static int os_gethostname(lua_State* L) {
  char buf[UV_MAXHOSTNAMESIZE];
  size_t size = sizeof(buf);
  int r = uv_os_gethostname(buf, &size);
  if (r < 0)
    return lh_error(L, r);
  lua_pushlstring(L, buf, size);
  return 1;
}

static int os_getenv(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  size_t size = (size_t)luaL_optinteger(L, 2, OS_BUF);
  char stackbuf[OS_BUF];
  char* buf = stackbuf;
  int r;
  if (size > sizeof(stackbuf)) {
    buf = malloc(size);
    if (buf == NULL)
      return luaL_error(L, "not enough memory");
  }
  r = uv_os_getenv(name, buf, &size);
  if (r == UV_ENOBUFS && lua_isnoneornil(L, 2)) { /* retry, big enough */
    buf = malloc(size);
    if (buf == NULL)
      return luaL_error(L, "not enough memory");
    r = uv_os_getenv(name, buf, &size);
  }
  if (r < 0) {
    if (buf != stackbuf)
      free(buf);
    return lh_error(L, r);
  }
  lua_pushlstring(L, buf, size);
  if (buf != stackbuf)
    free(buf);
  return 1;
}

static int os_setenv(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  const char* value = luaL_checkstring(L, 2);
  int r = uv_os_setenv(name, value);
  if (r < 0)
    return lh_error(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static int os_unsetenv(lua_State* L) {
  int r = uv_os_unsetenv(luaL_checkstring(L, 1));
  if (r < 0)
    return lh_error(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static int os_environ(lua_State* L) {
  uv_env_item_t* items;
  int i, n, r = uv_os_environ(&items, &n);
  if (r < 0)
    return lh_error(L, r);
  lua_createtable(L, 0, n);
  for (i = 0; i < n; i++) {
    lua_pushstring(L, items[i].value);
    lua_setfield(L, -2, items[i].name);
  }
  uv_os_free_environ(items, n);
  return 1;
}

static int os_get_passwd(lua_State* L) {
  uv_passwd_t pwd;
  int r = uv_os_get_passwd(&pwd);
  if (r < 0)
    return lh_error(L, r);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, pwd.username);
  lua_setfield(L, -2, "username");
  lua_pushinteger(L, (lua_Integer)pwd.uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, (lua_Integer)pwd.gid);
  lua_setfield(L, -2, "gid");
  if (pwd.shell != NULL) {
    lua_pushstring(L, pwd.shell);
    lua_setfield(L, -2, "shell");
  }
  if (pwd.homedir != NULL) {
    lua_pushstring(L, pwd.homedir);
    lua_setfield(L, -2, "homedir");
  }
  uv_os_free_passwd(&pwd);
  return 1;
}

static int os_uname(lua_State* L) {
  uv_utsname_t u;
  int r = uv_os_uname(&u);
  if (r < 0)
    return lh_error(L, r);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, u.sysname);
  lua_setfield(L, -2, "sysname");
  lua_pushstring(L, u.release);
  lua_setfield(L, -2, "release");
  lua_pushstring(L, u.version);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, u.machine);
  lua_setfield(L, -2, "machine");
  return 1;
}

static int os_getpid(lua_State* L) {
  lua_pushinteger(L, uv_os_getpid());
  return 1;
}

static int os_getppid(lua_State* L) {
  lua_pushinteger(L, uv_os_getppid());
  return 1;
}

static int os_getpriority(lua_State* L) {
  int priority;
  int r = uv_os_getpriority((uv_pid_t)luaL_checkinteger(L, 1), &priority);
  if (r < 0)
    return lh_error(L, r);
  lua_pushinteger(L, priority);
  return 1;
}

static int os_setpriority(lua_State* L) {
  int r = uv_os_setpriority((uv_pid_t)luaL_checkinteger(L, 1),
                            (int)luaL_checkinteger(L, 2));
  if (r < 0)
    return lh_error(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static int sys_cpu_info(lua_State* L) {
  uv_cpu_info_t* cpus;
  int i, n, r = uv_cpu_info(&cpus, &n);
  if (r < 0)
    return lh_error(L, r);
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, cpus[i].model);
    lua_setfield(L, -2, "model");
    lua_pushinteger(L, cpus[i].speed);
    lua_setfield(L, -2, "speed");
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, (lua_Integer)cpus[i].cpu_times.user);
    lua_setfield(L, -2, "user");
    lua_pushinteger(L, (lua_Integer)cpus[i].cpu_times.nice);
    lua_setfield(L, -2, "nice");
    lua_pushinteger(L, (lua_Integer)cpus[i].cpu_times.sys);
    lua_setfield(L, -2, "sys");
    lua_pushinteger(L, (lua_Integer)cpus[i].cpu_times.idle);
    lua_setfield(L, -2, "idle");
    lua_pushinteger(L, (lua_Integer)cpus[i].cpu_times.irq);
    lua_setfield(L, -2, "irq");
    lua_setfield(L, -2, "times");
    lua_rawseti(L, -2, i + 1);
  }
  uv_free_cpu_info(cpus, n);
  return 1;
}

static int sys_get_total_memory(lua_State* L) {
  lua_pushinteger(L, (lua_Integer)uv_get_total_memory());
  return 1;
}

static int sys_get_free_memory(lua_State* L) {
  lua_pushinteger(L, (lua_Integer)uv_get_free_memory());
  return 1;
}

static int sys_get_constrained_memory(lua_State* L) {
  lua_pushinteger(L, (lua_Integer)uv_get_constrained_memory());
  return 1;
}

static int sys_resident_set_memory(lua_State* L) {
  size_t rss;
  int r = uv_resident_set_memory(&rss);
  if (r < 0)
    return lh_error(L, r);
  lua_pushinteger(L, (lua_Integer)rss);
  return 1;
}

static int sys_uptime(lua_State* L) {
  double uptime;
  int r = uv_uptime(&uptime);
  if (r < 0)
    return lh_error(L, r);
  lua_pushnumber(L, uptime);
  return 1;
}

static int sys_loadavg(lua_State* L) {
  double avg[3];
  uv_loadavg(avg);
  lua_pushnumber(L, avg[0]);
  lua_pushnumber(L, avg[1]);
  lua_pushnumber(L, avg[2]);
  return 3;
}

static void set_time(lua_State* L, const char* name, uv_timeval_t tv) {
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, tv.tv_sec);
  lua_setfield(L, -2, "sec");
  lua_pushinteger(L, tv.tv_usec);
  lua_setfield(L, -2, "usec");
  lua_setfield(L, -2, name);
}

static void set_int(lua_State* L, const char* name, uint64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, name);
}

static int sys_getrusage(lua_State* L) {
  uv_rusage_t u;
  int r = uv_getrusage(&u);
  if (r < 0)
    return lh_error(L, r);
  lua_createtable(L, 0, 16);
  set_time(L, "utime", u.ru_utime);
  set_time(L, "stime", u.ru_stime);
  set_int(L, "maxrss", u.ru_maxrss);
  set_int(L, "ixrss", u.ru_ixrss);
  set_int(L, "idrss", u.ru_idrss);
  set_int(L, "isrss", u.ru_isrss);
  set_int(L, "minflt", u.ru_minflt);
  set_int(L, "majflt", u.ru_majflt);
  set_int(L, "nswap", u.ru_nswap);
  set_int(L, "inblock", u.ru_inblock);
  set_int(L, "oublock", u.ru_oublock);
  set_int(L, "msgsnd", u.ru_msgsnd);
  set_int(L, "msgrcv", u.ru_msgrcv);
  set_int(L, "nsignals", u.ru_nsignals);
  set_int(L, "nvcsw", u.ru_nvcsw);
  set_int(L, "nivcsw", u.ru_nivcsw);
  return 1;
}

static int sys_interface_addresses(lua_State* L) {
  uv_interface_address_t* ifs;
  int i, n, r = uv_interface_addresses(&ifs, &n);
  char ip[INET6_ADDRSTRLEN];
  if (r < 0)
    return lh_error(L, r);
  lua_newtable(L);
  for (i = 0; i < n; i++) {
    int family = ifs[i].address.address4.sin_family;
    lua_getfield(L, -1, ifs[i].name);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_setfield(L, -3, ifs[i].name);
    }
    lua_createtable(L, 0, 5);
    if (family == AF_INET6) {
      uv_ip6_name(&ifs[i].address.address6, ip, sizeof(ip));
      lua_pushstring(L, ip);
      lua_setfield(L, -2, "ip");
      uv_ip6_name(&ifs[i].netmask.netmask6, ip, sizeof(ip));
      lua_pushliteral(L, "inet6");
    } else {
      uv_ip4_name(&ifs[i].address.address4, ip, sizeof(ip));
      lua_pushstring(L, ip);
      lua_setfield(L, -2, "ip");
      uv_ip4_name(&ifs[i].netmask.netmask4, ip, sizeof(ip));
      lua_pushliteral(L, "inet");
    }
    lua_setfield(L, -2, "family");
    lua_pushstring(L, ip);
    lua_setfield(L, -2, "netmask");
    lua_pushboolean(L, ifs[i].is_internal);
    lua_setfield(L, -2, "internal");
    {
      char mac[18];
      const unsigned char* m = (const unsigned char*)ifs[i].phys_addr;
      snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1],
               m[2], m[3], m[4], m[5]);
      lua_pushstring(L, mac);
    }
    lua_setfield(L, -2, "mac");
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
  }
  uv_free_interface_addresses(ifs, n);
  return 1;
}

static int os_getuid(lua_State* L) {
  lua_pushinteger(L, getuid());
  return 1;
}

static int os_getgid(lua_State* L) {
  lua_pushinteger(L, getgid());
  return 1;
}

static int os_setuid(lua_State* L) {
  if (setuid((uid_t)luaL_checkinteger(L, 1)) < 0)
    return luaL_error(L, "setuid: %s", strerror(errno));
  return 0;
}

static int os_setgid(lua_State* L) {
  if (setgid((gid_t)luaL_checkinteger(L, 1)) < 0)
    return luaL_error(L, "setgid: %s", strerror(errno));
  return 0;
}

static int sys_get_available_memory(lua_State* L) {
  uint64_t constrained = uv_get_constrained_memory();
  uint64_t free_mem = uv_get_free_memory();
  lua_pushinteger(
      L, (lua_Integer)(constrained && constrained < free_mem ? constrained
                                                             : free_mem));
  return 1;
}

static int sys_if_indextoname(lua_State* L) {
  char name[UV_IF_NAMESIZE];
  size_t size = sizeof(name);
  int r = uv_if_indextoname((unsigned)luaL_checkinteger(L, 1), name, &size);
  if (r < 0)
    return lh_error(L, r);
  lua_pushlstring(L, name, size);
  return 1;
}

static int sys_if_indextoiid(lua_State* L) {
  char name[UV_IF_NAMESIZE];
  size_t size = sizeof(name);
  int r = uv_if_indextoiid((unsigned)luaL_checkinteger(L, 1), name, &size);
  if (r < 0)
    return lh_error(L, r);
  lua_pushlstring(L, name, size);
  return 1;
}

static const luaL_Reg os_functions[] = {
    {"os_homedir", os_homedir},
    {"os_tmpdir", os_tmpdir},
    {"os_gethostname", os_gethostname},
    {"os_getenv", os_getenv},
    {"os_setenv", os_setenv},
    {"os_unsetenv", os_unsetenv},
    {"os_environ", os_environ},
    {"os_get_passwd", os_get_passwd},
    {"os_uname", os_uname},
    {"os_getpid", os_getpid},
    {"os_getppid", os_getppid},
    {"getpid", os_getpid},
    {"os_getpriority", os_getpriority},
    {"os_setpriority", os_setpriority},
    {"cpu_info", sys_cpu_info},
    {"get_total_memory", sys_get_total_memory},
    {"get_free_memory", sys_get_free_memory},
    {"get_constrained_memory", sys_get_constrained_memory},
    {"resident_set_memory", sys_resident_set_memory},
    {"uptime", sys_uptime},
    {"loadavg", sys_loadavg},
    {"getrusage", sys_getrusage},
    {"interface_addresses", sys_interface_addresses},
    {"if_indextoname", sys_if_indextoname},
    {"if_indextoiid", sys_if_indextoiid},
    {"get_available_memory", sys_get_available_memory},
    {"getuid", os_getuid},
    {"getgid", os_getgid},
    {"setuid", os_setuid},
    {"setgid", os_setgid},
    {NULL, NULL},
};

void lh_open_os(lua_State* L) {
  luaL_setfuncs(L, os_functions, 0);
}
