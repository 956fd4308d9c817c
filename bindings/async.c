/* uv_async_t: wakes the loop from any thread. async:send(...) passes
 * nil, booleans, numbers and strings (copied, so another thread may send);
 * the callback gets the values of the latest send (sends coalesce). */
#include <stdlib.h>
#include <string.h>

#include "lh_bind.h"

#define ASYNC_MAX_VALUES 32

typedef struct {
  int type;
  union {
    int b;
    lua_Integer i;
    lua_Number n;
    struct {
      char* s;
      size_t len;
    } str;
  } v;
} value_t;

typedef struct {
  uv_mutex_t lock;
  int n;
  value_t values[ASYNC_MAX_VALUES];
} payload_t;

static void clear_values(payload_t* p) {
  int i;
  for (i = 0; i < p->n; i++)
    if (p->values[i].type == LUA_TSTRING)
      free(p->values[i].v.str.s);
  p->n = 0;
}

static void free_payload(void* extra) {
  payload_t* p = extra;
  clear_values(p);
  uv_mutex_destroy(&p->lock);
  free(p);
}

static void async_cb(uv_async_t* a) {
  lh_handle_t* h = a->data;
  payload_t* p = h->extra;
  lua_State* co;
  int i, n;
  uv_mutex_lock(&p->lock);
  co = lh_callback_begin(h, LH_CB_EVENT);
  n = p->n;
  if (co != NULL && !lua_checkstack(co, n))
    n = 0;
  for (i = 0; co != NULL && i < n; i++) {
    value_t* v = &p->values[i];
    switch (v->type) {
      case LUA_TBOOLEAN:
        lua_pushboolean(co, v->v.b);
        break;
      case LUA_TNUMBER + 16:
        lua_pushinteger(co, v->v.i);
        break;
      case LUA_TNUMBER:
        lua_pushnumber(co, v->v.n);
        break;
      case LUA_TSTRING:
        lua_pushlstring(co, v->v.str.s, v->v.str.len);
        break;
      default:
        lua_pushnil(co);
        break;
    }
  }
  clear_values(p);
  uv_mutex_unlock(&p->lock);
  if (co != NULL)
    lh_cb_run(h->rt, co, n);
}

static int async_new(lua_State* L) {
  uv_async_t* a;
  payload_t* p;
  int r;
  lh_check_callable(L, 1);
  a = lh_handle_new(L, UV_ASYNC);
  p = calloc(1, sizeof(*p));
  if (p == NULL || uv_mutex_init(&p->lock) != 0) {
    free(p);
    lh_handle_abort(L, a);
    return luaL_error(L, "not enough memory");
  }
  r = uv_async_init(lh_runtime(L)->loop, a, async_cb);
  if (r < 0) {
    free_payload(p);
    lh_handle_abort(L, a);
    return lh_error(L, r);
  }
  lh_handle_ready(L, a);
  {
    lh_handle_t* h = a->data;
    h->extra = p;
    h->free_extra = free_payload;
    lh_set_callback(L, h, LH_CB_EVENT, 1);
  }
  return 1;
}

static int async_send(lua_State* L) {
  lh_handle_t* h = lh_check_handle(L, 1, UV_ASYNC);
  payload_t* p = h->extra;
  int i, n = lua_gettop(L) - 1;
  luaL_argcheck(L, n <= ASYNC_MAX_VALUES, ASYNC_MAX_VALUES + 2,
                "too many values");
  for (i = 0; i < n; i++) {
    int t = lua_type(L, i + 2);
    if (t != LUA_TNIL && t != LUA_TBOOLEAN && t != LUA_TNUMBER &&
        t != LUA_TSTRING)
      return luaL_argerror(
          L, i + 2, "only nil, booleans, numbers and strings can be sent");
  }
  uv_mutex_lock(&p->lock);
  clear_values(p);
  for (i = 0; i < n; i++) {
    value_t* v = &p->values[i];
    int idx = i + 2;
    v->type = lua_type(L, idx);
    if (v->type == LUA_TBOOLEAN) {
      v->v.b = lua_toboolean(L, idx);
    } else if (v->type == LUA_TNUMBER) {
      if (lua_isinteger(L, idx)) {
        v->type = LUA_TNUMBER + 16;
        v->v.i = lua_tointeger(L, idx);
      } else {
        v->v.n = lua_tonumber(L, idx);
      }
    } else if (v->type == LUA_TSTRING) {
      size_t len;
      const char* s = lua_tolstring(L, idx, &len);
      v->v.str.s = malloc(len + 1);
      if (v->v.str.s == NULL) {
        v->type = LUA_TNIL;
      } else {
        memcpy(v->v.str.s, s, len + 1);
        v->v.str.len = len;
      }
    }
    p->n = i + 1;
  }
  uv_mutex_unlock(&p->lock);
  return lh_result(L, uv_async_send((uv_async_t*)lh_uv(h)));
}

static const luaL_Reg async_functions[] = {
    {"new_async", async_new},
    {"async_send", async_send},
    {NULL, NULL},
};

static const luaL_Reg async_methods[] = {
    {"send", async_send},
    {NULL, NULL},
};

void lh_open_async(lua_State* L) {
  luaL_setfuncs(L, async_functions, 0);
  lh_new_handle_type(L, UV_ASYNC, "uv_async", async_methods);
}
