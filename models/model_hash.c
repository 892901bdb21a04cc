/*
 * model_hash — MurmurHash64A over little-endian blocks, and the feature and
 * cross hashes built on it (the algorithm is documented in model_hash.h).
 *
 * Features are hashed from their pieces (field, separator, value) without
 * building the string: short ones are copied into a stack buffer and
 * hashed in one go (the common case, a few dozen bytes), longer ones are
 * streamed through an incremental state that gives the same value.
 */
#include "model_hash.h"

#include <string.h>

#define MH_M 0xc6a4a7935bd1e995ULL
#define MH_R 47

/* Byte by byte: the same value on any byte order and no unaligned loads
 * (compilers turn this into one load on little-endian CPUs). */
static inline uint64_t le64(const uint8_t *p) {
        return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
               (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 |
               (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
               (uint64_t)p[7] << 56;
}

static inline uint64_t mix_block(uint64_t h, uint64_t k) {
        k *= MH_M;
        k ^= k >> MH_R;
        k *= MH_M;
        h ^= k;
        return h * MH_M;
}

static inline uint64_t mix_tail(uint64_t h, const uint8_t *t, size_t n) {
        uint64_t k = 0;
        if (!n)
                return h;
        for (size_t i = 0; i < n; i++)
                k |= (uint64_t)t[i] << (8 * i);
        return (h ^ k) * MH_M;
}

static inline uint64_t finish(uint64_t h) {
        h ^= h >> MH_R;
        h *= MH_M;
        h ^= h >> MH_R;
        return h;
}

uint64_t model_hash64(const void *data, size_t len, uint64_t seed) {
        const uint8_t *p = data;
        uint64_t h = seed ^ ((uint64_t)len * MH_M);
        size_t n8 = len & ~(size_t)7;
        for (size_t i = 0; i < n8; i += 8)
                h = mix_block(h, le64(p + i));
        return finish(mix_tail(h, p + n8, len - n8));
}

/* Incremental MurmurHash64A: the total length is part of the initial
 * state, so it must be known up front (it is: the pieces' lengths). */
typedef struct mh_state {
        uint64_t h;
        uint8_t buf[8];
        size_t nbuf;
} mh_state_t;

static void mh_init(mh_state_t *s, uint64_t seed, size_t total) {
        s->h = seed ^ ((uint64_t)total * MH_M);
        s->nbuf = 0;
}

static void mh_update(mh_state_t *s, const void *data, size_t n) {
        const uint8_t *p = data;
        while (n && s->nbuf) { /* complete a partial block first */
                s->buf[s->nbuf++] = *p++;
                n--;
                if (s->nbuf == 8) {
                        s->h = mix_block(s->h, le64(s->buf));
                        s->nbuf = 0;
                }
        }
        if (s->nbuf)
                return; /* the data ended inside the partial block */
        for (; n >= 8; p += 8, n -= 8)
                s->h = mix_block(s->h, le64(p));
        if (n)
                memcpy(s->buf, p, n);
        s->nbuf = n;
}

static uint64_t mh_final(const mh_state_t *s) {
        return finish(mix_tail(s->h, s->buf, s->nbuf));
}

static inline uint32_t mask_bits(uint64_t h, uint32_t bits) {
        if (bits >= 32)
                return (uint32_t)h;
        return (uint32_t)h & ((1u << bits) - 1u);
}

/* Hash pieces as one byte string (their concatenation). */
typedef struct piece {
        const void *p;
        size_t n;
} piece_t;

/* model_hash64 of a buffer whose bytes after len, up to the next multiple
 * of 8, are zero: the tail is one load instead of a loop of varying length
 * (whose mispredicted exit cost about as much as the hashing). */
static uint64_t hash_padded(const uint8_t *p, size_t len, uint64_t seed) {
        uint64_t h = seed ^ ((uint64_t)len * MH_M);
        size_t n8 = len & ~(size_t)7;
        for (size_t i = 0; i < n8; i += 8)
                h = mix_block(h, le64(p + i));
        if (len > n8)
                h = (h ^ le64(p + n8)) * MH_M;
        return finish(h);
}

/* Copy n bytes with fixed-size moves the compiler inlines: the pieces are
 * mostly a few bytes, where a memcpy call costs more than the copy. */
static inline void copy_small(uint8_t *d, const uint8_t *s, size_t n) {
        for (; n >= 8; d += 8, s += 8, n -= 8)
                memcpy(d, s, 8);
        if (n & 4) {
                memcpy(d, s, 4);
                d += 4;
                s += 4;
        }
        if (n & 2) {
                memcpy(d, s, 2);
                d += 2;
                s += 2;
        }
        if (n & 1)
                *d = *s;
}

static uint64_t hash_pieces(const piece_t *pc, int np) {
        uint8_t small[128 + 8];
        size_t total = 0, off = 0;
        mh_state_t s;
        for (int i = 0; i < np; i++)
                total += pc[i].n;
        if (total <= 128) {
                for (int i = 0; i < np; i++) {
                        copy_small(small + off, pc[i].p, pc[i].n);
                        off += pc[i].n;
                }
                memset(small + total, 0, 8);
                return hash_padded(small, total, MODEL_HASH_SEED);
        }
        mh_init(&s, MODEL_HASH_SEED, total);
        for (int i = 0; i < np; i++)
                mh_update(&s, pc[i].p, pc[i].n);
        return mh_final(&s);
}

uint32_t model_hash_feature(const char *field, size_t flen, const char *value,
                            size_t vlen, uint32_t bits) {
        static const uint8_t us = 0x1f;
        piece_t pc[3] = {{field, flen}, {&us, 1}, {value, vlen}};
        return mask_bits(hash_pieces(pc, 3), bits);
}

uint32_t model_hash_context(const char *key, size_t klen, const char *value,
                            size_t vlen, uint32_t bits) {
        static const uint8_t us = 0x1f, eq = '=';
        piece_t pc[5] = {
            {"ctx", 3}, {&us, 1}, {key, klen}, {&eq, 1}, {value, vlen}};
        return mask_bits(hash_pieces(pc, 5), bits);
}

uint32_t model_hash_cross(const char *fa, size_t fa_len, const char *va,
                          size_t va_len, const char *fb, size_t fb_len,
                          const char *vb, size_t vb_len, uint32_t bits) {
        static const uint8_t star = '*', us = 0x1f, rs = 0x1e;
        piece_t pc[7] = {{fa, fa_len}, {&star, 1}, {fb, fb_len}, {&us, 1},
                         {va, va_len}, {&rs, 1},   {vb, vb_len}};
        return mask_bits(hash_pieces(pc, 7), bits);
}
