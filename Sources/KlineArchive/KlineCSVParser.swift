#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CRowKernels
import Columnar

/// Whether this CPU runs the row kernel (checked once).
let rowKernelAvailable = row_kernels_supported() != 0

/// Parses Binance kline CSV lines straight into columns and validates them row by row.
/// One instance per archive; lines come from `KlineArchiveDecoder`'s inflate buffer.
final class KlineCSVParser<F: KlineFloat> {
    let archive: String
    let columns: [KlineColumn]
    let intervalSeconds: Int64?
    let period: ArchivePeriod?
    private let periodStart: Int64, periodEnd: Int64  // cached: computing them costs a calendar conversion

    // Which columns to keep (the rest is parsed for validation only).
    private let keepOpen, keepHigh, keepLow, keepClose, keepVolume: Bool
    private let keepQuote, keepTrades, keepTakerBase, keepTakerQuote: Bool

    // Rows of the current batch; unkept columns stay at capacity 1 and are never written.
    private var rowCount = 0
    private var capacity: Int
    private var epochs: ColumnBuffer<Int64>
    private var open, high, low, close, volume, quote, takerBase, takerQuote: ColumnBuffer<F>
    private var trades: ColumnBuffer<Int64>

    // Time unit, fixed by the first data row.
    private(set) var unitDigits = 0
    private var unitDivisor: Int64 = 1
    private var intervalUnits: Int64 = 0  // interval in the file's unit; 0 when not fixed (1mo)
    private let intervalStep: Int64  // intervalSeconds, 0 when not fixed: the hot path's non-optional copy
    // The open time that would continue the grid from the previous row, and its epoch: such a row
    // needs no division to convert or to check (.min: not predicted).
    private var nextOpenTime: Int64 = .min
    private var nextEpoch: Int64 = 0

    private(set) var line = 0
    private(set) var header = false
    private(set) var rowsInFile = 0
    private var pendingBlankLine = 0
    private(set) var firstOpenTime: Int64?
    private(set) var lastOpenTime: Int64?
    private var maxEpoch = Int64.min
    private(set) var duplicates = 0
    private(set) var outOfOrder = 0
    var log = AnomalyLog()
    private(set) var slots: SlotSet
    // The AVX2 row kernel (CRowKernels) when asked for and the CPU has it. It writes runs of up to
    // `kernelRunRows` rows straight into the columns; an unkept column's values go to `scratch`.
    let rowKernel: Bool
    private(set) var kernelRows = 0
    private let kernelRunRows = 1024
    /// The bytes a row needs after its start for the kernel to take it.
    static var kernelSpan: Int { Int(KLINE_ROW_SPAN) }
    private let scratch: UnsafeMutableRawPointer

    init(archive: String, columns: [KlineColumn], intervalSeconds: Int64?, period: ArchivePeriod?, reserve: Int,
         rowKernel: Bool = true) {
        self.archive = archive
        self.rowKernel = rowKernel && rowKernelAvailable
        self.columns = columns
        self.intervalSeconds = intervalSeconds
        self.intervalStep = intervalSeconds ?? 0
        self.period = period
        periodStart = period?.start ?? .min
        periodEnd = period?.end ?? .max
        let set = Set(columns)
        keepOpen = set.contains(.open); keepHigh = set.contains(.high); keepLow = set.contains(.low)
        keepClose = set.contains(.close); keepVolume = set.contains(.volume); keepQuote = set.contains(.quoteVolume)
        keepTrades = set.contains(.trades); keepTakerBase = set.contains(.takerBuyBaseVolume)
        keepTakerQuote = set.contains(.takerBuyQuoteVolume)
        let step = intervalSeconds ?? 86400
        if let period {
            slots = SlotSet(anchor: period.start, step: step, slotCount: Int((period.end - period.start + step - 1) / step))
        } else {
            slots = SlotSet(anchor: 0, step: step, slotCount: 0)  // anchored at the first row
        }
        scratch = .allocate(byteCount: kernelRunRows * 8, alignment: 8)
        let capacity = max(1, reserve)
        self.capacity = capacity
        func buffer(_ keep: Bool) -> ColumnBuffer<F> { ColumnBuffer(capacity: keep ? capacity : 1) }
        epochs = ColumnBuffer(capacity: capacity)
        trades = ColumnBuffer(capacity: keepTrades ? capacity : 1)
        open = buffer(keepOpen); high = buffer(keepHigh); low = buffer(keepLow); close = buffer(keepClose)
        volume = buffer(keepVolume); quote = buffer(keepQuote)
        takerBase = buffer(keepTakerBase); takerQuote = buffer(keepTakerQuote)
    }

    deinit {
        for b in [open, high, low, close, volume, quote, takerBase, takerQuote] { b.free() }
        epochs.free()
        trades.free()
        scratch.deallocate()
    }

    private func growAll() {
        let n = rowCount + 1
        epochs.grow(minimum: n, keeping: rowCount)
        if keepOpen { open.grow(minimum: n, keeping: rowCount) }
        if keepHigh { high.grow(minimum: n, keeping: rowCount) }
        if keepLow { low.grow(minimum: n, keeping: rowCount) }
        if keepClose { close.grow(minimum: n, keeping: rowCount) }
        if keepVolume { volume.grow(minimum: n, keeping: rowCount) }
        if keepQuote { quote.grow(minimum: n, keeping: rowCount) }
        if keepTrades { trades.grow(minimum: n, keeping: rowCount) }
        if keepTakerBase { takerBase.grow(minimum: n, keeping: rowCount) }
        if keepTakerQuote { takerQuote.grow(minimum: n, keeping: rowCount) }
        capacity = epochs.capacity
    }

    var bufferedRows: Int { rowCount }

    /// Hands out the rows parsed so far as a batch (copies) and starts the next batch.
    func takeBatch() -> KlineBatch {
        let n = rowCount
        let cols: [(column: KlineColumn, values: ColumnValues)] = columns.map { c in
            switch c {
            case .open: return (c, F.column(open.array(n)))
            case .high: return (c, F.column(high.array(n)))
            case .low: return (c, F.column(low.array(n)))
            case .close: return (c, F.column(close.array(n)))
            case .volume: return (c, F.column(volume.array(n)))
            case .quoteVolume: return (c, F.column(quote.array(n)))
            case .trades: return (c, .int64(trades.array(n)))
            case .takerBuyBaseVolume: return (c, F.column(takerBase.array(n)))
            case .takerBuyQuoteVolume: return (c, F.column(takerQuote.array(n)))
            }
        }
        rowCount = 0
        return KlineBatch(epochs: epochs.array(n), columns: cols)
    }

    var timeUnit: String? { unitDigits == 13 ? "ms" : unitDigits == 16 ? "us" : nil }

    // MARK: - Lines

    /// Parses one line `[s, e)` without its line break.
    @inline(__always)
    func parseLine(_ s: UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) throws {
        line += 1
        if s == e {
            if pendingBlankLine == 0 { pendingBlankLine = line }
            return
        }
        if pendingBlankLine != 0 { throw KlineDecodeError.blankLine(archive: archive, line: pendingBlankLine) }
        if rowsInFile == 0 && !header, s.pointee &- 48 > 9 {
            try parseFirstNonNumericLine(s, e)
            return
        }
        try parseRow(s, e)
    }

    /// The first line does not start with a digit: a header, or not a kline file at all.
    private func parseFirstNonNumericLine(_ s: UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) throws {
        let text = String(decoding: UnsafeBufferPointer(start: s, count: min(e - s, 300)), as: UTF8.self)
        let names = text.split(separator: ",", omittingEmptySubsequences: false).map {
            String($0.filter { $0 != " " && $0 != "\"" }).lowercased()
        }
        if line == 1, names.count == 12, names.first == "open_time" {
            header = true
            return
        }
        if line == 1, names.count != 12 {
            throw KlineDecodeError.notKline(archive: archive, reason: "line 1 has \(names.count) columns (\(text.prefix(120))); kline files have 12")
        }
        throw KlineDecodeError.notKline(archive: archive, reason: "line \(line) is neither a kline header nor a kline row: \(text.prefix(120))")
    }

    /// Parses, from `start`, complete lines of the common shape (numbers Binance writes, the file's
    /// time unit, `ignore` = 0, LF or CRLF) until `rowLimit` rows are buffered; returns the start of
    /// the first line it left, for `parseLine`. This skips a separate search for each line's end:
    /// the fields' own separator checks bound them, and `end` bounds every byte that counts.
    /// Where the row kernel runs, it takes each row with a full span of bytes after it (all but the
    /// last rows of a buffer) and Binance's 8-decimal shape; the Swift fields below take the rest.
    func parseCommonRows(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, rowLimit: Int) -> UnsafePointer<UInt8> {
        guard unitDigits != 0, pendingBlankLine == 0 else { return start }  // the first row takes the careful path
        var p = start
        let kernelDigits = Int32(unitDigits)
        while rowCount < rowLimit {
            if rowKernel, end - p >= Self.kernelSpan {
                if rowCount == capacity { growAll() }
                var run = kline_run(time_digits: kernelDigits, as_double: F.self == Double.self ? 1 : 0,
                                    interval_units: intervalUnits, next_open: nextOpenTime)
                var out = kernelColumns(at: rowCount)
                var consumed = 0
                let n = Int(kline_rows_parse(p, end, Int32(min(min(rowLimit, capacity) - rowCount, kernelRunRows)), &run, &out, &consumed))
                if n > 0 {
                    addKernelRun(count: n)
                    p += consumed
                    continue
                }
            }
            var q = p
            guard let openTime = quickIntField(&q, end), openTime.digits == unitDigits,
                  let o = quickFloatField(&q, end), let h = quickFloatField(&q, end),
                  let l = quickFloatField(&q, end), let c = quickFloatField(&q, end),
                  let v = quickFloatField(&q, end),
                  let closeTime = quickIntField(&q, end), closeTime.digits == unitDigits,
                  let qv = quickFloatField(&q, end), let count = quickIntField(&q, end),
                  let tb = quickFloatField(&q, end), let tq = quickFloatField(&q, end),
                  q + 1 < end, q.pointee == UInt8(ascii: "0") else { return p }
            if q[1] == 0x0A {
                p = q + 2
            } else if q[1] == 0x0D && q + 2 < end && q[2] == 0x0A {
                p = q + 3
            } else {
                return p
            }
            line += 1
            addRow(openTime.value, closeTime.value, count.value, o, h, l, c, v, qv, tb, tq)
        }
        return p
    }

    @inline(__always)
    private func parseRow(_ s: UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) throws {
        var p = s
        let openTime = try intField(&p, e, s, 0)
        let o = try floatField(&p, e, s, 1)
        let h = try floatField(&p, e, s, 2)
        let l = try floatField(&p, e, s, 3)
        let c = try floatField(&p, e, s, 4)
        let v = try floatField(&p, e, s, 5)
        let closeTime = try intField(&p, e, s, 6)
        let qv = try floatField(&p, e, s, 7)
        let count = try intField(&p, e, s, 8)
        let tb = try floatField(&p, e, s, 9)
        let tq = try floatField(&p, e, s, 10)
        // Field 12 (`ignore`) is not read, but there must be no 13th.
        if memchr(p, Int32(UInt8(ascii: ",")), e - p) != nil { throw rowError(s, e, column: 11) }
        try checkTimeUnit(openTime.digits, column: 0)
        if closeTime.digits != unitDigits { try checkTimeUnit(closeTime.digits, column: 6) }
        addRow(openTime.value, closeTime.value, count.value, o, h, l, c, v, qv, tb, tq)
    }

    /// The kernel's columns from row `i` on: the kept ones' buffers, `scratch` for the others.
    private func kernelColumns(at i: Int) -> kline_columns {
        func at(_ buffer: ColumnBuffer<F>, _ keep: Bool) -> UnsafeMutableRawPointer? { keep ? UnsafeMutableRawPointer(buffer.base + i) : scratch }
        return kline_columns(open_time: epochs.base + i, trades: keepTrades ? trades.base + i : scratch.assumingMemoryBound(to: Int64.self),
                             decimals: (at(open, keepOpen), at(high, keepHigh), at(low, keepLow), at(close, keepClose),
                                        at(volume, keepVolume), at(quote, keepQuote), at(takerBase, keepTakerBase), at(takerQuote, keepTakerQuote)))
    }

    /// Takes the `n` rows the kernel wrote from `rowCount` on: their open times (in the file's
    /// unit) become epochs and are tracked. The kernel has checked their shape, close times and
    /// prices, and, with an interval, that they continue the grid from `nextOpenTime` one interval
    /// apart. A run in the period, after every earlier row and in empty slots is then taken whole;
    /// any other goes row by row through the same rules as a single row.
    private func addKernelRun(count n: Int) {
        let times = epochs.base + rowCount
        kernelRows += n
        rowsInFile += n
        let first = nextEpoch, last = first &+ Int64(n - 1) &* intervalStep
        if intervalUnits != 0, firstOpenTime != nil, first > maxEpoch, first >= periodStart, last < periodEnd,
           slots.insertRun(first, count: n) {
            for k in 0..<n { times[k] = first &+ Int64(k) &* intervalStep }
            line += n
            nextOpenTime = nextOpenTime &+ Int64(n) &* intervalUnits
            nextEpoch = last &+ intervalStep
            lastOpenTime = last
            maxEpoch = last
        } else {
            for k in 0..<n {
                line += 1
                times[k] = gridEpoch(times[k])
                trackTime(times[k])
            }
        }
        rowCount += n
    }

    /// The epoch of an open time (in the file's unit), following the interval grid: a row one
    /// interval after an on-grid row needs no division.
    @inline(__always)
    private func gridEpoch(_ openTime: Int64) -> Int64 {
        let epoch: Int64
        if openTime == nextOpenTime {  // one interval after an on-grid row: on the grid too
            epoch = nextEpoch
            nextOpenTime = openTime &+ intervalUnits
            nextEpoch = epoch &+ intervalStep
        } else {
            epoch = floorDiv(openTime, unitDivisor)
            if intervalUnits != 0 {
                if openTime % intervalUnits != 0 {
                    log.add(.offGrid, line: line, openTime: epoch, "open_time \(openTime) is not on the \(intervalStep)s grid")
                    nextOpenTime = .min
                } else {
                    nextOpenTime = openTime &+ intervalUnits
                    nextEpoch = epoch &+ intervalStep
                }
            }
        }
        return epoch
    }

    /// Validates a parsed row (times in the file's unit) and appends it to the batch.
    @inline(__always)
    private func addRow(_ openTime: Int64, _ closeTime: Int64, _ tradeCount: Int64,
                        _ o: F, _ h: F, _ l: F, _ c: F, _ v: F, _ qv: F, _ tb: F, _ tq: F) {
        rowsInFile += 1
        let epoch = gridEpoch(openTime)
        if intervalUnits != 0 && closeTime != openTime &+ intervalUnits &- 1 {
            log.add(.closeTimeMismatch, line: line, openTime: epoch,
                    "close_time \(closeTime), expected \(openTime + intervalUnits - 1)")
        }
        if !(l <= o && l <= c && o <= h && c <= h && l > 0 && h < F.infinity
            && v >= 0 && qv >= 0 && tb >= 0 && tq >= 0
            && v < F.infinity && qv < F.infinity && tb < F.infinity && tq < F.infinity) {
            classifyValueAnomaly(epoch, o, h, l, c, [v, qv, tb, tq])
        }
        trackTime(epoch)

        if rowCount == capacity { growAll() }
        let i = rowCount
        epochs.base[i] = epoch
        if keepOpen { open.base[i] = o }
        if keepHigh { high.base[i] = h }
        if keepLow { low.base[i] = l }
        if keepClose { close.base[i] = c }
        if keepVolume { volume.base[i] = v }
        if keepQuote { quote.base[i] = qv }
        if keepTrades { trades.base[i] = tradeCount }
        if keepTakerBase { takerBase.base[i] = tb }
        if keepTakerQuote { takerQuote.base[i] = tq }
        rowCount = i + 1
    }

    @inline(__always)
    private func trackTime(_ epoch: Int64) {
        if firstOpenTime == nil {
            firstOpenTime = epoch
            if period == nil {
                // No period from the name: anchor the slots at the first row, one month of them.
                let step = slots.step
                slots = SlotSet(anchor: floorDiv(epoch, step) * step, step: step, slotCount: Int(31 * 86400 / step))
            }
        }
        lastOpenTime = epoch
        if epoch < periodStart || epoch >= periodEnd {
            log.add(.outsidePeriod, line: line, openTime: epoch, "open time \(UTCCalendar.iso8601(epoch)) is outside \(period!)")
        }
        let isNew = slots.insert(epoch)
        if epoch <= maxEpoch {
            if !isNew {
                duplicates += 1
                log.add(.duplicateOpenTime, line: line, openTime: epoch, "open time \(UTCCalendar.iso8601(epoch)) seen before; the last row is kept")
            } else {
                outOfOrder += 1
                log.add(.outOfOrder, line: line, openTime: epoch, "open time \(UTCCalendar.iso8601(epoch)) comes after a later one; rows are sorted")
            }
        } else {
            maxEpoch = epoch
            if !isNew {  // a later row in an already filled slot (off-grid rows share slots)
                duplicates += 1
                log.add(.duplicateOpenTime, line: line, openTime: epoch, "open time \(UTCCalendar.iso8601(epoch)) falls in a slot already filled")
            }
        }
    }

    @inline(__always)
    private func checkTimeUnit(_ digits: Int, column: Int) throws {
        if digits == unitDigits { return }
        let name = KlineDecodeError.csvColumnNames[column]
        guard digits == 13 || digits == 16 else {
            throw KlineDecodeError.timeUnit(archive: archive, line: line, column: column + 1, name: name, digits: digits)
        }
        if unitDigits == 0 {
            unitDigits = digits
            unitDivisor = digits == 13 ? 1000 : 1_000_000
            intervalUnits = (intervalSeconds ?? 0) * unitDivisor
            return
        }
        throw KlineDecodeError.mixedTimeUnits(archive: archive, line: line, column: column + 1, name: name,
                                              expected: timeUnit ?? "?", found: digits == 13 ? "ms" : "us")
    }

    // MARK: - Fields

    /// An unsigned integer field followed by a comma: the value and its digit count, or nil (and
    /// `p` unmoved) when it is not 1-16 plain digits. Up to 16 digits take two 8-byte loads (the
    /// buffer is padded, and only bytes before `e` count).
    @inline(__always)
    private func quickIntField(_ p: inout UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) -> (value: Int64, digits: Int)? {
        let start = p
        var v: Int64 = 0
        var q = start
        if let eight = DecimalParser.eightDigits(q) {  // timestamps: 13 or 16 digits
            v = Int64(eight)
            q += 8
        }
        let (more, tail) = DecimalParser.leadingDigits(q)  // the rest, or a short count
        q += tail
        let n = q - start
        guard n > 0, n <= 16, q < e, q.pointee == UInt8(ascii: ",") else { return nil }
        p = q + 1
        return (tail == 8 ? v &* 100_000_000 &+ Int64(more) : v &* powerOfTen(tail) &+ Int64(more), n)
    }

    @inline(__always)
    private func intField(_ p: inout UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>, _ lineStart: UnsafePointer<UInt8>, _ column: Int) throws -> (value: Int64, digits: Int) {
        if let field = quickIntField(&p, e) { return field }
        return try slowIntField(&p, e, lineStart, column)
    }

    @inline(__always)
    private func powerOfTen(_ k: Int) -> Int64 {
        switch k {
        case 0: return 1
        case 1: return 10
        case 2: return 100
        case 3: return 1000
        case 4: return 10000
        case 5: return 100_000
        case 6: return 1_000_000
        default: return 10_000_000
        }
    }

    /// Integers of 17 or 18 digits, and errors.
    @inline(never)
    private func slowIntField(_ p: inout UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>, _ lineStart: UnsafePointer<UInt8>, _ column: Int) throws -> (value: Int64, digits: Int) {
        let (v, q) = DecimalParser.digitRun(p, e)
        let n = q - p
        guard n > 0, n <= 18, q < e, q.pointee == UInt8(ascii: ",") else { throw rowError(lineStart, e, column: column) }
        p = q + 1
        return (Int64(v), n)
    }

    /// A decimal field followed by a comma, converted to the correctly rounded F; nil (and `p`
    /// unmoved) for anything but plain `digits[.digits]` with at most 19 digits and a mantissa
    /// < 2^53 that converts exactly. Binance's own shape, 1-7 integer digits and exactly 8
    /// decimals, takes two 8-byte loads inline. (The buffer has padding, so loads may run past
    /// `e`; only bytes before `e` are used.)
    @inline(__always)
    private func quickFloatField(_ p: inout UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) -> F? {
        let start = p
        let (intValue, intDigits) = DecimalParser.leadingDigits(start)
        let comma = start + intDigits + 9
        if intDigits > 0, intDigits < 8, comma < e, (start + intDigits).pointee == UInt8(ascii: "."),
           comma.pointee == UInt8(ascii: ","), let eight = DecimalParser.eightDigits(start + intDigits + 1),
           let v = F.exactEightDecimals(intValue &* 100_000_000 &+ eight) {
            p = comma + 1
            return v
        }
        return plainFloatField(&p, e)
    }

    /// Other plain decimals. Kept out of line so that the 8-decimal path above stays small enough
    /// to inline.
    @inline(never)
    private func plainFloatField(_ p: inout UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) -> F? {
        var s = DecimalParser.Scanned()
        if let stop = DecimalParser.scanPlain(p, e, into: &s), stop < e, stop.pointee == UInt8(ascii: ","),
           s.mantissa < 1 << 53, let v = F.exact(s.mantissa, s.scale) {
            p = stop + 1
            return v
        }
        return nil
    }

    /// Any decimal field (signs, exponents, long mantissas, float32 halfway cases), or an error.
    @inline(__always)
    private func floatField(_ p: inout UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>, _ lineStart: UnsafePointer<UInt8>, _ column: Int) throws -> F {
        if let v = quickFloatField(&p, e) { return v }
        return try slowFloatField(&p, e, lineStart, column)
    }

    @inline(never)
    private func slowFloatField(_ p: inout UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>, _ lineStart: UnsafePointer<UInt8>, _ column: Int) throws -> F {
        let start = p
        var s = DecimalParser.Scanned()
        guard let stop = DecimalParser.scanPrefix(start, e, into: &s), stop < e, stop.pointee == UInt8(ascii: ","),
              stop - start <= 64 else { throw rowError(lineStart, e, column: column) }
        p = stop + 1
        return F.convert(s, start, stop)
    }
}
