// Binance's common CSV rows split and converted to numbers with AVX2 (kline_rows.c,
// trade_rows.c, on the core in row_core.h). They only accept: each returns 0 for a row of any
// other shape, and the Swift parsers (KlineCSVParser, TradeCSVParser) then take the row on their
// careful path. Validation of a row's content stays in Swift for both paths.
#ifndef ROW_KERNELS_H
#define ROW_KERNELS_H
#include <stdint.h>

// Whether this CPU runs the kernels (x86-64 with AVX2).
int row_kernels_supported(void);

// The bytes a kline row may span for `kline_rows_parse` (its loads cover this many from a row's
// start, and a field near the span's end is loaded 16 bytes at a time: KLINE_ROW_SPAN + 16 must be readable).
enum { KLINE_ROW_SPAN = 192 };

// What a run of kline rows must have: times of `time_digits` digits; when `interval_units` (one
// interval in the file's time unit) is not 0, the first row opening at `next_open`, each next row
// one interval later, and each closing one unit before the next interval.
typedef struct {
    int32_t time_digits, as_double;
    int64_t interval_units, next_open;
} kline_run;

// Where a run's rows are written, row i at index i: open time (in the file's unit), trade count,
// and the 8 decimals (open, high, low, close, volume, quote volume, taker base, taker quote) as
// doubles when `as_double`, else floats.
typedef struct {
    int64_t *open_time, *trades;
    void *decimals[8];
} kline_columns;

// Parses up to `max_rows` consecutive rows from `p` that have the common shape and continue the
// run, while a whole span lies before `end`: a trade count of 1-16 digits, decimals of 1-7 integer
// digits and exactly 8 decimals, `ignore` = 0, then LF or CRLF within the span; low at most open and
// close, both at most high, low above 0. Returns the rows written, and in `consumed` the bytes they
// took. It stops at the first row of any other shape, one that breaks the run, one whose prices
// are not sane, and one with a float too near a rounding tie: the caller's careful path decides those.
int kline_rows_parse(const uint8_t *p, const uint8_t *end, int max_rows, const kline_run *run,
                     const kline_columns *out, long *consumed);

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
