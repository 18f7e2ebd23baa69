// The kline row kernel: Binance's common kline row (see row_kernels.h) on the shared AVX2 core.
#include "row_kernels.h"

#if defined(__x86_64__)
#include "row_core.h"

int row_kernels_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
}

// Two decimal fields of `la` and `lb` bytes (1-7 integer digits, a dot, 8 decimals): their
// mantissas into out[0] and out[1]; 0 when either has another shape.
INLINE_KERNEL int eight_decimal_pair(const uint8_t *a, int la, const uint8_t *b, int lb, uint64_t *out) {
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

// Rows whose values `kline_rows_parse` takes: low at most open and close, both at most high, low
// above 0 (in the stored width, as the parser's own check compares them). The volumes need no
// check: they come from digits, so they are finite and not negative.
// The 8 mantissas / 10^8 as correctly rounded doubles (one IEEE division each), stored at row i of
// the columns when their prices are sane; 0 otherwise.
INLINE_KERNEL int store_doubles(const uint64_t *m, const kline_columns *out, int i) {
    __m256d lo = _mm256_div_pd(exact_doubles(m), _mm256_set1_pd(1e8));      // open, high, low, close
    __m256d hi = _mm256_div_pd(exact_doubles(m + 4), _mm256_set1_pd(1e8));  // the four volumes
    // [low, low, open, close] <= [open, close, high, high], and low > 0.
    __m256d below = _mm256_permute4x64_pd(lo, 0xCA), above = _mm256_permute4x64_pd(lo, 0x5C);
    if (_mm256_movemask_pd(_mm256_cmp_pd(below, above, _CMP_LE_OQ)) != 0xF || !(lo[2] > 0)) return 0;
    double **d = (double **)out->decimals;
    for (int k = 0; k < 4; k++) { d[k][i] = lo[k]; d[k + 4][i] = hi[k]; }
    return 1;
}

// The 8 mantissas / 10^8 as correctly rounded floats, the way Float.exactEightDecimals does it: a
// multiplication by 1e-8 is within 2 double ulps of the quotient, so unless a double is within 4
// ulps of a float halfway point it rounds to the same float. A row with such a value, or with
// prices that are not sane, returns 0 and takes the careful path.
INLINE_KERNEL int store_floats(const uint64_t *m, const kline_columns *out, int i) {
    __m256d lo = _mm256_mul_pd(exact_doubles(m), _mm256_set1_pd(1e-8));
    __m256d hi = _mm256_mul_pd(exact_doubles(m + 4), _mm256_set1_pd(1e-8));
    __m256i near = _mm256_or_si256(near_float_ties(lo), near_float_ties(hi));
    if (!_mm256_testz_si256(near, near)) return 0;
    __m128 prices = _mm256_cvtpd_ps(lo), volumes = _mm256_cvtpd_ps(hi);
    __m128 below = _mm_shuffle_ps(prices, prices, 0xCA), above = _mm_shuffle_ps(prices, prices, 0x5C);
    if (_mm_movemask_ps(_mm_cmple_ps(below, above)) != 0xF || !(prices[2] > 0)) return 0;
    float **f = (float **)out->decimals;
    for (int k = 0; k < 4; k++) { f[k][i] = prices[k]; f[k + 4][i] = volumes[k]; }
    return 1;
}

// One row at `row`: its length with the line break, or 0 when it has another shape (see
// kline_rows_parse) or does not continue the run (`*next_open`, advanced by a row's interval).
INLINE_KERNEL int kline_row(const uint8_t *row, const kline_run *run, int64_t *next_open, const kline_columns *out, int i) {
    int start[13];
    int length = row_fields(row, KLINE_ROW_SPAN / 64, 12, start);
    if (!length) return 0;
    // `ignore` is `0`.
    if (FIELD_LENGTH(start, 11) != 1 || row[start[11]] != '0') return 0;
    if (FIELD_LENGTH(start, 0) != run->time_digits || FIELD_LENGTH(start, 6) != run->time_digits) return 0;
    // Pairs: the two times, the trade count (twice), then the decimals in the header's order.
    int64_t open_time, close_time, trades;
    uint64_t m[8];
#define F(k) row + start[k], FIELD_LENGTH(start, k)
    if (!int_pair(F(0), F(6), &open_time, &close_time)
        || !int_pair(F(8), F(8), &trades, &trades)
        || !eight_decimal_pair(F(1), F(2), m)
        || !eight_decimal_pair(F(3), F(4), m + 2)
        || !eight_decimal_pair(F(5), F(7), m + 4)
        || !eight_decimal_pair(F(9), F(10), m + 6)) return 0;
#undef F
    if (run->interval_units && (open_time != *next_open || close_time != open_time + run->interval_units - 1)) return 0;
    if (!(run->as_double ? store_doubles(m, out, i) : store_floats(m, out, i))) return 0;
    out->open_time[i] = open_time;
    out->trades[i] = trades;
    *next_open = open_time + run->interval_units;
    return length;
}

KERNEL int kline_rows_parse(const uint8_t *p, const uint8_t *end, int max_rows, const kline_run *run,
                            const kline_columns *out, long *consumed) {
    const uint8_t *start = p;
    int64_t next_open = run->next_open;
    int i = 0;
    while (i < max_rows && end - p >= KLINE_ROW_SPAN) {
        int length = kline_row(p, run, &next_open, out, i);
        if (!length) break;
        p += length;
        i++;
    }
    *consumed = p - start;
    return i;
}

#else
int row_kernels_supported(void) { return 0; }
int kline_rows_parse(const uint8_t *p, const uint8_t *end, int max_rows, const kline_run *run, const kline_columns *out, long *consumed) {
    (void)p; (void)end; (void)max_rows; (void)run; (void)out;
    *consumed = 0;
    return 0;
}
#endif
