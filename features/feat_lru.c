/*
 * feat_lru — the order in which the engine's caches give entries back:
 * least recently used first (feat_int.h, "eviction order").
 *
 * Users and items carry the engine tick of their last use; after a commit
 * past a bound, the cache writes one key per entry into eng->lru, sorts
 * them here and evicts from the front. The scratch belongs to the engine
 * and only grows (it is freed with the engine), so eviction allocates
 * nothing once the caches have reached their bounds: 16 bytes per cached
 * entry, next to the ~100 bytes of a pair or the ~1 KiB of a user.
 *
 * The sort is a stable LSD radix sort on the keys' high 32 bits (the age):
 * callers write keys in payload order, so equal ages keep it. A pass whose
 * byte is the same in every key is skipped (ages of a few thousand events
 * differ only in their low bytes). O(n), no comparisons: an eviction of
 * 200k users sorts in about a millisecond.
 */
#include "feat_int.h"

#include <stdlib.h>

int feat_lru_room(feat_engine_t *eng, size_t n) {
        uint64_t *g;
        size_t cap;
        if (n <= eng->cap_lru)
                return 0;
        cap = n + n / 4;
        if (cap > SIZE_MAX / (2 * sizeof(*g)) ||
            !(g = realloc(eng->lru, 2 * cap * sizeof(*g))))
                return -1;
        eng->lru = g;
        eng->cap_lru = cap;
        return 0;
}

/* One counting pass on byte `shift` of the keys' high half, src -> dst;
 * 0 when every key has the same byte there (nothing moved). */
static int radix_pass(const uint64_t *src, uint64_t *dst, size_t n,
                      unsigned shift) {
        size_t count[256] = {0}, pos = 0;
        for (size_t i = 0; i < n; i++)
                count[(src[i] >> shift) & 0xff]++;
        if (count[(src[0] >> shift) & 0xff] == n)
                return 0;
        for (unsigned b = 0; b < 256; b++) {
                size_t c = count[b];
                count[b] = pos;
                pos += c;
        }
        for (size_t i = 0; i < n; i++)
                dst[count[(src[i] >> shift) & 0xff]++] = src[i];
        return 1;
}

void feat_lru_sort(feat_engine_t *eng, size_t n) {
        uint64_t *a = eng->lru, *b = eng->lru + eng->cap_lru;
        if (n < 2)
                return;
        for (unsigned shift = 32; shift < 64; shift += 8)
                if (radix_pass(a, b, n, shift)) {
                        uint64_t *t = a;
                        a = b;
                        b = t;
                }
        if (a != eng->lru)
                memcpy(eng->lru, a, n * sizeof(*a));
}
