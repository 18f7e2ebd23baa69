// One kline CSV row of the common shape, split and converted to numbers with AVX2 by
// `kline_row_parse`; KlineCSVParser validates the row and stores it.
#ifndef KLINE_ROWS_H
#define KLINE_ROWS_H
#include <stdint.h>

// The 11 fields of a row: open and close time and trade count as integers; the 8 decimals (open,
// high, low, close, volume, quote volume, taker base, taker quote, in that order) correctly rounded
// to doubles or to floats.
typedef struct {
    int64_t open_time, close_time, trades;
    double doubles[8];
    float floats[8];
} kline_row;

// The bytes a row may span for `kline_row_parse` (the loads cover this many from its start).
enum { KLINE_ROW_SPAN = 192 };

// Whether this CPU runs `kline_row_parse` (x86-64 with AVX2).
int kline_row_supported(void);

// Parses the row at `row` (which must have KLINE_ROW_SPAN + 16 readable bytes: a field near the
// span's end is loaded 16 bytes at a time) when it has the common
// shape: times of `time_digits` digits, a trade count of 1-16 digits, decimals of 1-7 integer
// digits and exactly 8 decimals, `ignore` = 0, then LF or CRLF within the span. Fills `doubles`
// when `as_double`, else `floats`. Returns the length of the row with its line break, or 0 for
// any other shape and for a float too near a rounding tie (the caller's careful path decides those).
int kline_row_parse(const uint8_t *row, int time_digits, int as_double, kline_row *out);
#endif
