// Binance's common CSV rows split and converted to numbers with AVX2 (kline_rows.c,
// trade_rows.c, on the core in row_core.h). They only accept: each returns 0 for a row of any
// other shape, and the Swift parsers (KlineCSVParser, TradeCSVParser) then take the row on their
// careful path. Validation of a row's content stays in Swift for both paths.
#ifndef ROW_KERNELS_H
#define ROW_KERNELS_H
#include <stdint.h>

// Whether this CPU runs the kernels (x86-64 with AVX2).
int row_kernels_supported(void);

// The 11 fields of a kline row: open and close time and trade count as integers; the 8 decimals
// (open, high, low, close, volume, quote volume, taker base, taker quote, in that order) correctly
// rounded to doubles or to floats.
typedef struct {
    int64_t open_time, close_time, trades;
    double doubles[8];
    float floats[8];
} kline_row;

// The bytes a kline row may span for `kline_row_parse` (its loads cover this many from its start,
// and a field near the span's end is loaded 16 bytes at a time: KLINE_ROW_SPAN + 16 must be readable).
enum { KLINE_ROW_SPAN = 192 };

// Parses the kline row at `row` when it has the common shape: times of `time_digits` digits, a
// trade count of 1-16 digits, decimals of 1-7 integer digits and exactly 8 decimals, `ignore` = 0,
// then LF or CRLF within the span. Fills `doubles` when `as_double`, else `floats`. Returns the
// length of the row with its line break, or 0 for any other shape and for a float too near a
// rounding tie (the caller's careful path decides those).
int kline_row_parse(const uint8_t *row, int time_digits, int as_double, kline_row *out);

// A trades or aggTrades row: the ID and the time (in the file's unit) as integers; an aggregate's
// first and last trade IDs (0 for raw trades); price, quantity and (raw trades only) the third amount correctly
// rounded to doubles or floats; the flags as 0 or 1 (best_match 0 where the layout has none).
typedef struct {
    int64_t id, time, first, last;
    double doubles[3];
    float floats[3];
    int32_t buyer_maker, best_match;
} trade_row;

// The bytes a trade row may span for `trade_row_parse` (TRADE_ROW_SPAN + 16 must be readable).
enum { TRADE_ROW_SPAN = 128 };

// Parses the row at `row` when it has the common shape of its layout (`aggregate`: aggTrades;
// `best_match`: the spot layouts' last flag): IDs of 1-16 digits, the time of `time_digits` digits,
// decimals of 1-15 digits with at most one dot (not first or last), flags `true`/`false` (first letter in either case),
// then LF or CRLF within the span. Returns the length of the row with its line break, or 0 for any
// other shape and for a float on a rounding tie.
int trade_row_parse(const uint8_t *row, int aggregate, int best_match, int time_digits, int as_double, trade_row *out);
#endif
