import Columnar
import KlineArchive

/// The market of a futures archive: COIN-M labels metrics by the start of their 5 minutes all
/// along; USDⓈ-M did by the end until 2026-06-25 00:00 UTC (binance-public-data #491).
public enum FuturesMarket: String, Sendable, Codable {
    case um, cm
}

/// How a metrics archive labels its rows.
public enum MetricsLabel: String, Sendable, Codable {
    /// `create_time` is the start of the 5 minutes (COIN-M always; USDⓈ-M from 2026-06-25 on).
    case periodStart = "period_start"
    /// `create_time` is the end (USDⓈ-M before 2026-06-25): the file of day D runs 00:05 D to
    /// 00:00 D+1, and may also carry 00:00 D, so consecutive files share a label.
    case periodEnd = "period_end"

    /// The first day USDⓈ-M metrics label the start of the period.
    public static let umChange = UTCCalendar.epoch(year: 2026, month: 6, day: 25)

    /// The convention of the archive of `day` (its start, UTC seconds): decided by the file's day,
    /// not the row's, so the 2026-06-24 file's last row (labelled 2026-06-25 00:00) is still
    /// read as an end.
    public static func of(market: FuturesMarket, day: Int64) -> MetricsLabel {
        market == .um && day < umChange ? .periodEnd : .periodStart
    }
}

/// Why a funding-rate or metrics archive does not decode.
public enum FuturesDecodeError: Error, CustomStringConvertible, Equatable {
    case notFutures(archive: String, reason: String)
    case header(archive: String, found: String, expected: String)
    case row(archive: String, line: Int, reason: String)
    case zip(ZipError)

    public var description: String {
        switch self {
        case let .notFutures(archive, reason): return "\(archive): \(reason)"
        case let .header(archive, found, expected): return "\(archive): the header is \"\(found)\", not the expected \"\(expected)\""
        case let .row(archive, line, reason): return "\(archive): line \(line): \(reason)"
        case let .zip(e): return "\(e)"
        }
    }
}

/// `SYMBOL-fundingRate-YYYY-MM.zip` or `SYMBOL-metrics-YYYY-MM-DD.zip`.
public struct FuturesArchiveName: Sendable, Equatable {
    public var symbol: String
    public var dataset: FuturesDataset
    public var period: ArchivePeriod

    public init?(fileName: String) {
        let base = fileName.split(separator: "/").last.map(String.init) ?? fileName
        guard base.hasSuffix(".zip") || base.hasSuffix(".csv") else { return nil }
        let parts = base.dropLast(4).split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 4, let dataset = FuturesDataset(rawValue: parts[1]), let y = Int(parts[2]), let m = Int(parts[3]) else { return nil }
        let period: ArchivePeriod?
        switch (dataset.isMonthly, parts.count) {
        case (true, 4): period = ArchivePeriod(year: y, month: m)
        case (false, 5): period = Int(parts[4]).flatMap { ArchivePeriod(year: y, month: m, day: $0) }
        default: period = nil
        }
        guard let period, !parts[0].isEmpty else { return nil }
        (self.symbol, self.dataset, self.period) = (parts[0], dataset, period)
    }
}

/// Decodes funding-rate and metrics archives into columns with a validation report. The files are
/// small (a month of funding is under 3 KB, a day of metrics about 30 KB), so the member is read
/// whole; every number goes through the exact decimal parser.
public enum FuturesArchiveDecoder {
    /// Bytes allowed per row when bounding the inflated size against zip bombs.
    static let maxBytesPerRow: UInt64 = 512

    public static func decode(path: String, market: FuturesMarket = .um, inflater: InflateEngine = .isal) throws -> (batch: FuturesBatch, report: FuturesReport) {
        guard let name = FuturesArchiveName(fileName: path) else {
            throw FuturesDecodeError.notFutures(archive: path, reason: "not a fundingRate or metrics archive name (SYMBOL-fundingRate-YYYY-MM.zip, SYMBOL-metrics-YYYY-MM-DD.zip)")
        }
        let slots = UInt64((name.period.end - name.period.start) / name.dataset.slotSeconds) + 2
        let bytes: [UInt8]
        let member: String
        do {
            let reader = try ZipEntryReader(path: path, maxInflatedSize: max(1 << 16, slots * maxBytesPerRow), engine: inflater)
            member = reader.member.name
            var all: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = try buffer.withUnsafeMutableBufferPointer { try reader.read(into: $0.baseAddress!, capacity: $0.count) }
                if n == 0 { break }
                all += buffer[0..<n]
            }
            bytes = all
        } catch let e as ZipError {
            throw FuturesDecodeError.zip(e)
        }
        return try decodeCSV(bytes, source: path, member: member, name: name, market: market)
    }

    /// The CSV text of an archive (the member's bytes), as `decode` reads it.
    public static func decodeCSV(_ bytes: [UInt8], source: String, member: String, name: FuturesArchiveName,
                                 market: FuturesMarket) throws -> (batch: FuturesBatch, report: FuturesReport) {
        let dataset = name.dataset
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { line -> ArraySlice<UInt8> in
            line.last == 0x0D ? line.dropLast() : line
        }
        if lines.last?.isEmpty == true { lines.removeLast() }
        guard let headerLine = lines.first else { throw FuturesDecodeError.header(archive: source, found: "", expected: dataset.header.joined(separator: ",")) }
        let header = String(decoding: headerLine, as: UTF8.self)
        guard header.split(separator: ",", omittingEmptySubsequences: false).map(String.init) == dataset.header else {
            throw FuturesDecodeError.header(archive: source, found: header, expected: dataset.header.joined(separator: ","))
        }
        var report = FuturesReport(archive: source, member: member, dataset: dataset, symbol: name.symbol, period: name.period.description)
        report.header = dataset.header
        let label = dataset == .metrics ? MetricsLabel.of(market: market, day: name.period.start) : .periodStart
        report.labels = label
        // Slot -> (row values); the last row of a slot wins, as a MarketStore write would.
        var rows: [Int64: (values: [Double], hours: Int64)] = [:]
        for (i, line) in lines.enumerated().dropFirst() {
            let number = i + 1
            guard !line.isEmpty else { throw FuturesDecodeError.row(archive: source, line: number, reason: "an empty line") }
            let fields = line.split(separator: 0x2C, omittingEmptySubsequences: false)
            guard fields.count == dataset.header.count else {
                throw FuturesDecodeError.row(archive: source, line: number, reason: "\(fields.count) fields, expected \(dataset.header.count)")
            }
            report.csvRows += 1
            var epoch: Int64
            var values: [Double] = []
            var hours: Int64 = 0
            switch dataset {
            case .fundingRate:
                guard let ms = integer(fields[0]), ms >= 0 else { throw FuturesDecodeError.row(archive: source, line: number, reason: "calc_time \(text(fields[0])) is not milliseconds") }
                guard let h = integer(fields[1]), (1...24).contains(h) else {
                    throw FuturesDecodeError.row(archive: source, line: number, reason: "funding_interval_hours \(text(fields[1])) is not 1 to 24")
                }
                guard let rate = decimal(fields[2]) else { throw FuturesDecodeError.row(archive: source, line: number, reason: "last_funding_rate \(text(fields[2])) is not a number") }
                // Funding is computed a few ms after the hour: the hour is the funding's slot.
                epoch = floorDiv(ms, 1000)
                if epoch % 3600 != 0 || ms % 1000 != 0 { report.offSlot += 1 }
                epoch = floorDiv(epoch, 3600) * 3600
                (values, hours) = ([rate], h)
            case .metrics:
                guard let t = dateTime(fields[0]) else {
                    throw FuturesDecodeError.row(archive: source, line: number, reason: "create_time \(text(fields[0])) is not YYYY-MM-DD HH:MM:SS")
                }
                guard text(fields[1]) == name.symbol else {
                    throw FuturesDecodeError.row(archive: source, line: number, reason: "symbol \(text(fields[1])) in the archive of \(name.symbol)")
                }
                epoch = t
                if epoch % 300 != 0 { report.offSlot += 1 }
                epoch = floorDiv(epoch, 300) * 300
                if label == .periodEnd {
                    epoch -= 300
                    report.shifted += 1
                }
                for (k, field) in fields.dropFirst(2).enumerated() {
                    // An empty ratio (a period Binance did not compute) is NaN: MarketStore keeps
                    // the slot, and readers see it is missing.
                    if field.isEmpty { values.append(.nan); report.emptyValues += 1; continue }
                    guard let v = decimal(field) else {
                        throw FuturesDecodeError.row(archive: source, line: number, reason: "\(dataset.header[k + 2]) \(text(field)) is not a number")
                    }
                    values.append(v)
                }
            }
            // A row of another day or month belongs to the neighbouring archive (end labels: the
            // 00:00 row of the day before); that archive writes it.
            guard epoch >= name.period.start, epoch < name.period.end else {
                report.outsidePeriod += 1
                continue
            }
            if rows[epoch] != nil { report.duplicates += 1 }
            rows[epoch] = (values, hours)
        }
        let sorted = rows.sorted { $0.key < $1.key }
        let epochs = sorted.map(\.key), hours = sorted.map(\.value.hours)
        var batch = FuturesBatch(epochs: epochs, columns: [])
        switch dataset {
        case .fundingRate: batch.columns = [.float64(sorted.map { $0.value.values[0] }), .int64(hours)]
        case .metrics: batch.columns = (0..<6).map { k in .float64(sorted.map { $0.value.values[k] }) }
        }
        report.rows = batch.count
        report.firstEpoch = epochs.first
        report.lastEpoch = epochs.last
        report.findGaps(epochs: epochs, hours: dataset == .fundingRate ? hours : nil, period: name.period, slot: dataset.slotSeconds)
        return (batch, report)
    }

    static func text(_ field: ArraySlice<UInt8>) -> String { String(decoding: field, as: UTF8.self) }

    /// Decimal digits only, into an Int64 (nil past its range).
    static func integer(_ field: ArraySlice<UInt8>) -> Int64? {
        guard !field.isEmpty, field.count <= 19, field.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(text(field))
    }

    /// The correctly rounded double of a decimal field.
    static func decimal(_ field: ArraySlice<UInt8>) -> Double? {
        field.withUnsafeBufferPointer { buf in
            guard let start = buf.baseAddress, !buf.isEmpty else { return nil }
            return DecimalParser.parseDouble(start, start + buf.count)
        }
    }

    /// `YYYY-MM-DD HH:MM:SS` (UTC) as epoch seconds.
    static func dateTime(_ field: ArraySlice<UInt8>) -> Int64? {
        let s = Array(field)
        guard s.count == 19, s[4] == 0x2D, s[7] == 0x2D, s[10] == 0x20, s[13] == 0x3A, s[16] == 0x3A else { return nil }
        func number(_ r: Range<Int>) -> Int? {
            guard s[r].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return s[r].reduce(0) { $0 * 10 + Int($1 - 0x30) }
        }
        guard let y = number(0..<4), let mo = number(5..<7), let d = number(8..<10), let h = number(11..<13), let mi = number(14..<16),
              let sec = number(17..<19), (1...12).contains(mo), (1...UTCCalendar.daysInMonth(year: y, month: mo)).contains(d),
              h < 24, mi < 60, sec < 60 else { return nil }
        return UTCCalendar.epoch(year: y, month: mo, day: d) + Int64(h * 3600 + mi * 60 + sec)
    }
}
