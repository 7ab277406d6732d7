/* A canary that fails 10 % of its requests: every 10th call an instance serves answers 500 (a
 * response, not a trap, so the instance lives on and the rate stays exact per instance). The
 * canary tests use it as the version that must be rolled back. */
#include "trellis_actor.h"

static u32 served;

static handle_result *actor_handle(const request *req) {
  (void)req;
  served++;
  if (served % 10 == 0) return ok_response(500, (const u8 *)"flaky", 5);
  return ok_response(200, (const u8 *)"ok", 2);
}
