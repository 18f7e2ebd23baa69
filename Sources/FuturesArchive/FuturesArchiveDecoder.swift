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

    /// The convention a day's labels (slot starts as written, UTC s) show, or nil when they
    /// cannot tell (a truncated file: the date's expectation decides). A row labelled 00:00 of
    /// the next day is an end; a day from 00:00 to 23:55 without it is starts; from 00:05 to
    /// 23:55 it could be either.
    public static func read(labels: [Int64], day: Int64) -> MetricsLabel? {
        guard let first = labels.min(), let last = labels.max() else { return nil }
        if labels.contains(day + 86400) { return .periodEnd }
        if first == day, last == day + 86400 - 300 { return .periodStart }
        return nil
    }
}

/// Whether a metrics archive's label convention was read from its rows or taken from its date.
public enum LabelSource: String, Sendable, Codable {
    case content, date
}

/// Why a funding-rate or metrics archive does not decode.
public enum FuturesDecodeError: Error, CustomStringConvertible, Equatable {
    case notFutures(archive: String, reason: String)
    case header(archive: String, found: String, expected: String)
    case row(archive: String, line: Int, reason: String)
    /// Not one row of the archive's own period (another month's file under this name).
    case wrongPeriod(archive: String, period: String, rows: Int, first: Int64, last: Int64)
    case zip(ZipError)

    public var description: String {
        switch self {
        case let .notFutures(archive, reason): return "\(archive): \(reason)"
        case let .header(archive, found, expected): return "\(archive): the header is \"\(found)\", not the expected \"\(expected)\""
        case let .row(archive, line, reason): return "\(archive): line \(line): \(reason)"
        case let .wrongPeriod(archive, period, rows, first, last):
            return "\(archive): no row of \(period): its \(rows) rows run \(UTCCalendar.iso8601(first))..\(UTCCalendar.iso8601(last))"
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
        guard let parts = archiveNameParts(fileName), parts.count >= 4, let dataset = FuturesDataset(rawValue: parts[1]), let y = Int(parts[2]), let m = Int(parts[3]) else { return nil }
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
        var report = FuturesReport(archive: source, member: member, dataset: dataset, symbol: name.symbol, period: name.period.description)
        report.header = dataset.header
        let parsed = try parseRows(bytes, source: source, name: name, report: &report)
        let period = name.period
        let label: MetricsLabel
        if dataset == .metrics {
            let expected = MetricsLabel.of(market: market, day: period.start)
            let read = MetricsLabel.read(labels: parsed.map(\.epoch), day: period.start)
            label = read ?? expected
            report.labelsFrom = read == nil ? .date : .content
            report.labelsContradictDate = label != expected
        } else {
            label = .periodStart
        }
        report.labels = label
        // Slot -> (row values); the last row of a slot wins, as a MarketStore write would.
        var rows: [Int64: Row] = [:], before: [Int64: Row] = [:]
        var strays: [Int64] = []
        for var row in parsed {
            if label == .periodEnd {
                row.epoch -= dataset.slotSeconds
                report.shifted += 1
            }
            if row.epoch >= period.start, row.epoch < period.end {
                if rows[row.epoch] != nil { report.duplicates += 1 }
                rows[row.epoch] = row
            } else if label == .periodEnd, row.epoch == period.start - dataset.slotSeconds {
                // The 00:00 row of an end-labelled day is the last period of the day before: its
                // file's to write, when it exists (the import decides).
                before[row.epoch] = row
            } else {
                strays.append(row.epoch)
            }
        }
        report.neighbourRows = before.count
        report.outsidePeriod = strays.count
        guard !rows.isEmpty || parsed.isEmpty else {
            let times = parsed.map(\.epoch)
            throw FuturesDecodeError.wrongPeriod(archive: source, period: period.description, rows: parsed.count,
                                                 first: times.min() ?? 0, last: times.max() ?? 0)
        }
        let sorted = rows.values.sorted { $0.epoch < $1.epoch }
        var batch = FuturesBatch(sorted: sorted, dataset: dataset)
        if !before.isEmpty { batch.before = FuturesRows(FuturesBatch(sorted: before.values.sorted { $0.epoch < $1.epoch }, dataset: dataset)) }
        report.rows = batch.count
        report.firstEpoch = batch.epochs.first
        report.lastEpoch = batch.epochs.last
        if dataset == .fundingRate {
            report.findFundingGaps(epochs: batch.epochs, hours: sorted.map(\.hours), period: period)
        } else {
            report.findGaps(epochs: batch.epochs, period: period, slot: dataset.slotSeconds)
        }
        return (batch, report)
    }

    /// One data line: its slot (floored; before any label shift), values and funding interval.
    struct Row {
        var epoch: Int64
        var values: [Double]
        var hours: Int64
    }

    /// How far from its slot's start a time may be and still be that slot's: funding is computed
    /// a few ms after the hour (0 to 13 ms in the real files), counted as a convention. Seconds
    /// or minutes off is an anomaly.
    static let slotJitterMs: Int64 = 1_000

    /// The data lines after a header that must be the dataset's, each checked and parsed.
    static func parseRows(_ bytes: [UInt8], source: String, name: FuturesArchiveName, report: inout FuturesReport) throws -> [Row] {
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
        var rows: [Row] = []
        for (i, line) in lines.enumerated().dropFirst() {
            let number = i + 1
            func fail(_ reason: String) -> FuturesDecodeError { .row(archive: source, line: number, reason: reason) }
            guard !line.isEmpty else { throw fail("an empty line") }
            let fields = line.split(separator: 0x2C, omittingEmptySubsequences: false)
            guard fields.count == dataset.header.count else { throw fail("\(fields.count) fields, expected \(dataset.header.count)") }
            report.csvRows += 1
            let ms: Int64
            var values: [Double] = []
            var hours: Int64 = 0
            switch dataset {
            case .fundingRate:
                guard let t = integer(fields[0]), t >= 0 else { throw fail("calc_time \(text(fields[0])) is not milliseconds") }
                guard let h = integer(fields[1]), (1...24).contains(h) else { throw fail("funding_interval_hours \(text(fields[1])) is not 1 to 24") }
                guard let rate = decimal(fields[2]) else { throw fail("last_funding_rate \(text(fields[2])) is not a number") }
                (ms, values, hours) = (t, [rate], h)
            case .metrics:
                guard let t = dateTime(fields[0]) else { throw fail("create_time \(text(fields[0])) is not YYYY-MM-DD HH:MM:SS") }
                guard text(fields[1]) == name.symbol else { throw fail("symbol \(text(fields[1])) in the archive of \(name.symbol)") }
                ms = t * 1000
                for (k, field) in fields.dropFirst(2).enumerated() {
                    // An empty ratio (a period Binance did not compute) is NaN: MarketStore keeps
                    // the slot, and readers see it is missing. So is a `nan` or `inf` (counted
                    // apart): a ratio has no infinite value.
                    if field.isEmpty { values.append(.nan); report.emptyValues += 1; continue }
                    if let v = decimal(field) { values.append(v); continue }
                    guard isNotANumberWord(field) else { throw fail("\(dataset.header[k + 2]) \(text(field)) is not a number") }
                    values.append(.nan)
                    report.notANumber += 1
                }
            }
            let slotMs = dataset.slotSeconds * 1000
            let nearest = floorDiv(ms + slotMs / 2, slotMs) * slotMs
            var epoch = floorDiv(ms, slotMs) * dataset.slotSeconds
            if ms != nearest {
                if abs(ms - nearest) <= slotJitterMs {
                    report.offSlot += 1
                    epoch = nearest / 1000
                } else {
                    report.offHour += 1
                    if report.offHourTimes.count < 20 { report.offHourTimes.append(UTCCalendar.iso8601(floorDiv(ms, 1000))) }
                }
            }
            rows.append(Row(epoch: epoch, values: values, hours: hours))
        }
        return rows
    }

    /// `nan`, `inf`, `-inf`, `infinity` in any case.
    static func isNotANumberWord(_ field: ArraySlice<UInt8>) -> Bool {
        ["nan", "inf", "-inf", "+inf", "infinity", "-infinity"].contains(text(field).lowercased())
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

extension FuturesArchiveDecoder {
    /// An end-labelled day's row of the period before (`FuturesBatch.before`) is written by the
    /// day before's own archive when it has one: dropped then, kept otherwise (it is the only
    /// copy of that period). The report counts which.
    public static func placeNeighbourRows(_ batch: FuturesBatch, _ report: FuturesReport,
                                          dayBeforeHasArchive: Bool) -> (batch: FuturesBatch, report: FuturesReport) {
        guard let before = batch.before else { return (batch, report) }
        var (batch, report) = (batch, report)
        batch.before = nil
        guard !dayBeforeHasArchive else { return (batch, report) }
        batch = batch.after(before)
        report.neighbourKept = before.epochs.count
        report.rows = batch.count
        (report.firstEpoch, report.lastEpoch) = (batch.epochs.first, batch.epochs.last)
        return (batch, report)
    }
}
