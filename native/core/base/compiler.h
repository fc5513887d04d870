// nnscope core: compiler hints shared by the hot loops.
//
// NNSCOPE_ALWAYS_INLINE marks a function or lambda for inlining. Prefetch helpers
// need it: left out of line, GCC finds them free of side effects ("const") and
// deletes their calls, prefetches and all (seen with g++ 12 at -O2/-O3).
// NNSCOPE_PREFETCH(p) hints that *p will be read soon (a no-op elsewhere).
#pragma once

#if defined(__GNUC__)
#define NNSCOPE_ALWAYS_INLINE __attribute__((always_inline))
#define NNSCOPE_PREFETCH(p) __builtin_prefetch(p)
#else
#define NNSCOPE_ALWAYS_INLINE
#define NNSCOPE_PREFETCH(p) ((void)(p))
#endif
