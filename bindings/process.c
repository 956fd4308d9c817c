/* Placeholder until the process family lands. */
#include "lh_bind.h"

void lh_open_process(lua_State* L) {
  (void)L;
}
