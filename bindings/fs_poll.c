/* Placeholder until the fs_poll family lands. */
#include "lh_bind.h"

void lh_open_fs_poll(lua_State* L) {
  (void)L;
}
