// The trade row kernel: Binance's common trades and aggTrades rows (see row_kernels.h) on the
// shared AVX2 core.
#include "row_kernels.h"

#if defined(__x86_64__)
#include "row_core.h"

// Two decimal fields of `la` and `lb` bytes: 1 to 15 digits with at most one dot, neither first
// nor last (so the mantissa is exact in a double). Their mantissas into m[0] and m[1], their
// decimal counts into scale[0] and scale[1]; 0 when either has another shape.
INLINE_KERNEL int decimal_pair(const uint8_t *a, int la, const uint8_t *b, int lb, uint64_t *m, int *scale) {
    if ((unsigned)(la - 1) > 15 || (unsigned)(lb - 1) > 15) return 0;
    unsigned non_digits;
    __m256i d = pair_digits(a, b, &non_digits);
    unsigned na = non_digits & ((1u << la) - 1), nb = (non_digits >> 16) & ((1u << lb) - 1);
    if ((na & (na - 1)) || (nb & (nb - 1))) return 0;
    int dot_a = na != 0, dot_b = nb != 0;
    int pa = dot_a ? __builtin_ctz(na) : la, pb = dot_b ? __builtin_ctz(nb) : lb;
    if (la - dot_a > 15 || lb - dot_b > 15) return 0;
    if (dot_a && (pa == 0 || pa == la - 1 || a[pa] != '.')) return 0;
    if (dot_b && (pb == 0 || pb == lb - 1 || b[pb] != '.')) return 0;
    int fa = la - dot_a - pa, fb = lb - dot_b - pb;
    // Byte j of the 16-digit run takes byte j + la - 16 - dot of the field (negative: a leading
    // zero), one further from the first decimal on (j >= 16 - decimals), skipping the dot.
    __m256i iota = lane_iota();
    __m256i index = lane_shuffle(iota, la - 16 - dot_a, lb - 16 - dot_b);
    __m256i past_dot = _mm256_cmpgt_epi8(iota, _mm256_blend_epi32(_mm256_set1_epi8((char)(15 - fa)), _mm256_set1_epi8((char)(15 - fb)), 0xF0));
    __m256i v = pair_values(_mm256_shuffle_epi8(d, _mm256_sub_epi8(index, past_dot)));
    m[0] = (uint64_t)_mm256_extract_epi64(v, 0);
    m[1] = (uint64_t)_mm256_extract_epi64(v, 2);
    scale[0] = fa;
    scale[1] = fb;
    return 1;
}

// A field of `true` or `false` (the first letter in either case): 1 or 0, or -1 for another shape.
INLINE_KERNEL int flag(const uint8_t *f, int length) {
    if (length == 4 && (f[0] | 0x20) == 't' && f[1] == 'r' && f[2] == 'u' && f[3] == 'e') return 1;
    if (length == 5 && (f[0] | 0x20) == 'f' && f[1] == 'a' && f[2] == 'l' && f[3] == 's' && f[4] == 'e') return 0;
    return -1;
}

// The first 3 of 4 mantissas / 10^scale, correctly rounded: one IEEE division each (both exact, so this is
// the correctly rounded quotient); a float from that double unless it is exactly on a float
// halfway point (then 0: the careful path decides).
INLINE_KERNEL int convert(const uint64_t *m, const int *scale, int as_double, double *doubles, float *floats) {
    static const double powers[16] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    __m256d q = _mm256_div_pd(exact_doubles(m), _mm256_setr_pd(powers[scale[0]], powers[scale[1]], powers[scale[2]], powers[scale[3]]));
    if (as_double) {
        double all[4];
        _mm256_storeu_pd(all, q);
        doubles[0] = all[0], doubles[1] = all[1], doubles[2] = all[2];
        return 1;
    }
    __m256i ties = float_ties(q);
    if (!_mm256_testz_si256(ties, ties)) return 0;
    float all[4];
    _mm_storeu_ps(all, _mm256_cvtpd_ps(q));
    floats[0] = all[0], floats[1] = all[1], floats[2] = all[2];
    return 1;
}

KERNEL int trade_row_parse(const uint8_t *row, int aggregate, int best_match, int time_digits, int as_double, trade_row *out) {
    // trades: id, price, qty, amount, time, buyer maker[, best match]
    // aggTrades: id, price, qty, first trade, last trade, time, buyer maker[, best match]
    int time_field = aggregate ? 5 : 4, fields = time_field + 2 + (best_match != 0);
    int start[9];
    int length = row_fields(row, TRADE_ROW_SPAN / 64, fields, start);
    if (!length || FIELD_LENGTH(start, time_field) != time_digits) return 0;
    uint64_t m[4] = {0, 0, 0, 0};
    int scale[4] = {0, 0, 0, 0};
#define F(k) row + start[k], FIELD_LENGTH(start, k)
    if (!int_pair(F(0), F(time_field), &out->id, &out->time) || !decimal_pair(F(1), F(2), m, scale)) return 0;
    if (aggregate) {
        if (!int_pair(F(3), F(4), &out->first, &out->last)) return 0;
    } else if (decimal_pair(F(3), F(3), m + 2, scale + 2)) {  // the amount in both lanes
        out->first = out->last = 0;
    } else {
        return 0;
    }
    int buyer_maker = flag(F(time_field + 1));
    int best = best_match ? flag(F(time_field + 2)) : 0;
#undef F
    if (buyer_maker < 0 || best < 0) return 0;
    if (!convert(m, scale, as_double, out->doubles, out->floats)) return 0;
    out->buyer_maker = buyer_maker;
    out->best_match = best;
    return length;
}

#else
int trade_row_parse(const uint8_t *row, int aggregate, int best_match, int time_digits, int as_double, trade_row *out) {
    (void)row; (void)aggregate; (void)best_match; (void)time_digits; (void)as_double; (void)out;
    return 0;
}
#endif
