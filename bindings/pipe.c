/* Placeholder until the pipe family lands. */
#include "lh_bind.h"

void lh_open_pipe(lua_State* L) {
  (void)L;
}
