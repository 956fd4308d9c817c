/* Placeholder until the dns family lands. */
#include "lh_bind.h"

void lh_open_dns(lua_State* L) {
  (void)L;
}
