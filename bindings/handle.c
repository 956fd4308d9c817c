/* Handles as Lua userdata (luv's model). The userdata holds a pointer to
 * one allocation: lh_handle_t followed by the uv handle. An open handle
 * pins its userdata with a registry reference, so it is never collected
 * while libuv may still call it; the close callback drops every reference
 * and frees the memory. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lh_bind.h"

static char mt_keys[UV_HANDLE_TYPE_MAX]; /* registry keys of metatables */
static char tag_key;                     /* metatable field: handle type */
static char sites_key; /* registry: sites[n] = "file:line", sites[s] = n */

#define BUILTIN_PREFIX "@builtin/"
#define SITE_DEPTH 12  /* frames searched for the script's own code */
#define SITE_CACHE 256 /* recent sites, by where their source lives */

/* A site seen lately: what its "file:line" was made of, and its number. */
typedef struct {
  const char* source; /* the function's source string: only a hint */
  int line;
  int id;
  char src[LUA_IDSIZE];
} site_slot_t;

static site_slot_t site_cache[SITE_CACHE];

/* The number of a new "src:line" site (in the registry for good). */
static int new_site(lua_State* L, const char* src, int line) {
  int id;
  if (!lua_checkstack(L, 4))
    return 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &sites_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sites_key);
  }
  lua_pushfstring(L, "%s:%d", src, line);
  lua_pushvalue(L, -1);
  if (lua_rawget(L, -3) == LUA_TNUMBER) {
    id = (int)lua_tointeger(L, -1);
    lua_pop(L, 3);
    return id;
  }
  lua_pop(L, 1);
  id = (int)lua_rawlen(L, -2) + 1;
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, id); /* sites[id] = s */
  lua_pushinteger(L, id);
  lua_rawset(L, -3); /* sites[s] = id */
  lua_pop(L, 1);
  return id;
}

/* Where the running Lua code stands, as a small number that names a
 * "file:line" (0: no Lua frame): the innermost frame of the script's own
 * code within SITE_DEPTH levels, else the innermost Lua frame (built-in
 * modules make handles for their callers). Level 0 is the C function that
 * asks. Sites are few (lines of code), so each is kept for good; a small
 * cache spares making its string again for every handle. */
int lh_site(lua_State* L) {
  lua_Debug ar;
  char src[LUA_IDSIZE];
  const char* source = NULL;
  int level, found = 0;
  site_slot_t* slot;
  for (level = 1; level <= SITE_DEPTH && lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "S", &ar) || ar.what[0] == 'C')
      continue;
    if (found == 0 ||
        strncmp(ar.source, BUILTIN_PREFIX, sizeof(BUILTIN_PREFIX) - 1) != 0) {
      found = level;
      source = ar.source;
      memcpy(src, ar.short_src, sizeof(src));
      if (strncmp(ar.source, BUILTIN_PREFIX, sizeof(BUILTIN_PREFIX) - 1) != 0)
        break;
    }
  }
  if (found == 0 || !lua_getstack(L, found, &ar) || !lua_getinfo(L, "l", &ar))
    return 0;
  slot = &site_cache[((uintptr_t)source / 16 + (unsigned)ar.currentline * 31) %
                     SITE_CACHE];
  if (slot->id != 0 && slot->source == source && slot->line == ar.currentline &&
      strcmp(slot->src, src) == 0)
    return slot->id;
  slot->id = new_site(L, src, ar.currentline);
  slot->source = source;
  slot->line = ar.currentline;
  memcpy(slot->src, src, sizeof(src));
  return slot->id;
}

int lh_is_callable(lua_State* L, int idx) {
  if (lua_type(L, idx) == LUA_TFUNCTION)
    return 1;
  if (luaL_getmetafield(L, idx, "__call") != LUA_TNIL) {
    lua_pop(L, 1);
    return 1;
  }
  return 0;
}

void lh_check_callable(lua_State* L, int idx) {
  if (!lh_is_callable(L, idx))
    luaL_typeerror(L, idx, "callable");
}

static void release_refs(lh_handle_t* h) {
  lua_State* L = h->rt->L;
  int i;
  for (i = 0; i < LH_CB_MAX; i++) {
    luaL_unref(L, LUA_REGISTRYINDEX, h->cb[i]);
    h->cb[i] = LUA_NOREF;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, h->self_ref);
  h->self_ref = LUA_NOREF;
}

static void free_handle(lh_handle_t* h) {
  if (h->free_extra != NULL && h->extra != NULL)
    h->free_extra(h->extra);
  free(h);
}

/* Every handle's close callback: the Lua one, then the release. */
void lh_handle_closed(uv_handle_t* uvh) {
  lh_handle_t* h = uvh->data;
  if (h->udata != NULL) {
    lh_runtime_t* rt = h->rt;
    if (h->cb[LH_CB_CLOSE] != LUA_NOREF) {
      lua_State* co = lh_cb_begin(rt);
      if (co != NULL) {
        lua_rawgeti(co, LUA_REGISTRYINDEX, h->cb[LH_CB_CLOSE]);
        lh_cb_run(rt, co, 0);
      }
    }
    *h->udata = NULL;
    h->udata = NULL;
    release_refs(h);
  }
  free_handle(h);
}

void* lh_handle_new(lua_State* L, uv_handle_type type) {
  size_t size = LH_HANDLE_OFFSET + uv_handle_size(type);
  int site = lh_site(L);
  void** ud = lua_newuserdatauv(L, sizeof(void*), 0);
  lh_handle_t* h;
  int i;
  *ud = NULL; /* closed until the handle is initialised */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &mt_keys[type]);
  lua_setmetatable(L, -2);
  h = calloc(1, size);
  if (h == NULL)
    luaL_error(L, "not enough memory");
  h->magic = LH_HANDLE_MAGIC;
  h->rt = lh_runtime(L);
  h->udata = ud;
  h->self_ref = LUA_NOREF;
  h->site = site;
  for (i = 0; i < LH_CB_MAX; i++)
    h->cb[i] = LUA_NOREF;
  lh_uv(h)->data = h;
  /* Parked in the slot's neighbour until ready: see lh_handle_ready. */
  return lh_uv(h);
}

/* A handle for C code alone (no userdata yet): the same layout, so the
 * teardown closes it and lh_handle_adopt can hand it to Lua later. The
 * caller initialises the uv handle. */
void* lh_handle_alloc(lh_runtime_t* rt, uv_handle_type type) {
  lh_handle_t* h = calloc(1, LH_HANDLE_OFFSET + uv_handle_size(type));
  int i;
  if (h == NULL)
    return NULL;
  h->magic = LH_HANDLE_MAGIC;
  h->rt = rt;
  h->self_ref = LUA_NOREF;
  for (i = 0; i < LH_CB_MAX; i++)
    h->cb[i] = LUA_NOREF;
  lh_uv(h)->data = h;
  return lh_uv(h);
}

static lh_handle_t* owner(void* uvh) {
  return (lh_handle_t*)((char*)uvh - LH_HANDLE_OFFSET);
}

/* The uv handle was initialised: the userdata (on top) now owns it. */
void lh_handle_ready(lua_State* L, void* uvh) {
  lh_handle_t* h = owner(uvh);
  ((uv_handle_t*)uvh)->data = h;
  *h->udata = h;
  lua_pushvalue(L, -1);
  h->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Pushes a new userdata that owns a handle made by lh_handle_alloc (an
 * HTTP connection handed over after an upgrade). */
void lh_handle_adopt(lua_State* L, void* uvh) {
  lh_handle_t* h = owner(uvh);
  uv_handle_type type = ((uv_handle_t*)uvh)->type;
  void** ud = lua_newuserdatauv(L, sizeof(void*), 0);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &mt_keys[type]);
  lua_setmetatable(L, -2);
  *ud = h;
  h->udata = ud;
  h->flags &= ~(unsigned)(LH_HIDDEN | LH_HTTP_CONN);
  h->site = lh_site(L);
  lua_pushvalue(L, -1);
  h->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* The uv handle's init failed: nothing for libuv to close. */
void lh_handle_abort(lua_State* L, void* uvh) {
  (void)L;
  free_handle(owner(uvh));
}

static lh_handle_t* to_handle(lua_State* L, int idx, int* type) {
  void** ud = lua_touserdata(L, idx);
  lua_Integer tag = 0;
  if (ud != NULL && lua_getmetatable(L, idx)) {
    lua_rawgetp(L, -1, &tag_key);
    tag = lua_tointeger(L, -1);
    lua_pop(L, 2);
  }
  *type = (int)tag;
  return tag ? *ud : NULL;
}

static const char* type_name(uv_handle_type type) {
  const char* name = uv_handle_type_name(type);
  return name ? name : "handle";
}

/* The handle at idx, of the given type (UV_UNKNOWN_HANDLE: any type),
 * open and not closing; raises otherwise. */
lh_handle_t* lh_check_handle(lua_State* L, int idx, uv_handle_type type) {
  int tag;
  lh_handle_t* h = to_handle(L, idx, &tag);
  if (tag == 0 || (type != UV_UNKNOWN_HANDLE && tag != (int)type)) {
    const char* want = type == UV_UNKNOWN_HANDLE
                           ? "uv_handle"
                           : lua_pushfstring(L, "uv_%s", type_name(type));
    luaL_typeerror(L, idx, want);
  }
  if (h == NULL)
    luaL_error(L, "attempt to use a closed %s handle", type_name(tag));
  if (uv_is_closing(lh_uv(h)))
    luaL_error(L, "attempt to use a closing %s handle", type_name(tag));
  return h;
}

/* Like lh_check_handle, but a closing handle is fine and a closed one
 * gives NULL. */
lh_handle_t* lh_opt_handle(lua_State* L, int idx) {
  int tag;
  lh_handle_t* h = to_handle(L, idx, &tag);
  if (tag == 0)
    luaL_typeerror(L, idx, "uv_handle");
  return h;
}

void lh_set_callback(lua_State* L, lh_handle_t* h, int slot, int idx) {
  lh_check_callable(L, idx);
  luaL_unref(L, LUA_REGISTRYINDEX, h->cb[slot]);
  lua_pushvalue(L, idx);
  h->cb[slot] = luaL_ref(L, LUA_REGISTRYINDEX);
}

void lh_clear_callback(lh_handle_t* h, int slot) {
  luaL_unref(h->rt->L, LUA_REGISTRYINDEX, h->cb[slot]);
  h->cb[slot] = LUA_NOREF;
}

lua_State* lh_callback_begin(lh_handle_t* h, int slot) {
  lua_State* co;
  if (h->cb[slot] == LUA_NOREF || h->udata == NULL)
    return NULL;
  co = lh_cb_begin(h->rt);
  if (co != NULL)
    lua_rawgeti(co, LUA_REGISTRYINDEX, h->cb[slot]);
  return co;
}

static int is_ours(uv_handle_t* uvh) {
  lh_handle_t* h = uvh->data;
  return h != NULL && h->magic == LH_HANDLE_MAGIC && lh_uv(h) == uvh;
}

static void close_walk_cb(uv_handle_t* uvh, void* arg) {
  (void)arg;
  if (is_ours(uvh) && !uv_is_closing(uvh))
    uv_close(uvh, lh_handle_closed);
}

/* Teardown: closes every handle the bindings made; no Lua runs. */
void lh_handle_close_all(uv_loop_t* loop) {
  uv_walk(loop, close_walk_cb, NULL);
}

/* Reports: what is open, and where it was made ---------------------- */

/* "127.0.0.1:8080", "[::1]:8080", or NULL. */
static const char* addr_string(const struct sockaddr_storage* ss, char* buf,
                               size_t size) {
  char ip[INET6_ADDRSTRLEN];
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in* a = (const struct sockaddr_in*)ss;
    uv_ip4_name(a, ip, sizeof(ip));
    snprintf(buf, size, "%s:%d", ip, ntohs(a->sin_port));
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6* a = (const struct sockaddr_in6*)ss;
    uv_ip6_name(a, ip, sizeof(ip));
    snprintf(buf, size, "[%s]:%d", ip, ntohs(a->sin6_port));
  } else {
    return NULL;
  }
  return buf;
}

/* Pushes what a handle is doing, in a few words ("" if nothing to say). */
static void push_detail(lua_State* L, lh_handle_t* h) {
  uv_handle_t* uvh = lh_uv(h);
  struct sockaddr_storage ss;
  char a[80], b[80], path[512];
  size_t len = sizeof(path);
  int n = sizeof(ss);
  const char *mine = NULL, *peer = NULL;
  switch (uvh->type) {
    case UV_TIMER: {
      uint64_t due = uv_timer_get_due_in((uv_timer_t*)uvh);
      uint64_t every = uv_timer_get_repeat((uv_timer_t*)uvh);
      if (!uv_is_active(uvh))
        lua_pushliteral(L, "stopped");
      else if (every > 0)
        lua_pushfstring(L, "due in %I ms, repeating every %I ms",
                        (lua_Integer)due, (lua_Integer)every);
      else
        lua_pushfstring(L, "due in %I ms", (lua_Integer)due);
      return;
    }
    case UV_TCP:
      if (uv_tcp_getsockname((uv_tcp_t*)uvh, (struct sockaddr*)&ss, &n) == 0)
        mine = addr_string(&ss, a, sizeof(a));
      n = sizeof(ss);
      if (uv_tcp_getpeername((uv_tcp_t*)uvh, (struct sockaddr*)&ss, &n) == 0)
        peer = addr_string(&ss, b, sizeof(b));
      break;
    case UV_UDP:
      if (uv_udp_getsockname((uv_udp_t*)uvh, (struct sockaddr*)&ss, &n) == 0)
        mine = addr_string(&ss, a, sizeof(a));
      break;
    case UV_NAMED_PIPE: /* names come without a terminating zero */
      if (uv_pipe_getsockname((uv_pipe_t*)uvh, path, &len) == 0 && len > 0) {
        lua_pushliteral(L, "on ");
      } else {
        len = sizeof(path);
        if (uv_pipe_getpeername((uv_pipe_t*)uvh, path, &len) != 0 || len == 0) {
          lua_pushliteral(L, "");
          return;
        }
        lua_pushliteral(L, "to ");
      }
      lua_pushlstring(L, path, len);
      lua_concat(L, 2);
      return;
    case UV_PROCESS:
      lua_pushfstring(L, "pid %d", uv_process_get_pid((uv_process_t*)uvh));
      return;
    case UV_SIGNAL: {
      const char* name = lh_signal_name(((uv_signal_t*)uvh)->signum);
      lua_pushstring(L, name ? name : "");
      return;
    }
    case UV_FS_EVENT:
      if (uv_fs_event_getpath((uv_fs_event_t*)uvh, path, &len) == 0)
        lua_pushfstring(L, "watching %s", path);
      else
        lua_pushliteral(L, "");
      return;
    case UV_FS_POLL:
      if (uv_fs_poll_getpath((uv_fs_poll_t*)uvh, path, &len) == 0)
        lua_pushfstring(L, "polling %s", path);
      else
        lua_pushliteral(L, "");
      return;
    default:
      lua_pushliteral(L, "");
      return;
  }
  if (h->flags & LH_HTTP_SERVER)
    lua_pushfstring(L, "http server listening on %s", mine ? mine : "?");
  else if (h->flags & LH_HTTP_CONN)
    lua_pushfstring(L, "http connection %s -> %s", peer ? peer : "?",
                    mine ? mine : "?");
  else if (peer != NULL)
    lua_pushfstring(L, "%s -> %s", mine ? mine : "?", peer);
  else if (mine != NULL && uvh->type == UV_TCP && uv_is_active(uvh))
    lua_pushfstring(L, "listening on %s", mine);
  else if (mine != NULL)
    lua_pushfstring(L, "on %s", mine);
  else
    lua_pushliteral(L, "");
}

typedef struct {
  lua_State* L;
  int list, sites, n, others;
} list_state_t;

static void set_flag(lua_State* L, const char* field, int on) {
  lua_pushboolean(L, on);
  lua_setfield(L, -2, field);
}

static void list_one(uv_handle_t* uvh, void* arg) {
  list_state_t* s = arg;
  lua_State* L = s->L;
  lh_handle_t* h = uvh->data;
  if (h == NULL || h->magic != LH_HANDLE_MAGIC || lh_uv(h) != uvh) {
    if (uv_is_active(uvh) && uv_has_ref(uvh) && !uv_is_closing(uvh))
      s->others++; /* the runtime's own (the prompt's stdin) */
    return;
  }
  if (h->flags & LH_RUNTIME)
    return;
  lua_createtable(L, 0, 9);
  lua_pushstring(L, type_name(uvh->type));
  lua_setfield(L, -2, "type");
  set_flag(L, "active", uv_is_active(uvh));
  set_flag(L, "ref", uv_has_ref(uvh));
  set_flag(L, "closing", uv_is_closing(uvh));
  set_flag(L, "hidden", (h->flags & LH_HIDDEN) != 0);
  push_detail(L, h);
  lua_setfield(L, -2, "detail");
  if (h->site > 0 && s->sites > 0) {
    lua_rawgeti(L, s->sites, h->site);
    lua_setfield(L, -2, "site");
  }
  if (h->udata != NULL && h->self_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->self_ref);
    lua_setfield(L, -2, "handle");
  }
  lua_rawseti(L, s->list, ++s->n);
}

/* internal.uv.handles() -> list, others: every handle the bindings made
 * but the runtime's own machinery, as { type, active, ref, closing,
 * hidden, detail, site = "file:line", handle = the userdata if Lua has
 * one }; others counts the host's handles that keep the loop alive. */
int lh_handle_list(lua_State* L) {
  list_state_t s;
  s.L = L;
  s.n = s.others = 0;
  lua_newtable(L);
  s.list = lua_gettop(L);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &sites_key) == LUA_TTABLE)
    s.sites = lua_gettop(L);
  else
    s.sites = 0;
  uv_walk(lh_runtime(L)->loop, list_one, &s);
  lua_settop(L, s.list);
  lua_pushinteger(L, s.others);
  return 2;
}

/* Lua API ------------------------------------------------------------ */

static int handle_gc(lua_State* L) {
  void** ud = lua_touserdata(L, 1);
  lh_handle_t* h = *ud;
  if (h != NULL) { /* only at lua_close: open handles are pinned */
    *ud = NULL;
    h->udata = NULL;
    if (!uv_is_closing(lh_uv(h)))
      uv_close(lh_uv(h), lh_handle_closed);
  }
  return 0;
}

static int handle_tostring(lua_State* L) {
  int tag;
  lh_handle_t* h = to_handle(L, 1, &tag);
  if (h == NULL)
    lua_pushfstring(L, "uv_%s_t: %p (closed)", type_name(tag),
                    lua_touserdata(L, 1));
  else
    lua_pushfstring(L, "uv_%s_t: %p", type_name(tag), lua_touserdata(L, 1));
  return 1;
}

static int handle_close(lua_State* L) {
  int tag;
  lh_handle_t* h = to_handle(L, 1, &tag);
  if (tag == 0)
    return luaL_typeerror(L, 1, "uv_handle");
  if (h == NULL || uv_is_closing(lh_uv(h)))
    return luaL_error(L, "handle %p is already closing", lua_touserdata(L, 1));
  if (!lua_isnoneornil(L, 2))
    lh_set_callback(L, h, LH_CB_CLOSE, 2);
  uv_close(lh_uv(h), lh_handle_closed);
  if (tag == UV_SIGNAL)
    lh_signals_rearm();
  return 0;
}

static int handle_is_active(lua_State* L) {
  lh_handle_t* h = lh_opt_handle(L, 1);
  lua_pushboolean(L, h != NULL && uv_is_active(lh_uv(h)));
  return 1;
}

static int handle_is_closing(lua_State* L) {
  lh_handle_t* h = lh_opt_handle(L, 1);
  lua_pushboolean(L, h == NULL || uv_is_closing(lh_uv(h)));
  return 1;
}

static int handle_ref(lua_State* L) {
  uv_ref(lh_uv(lh_check_handle(L, 1, UV_UNKNOWN_HANDLE)));
  return 0;
}

static int handle_unref(lua_State* L) {
  uv_unref(lh_uv(lh_check_handle(L, 1, UV_UNKNOWN_HANDLE)));
  return 0;
}

static int handle_has_ref(lua_State* L) {
  lh_handle_t* h = lh_opt_handle(L, 1);
  lua_pushboolean(L, h != NULL && uv_has_ref(lh_uv(h)));
  return 1;
}

static int handle_get_type(lua_State* L) {
  int tag;
  to_handle(L, 1, &tag);
  if (tag == 0)
    return luaL_typeerror(L, 1, "uv_handle");
  lua_pushstring(L, type_name(tag));
  lua_pushinteger(L, tag);
  return 2;
}

static int handle_fileno(lua_State* L) {
  uv_os_fd_t fd;
  int r = uv_fileno(lh_uv(lh_check_handle(L, 1, UV_UNKNOWN_HANDLE)), &fd);
  if (r < 0)
    return lh_error(L, r);
  lua_pushinteger(L, fd);
  return 1;
}

static int buffer_size(lua_State* L, int (*fn)(uv_handle_t*, int*)) {
  uv_handle_t* uvh = lh_uv(lh_check_handle(L, 1, UV_UNKNOWN_HANDLE));
  int value = (int)luaL_optinteger(L, 2, 0);
  int r;
  if (value < 0)
    return luaL_argerror(L, 2, "must be positive");
  r = fn(uvh, &value);
  if (r < 0)
    return lh_error(L, r);
  lua_pushinteger(L, value);
  return 1;
}

static int handle_send_buffer_size(lua_State* L) {
  return buffer_size(L, uv_send_buffer_size);
}

static int handle_recv_buffer_size(lua_State* L) {
  return buffer_size(L, uv_recv_buffer_size);
}

const luaL_Reg lh_handle_functions[] = {
    {"close", handle_close},
    {"is_active", handle_is_active},
    {"is_closing", handle_is_closing},
    {"ref", handle_ref},
    {"unref", handle_unref},
    {"has_ref", handle_has_ref},
    {"handle_get_type", handle_get_type},
    {"fileno", handle_fileno},
    {"send_buffer_size", handle_send_buffer_size},
    {"recv_buffer_size", handle_recv_buffer_size},
    {NULL, NULL},
};

const luaL_Reg lh_handle_methods[] = {
    {"close", handle_close},
    {"is_active", handle_is_active},
    {"is_closing", handle_is_closing},
    {"ref", handle_ref},
    {"unref", handle_unref},
    {"has_ref", handle_has_ref},
    {"get_type", handle_get_type},
    {"fileno", handle_fileno},
    {"send_buffer_size", handle_send_buffer_size},
    {"recv_buffer_size", handle_recv_buffer_size},
    {NULL, NULL},
};

/* Creates the metatable of a handle type: generic methods plus its own. */
void lh_new_handle_type(lua_State* L, uv_handle_type type, const char* name,
                        const luaL_Reg* methods) {
  luaL_newmetatable(L, name); /* mt */
  lua_pushinteger(L, type);
  lua_rawsetp(L, -2, &tag_key);
  lua_pushcfunction(L, handle_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, handle_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_newtable(L); /* mt methods */
  luaL_setfuncs(L, lh_handle_methods, 0);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &mt_keys[type]);
}

/* Adds methods to a handle type's metatable (e.g. stream methods). */
void lh_add_methods(lua_State* L, uv_handle_type type, const luaL_Reg* m) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &mt_keys[type]);
  lua_getfield(L, -1, "__index");
  luaL_setfuncs(L, m, 0);
  lua_pop(L, 2);
}

void lh_open_handle(lua_State* L) {
  luaL_setfuncs(L, lh_handle_functions, 0);
}
