import Columnar
import JobState

/// The completeness proof of a trades key: its IDs run without a hole from the first archive to
/// the last. A hole inside an archive is its decoder's (counted in the unit's anomalies, its
/// seconds recorded as a gap); a hole between two archives shows when one's first ID is not the
/// one before's last + 1. Each is said with its ID range and time span; a run or `status` that
/// finds one exits 1.
package enum TradeContinuity {
    /// Per key, one line per hole, from the done trade units' records (units without an ID
    /// range, such as klines', are not looked at).
    package static func holes<Records: Sequence>(_ records: Records) -> [String: [String]] where Records.Element == UnitRecord {
        var byKey: [String: [UnitRecord]] = [:]
        for record in records where record.status == .done && record.firstID != nil && record.lastID != nil {
            byKey[record.key, default: []].append(record)
        }
        var out: [String: [String]] = [:]
        for (key, units) in byKey {
            var lines: [String] = []
            let ordered = units.sorted { ($0.firstID!, $0.id) < ($1.firstID!, $1.id) }
            for unit in ordered where (unit.anomalies?["id_holes"] ?? 0) > 0 {
                lines.append("\(unit.anomalies!["id_holes"]!) hole(s), \(unit.anomalies?["ids_missing"] ?? 0) ID(s) missing inside \(fileName(unit.id))")
            }
            for (before, after) in zip(ordered, ordered.dropFirst()) where after.firstID! > before.lastID! + 1 {
                let span = [before.lastEpoch, after.firstEpoch].map { $0.map(UTCCalendar.iso8601) ?? "?" }
                lines.append("IDs \(before.lastID! + 1)..\(after.firstID! - 1) (\(after.firstID! - before.lastID! - 1)) between \(fileName(before.id)) "
                    + "and \(fileName(after.id)) (\(span[0])..\(span[1]))")
            }
            if !lines.isEmpty { out[key] = lines }
        }
        return out
    }

    static func fileName(_ id: String) -> String { String(id.split(separator: "/").last ?? Substring(id)) }
}
