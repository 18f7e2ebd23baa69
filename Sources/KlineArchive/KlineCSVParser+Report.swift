import Columnar

/// The kline parser's slow and final paths, kept apart from its hot loop: what an anomalous row
/// is, the error of a malformed one, and the file's report.
extension KlineCSVParser {
    /// A row that failed the quick value checks: which of the checks it fails.
    func classifyValueAnomaly(_ epoch: Int64, _ o: F, _ h: F, _ l: F, _ c: F, _ volumes: [F]) {
        let prices = [o, h, l, c]
        if !(prices + volumes).allSatisfy(\.isFinite) {
            log.add(.nonFinite, line: line, openTime: epoch, "a value overflows the float range")
            return
        }
        if !(l <= o && l <= c && o <= h && c <= h) {
            log.add(.ohlcInconsistent, line: line, openTime: epoch, "open \(o) high \(h) low \(l) close \(c)")
        }
        if !prices.allSatisfy({ $0 > 0 }) {
            log.add(.nonPositivePrice, line: line, openTime: epoch, "open \(o) high \(h) low \(l) close \(c)")
        }
        if !volumes.allSatisfy({ $0 >= 0 }) {
            log.add(.negativeVolume, line: line, openTime: epoch, "volumes \(volumes.map { "\($0)" }.joined(separator: " "))")
        }
    }

    /// The error of a row that did not parse: its column count, or the field named.
    func rowError(_ s: UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>, column: Int) -> KlineDecodeError {
        let fields = UnsafeBufferPointer(start: s, count: e - s).split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        if fields.count != 12 {
            if rowsInFile == 0 && !header && line == 1 {
                return .notKline(archive: archive, reason: "line 1 has \(fields.count) columns; kline files have 12")
            }
            return .columnCount(archive: archive, line: line, found: fields.count)
        }
        let text = String(decoding: fields[column].prefix(40), as: UTF8.self)
        return .malformedField(archive: archive, line: line, column: column + 1,
                               name: KlineDecodeError.csvColumnNames[column], text: text)
    }

    // MARK: - Report

    func finishReport(into r: inout KlineReport) {
        r.rows = slots.distinct
        r.rowsInFile = rowsInFile
        r.firstOpenTime = firstOpenTime
        r.lastOpenTime = lastOpenTime
        r.timeUnit = timeUnit
        r.header = header
        r.duplicates = duplicates
        r.outOfOrder = outOfOrder
        if let step = intervalSeconds {
            var from = 0, to = 0
            if let period {
                to = Int((period.end - period.start) / step)
            } else if let first = firstOpenTime, let last = lastOpenTime {
                from = Int((floorDiv(first, step) * step - slots.anchor) / step)
                to = Int((max(first, last) - slots.anchor) / step) + 1
            }
            r.expectedRows = to - from
            let gaps = slots.gaps(from: from, to: to, limit: 10_000)
            r.missingRows = gaps.count
            r.missingRanges = Array(gaps.ranges.prefix(10))
            r.gaps = gaps.ranges
            if let period, period.kind == .month, step <= 86400, gaps.count > 0 {
                r.daysLacking = slots.daysOfLongGaps(minimum: Int(86400 / step)).map { UTCCalendar.iso8601($0 * 86400).prefix(10).description }
            }
            if gaps.count > 0 {
                log.add(.missingIntervals, count: gaps.count, examples: gaps.ranges.prefix(Anomaly.maxExamples).map {
                    .init(line: 0, openTime: $0[0], detail: "\(($0[1] - $0[0]) / step + 1) intervals missing from \(UTCCalendar.iso8601($0[0])) to \(UTCCalendar.iso8601($0[1]))")
                })
            }
        }
        r.anomalies = log.anomalies
    }
}
