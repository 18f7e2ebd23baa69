// AVX2 kernel for the common kline row. The separators of a whole row come from 32-byte compares
// (so no field waits for the one before it to find where it starts); two fields at a time are
// checked and converted, one per 128-bit lane (a byte shuffle puts the digits in place, then
// multiply-adds, as in simdjson's eight-digit conversion); the eight decimals are divided by 10^8
// four at a time. Written in C because Swift's SIMD types have no byte shuffle or multiply-add.
// It only accepts: every other row, and any doubt (a float rounding tie), goes to the Swift path.
#include "kline_rows.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define KERNEL __attribute__((target("avx2")))

int kline_row_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

// Two fields at a time, one per 128-bit lane (a low, b high): their digit values, and the mask of
// bytes that are not digits (a's in bits 0-15, b's in bits 16-31).
KERNEL __attribute__((always_inline)) static inline __m256i pair_digits(const uint8_t *a, const uint8_t *b, unsigned *non_digits) {
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)), _mm_loadu_si128((const __m128i *)b), 1);
    __m256i d = _mm256_sub_epi8(v, _mm256_set1_epi8('0'));
    *non_digits = ~(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(d, _mm256_set1_epi8(9)), d));
    return d;
}

// The values of the two 16-digit runs in `d` (one per lane), as 64-bit lanes [a, a, b, b].
KERNEL __attribute__((always_inline)) static inline __m256i pair_values(__m256i d) {
    __m256i t = _mm256_maddubs_epi16(d, _mm256_set1_epi16(0x010A));
    t = _mm256_madd_epi16(t, _mm256_set1_epi32(0x00010064));
    t = _mm256_packus_epi32(t, t);
    t = _mm256_madd_epi16(t, _mm256_set1_epi32(0x00012710));
    return _mm256_add_epi64(_mm256_mul_epu32(t, _mm256_set1_epi64x(100000000)), _mm256_srli_epi64(t, 32));
}

// Both lanes' shuffle: lane i takes `base` plus n_i.
KERNEL __attribute__((always_inline)) static inline __m256i lane_shuffle(__m256i base, int na, int nb) {
    return _mm256_add_epi8(base, _mm256_blend_epi32(_mm256_set1_epi8((char)na), _mm256_set1_epi8((char)nb), 0xF0));
}

// Two decimal fields of `la` and `lb` bytes (1-7 integer digits, a dot, 8 decimals): their
// mantissas into out[0] and out[1]; 0 when either has another shape.
KERNEL __attribute__((always_inline)) static inline int decimal_pair(const uint8_t *a, int la, const uint8_t *b, int lb, uint64_t *out) {
    int na = la - 9, nb = lb - 9;
    if ((unsigned)(na - 1) > 6 || (unsigned)(nb - 1) > 6) return 0;
    unsigned non_digits;
    __m256i d = pair_digits(a, b, &non_digits);
    unsigned expected = 1u << na | 1u << (16 + nb);
    unsigned within = ((1u << la) - 1) | ((1u << lb) - 1) << 16;
    if ((non_digits & within) != expected || a[na] != '.' || b[nb] != '.') return 0;
    const __m256i around_dot = _mm256_setr_epi8(-8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8,
                                                -8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8);
    __m256i v = pair_values(_mm256_shuffle_epi8(d, lane_shuffle(around_dot, na, nb)));
    out[0] = (uint64_t)_mm256_extract_epi64(v, 0);
    out[1] = (uint64_t)_mm256_extract_epi64(v, 2);
    return 1;
}

// Two integer fields of `la` and `lb` digits (1-16 each): their values; 0 when a byte is not a digit.
KERNEL __attribute__((always_inline)) static inline int int_pair(const uint8_t *a, int la, const uint8_t *b, int lb, int64_t *va, int64_t *vb) {
    unsigned non_digits;
    __m256i d = pair_digits(a, b, &non_digits);
    unsigned within = ((1u << la) - 1) | ((1u << lb) - 1) << 16;
    if (non_digits & within) return 0;
    const __m256i iota = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                          0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m256i v = pair_values(_mm256_shuffle_epi8(d, lane_shuffle(iota, la - 16, lb - 16)));
    *va = _mm256_extract_epi64(v, 0);
    *vb = _mm256_extract_epi64(v, 2);
    return 1;
}

// Four mantissas (< 2^52) as exact doubles: their bits under 2^52's exponent, minus 2^52.
KERNEL __attribute__((always_inline)) static inline __m256d exact_doubles(const uint64_t *m) {
    __m256i bits = _mm256_or_si256(_mm256_loadu_si256((const __m256i *)m), _mm256_set1_epi64x(0x4330000000000000));
    return _mm256_sub_pd(_mm256_castsi256_pd(bits), _mm256_set1_pd(4503599627370496.0));
}

// The 8 mantissas / 10^8 as correctly rounded doubles (one IEEE division each).
KERNEL __attribute__((always_inline)) static inline int to_doubles(const uint64_t *m, double *out) {
    for (int i = 0; i < 8; i += 4) _mm256_storeu_pd(out + i, _mm256_div_pd(exact_doubles(m + i), _mm256_set1_pd(1e8)));
    return 1;
}

// The 8 mantissas / 10^8 as correctly rounded floats, the way Float.exactEightDecimals does it: a
// multiplication by 1e-8 is within 2 double ulps of the quotient, so unless a double is within 4
// ulps of a float halfway point (low 29 bits near 0x1000_0000) it rounds to the same float. A row
// with such a value returns 0 and takes the careful path.
KERNEL __attribute__((always_inline)) static inline int to_floats(const uint64_t *m, float *out) {
    __m256i near = _mm256_setzero_si256();
    __m256d d[2];
    for (int i = 0; i < 2; i++) {
        d[i] = _mm256_mul_pd(exact_doubles(m + 4 * i), _mm256_set1_pd(1e-8));
        __m256i t = _mm256_sub_epi64(_mm256_and_si256(_mm256_castpd_si256(d[i]), _mm256_set1_epi64x(0x1FFFFFFF)),
                                     _mm256_set1_epi64x(0x10000000 - 4));
        near = _mm256_or_si256(near, _mm256_and_si256(_mm256_cmpgt_epi64(t, _mm256_set1_epi64x(-1)),
                                                      _mm256_cmpgt_epi64(_mm256_set1_epi64x(9), t)));
    }
    if (!_mm256_testz_si256(near, near)) return 0;
    _mm_storeu_ps(out, _mm256_cvtpd_ps(d[0]));
    _mm_storeu_ps(out + 4, _mm256_cvtpd_ps(d[1]));
    return 1;
}

KERNEL int kline_row_parse(const uint8_t *row, int time_digits, int as_double, kline_row *out) {
    // Commas and line feeds of the span, 64 bytes a word; the row ends at the first line feed.
    uint64_t commas[3], feeds[3];
    for (int w = 0; w < 3; w++) {
        __m256i lo = _mm256_loadu_si256((const __m256i *)(row + 64 * w));
        __m256i hi = _mm256_loadu_si256((const __m256i *)(row + 64 * w + 32));
        commas[w] = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, _mm256_set1_epi8(',')))
                  | (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, _mm256_set1_epi8(','))) << 32;
        feeds[w] = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, _mm256_set1_epi8('\n')))
                 | (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, _mm256_set1_epi8('\n'))) << 32;
    }
    int feed = feeds[0] ? __builtin_ctzll(feeds[0]) : feeds[1] ? 64 + __builtin_ctzll(feeds[1])
             : feeds[2] ? 128 + __builtin_ctzll(feeds[2]) : -1;
    if (feed < 0) return 0;
    int content = feed > 0 && row[feed - 1] == '\r' ? feed - 1 : feed;
    // The first 11 commas (a loop: rows of one file share a shape, so its exits are predicted).
    int at[11], count = 0;
    for (int w = 0; w < 3 && count < 11; w++) {
        uint64_t c = commas[w];
        while (c && count < 11) {
            at[count++] = 64 * w + __builtin_ctzll(c);
            c &= c - 1;
        }
    }
    // The 11th comma is followed by `0` and the line's end: no 13th field.
    if (count < 11 || at[10] + 2 != content || row[at[10] + 1] != '0') return 0;
    int start[11];
    start[0] = 0;
    for (int k = 1; k < 11; k++) start[k] = at[k - 1] + 1;
    if (at[0] != time_digits || at[6] - start[6] != time_digits) return 0;
    int trades_len = at[8] - start[8];
    if (trades_len < 1 || trades_len > 16) return 0;
    // Pairs: the two times, the trade count (twice), then the decimals in the header's order.
    int64_t open_time, close_time, trades;
    uint64_t m[8];
    if (!int_pair(row, time_digits, row + start[6], time_digits, &open_time, &close_time)
        || !int_pair(row + start[8], trades_len, row + start[8], trades_len, &trades, &trades)
        || !decimal_pair(row + start[1], at[1] - start[1], row + start[2], at[2] - start[2], m)
        || !decimal_pair(row + start[3], at[3] - start[3], row + start[4], at[4] - start[4], m + 2)
        || !decimal_pair(row + start[5], at[5] - start[5], row + start[7], at[7] - start[7], m + 4)
        || !decimal_pair(row + start[9], at[9] - start[9], row + start[10], at[10] - start[10], m + 6)) return 0;
    if (!(as_double ? to_doubles(m, out->doubles) : to_floats(m, out->floats))) return 0;
    out->open_time = open_time;
    out->close_time = close_time;
    out->trades = trades;
    return feed + 1;
}

#else
int kline_row_supported(void) { return 0; }
int kline_row_parse(const uint8_t *row, int time_digits, int as_double, kline_row *out) { (void)row; (void)time_digits; (void)as_double; (void)out; return 0; }
#endif

