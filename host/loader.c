/* require() for the built-in modules. The searcher sits right after
 * package.preload, so built-ins win over same-named modules on package.path,
 * as Node's core modules do. 'internal.*' modules answer only to built-in
 * code (and to specs run with --expose-internals): the searcher refuses
 * other callers, and once loaded they live in a private table that
 * package.loaded shows to built-in callers only. */
#include <lauxlib.h>
#include <string.h>

#include "embedded.h"
#include "runtime.h"

#define BUILTIN_PREFIX "@builtin/"

static const lh_c_module_t host_modules[] = {
    {"internal.binding", luaopen_internal_binding},
    {NULL, NULL},
};

static char internal_loaded_key;

static int is_internal(const char* name) {
  return strncmp(name, "internal.", 9) == 0;
}

/* Called from require: level 0 is us (a searcher or a package.loaded
 * metamethod), 1 is require, 2 the code that called require. */
static int caller_may_see_internals(lua_State* L) {
  lua_Debug ar;
  if (lh_runtime(L)->expose_internals)
    return 1;
  if (!lua_getstack(L, 2, &ar) || !lua_getinfo(L, "S", &ar))
    return 0;
  return strncmp(ar.source, BUILTIN_PREFIX, sizeof(BUILTIN_PREFIX) - 1) == 0;
}

/* package.loaded's __index: loaded internal modules, for built-ins. */
static int loaded_index(lua_State* L) {
  if (lua_type(L, 2) != LUA_TSTRING || !is_internal(lua_tostring(L, 2)) ||
      !caller_may_see_internals(L))
    return 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &internal_loaded_key);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

/* package.loaded's __newindex: internal modules go to the private table. */
static int loaded_newindex(lua_State* L) {
  if (lua_type(L, 2) == LUA_TSTRING && is_internal(lua_tostring(L, 2)))
    lua_rawgetp(L, LUA_REGISTRYINDEX, &internal_loaded_key);
  else
    lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

static lua_CFunction find_c(const lh_c_module_t* list, const char* name) {
  for (; list->name != NULL; list++)
    if (strcmp(list->name, name) == 0)
      return list->open;
  return NULL;
}

static int searcher(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  const lh_lua_module_t* m;
  lua_CFunction open;
  if (is_internal(name) && !caller_may_see_internals(L)) {
    lua_pushfstring(L, "no builtin module '%s' (internal)", name);
    return 1;
  }
  open = find_c(host_modules, name);
  if (open == NULL)
    open = find_c(lh_binding_modules, name);
  if (open != NULL) {
    lua_pushcfunction(L, open);
    lua_pushliteral(L, ":builtin:");
    return 2;
  }
  for (m = lh_lua_modules; m->name != NULL; m++) {
    if (strcmp(m->name, name) != 0)
      continue;
    if (luaL_loadbufferx(L, (const char*)m->code, m->size, name, "b") != LUA_OK)
      return luaL_error(L, "error loading builtin module '%s':\n\t%s", name,
                        lua_tostring(L, -1));
    lua_pushliteral(L, ":builtin:");
    return 2;
  }
  lua_pushfstring(L, "no builtin module '%s'", name);
  return 1;
}

void lh_loader_init(lua_State* L) {
  int n;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  n = (int)lua_rawlen(L, -1);
  for (; n >= 2; n--) { /* shift entries 2..n up by one */
    lua_rawgeti(L, -1, n);
    lua_rawseti(L, -2, n + 1);
  }
  lua_pushcfunction(L, searcher);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 1);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &internal_loaded_key);
  lua_getfield(L, -1, "loaded");
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, loaded_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, loaded_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_setmetatable(L, -2);
  lua_pop(L, 2);
}
