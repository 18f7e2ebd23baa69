import Columnar
import Foundation
import JobState

/// Where a key's rows came from, from the state: each archive (its name, SHA-256, the listing's
/// fingerprint and Last-Modified, rows, what rules adjusted and what was anomalous), each REST
/// range, and the earlier versions of re-published archives (their checksums and dates), so a
/// result can be tied to what the data was on a given day. `card` prints it; `status --json`
/// carries it.
package struct Provenance: Codable, Sendable {
    package struct Source: Codable, Equatable, Sendable {
        /// `archive`, `rest` (a day or month from REST: `to: now`, follow's catch-up) or
        /// `rest_gap_fill` (a gap's rows or missing trade IDs asked of REST).
        package var kind: String
        package var unit: String
        package var sha256: String?
        package var verified: Bool
        package var listing: String?
        package var lastModified: String?
        package var rows: Int?
        package var first: String?
        package var last: String?
        package var firstID: Int64?
        package var lastID: Int64?
        package var doneAt: String?
        /// Counts by kind: anomalies and conventions applied by rule (as the unit's record has them).
        package var anomalies: [String: Int]?
        package var history: [UnitRecord.Earlier]?
        /// Open times written from `follow`'s live stream ([first, last] runs, UTC).
        package var liveStream: [[String]]?
    }

    package var key: String
    package var rows: Int
    package var first: String?
    package var last: String?
    package var sources: [Source]

    /// The provenance of `key` in `manifest` (its done units; superseded ones stood for rows their
    /// replacement now holds).
    package static func of(key: String, in manifest: Manifest) -> Provenance {
        of(key: key, done: manifest.units.values.filter { $0.key == key && $0.status == .done })
    }

    /// Every key's, grouping the units once.
    package static func byKey(_ manifest: Manifest) -> [String: Provenance] {
        Dictionary(grouping: manifest.units.values.filter { $0.status == .done }, by: \.key).map { of(key: $0.key, done: $0.value) }
            .reduce(into: [:]) { $0[$1.key] = $1 }
    }

    static func of(key: String, done: [UnitRecord]) -> Provenance {
        let done = done.sorted { ($0.firstEpoch ?? 0, $0.id) < ($1.firstEpoch ?? 0, $1.id) }
        let sources = done.map { r in
            Source(kind: r.id.hasPrefix("rest/gap/") ? "rest_gap_fill" : r.isREST ? "rest" : "archive", unit: r.id, sha256: r.sha256, verified: r.verified,
                   listing: r.listing, lastModified: r.listing.flatMap(lastModified), rows: r.rows, first: r.firstEpoch.map(UTCCalendar.iso8601),
                   last: r.lastEpoch.map(UTCCalendar.iso8601), firstID: r.firstID, lastID: r.lastID, doneAt: r.doneAt, anomalies: r.anomalies, history: r.history,
                   liveStream: r.streamed?.map { $0.map(UTCCalendar.iso8601) })
        }
        return Provenance(key: key, rows: done.reduce(0) { $0 + ($1.rows ?? 0) }, first: done.compactMap(\.firstEpoch).min().map(UTCCalendar.iso8601),
                          last: done.compactMap(\.lastEpoch).max().map(UTCCalendar.iso8601), sources: sources)
    }

    /// The Last-Modified of a listing fingerprint (`size etag last-modified`).
    static func lastModified(_ fingerprint: String) -> String? {
        let parts = fingerprint.split(separator: " ", maxSplits: 2).map(String.init)
        return parts.count == 3 && parts[2] != "-" ? parts[2] : nil
    }

    package var text: String {
        var lines = ["\(key): \(rows) rows, \(first ?? "-") .. \(last ?? "-"), from \(sources.count) source(s)"]
        for s in sources {
            var line = "  \(s.kind) \(s.unit): \(s.rows ?? 0) rows \(s.first ?? "-")..\(s.last ?? "-")"
            if let firstID = s.firstID, let lastID = s.lastID { line += ", IDs \(firstID)..\(lastID)" }
            lines.append(line)
            if s.kind == "archive" {
                lines.append("    sha256 \(s.sha256 ?? "none (unverified)")\(s.verified ? " (verified against its CHECKSUM)" : ""); "
                    + "last modified \(s.lastModified ?? "unknown"); imported \(s.doneAt ?? "-")")
            } else {
                lines.append("    fetched \(s.doneAt ?? "-")")
            }
            if let anomalies = s.anomalies, !anomalies.isEmpty {
                lines.append("    " + anomalies.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
            }
            for run in s.liveStream ?? [] where run.count == 2 { lines.append("    from the live stream: \(run[0])..\(run[1])") }
            for earlier in s.history ?? [] {
                lines.append("    re-published: was sha256 \(earlier.sha256 ?? "-") (\(earlier.rows ?? 0) rows, imported \(earlier.doneAt ?? "-"), "
                    + "listed as \(earlier.listing ?? "-")), replaced \(earlier.replacedAt ?? "-")")
            }
        }
        return lines.joined(separator: "\n")
    }
}
