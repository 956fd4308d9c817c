/* What the diagnostics say about Lua code: the name of a function as users
 * know it (fs.readFileSync), the line to blame, the call that blocks. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#define BUILTIN_PREFIX "@builtin/"

static int is_builtin(const char* source) {
  return strncmp(source, BUILTIN_PREFIX, sizeof(BUILTIN_PREFIX) - 1) == 0;
}

/* Names ------------------------------------------------------------- */

/* Pushes the name of the function at fidx as a module field ("os.execute",
 * "fs.readFileSync"; globals without "_G."), the shortest if several, and
 * returns 1; or returns 0. */
int lh_push_exported_name(lua_State* L, int fidx) {
  int best, found = 0;
  size_t best_len = 0;
  fidx = lua_absindex(L, fidx);
  lua_pushnil(L); /* the best name so far */
  best = lua_gettop(L);
  if (lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) { /* loaded modname module */
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE) {
        const char* mod = lua_tostring(L, -2);
        int global = strcmp(mod, "_G") == 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) { /* ... module key value */
          if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, -1, fidx)) {
            const char* key = lua_tostring(L, -2);
            size_t len = strlen(key) + (global ? 0 : strlen(mod) + 1);
            if (!found || len < best_len) {
              if (global)
                lua_pushstring(L, key);
              else
                lua_pushfstring(L, "%s.%s", mod, key);
              lua_replace(L, best);
              best_len = len;
              found = 1;
            }
          }
          lua_pop(L, 1);
        }
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1); /* loaded */
  if (!found)
    lua_pop(L, 1);
  return found;
}

/* Pushes the name of the function at fidx: as a module exports it, else
 * what ar says ("method 'read'"), else "?". */
void lh_push_funcname(lua_State* L, int fidx, const lua_Debug* ar) {
  if (lh_push_exported_name(L, fidx))
    return;
  if (ar != NULL && ar->name != NULL && ar->namewhat[0] != '\0' &&
      strcmp(ar->namewhat, "global") != 0)
    lua_pushfstring(L, "%s '%s'", ar->namewhat, ar->name);
  else if (ar != NULL && ar->name != NULL)
    lua_pushstring(L, ar->name);
  else
    lua_pushliteral(L, "?");
}

/* Pushes "file:line: " of the innermost Lua frame, preferring the script's
 * code to built-in modules ("" when there is none). */
void lh_push_where(lua_State* L) {
  lua_Debug ar;
  int level, fallback = -1;
  for (level = 0; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0)
      continue;
    if (!is_builtin(ar.source)) {
      lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
      return;
    }
    if (fallback < 0)
      fallback = level;
  }
  if (fallback >= 0 && lua_getstack(L, fallback, &ar) &&
      lua_getinfo(L, "Sl", &ar)) {
    lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
    return;
  }
  lua_pushliteral(L, "");
}

static char passthrough_key; /* registry: C functions a yield may cross */

/* Whether the function on top is pcall or its kind (pops it). */
int lh__is_passthrough(lua_State* L) {
  int yes;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &passthrough_key);
  lua_insert(L, -2);
  yes = lua_type(L, -2) == LUA_TTABLE && lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return yes;
}

/* Pushes the name of the call the running code is blocked in, or returns
 * 0. Only a C function blocks without running Lua code: the one at level
 * 0, if c_blocked (it was blocking, not passing by). It and the frames
 * around it that are C functions or built-in Lua code, up to the script's
 * code or a pcall, are the call; the outermost of them that a module
 * exports names it (uv.fs_read inside fs.readFileSync is fs.readFileSync),
 * else the innermost's own name (method 'read'). */
int lh_push_blocking_name(lua_State* L, int c_blocked) {
  lua_Debug ar;
  int level, first = 0, last = -1;
  if (!c_blocked)
    return 0;
  for (level = 0; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sf", &ar))
      break;
    if (ar.what[0] == 'C') {
      if (lh__is_passthrough(L))
        break;
      last = level;
      continue;
    }
    lua_pop(L, 1);
    if (level == 0 || !is_builtin(ar.source))
      break; /* Lua code runs at level 0: no call blocks */
    last = level;
  }
  if (last < 0)
    return 0;
  for (level = last; level >= first; level--) {
    if (!lua_getstack(L, level, &ar) || !lua_getinfo(L, "f", &ar))
      return 0;
    if (lh_push_exported_name(L, -1)) {
      lua_remove(L, -2); /* the function */
      return 1;
    }
    lua_pop(L, 1);
  }
  /* none is exported: the innermost's own name, if it has one */
  if (!lua_getstack(L, first, &ar) || !lua_getinfo(L, "nf", &ar))
    return 0;
  if (ar.name == NULL) {
    lua_pop(L, 1);
    return 0;
  }
  lh_push_funcname(L, -1, &ar);
  lua_remove(L, -2);
  return 1;
}

static void note_passthrough(lua_State* L, const char* global) {
  if (lua_getglobal(L, global) == LUA_TFUNCTION) {
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
  } else {
    lua_pop(L, 1);
  }
}

/* Notes the C functions a yield may cross (pcall, xpcall, dofile, pairs):
 * they are no blocking call, and no reason a coroutine cannot wait. */
void lh_diag_init(lua_State* L) {
  lua_newtable(L);
  note_passthrough(L, "pcall");
  note_passthrough(L, "xpcall");
  note_passthrough(L, "dofile");
  note_passthrough(L, "pairs");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &passthrough_key);
}
