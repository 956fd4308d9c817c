/* Placeholder until the udp family lands. */
#include "lh_bind.h"

void lh_open_udp(lua_State* L) {
  (void)L;
}
