#ifndef CYCLONE_PREFETCH_H
#define CYCLONE_PREFETCH_H

/// Asks the CPU to bring the cache line at `address` close ahead of its use. Swift has no prefetch of
/// its own; histogram building reads rows in an order no hardware prefetcher follows.
static inline void cyclone_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

#endif
