/* Placeholder until the tty family lands. */
#include "lh_bind.h"

void lh_open_tty(lua_State* L) {
  (void)L;
}
