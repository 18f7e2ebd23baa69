import Columnar
import JobState

/// The completeness proof of a trades key: its IDs run without a hole from the first archive to
/// the last. Each done unit covers its first to last ID but for the IDs missing inside its
/// archive; REST fills cover what they fetched. What no unit covers between a key's first and
/// last ID is missing, said with its ID range, the files around it and its time span; a run or
/// `status` that finds some exits 1 (`gaps: rest` asks Binance's REST for them).
package enum TradeContinuity {
    /// IDs no unit of a key covers.
    package struct Missing: Sendable, Equatable {
        package var key: String
        package var first: Int64
        package var last: Int64
        /// The unit holding the ID before and the one holding the ID after, and their seconds.
        package var after: (unit: String, second: Int64?)
        package var before: (unit: String, second: Int64?)

        package static func == (a: Missing, b: Missing) -> Bool {
            (a.key, a.first, a.last, a.after.unit, a.before.unit) == (b.key, b.first, b.last, b.after.unit, b.before.unit)
        }

        package var line: String {
            let span = [after.second, before.second].map { $0.map(UTCCalendar.iso8601) ?? "?" }
            let files = after.unit == before.unit ? "inside \(fileName(after.unit))" : "between \(fileName(after.unit)) and \(fileName(before.unit))"
            return "IDs \(first)..\(last) (\(last - first + 1)) \(files) (\(span[0])..\(span[1]))"
        }
    }

    /// One covered run of IDs and where it comes from.
    struct Covered {
        var first: Int64, last: Int64
        var unit: String
        var firstSecond: Int64?, lastSecond: Int64?
    }

    /// Per key, the IDs missing, from the done units' records (units without an ID range, such as
    /// klines', are not looked at).
    package static func missing<Records: Sequence>(_ records: Records) -> [String: [Missing]] where Records.Element == UnitRecord {
        var covered: [String: [Covered]] = [:]
        for record in records where record.status == .done {
            guard let firstID = record.firstID, let lastID = record.lastID else { continue }
            var start = firstID, startSecond = record.firstEpoch
            for hole in (record.idHoles ?? []).sorted(by: { $0[0] < $1[0] }) where hole.count == 4 && hole[0] >= start {
                covered[record.key, default: []].append(Covered(first: start, last: hole[0] - 1, unit: record.id, firstSecond: startSecond, lastSecond: hole[2]))
                (start, startSecond) = (hole[1] + 1, hole[3])
            }
            covered[record.key, default: []].append(Covered(first: start, last: lastID, unit: record.id, firstSecond: startSecond, lastSecond: record.lastEpoch))
        }
        var out: [String: [Missing]] = [:]
        for (key, runs) in covered {
            var reach: Covered?
            for run in runs.sorted(by: { ($0.first, $0.last) < ($1.first, $1.last) }) {
                if let r = reach, run.first > r.last + 1 {
                    out[key, default: []].append(Missing(key: key, first: r.last + 1, last: run.first - 1, after: (r.unit, r.lastSecond), before: (run.unit, run.firstSecond)))
                }
                if reach == nil || run.last > reach!.last { reach = run }
            }
        }
        return out
    }

    /// Per key, one line per hole (`Missing.line`).
    package static func holes<Records: Sequence>(_ records: Records) -> [String: [String]] where Records.Element == UnitRecord {
        missing(records).mapValues { $0.map(\.line) }
    }

    static func fileName(_ id: String) -> String { String(id.split(separator: "/").last ?? Substring(id)) }
}
