/* Placeholder until the fs_event family lands. */
#include "lh_bind.h"

void lh_open_fs_event(lua_State* L) {
  (void)L;
}
