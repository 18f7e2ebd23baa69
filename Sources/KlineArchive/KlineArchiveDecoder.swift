#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Columnar

/// How to decode an archive.
public struct KlineDecodeOptions: Sendable {
    /// The interval; nil takes it from the file name.
    public var interval: KlineInterval?
    /// The period the archive covers; nil takes it from the file name (or leaves it unknown).
    public var period: ArchivePeriod?
    public var columns: [KlineColumn]
    public var floatType: FloatType
    public var policy: ValidationPolicy
    public var inflater: InflateEngine
    /// Common rows through the AVX2 row kernel where the CPU has it; false keeps them on the
    /// portable Swift path (the same rows and errors; the benchmark's and the tests' baseline).
    public var rowKernel: Bool

    public init(interval: KlineInterval? = nil, period: ArchivePeriod? = nil, columns: [KlineColumn] = KlineColumn.ohlcv,
                floatType: FloatType = .float32, policy: ValidationPolicy = .report, inflater: InflateEngine = .isal,
                rowKernel: Bool = true) {
        self.interval = interval
        self.period = period
        self.columns = columns
        self.floatType = floatType
        self.policy = policy
        self.inflater = inflater
        self.rowKernel = rowKernel
    }
}

/// Decodes a Binance kline archive (zip with one CSV member) into columns and a validation report.
///
/// The member is inflated through a fixed 1 MiB buffer and parsed line by line; `stream` hands out
/// batches of at most `chunkRows` rows, so memory stays bounded whatever the archive's size.
public enum KlineArchiveDecoder {
    /// Longest accepted CSV line (Binance lines are about 140-170 bytes).
    public static let maxLineLength = 1024
    /// Bytes per row allowed when bounding the inflated size (Binance rows use under 200).
    static let maxBytesPerRow: UInt64 = 512
    static let bufferSize = 1 << 20

    /// Decodes the whole archive: rows sorted by open time, duplicates resolved (last row wins).
    public static func decode(path: String, options: KlineDecodeOptions = .init()) throws -> (batch: KlineBatch, report: KlineReport) {
        var all: KlineBatch?
        let report = try stream(path: path, options: options, chunkRows: .max) { chunk in
            if all == nil { all = chunk } else { all!.append(chunk) }
        }
        var batch = all ?? KlineBatch(epochs: [], columns: options.columns.map { ($0, emptyColumn($0, options.floatType)) })
        if report.duplicates > 0 || report.outOfOrder > 0 { batch = batch.sortedKeepingLast() }
        return (batch, report)
    }

    /// Decodes the archive in file order, handing out batches of at most `chunkRows` rows. Rows that
    /// repeat an open time are all handed out (a MarketStore write keeps the last); the report counts
    /// them. With the `strict` policy an anomaly throws at the end, after the batches were handed
    /// out: callers that must not write anything then decode before writing.
    @discardableResult
    public static func stream(path: String, options: KlineDecodeOptions = .init(), chunkRows: Int,
                              _ onBatch: (KlineBatch) throws -> Void) throws -> KlineReport {
        let name = KlineArchiveName(fileName: path)
        guard let interval = options.interval ?? name?.interval else {
            if let dataType = KlineArchiveName.nonKlineDataType(fileName: path) {
                throw KlineDecodeError.notKline(archive: path, reason: "the file name says \(dataType) data, not klines")
            }
            throw KlineDecodeError.unknownInterval(archive: path)
        }
        let period = options.period ?? (name?.interval == interval ? name?.period : nil)
        let slots = expectedSlots(interval: interval, period: period)
        let reader: ZipEntryReader
        do {
            reader = try ZipEntryReader(path: path, maxInflatedSize: max(1 << 20, UInt64(slots + 1) * maxBytesPerRow),
                                        engine: options.inflater)
        } catch let e as ZipError {
            throw KlineDecodeError.zip(e)
        }
        var report = KlineReport(archive: path, member: reader.member.name, symbol: name?.symbol, interval: interval.name,
                                 period: period?.description, periodStart: period?.start, periodEnd: period?.end)
        try parse(archive: path, options: options, interval: interval, period: period, reserve: min(chunkRows, slots + 16),
                  chunkRows: chunkRows, bufferSize: bufferSize, read: reader.read, into: &report, onBatch)
        report.csvBytes = reader.bytesProduced
        if options.policy == .strict, !report.anomalies.isEmpty {
            throw KlineDecodeError.strict(archive: path, report: report)
        }
        return report
    }

    /// Decodes CSV text already in memory (REST klines rendered as CSV lines) with the same parser
    /// as the archives: exact numbers, time unit detection, validation. `source` names the input
    /// in errors and in the report.
    public static func decodeCSV(_ bytes: [UInt8], source: String, options: KlineDecodeOptions) throws -> (batch: KlineBatch, report: KlineReport) {
        guard let interval = options.interval else { throw KlineDecodeError.unknownInterval(archive: source) }
        var report = KlineReport(archive: source, member: source, symbol: nil, interval: interval.name, period: options.period?.description,
                                 periodStart: options.period?.start, periodEnd: options.period?.end)
        var all: KlineBatch?
        var offset = 0
        let read: (UnsafeMutablePointer<UInt8>, Int) throws -> Int = { into, capacity in
            let n = min(capacity, bytes.count - offset)
            bytes.withUnsafeBufferPointer { _ = memcpy(into, $0.baseAddress! + offset, n) }
            offset += n
            return n
        }
        func keep(_ chunk: KlineBatch) { if all == nil { all = chunk } else { all!.append(chunk) } }
        try parse(archive: source, options: options, interval: interval, period: options.period, reserve: max(16, bytes.count / 100),
                  chunkRows: .max, bufferSize: max(4096, min(bytes.count + 1, bufferSize)), read: read, into: &report, keep)
        report.csvBytes = UInt64(bytes.count)
        var batch = all ?? KlineBatch(epochs: [], columns: options.columns.map { ($0, emptyColumn($0, options.floatType)) })
        if report.duplicates > 0 || report.outOfOrder > 0 { batch = batch.sortedKeepingLast() }
        if options.policy == .strict, !report.anomalies.isEmpty { throw KlineDecodeError.strict(archive: source, report: report) }
        return (batch, report)
    }

    /// A parser of the options' float width over `read`'s bytes, its findings added to `report`.
    private static func parse(archive: String, options: KlineDecodeOptions, interval: KlineInterval, period: ArchivePeriod?, reserve: Int,
                              chunkRows: Int, bufferSize: Int, read: (UnsafeMutablePointer<UInt8>, Int) throws -> Int,
                              into report: inout KlineReport, _ onBatch: (KlineBatch) throws -> Void) throws {
        func parse<F: KlineFloat>(_: F.Type) throws {
            let parser = KlineCSVParser<F>(archive: archive, columns: options.columns, intervalSeconds: interval.seconds, period: period,
                                           reserve: reserve, rowKernel: options.rowKernel)
            try run(archive: archive, parser, chunkRows: chunkRows, bufferSize: bufferSize, read: read, onBatch)
            parser.finishReport(into: &report)
        }
        switch options.floatType {
        case .float32: try parse(Float.self)
        case .float64: try parse(Double.self)
        }
    }

    /// The number of interval slots of the period (a month when unknown), bounding rows and bytes.
    static func expectedSlots(interval: KlineInterval, period: ArchivePeriod?) -> Int {
        let span = period.map { $0.end - $0.start } ?? 31 * 86400
        guard let step = interval.seconds else { return period?.kind == .month ? 1 : 12 }
        return Int((span + step - 1) / step)
    }

    private static func emptyColumn(_ c: KlineColumn, _ t: FloatType) -> ColumnValues {
        c == .trades ? .int64([]) : t == .float32 ? .float32([]) : .float64([])
    }

    /// The inflate-and-parse loop: complete lines are parsed in place (common rows in one sweep,
    /// others one by one); the partial last line is moved to the front of the buffer before the
    /// next inflate.
    /// `read` fills a buffer with the next CSV bytes (0 at the end): the zip reader, or a test's bytes.
    static func run<F>(archive: String, _ parser: KlineCSVParser<F>, chunkRows: Int, bufferSize: Int = bufferSize,
                       read: (UnsafeMutablePointer<UInt8>, Int) throws -> Int,
                       _ onBatch: (KlineBatch) throws -> Void) throws {
        // 64 bytes of padding: the field parser reads 8-byte words that may run past a line's end,
        // the row kernel 16-byte fields up to 16 bytes past its span (which ends before `end`).
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: bufferSize + 64)
        buffer.initialize(repeating: 0, count: bufferSize + 64)
        defer { buffer.deallocate() }
        var filled = 0
        do {
            while true {
                let n = try read(buffer + filled, bufferSize - filled)
                if n == 0 { break }
                filled += n
                var p = UnsafePointer(buffer)
                let end = UnsafePointer(buffer) + filled
                while true {
                    p = parser.parseCommonRows(p, end, rowLimit: chunkRows)
                    if parser.bufferedRows >= chunkRows {
                        try onBatch(parser.takeBatch())
                        continue
                    }
                    // Any other line (the first, a header, odd shapes, errors) goes through parseLine.
                    guard let nl = memchr(p, 0x0A, end - p) else { break }
                    let lineEnd = UnsafePointer(nl.assumingMemoryBound(to: UInt8.self))
                    let contentEnd = lineEnd > p && (lineEnd - 1).pointee == 0x0D ? lineEnd - 1 : lineEnd
                    if contentEnd - p > maxLineLength {
                        throw KlineDecodeError.lineTooLong(archive: archive, line: parser.line + 1, limit: maxLineLength)
                    }
                    try parser.parseLine(p, contentEnd)
                    p = lineEnd + 1
                    if parser.bufferedRows >= chunkRows { try onBatch(parser.takeBatch()) }
                }
                let rest = end - p
                if rest > maxLineLength {
                    throw KlineDecodeError.lineTooLong(archive: archive, line: parser.line + 1, limit: maxLineLength)
                }
                if rest > 0 { memmove(buffer, p, rest) }
                filled = rest
            }
            if filled > 0 {  // last line without a final newline
                let contentEnd = buffer[filled - 1] == 0x0D ? filled - 1 : filled
                try parser.parseLine(buffer, buffer + contentEnd)
            }
        } catch let e as ZipError {
            throw KlineDecodeError.zip(e)
        }
        if parser.bufferedRows > 0 { try onBatch(parser.takeBatch()) }
    }
}
