#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CRowKernels
import Columnar
import KlineArchive

/// Whether this CPU runs the trade row kernel (checked once).
let rowKernelAvailable = row_kernels_supported() != 0

/// Why a tick archive does not decode.
public enum TradeDecodeError: Error, CustomStringConvertible, Equatable {
    case notTrades(archive: String, reason: String)
    case header(archive: String, found: String, expected: String)
    case row(archive: String, line: Int, reason: String)
    case zip(ZipError)

    public var description: String {
        switch self {
        case let .notTrades(archive, reason): return "\(archive): \(reason)"
        case let .header(archive, found, expected): return "\(archive): the header is \"\(found)\", not the expected \"\(expected)\""
        case let .row(archive, line, reason): return "\(archive): line \(line): \(reason)"
        case let .zip(e): return "\(e)"
        }
    }
}

/// A tick CSV parsed as it streams in: bytes are fed in pieces of any size (a line may span
/// pieces), rows go into a batch handed to `onChunk` every `chunkRows` rows, so memory holds one
/// chunk and one partial line whatever the file's size. IDs are checked for continuity as rows
/// pass (the report's holes); every number goes through the exact decimal parser. Rows of
/// Binance's common shape go through the AVX2 row kernel (CRowKernels) where the CPU has it, the
/// rest through the Swift fields below; both give the same values, and the rows' checks are the same.
public final class TradeCSVParser<F: KlineFloat> {
    public let layout: TradeLayout
    public private(set) var report: TradeReport
    private let source: String
    private let chunkRows: Int
    private let onChunk: (TradeBatch<F>) throws -> Void
    private let periodMicros: Range<Int64>
    private var batch: TradeBatch<F>
    private var carry: [UInt8] = []
    private var line = 0
    private var previous: (id: Int64, lastTrade: Int64, micros: Int64)?
    /// The index of a row's last field (it ends at the line's end, the others at a comma).
    private let lastField: Int
    // The row kernel when asked for and the CPU has it; the row it fills, that row's decimals as F,
    // and the digits of a time in the file's unit (0 until the first row fixes it).
    public let rowKernel: Bool
    public private(set) var kernelRows = 0
    private let kernelRow = UnsafeMutablePointer<trade_row>.allocate(capacity: 1)
    private let kernelDecimals: UnsafePointer<F>
    private let kernelAggregate: Int32, kernelBestMatch: Int32, kernelAsDouble: Int32
    private var kernelTimeDigits: Int32 = 0

    /// Longest line accepted (a real row is under 120 bytes): a file without newlines is refused,
    /// not buffered.
    public static var maxLineBytes: Int { 4096 }

    /// The bytes the row kernel reads from a row's start: it runs on rows with this many after them.
    public static var kernelReach: Int { Int(TRADE_ROW_SPAN) + 16 }

    public init(layout: TradeLayout, source: String, member: String, name: TradeArchiveName, chunkRows: Int = 100_000,
                rowKernel: Bool = true, onChunk: @escaping (TradeBatch<F>) throws -> Void) {
        self.layout = layout
        self.source = source
        self.chunkRows = max(1, chunkRows)
        self.onChunk = onChunk
        lastField = layout.header.count - 1
        periodMicros = name.period.start * 1_000_000..<name.period.end * 1_000_000
        batch = TradeBatch(reserving: min(self.chunkRows, 1 << 17), layout)
        report = TradeReport(archive: source, member: member, layout: layout, symbol: name.symbol, period: name.period.description)
        self.rowKernel = rowKernel && rowKernelAvailable
        kernelAggregate = layout.dataset == .aggTrades ? 1 : 0
        kernelBestMatch = layout.hasBestMatch ? 1 : 0
        kernelAsDouble = F.self == Double.self ? 1 : 0
        let decimals = MemoryLayout<trade_row>.offset(of: kernelAsDouble == 1 ? \.doubles : \.floats)!
        kernelDecimals = UnsafeRawPointer(kernelRow).advanced(by: decimals).assumingMemoryBound(to: F.self)
    }

    deinit { kernelRow.deallocate() }

    /// The next bytes of the member, however they are cut.
    public func feed(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), !bytes.isEmpty else { return }
        var start = base
        let end = base + bytes.count
        if !carry.isEmpty {
            guard let newline = Self.newline(start, end) else { return try keep(start, end) }
            carry.append(contentsOf: UnsafeBufferPointer(start: start, count: newline - start))
            try carry.withUnsafeBufferPointer { try parseLine($0.baseAddress!, $0.baseAddress! + $0.count) }
            carry.removeAll(keepingCapacity: true)
            start = newline + 1
        }
        while start < end {
            // The kernel reads up to `kernelReach` bytes from a row's start: all inside `bytes`.
            if rowKernel, kernelTimeDigits != 0, end - start >= Self.kernelReach, let length = try kernelRowAt(start) {
                start += length
                continue
            }
            guard let newline = Self.newline(start, end) else { break }
            try parseLine(start, newline)
            start = newline + 1
        }
        try keep(start, end)
    }

    /// The row at `start` through the kernel: its length, or nil when the kernel leaves it to
    /// `parseLine` (another shape, a float rounding tie, an aggregate whose trades run backwards).
    @inline(__always)
    private func kernelRowAt(_ start: UnsafePointer<UInt8>) throws -> Int? {
        let length = trade_row_parse(start, kernelAggregate, kernelBestMatch, kernelTimeDigits, kernelAsDouble, kernelRow)
        guard length > 0 else { return nil }
        let r = kernelRow, v = kernelDecimals
        guard r.pointee.first <= r.pointee.last else { return nil }
        line += 1
        kernelRows += 1
        let time = r.pointee.time
        try append(id: r.pointee.id, price: v[0], quantity: v[1], amount: kernelAggregate == 0 ? v[2] : nil,
                   firstTrade: r.pointee.first, lastTrade: r.pointee.last, micros: kernelTimeDigits == 13 ? time * 1000 : time,
                   buyerMaker: r.pointee.buyer_maker != 0, bestMatch: kernelBestMatch != 0 ? r.pointee.best_match != 0 : nil)
        return Int(length)
    }

    /// The end of the member: the last line (without its newline), the last chunk, the report.
    public func finish() throws -> TradeReport {
        if !carry.isEmpty {
            try carry.withUnsafeBufferPointer { try parseLine($0.baseAddress!, $0.baseAddress! + $0.count) }
            carry.removeAll()
        }
        if batch.count > 0 { try onChunk(batch) }
        batch = TradeBatch()
        return report
    }

    private static func newline(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> UnsafePointer<UInt8>? {
        memchr(start, 0x0A, end - start).map { UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) }
    }

    private func keep(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) throws {
        guard start < end else { return }
        carry.append(contentsOf: UnsafeBufferPointer(start: start, count: end - start))
        if carry.count > Self.maxLineBytes { throw fail(line + 1, "longer than \(Self.maxLineBytes) bytes (not a trade row)") }
    }

    private func fail(_ line: Int, _ reason: String) -> TradeDecodeError { .row(archive: source, line: line, reason: reason) }

    // MARK: - Lines

    private func parseLine(_ start: UnsafePointer<UInt8>, _ lineEnd: UnsafePointer<UInt8>) throws {
        line += 1
        var end = lineEnd
        if end > start, end[-1] == 0x0D { end -= 1 }
        guard end > start else { throw fail(line, "an empty line") }
        if line == 1, !(start[0] >= 0x30 && start[0] <= 0x39) { return try checkHeader(start, end) }
        // Fields in order, each on a quick path for Binance's own shapes; anything else goes to
        // the careful path, which finds the field's bounds and names what is wrong.
        var p = start
        let id = try intField(&p, end, 0)
        let price = try decimalField(&p, end, 1)
        let quantity = try decimalField(&p, end, 2)
        var amount: F?, firstTrade: Int64 = 0, lastTrade: Int64 = 0
        if layout.dataset == .trades {
            amount = try decimalField(&p, end, 3)
        } else {
            firstTrade = try intField(&p, end, 3)
            lastTrade = try intField(&p, end, 4)
            guard firstTrade <= lastTrade else { throw fail(line, "\(layout.header[3]) \(firstTrade) is after \(layout.header[4]) \(lastTrade)") }
        }
        let micros = try timeField(&p, end, layout.timeField)
        let buyerMaker = try flagField(&p, end, layout.timeField + 1)
        let bestMatch = layout.hasBestMatch ? try flagField(&p, end, layout.timeField + 2) : nil
        try append(id: id, price: price, quantity: quantity, amount: amount, firstTrade: firstTrade, lastTrade: lastTrade,
                   micros: micros, buyerMaker: buyerMaker, bestMatch: bestMatch)
    }

    /// A parsed row (from either path): checked for continuity, then into the batch.
    @inline(__always)
    private func append(id: Int64, price: F, quantity: F, amount: F?, firstTrade: Int64, lastTrade: Int64, micros: Int64,
                        buyerMaker: Bool, bestMatch: Bool?) throws {
        check(id: id, firstTrade: firstTrade, lastTrade: lastTrade, micros: micros)
        let second = floorDiv(micros, 1_000_000)
        batch.epochs.append(second)
        batch.nanoseconds.append(Int32(micros - second * 1_000_000) * 1000)
        batch.prices.append(price)
        batch.quantities.append(quantity)
        if let amount { batch.amounts.append(amount) } else {
            batch.firstTradeIDs.append(firstTrade)
            batch.lastTradeIDs.append(lastTrade)
        }
        batch.ids.append(id)
        batch.buyerMaker.append(buyerMaker)
        if let bestMatch { batch.bestMatch.append(bestMatch) }
        if batch.count >= chunkRows {
            try onChunk(batch)
            batch = TradeBatch(reserving: min(chunkRows, 1 << 17), layout)
        }
    }

    /// A futures file's header (spot files have none): the layout's names, exactly.
    private func checkHeader(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) throws {
        let found = String(decoding: UnsafeBufferPointer(start: start, count: end - start), as: UTF8.self)
        guard found.split(separator: ",", omittingEmptySubsequences: false).map(String.init) == layout.header else {
            throw TradeDecodeError.header(archive: source, found: found, expected: layout.header.joined(separator: ","))
        }
        report.hasHeader = true
    }

    /// Continuity: each ID follows the one before (a hole is listed with the times around it),
    /// and an aggregate's first trade follows the previous aggregate's last.
    private func check(id: Int64, firstTrade: Int64, lastTrade: Int64, micros: Int64) {
        report.rows += 1
        if !periodMicros.contains(micros) { report.outsidePeriod += 1 }
        let aggregate = layout.dataset == .aggTrades
        if let previous {
            if id > previous.id + 1 {
                report.hole(aggregate ? "agg_trade_id" : "trade_id", previous.id + 1, id - 1, after: previous.micros, before: micros)
            } else if id <= previous.id {
                report.outOfOrder += 1
            }
            if aggregate, firstTrade > previous.lastTrade + 1 {
                report.hole("trade_id", previous.lastTrade + 1, firstTrade - 1, after: previous.micros, before: micros)
            }
            if micros < previous.micros { report.timeBackwards += 1 }
        } else {
            report.firstID = id
            report.firstMicros = micros
            if aggregate { report.firstTradeID = firstTrade }
        }
        // A step back does not move the line of continuity back.
        let ahead = previous.map { id > $0.id } ?? true
        if ahead {
            previous = (id, aggregate ? max(lastTrade, previous?.lastTrade ?? lastTrade) : 0, micros)
            report.lastID = id
            report.lastMicros = micros
            if aggregate { report.lastTradeID = previous?.lastTrade }
        }
    }

    // MARK: - Fields

    /// Whether a field that stopped at `stop` ended where field `field` must: at a comma, or at
    /// the line's end for the last field.
    @inline(__always)
    private func endsField(_ stop: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, _ field: Int) -> Bool {
        field == lastField ? stop == end : stop < end && stop.pointee == 0x2C
    }

    /// Plain digits (1 to 18) ending the field: the value and the digit count; `p` past the field.
    @inline(__always)
    private func quickDigits(_ p: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, _ field: Int) -> (value: Int64, count: Int)? {
        let (v, stop) = DecimalParser.digitRun(p, end)
        let n = stop - p
        guard n > 0, n <= 18, endsField(stop, end, field) else { return nil }
        p = stop + 1
        return (Int64(v), n)
    }

    /// The careful path: field `field`'s bounds from `p` (checking the count); `p` past it.
    @inline(never)
    private func bounds(_ p: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, _ field: Int) throws -> (UnsafePointer<UInt8>, UnsafePointer<UInt8>) {
        guard p <= end else { throw fail(line, "\(field) fields, expected \(layout.fieldCount)") }
        let comma = memchr(p, 0x2C, end - p).map { UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) }
        guard comma != nil || field == lastField else { throw fail(line, "\(field + 1) fields, expected \(layout.fieldCount)") }
        guard comma == nil || field < lastField else { throw fail(line, "more than \(layout.fieldCount) fields") }
        let s = p, e = comma ?? end
        p = e + 1
        return (s, e)
    }

    @inline(__always)
    private func intField(_ p: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, _ field: Int) throws -> Int64 {
        if let v = quickDigits(&p, end, field) { return v.value }
        return try integer(try bounds(&p, end, field), layout.header[field])
    }

    @inline(__always)
    private func decimalField(_ p: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, _ field: Int) throws -> F {
        var s = DecimalParser.Scanned()
        if let stop = DecimalParser.scanPlain(p, end, into: &s), endsField(stop, end, field), s.mantissa < 1 << 53, let v = F.exact(s.mantissa, s.scale) {
            p = stop + 1
            return v
        }
        return try decimal(try bounds(&p, end, field), layout.header[field])
    }

    @inline(__always)
    private func timeField(_ p: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, _ field: Int) throws -> Int64 {
        let start = p
        if let v = quickDigits(&p, end, field) { return try time(v, (start, p - 1), layout.header[field]) }
        let f = try bounds(&p, end, field)
        guard let v = digits(f) else { throw fail(line, "\(layout.header[field]) \"\(text(f))\" is not a time") }
        return try time(v, f, layout.header[field])
    }

    /// `True`/`true` or `False`/`false` ending the field.
    @inline(__always)
    private func flagField(_ p: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, _ field: Int) throws -> Bool {
        let n = end - p
        if n >= 4, p[0] | 0x20 == 0x74, p[1] == 0x72, p[2] == 0x75, p[3] == 0x65, endsField(p + 4, end, field) {
            p += 5
            return true
        }
        if n >= 5, p[0] | 0x20 == 0x66, p[1] == 0x61, p[2] == 0x6C, p[3] == 0x73, p[4] == 0x65, endsField(p + 5, end, field) {
            p += 6
            return false
        }
        return try boolean(try bounds(&p, end, field), layout.header[field])
    }

    private func text(_ f: (UnsafePointer<UInt8>, UnsafePointer<UInt8>)) -> String {
        String(decoding: UnsafeBufferPointer(start: f.0, count: f.1 - f.0), as: UTF8.self)
    }

    /// A non-negative integer of at most 18 digits; also how many digits it has.
    private func digits(_ f: (UnsafePointer<UInt8>, UnsafePointer<UInt8>)) -> (value: Int64, count: Int)? {
        let (v, stop) = DecimalParser.digitRun(f.0, f.1)
        let count = f.1 - f.0
        guard stop == f.1, count > 0, count <= 18 else { return nil }
        return (Int64(v), count)
    }

    private func integer(_ f: (UnsafePointer<UInt8>, UnsafePointer<UInt8>), _ name: String) throws -> Int64 {
        guard let v = digits(f) else { throw fail(line, "\(name) \"\(text(f))\" is not an ID") }
        return v.value
    }

    private func decimal(_ f: (UnsafePointer<UInt8>, UnsafePointer<UInt8>), _ name: String) throws -> F {
        guard f.1 > f.0, let scanned = DecimalParser.scan(f.0, f.1), !scanned.negative else {
            throw fail(line, "\(name) \"\(text(f))\" is not a number")
        }
        return F.convert(scanned, f.0, f.1)
    }

    /// Milliseconds (13 digits in this era) or microseconds (16), as µs; every row of a file in
    /// the unit of its first.
    private func time(_ v: (value: Int64, count: Int), _ f: (UnsafePointer<UInt8>, UnsafePointer<UInt8>), _ name: String) throws -> Int64 {
        let unit: TradeTimeUnit
        switch v.count {
        case 13: unit = .milliseconds
        case 16: unit = .microseconds
        default: throw fail(line, "\(name) \(text(f)) is neither milliseconds (13 digits) nor microseconds (16)")
        }
        if let fileUnit = report.timeUnit, fileUnit != unit {
            throw fail(line, "\(name) \(text(f)) is in \(unit.rawValue) where the rows before are in \(fileUnit.rawValue)")
        }
        report.timeUnit = unit
        kernelTimeDigits = Int32(v.count)
        return unit == .milliseconds ? v.value * 1000 : v.value
    }

    /// `True`/`False` (spot) or `true`/`false` (futures).
    private func boolean(_ f: (UnsafePointer<UInt8>, UnsafePointer<UInt8>), _ name: String) throws -> Bool {
        let p = f.0
        switch f.1 - p {
        case 4 where (p[0] == 0x54 || p[0] == 0x74) && p[1] == 0x72 && p[2] == 0x75 && p[3] == 0x65: return true
        case 5 where (p[0] == 0x46 || p[0] == 0x66) && p[1] == 0x61 && p[2] == 0x6C && p[3] == 0x73 && p[4] == 0x65: return false
        default: throw fail(line, "\(name) \"\(text(f))\" is not true or false")
        }
    }
}
