/* require() for the built-in modules. The searcher sits right after
 * package.preload, so built-ins win over same-named modules on package.path,
 * as Node's core modules do. 'internal.*' modules answer only to built-in
 * code (and to specs run with --expose-internals). */
#include <lauxlib.h>
#include <string.h>

#include "embedded.h"
#include "runtime.h"

#define BUILTIN_PREFIX "@builtin/"

static const lh_c_module_t host_modules[] = {
    {"internal.binding", luaopen_internal_binding},
    {NULL, NULL},
};

static int caller_is_builtin(lua_State* L) {
  lua_Debug ar;
  /* level 0: this searcher, 1: require, 2: the code that called require */
  if (!lua_getstack(L, 2, &ar) || !lua_getinfo(L, "S", &ar))
    return 0;
  return strncmp(ar.source, BUILTIN_PREFIX, sizeof(BUILTIN_PREFIX) - 1) == 0;
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
  if (strncmp(name, "internal.", 9) == 0 && !caller_is_builtin(L) &&
      !lh_runtime(L)->expose_internals) {
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
  lua_pop(L, 2);
}
