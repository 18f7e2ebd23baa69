// The AVX2 core the row kernels share (kline_rows.c, trade_rows.c): a row's separators from
// 32-byte compares, so no field waits for the one before it to find where it starts; two fields
// at a time checked and converted, one per 128-bit lane (a byte shuffle puts the digits in place,
// then multiply-adds, as in simdjson's eight-digit conversion); mantissas to doubles four at a time.
// Written in C because Swift's SIMD types have no byte shuffle or multiply-add. Every function only
// accepts: a field of another shape makes the caller refuse the row, and its Swift path decides.
#ifndef ROW_CORE_H
#define ROW_CORE_H
#include <stdint.h>
#include <immintrin.h>

#define KERNEL __attribute__((target("avx2,popcnt,bmi,bmi2")))
#define INLINE_KERNEL KERNEL __attribute__((always_inline)) static inline

// The separators of the `words` 64-byte words from `row`: each row field's start, and in
// start[fields] one past the row's content (which ends before LF or CRLF). Returns the length of
// the row with its line break, or 0 when the span holds no line feed or the row has another number
// of fields than `fields`.
INLINE_KERNEL int row_fields(const uint8_t *row, int words, int fields, int *start) {
    // Every word is compared (no branch on where the row ends: that varies row by row).
    uint64_t commas[3], feeds[3];
    for (int w = 0; w < words; w++) {
        __m256i lo = _mm256_loadu_si256((const __m256i *)(row + 64 * w));
        __m256i hi = _mm256_loadu_si256((const __m256i *)(row + 64 * w + 32));
        commas[w] = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, _mm256_set1_epi8(',')))
                  | (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, _mm256_set1_epi8(','))) << 32;
        feeds[w] = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, _mm256_set1_epi8('\n')))
                 | (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, _mm256_set1_epi8('\n'))) << 32;
    }
    int feed = -1;
    for (int w = words - 1; w >= 0; w--) feed = feeds[w] ? 64 * w + __builtin_ctzll(feeds[w]) : feed;
    if (feed < 0) return 0;
    int content = feed > 0 && row[feed - 1] == '\r' ? feed - 1 : feed;
    // The commas before the line feed: fields - 1 of them, then in order (a loop: rows of one
    // file share a shape, so its exits are predicted).
    int count = 0;
    for (int w = 0; w < words; w++) {
        int below = feed - 64 * w;
        commas[w] = below >= 64 ? commas[w] : below <= 0 ? 0 : commas[w] & ((1ull << below) - 1);
        count += __builtin_popcountll(commas[w]);
    }
    if (count != fields - 1) return 0;
    start[0] = 0;
    int k = 1;
    for (int w = 0; w < words; w++) {
        for (uint64_t c = commas[w]; c; c &= c - 1) start[k++] = 64 * w + __builtin_ctzll(c) + 1;
    }
    start[fields] = content + 1;  // so that every field's length is start[k + 1] - start[k] - 1
    return feed + 1;
}

// The length of field k.
#define FIELD_LENGTH(start, k) ((start)[(k) + 1] - (start)[k] - 1)

// Two fields at a time, one per 128-bit lane (a low, b high): their digit values, and the mask of
// bytes that are not digits (a's in bits 0-15, b's in bits 16-31).
INLINE_KERNEL __m256i pair_digits(const uint8_t *a, const uint8_t *b, unsigned *non_digits) {
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)), _mm_loadu_si128((const __m128i *)b), 1);
    __m256i d = _mm256_sub_epi8(v, _mm256_set1_epi8('0'));
    *non_digits = ~(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(d, _mm256_set1_epi8(9)), d));
    return d;
}

// The values of the two 16-digit runs in `d` (one per lane), as 64-bit lanes [a, a, b, b].
INLINE_KERNEL __m256i pair_values(__m256i d) {
    __m256i t = _mm256_maddubs_epi16(d, _mm256_set1_epi16(0x010A));
    t = _mm256_madd_epi16(t, _mm256_set1_epi32(0x00010064));
    t = _mm256_packus_epi32(t, t);
    t = _mm256_madd_epi16(t, _mm256_set1_epi32(0x00012710));
    return _mm256_add_epi64(_mm256_mul_epu32(t, _mm256_set1_epi64x(100000000)), _mm256_srli_epi64(t, 32));
}

// Both lanes' shuffle: lane i takes `base` plus n_i.
INLINE_KERNEL __m256i lane_shuffle(__m256i base, int na, int nb) {
    return _mm256_add_epi8(base, _mm256_blend_epi32(_mm256_set1_epi8((char)na), _mm256_set1_epi8((char)nb), 0xF0));
}

// 0, 1, ..., 15 in each lane.
INLINE_KERNEL __m256i lane_iota(void) {
    return _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

// Two integer fields of `la` and `lb` digits (1-16 each): their values; 0 for another shape.
INLINE_KERNEL int int_pair(const uint8_t *a, int la, const uint8_t *b, int lb, int64_t *va, int64_t *vb) {
    if ((unsigned)(la - 1) > 15 || (unsigned)(lb - 1) > 15) return 0;
    unsigned non_digits;
    __m256i d = pair_digits(a, b, &non_digits);
    unsigned within = ((1u << la) - 1) | ((1u << lb) - 1) << 16;
    if (non_digits & within) return 0;
    __m256i v = pair_values(_mm256_shuffle_epi8(d, lane_shuffle(lane_iota(), la - 16, lb - 16)));
    *va = _mm256_extract_epi64(v, 0);
    *vb = _mm256_extract_epi64(v, 2);
    return 1;
}

// Four mantissas (< 2^52) as exact doubles: their bits under 2^52's exponent, minus 2^52.
INLINE_KERNEL __m256d exact_doubles(const uint64_t *m) {
    __m256i bits = _mm256_or_si256(_mm256_loadu_si256((const __m256i *)m), _mm256_set1_epi64x(0x4330000000000000));
    return _mm256_sub_pd(_mm256_castsi256_pd(bits), _mm256_set1_pd(4503599627370496.0));
}

// Lanes of `d` within 4 ulps of a float32 halfway point (the low 29 bits near 0x1000_0000): there
// a double that is not the exact quotient may round to the other float.
INLINE_KERNEL __m256i near_float_ties(__m256d d) {
    __m256i t = _mm256_sub_epi64(_mm256_and_si256(_mm256_castpd_si256(d), _mm256_set1_epi64x(0x1FFFFFFF)),
                                 _mm256_set1_epi64x(0x10000000 - 4));
    return _mm256_and_si256(_mm256_cmpgt_epi64(t, _mm256_set1_epi64x(-1)), _mm256_cmpgt_epi64(_mm256_set1_epi64x(9), t));
}

// Lanes of `d` exactly on a float32 halfway point: rounding the (correctly rounded) double again
// could go the wrong way, as Float.exact checks.
INLINE_KERNEL __m256i float_ties(__m256d d) {
    return _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_castpd_si256(d), _mm256_set1_epi64x(0x1FFFFFFF)),
                              _mm256_set1_epi64x(0x10000000));
}
#endif
