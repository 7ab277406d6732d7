/* The hostile behaviours that only native code does convincingly: spin forever, eat memory,
 * trap. Picked by request path; the host's limits decide how the invocation ends. */
#include "trellis_actor.h"

/* Spin without ever yielding: only an execution time limit can stop this. The volatile counter
 * keeps the optimiser from proving the loop side-effect free. */
static handle_result *spin(void) {
  volatile u32 counter = 0;
  for (;;) counter++;
}

/* Grow memory 1 MiB at a time and touch every new page, until the host refuses to grow it;
 * then trap, as a real allocator would on out-of-memory. (Growing a page at a time is so slow
 * in V8 that reaching its 4 GiB ceiling takes minutes.) */
#define GROW_PAGES 16u
static handle_result *grow_memory(void) {
  for (;;) {
    size_t first = __builtin_wasm_memory_grow(0, GROW_PAGES);
    if (first == (size_t)-1) __builtin_trap();
    for (u32 page = 0; page < GROW_PAGES; page++) ((volatile u8 *)((first + page) * WASM_PAGE))[0] = 1;
  }
}

static handle_result *actor_handle(const request *req) {
  if (bytes_eq(req->path, "/loop")) return spin();
  if (bytes_eq(req->path, "/grow-memory")) return grow_memory();
  if (bytes_eq(req->path, "/trap")) __builtin_trap();
  if (bytes_eq(req->path, "/ok")) return ok_response(200, (const u8 *)"ok", 2);
  /* A response (not an error) with a server-error status: canary analysis must count it failed. */
  if (bytes_eq(req->path, "/status-503")) return ok_response(503, (const u8 *)"unavailable", 11);
  return err_response("unknown behaviour; try /loop /grow-memory /trap /ok /status-503");
}
