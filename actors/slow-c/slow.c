/* A canary whose latency is too high: every call spins about 40 million iterations (tens of
 * milliseconds on a fast core, more on a busy one) before answering 200. There is no clock to
 * sleep on in the sandbox, and spinning is what a slow release really does to a host. */
#include "trellis_actor.h"

static handle_result *actor_handle(const request *req) {
  (void)req;
  volatile u32 counter = 0;
  for (u32 i = 0; i < 40000000u; i++) counter++;
  return ok_response(200, (const u8 *)"slow", 4);
}
