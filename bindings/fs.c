/* Placeholder until the fs family lands. */
#include "lh_bind.h"

void lh_open_fs(lua_State* L) {
  (void)L;
}
