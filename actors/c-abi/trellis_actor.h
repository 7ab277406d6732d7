/*
 * Hand-written canonical-ABI glue for freestanding C actors in the trellis:actor world.
 * There is no libc: we bring a bump allocator that the host uses (through cabi_realloc) to copy
 * the request in, and reset it in the post-return hook once the host has copied the response
 * out. One invocation at a time per instance is guaranteed by the component model, so a single
 * bump region is enough.
 *
 * Export `trellis:actor/handler@0.1.0#handle: func(req: request) -> result<response, string>`:
 *  - Parameters: `request` flattens to 10 i32 (5 fields, each string/list is ptr+len), which is
 *    within MAX_FLAT_PARAMS (16), so the fields arrive as 10 flat i32 arguments, in field order.
 *  - Result: `result<response, string>` flattens to 6 values (> MAX_FLAT_RESULTS = 1), so the
 *    export returns one i32: a pointer to the result in linear memory, laid out as
 *      offset 0: u8 discriminant (0 = ok, 1 = err); payload aligned to 4:
 *      ok:  4: u16 status, 8: headers ptr, 12: headers len, 16: body ptr, 20: body len
 *      err: 4: message ptr, 8: message len (bytes, UTF-8)
 *    (size 24, align 4). A header is a tuple<string,string>: 16 bytes, align 4.
 *  - The memory the result points at must stay valid until the host calls the post-return
 *    function `cabi_post_trellis:actor/handler@0.1.0#handle`, which is where we free everything.
 */
#ifndef TRELLIS_ACTOR_H
#define TRELLIS_ACTOR_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long size_t;

#define WASM_PAGE 65536u
#define EXPORT(name) __attribute__((export_name(name)))

/* Start of free memory after data and stack; provided by wasm-ld. */
extern u8 __heap_base;

static u32 heap_next;

static void heap_reset(void) { heap_next = (u32)&__heap_base; }

/* Bump-allocate `size` bytes aligned to `align`, growing memory as needed; traps when the
 * host refuses to grow memory (that is the memory limit doing its job). */
static void *bump_alloc(u32 size, u32 align) {
  if (heap_next == 0) heap_reset();
  u32 start = (heap_next + align - 1) & ~(align - 1);
  u32 end = start + size;
  u32 have = (u32)__builtin_wasm_memory_size(0) * WASM_PAGE;
  if (end > have) {
    u32 pages = (end - have + WASM_PAGE - 1) / WASM_PAGE;
    if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) __builtin_trap();
  }
  heap_next = end;
  return (void *)start;
}

/* Canonical-ABI allocator the host calls to place arguments in our memory. Reallocation only
 * ever happens for the host's own buffers; copying forward is enough for a bump allocator. */
EXPORT("cabi_realloc")
void *cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size) {
  if (new_size <= old_size && old) return old;
  u8 *fresh = bump_alloc((u32)new_size, (u32)align);
  for (size_t i = 0; i < old_size; i++) fresh[i] = ((u8 *)old)[i];
  return fresh;
}

typedef struct { const u8 *ptr; u32 len; } bytes;
typedef struct { bytes name; bytes value; } header;
typedef struct {
  bytes method, path, query;
  const header *headers; u32 header_count;
  bytes body;
} request;

/* The return area described above. */
typedef struct {
  u8 tag;
  u8 _pad[3];
  union {
    struct { u16 status; u16 _pad; const header *headers; u32 header_count; const u8 *body; u32 body_len; } ok;
    struct { const u8 *ptr; u32 len; } err;
  } val;
} handle_result;

_Static_assert(sizeof(handle_result) == 24, "result<response, string> is 24 bytes");
_Static_assert(__builtin_offsetof(handle_result, val.ok.headers) == 8, "headers at offset 8");
_Static_assert(__builtin_offsetof(handle_result, val.ok.body) == 16, "body at offset 16");
_Static_assert(sizeof(header) == 16, "tuple<string,string> is 16 bytes");

/* Each actor implements this; the glue below adapts it to the flat export signature. */
static handle_result *actor_handle(const request *req);

static inline handle_result *ok_response(u16 status, const u8 *body, u32 body_len) {
  handle_result *r = bump_alloc(sizeof(handle_result), 4);
  r->tag = 0;
  r->val.ok.status = status;
  r->val.ok.headers = 0;
  r->val.ok.header_count = 0;
  r->val.ok.body = body;
  r->val.ok.body_len = body_len;
  return r;
}

static inline handle_result *err_response(const char *message) {
  handle_result *r = bump_alloc(sizeof(handle_result), 4);
  u32 len = 0;
  while (message[len]) len++;
  r->tag = 1;
  r->val.err.ptr = (const u8 *)message;
  r->val.err.len = len;
  return r;
}

static inline int bytes_eq(bytes b, const char *s) {
  u32 i = 0;
  for (; s[i]; i++)
    if (i >= b.len || b.ptr[i] != (u8)s[i]) return 0;
  return i == b.len;
}

EXPORT("trellis:actor/handler@0.1.0#handle")
handle_result *trellis_handle(const u8 *method, u32 method_len, const u8 *path, u32 path_len,
                              const u8 *query, u32 query_len, const header *headers,
                              u32 header_count, const u8 *body, u32 body_len) {
  request req = {
      {method, method_len}, {path, path_len}, {query, query_len}, headers, header_count,
      {body, body_len},
  };
  return actor_handle(&req);
}

/* The host has copied the response out: everything allocated for this call is garbage now. */
EXPORT("cabi_post_trellis:actor/handler@0.1.0#handle")
void trellis_post_handle(handle_result *result) {
  (void)result;
  heap_reset();
}

#endif
