/* Handles as Lua userdata (luv's model). The userdata holds a pointer to
 * one allocation: lh_handle_t followed by the uv handle. An open handle
 * pins its userdata with a registry reference, so it is never collected
 * while libuv may still call it; the close callback drops every reference
 * and frees the memory. */
#include <stdlib.h>
#include <string.h>

#include "lh_bind.h"

static char mt_keys[UV_HANDLE_TYPE_MAX]; /* registry keys of metatables */
static char tag_key;                     /* metatable field: handle type */

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
  h->flags &= ~LH_HIDDEN;
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
