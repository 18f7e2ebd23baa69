import BinanceSource
import Columnar
import DurableFiles
import Foundation
import JobMetrics
import JobModel
import JobState
import KlineArchive
import MarketStoreModel

/// What the manifest says of each key and month: one state per cell, for `status`.
public struct CoverageGrid: Sendable {
    public enum State: String, CaseIterable, Sendable {
        case monthly
        /// Done from a monthly archive that lacks whole days, those days from daily archives
        /// where they are published.
        case repaired = "monthly_repaired"
        case daily, rest, failed
        case notPublished = "not_published"
        /// Trades: rows sent and not all acknowledged (a stop, a crash); the next run reconciles.
        case writing
        case pending

        public var glyph: Character {
            switch self {
            case .monthly: return "M"
            case .repaired: return "+"
            case .daily: return "d"
            case .rest: return "r"
            case .failed: return "X"
            case .notPublished: return "."
            case .writing: return "w"
            case .pending: return "-"
            }
        }

        public var meaning: String {
            switch self {
            case .monthly: return "done from the monthly archive"
            case .repaired: return "monthly, repaired from daily archives"
            case .daily: return "done from daily archives"
            case .rest: return "done from REST klines (to: now)"
            case .failed: return "failed"
            case .notPublished: return "not published"
            case .writing: return "being written (reconciled by the next run)"
            case .pending: return "pending"
            }
        }
    }

    public var months: [ArchivePeriod]
    public var keys: [String]
    /// keys[i]'s states, one per month.
    public var rows: [String: [State]]

    /// A month's state: failed if any of its units failed; done from the monthly archive; done
    /// from dailies (some days may still be out); done from REST only; not published; otherwise
    /// pending. Superseded
    /// daily units count for nothing (their monthly unit stands for them).
    public init(manifest: Manifest, months: [ArchivePeriod], keys expectedKeys: [String]) {
        self.months = months
        var byCell: [String: [ArchivePeriod: [UnitRecord]]] = [:]
        for record in manifest.units.values where record.status != .superseded && !record.key.isEmpty {
            guard let period = archivePeriod(ofRemotePath: record.remotePath),
                  let month = ArchivePeriod(year: period.year, month: period.month) else { continue }
            byCell[record.key, default: [:]][month, default: []].append(record)
        }
        keys = Set(expectedKeys).union(byCell.keys).sorted()
        var rows: [String: [State]] = [:]
        for key in keys {
            rows[key] = months.map { month in
                let records = byCell[key]?[month] ?? []
                if records.contains(where: { $0.status == .failed }) { return .failed }
                if records.contains(where: { $0.status == .writing }) { return .writing }
                if let monthly = records.first(where: { $0.status == .done && !$0.isDaily && !$0.isREST }) { return monthly.lacking == nil ? .monthly : .repaired }
                if records.contains(where: { $0.status == .done && !$0.isREST }) { return .daily }
                if records.contains(where: { $0.status == .done }) { return .rest }
                if !records.isEmpty && records.allSatisfy({ $0.status == .notPublished }) { return .notPublished }
                return .pending
            }
        }
        self.rows = rows
    }

    /// One line per key, one glyph per month, under a line of years and a line of month initials,
    /// and a legend.
    public var text: String {
        let width = (keys.map(\.count).max() ?? 0) + 2
        let pad = String(repeating: " ", count: width)
        // Each year stands over its January (or the first month), where it fits.
        var years = [Character](repeating: " ", count: months.count + 4)
        var free = 0
        for (i, month) in months.enumerated() where (month.month == 1 || i == 0) && i >= free {
            for (j, c) in String(month.year).enumerated() { years[i + j] = c }
            free = i + 5
        }
        let initials = String(months.map { Array("JFMAMJJASOND")[$0.month - 1] })
        let yearLine = String(years).replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        var lines = [pad + yearLine, pad + initials]
        for key in keys { lines.append(key.padding(toLength: width, withPad: " ", startingAt: 0) + String(rows[key, default: []].map(\.glyph))) }
        lines.append("legend: " + State.allCases.map { "\($0.glyph) \($0.meaning)" }.joined(separator: "  "))
        return lines.joined(separator: "\n")
    }
}
