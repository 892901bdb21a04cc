/*
 * model_hash — the feature hash of the CTR model: a fixed, portable 64-bit
 * hash and the way a (field, value) pair becomes a coordinate index.
 *
 * Every stored model is only meaningful with exactly this function: change
 * nothing here (tests/0014-ctr_model.c holds golden values) unless the
 * stored models are meant to be thrown away.
 *
 * model_hash64 is MurmurHash64A (Austin Appleby, public domain) with the
 * 8-byte blocks read LITTLE-ENDIAN byte by byte, so it gives the same value
 * on every CPU (the original reads native words). All arithmetic is modulo
 * 2^64; M = 0xc6a4a7935bd1e995, R = 47:
 *
 *     h = seed ^ (len * M)
 *     for each whole 8-byte block k (little-endian):
 *         k *= M;  k ^= k >> R;  k *= M;  h ^= k;  h *= M
 *     if len % 8 != 0:  (the t = len % 8 trailing bytes b[0..t-1])
 *         h ^= b[0] | b[1] << 8 | ... | b[t-1] << 8 (t-1);  h *= M
 *     h ^= h >> R;  h *= M;  h ^= h >> R
 *
 * The same in Python (an eval script may use it):
 *
 *     def model_hash64(data: bytes, seed: int) -> int:
 *         M, R, X = 0xC6A4A7935BD1E995, 47, (1 << 64) - 1
 *         h = (seed ^ (len(data) * M)) & X
 *         n8 = len(data) // 8 * 8
 *         for i in range(0, n8, 8):
 *             k = int.from_bytes(data[i:i + 8], "little") * M & X
 *             k = (k ^ (k >> R)) * M & X
 *             h = (h ^ k) * M & X
 *         if len(data) % 8:
 *             h = (h ^ int.from_bytes(data[n8:], "little")) * M & X
 *         h = (h ^ (h >> R)) * M & X
 *         return h ^ (h >> R)
 *
 *     def model_hash_feature(field: bytes, value: bytes, bits: int) -> int:
 *         h = model_hash64(field + b"\x1f" + value, 0x5445524E)
 *         return h & ((1 << bits) - 1)
 *
 *     def model_hash_context(key, value, bits):
 *         return model_hash_feature(b"ctx", key + b"=" + value, bits)
 *
 *     def model_hash_cross(fa, va, fb, vb, bits):
 *         return model_hash_feature(fa + b"*" + fb, va + b"\x1e" + vb, bits)
 *
 * A feature is therefore the byte string  field 0x1f value  hashed with
 * seed MODEL_HASH_SEED and masked to its low `bits` bits; a cross of
 * (fa, va) and (fb, vb), in the order the config names them, is the
 * feature named "fa*fb" whose value is  va 0x1e vb.  No allocation: the
 * pieces are hashed in place.
 */
#ifndef MODEL_HASH_H
#define MODEL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define MODEL_HASH_SEED     0x5445524EULL /* "TERN" */
#define MODEL_HASH_MAX_BITS 32

uint64_t model_hash64(const void *data, size_t len, uint64_t seed);

/* Low `bits` (1..32) bits of model_hash64(field 0x1f value, MODEL_HASH_SEED).
 */
uint32_t model_hash_feature(const char *field, size_t flen, const char *value,
                            size_t vlen, uint32_t bits);

/* A context entry: model_hash_feature("ctx", key '=' value, bits). */
uint32_t model_hash_context(const char *key, size_t klen, const char *value,
                            size_t vlen, uint32_t bits);

/* model_hash_feature("fa*fb", va 0x1e vb, bits). */
uint32_t model_hash_cross(const char *fa, size_t fa_len, const char *va,
                          size_t va_len, const char *fb, size_t fb_len,
                          const char *vb, size_t vb_len, uint32_t bits);

#endif
