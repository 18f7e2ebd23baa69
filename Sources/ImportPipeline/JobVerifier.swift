import Columnar
import CurlHTTP
import DurableFiles
import Foundation
import JobMetrics
import JobModel
import JobState
import KlineArchive
import MarketStore
import MarketStoreDirectory
import MarketStoreModel

/// Reads every done unit back from the target and compares its row count and the digest of every
/// column with the manifest.
public struct JobVerifier {
    public struct Difference: Equatable, Sendable, CustomStringConvertible {
        public var unit: String
        public var detail: String
        public var description: String { "\(unit): \(detail)" }
    }

    public let spec: JobSpec
    public init(spec: JobSpec) { self.spec = spec }

    /// Returns the units checked and the differences found.
    public func verify() async throws -> (checked: Int, differences: [Difference]) {
        let manifest = try Manifest.load(path: spec.manifest, job: spec.name)
        var differences: [Difference] = []
        var checked = 0
        // Gaps filled from REST (`gaps: rest`): their klines are their units', not the archive's.
        var fills: [String: [ClosedRange<Int64>]] = [:]
        for record in manifest.units.values where record.status == .done && record.id.hasPrefix("rest/gap/") {
            if let first = record.firstEpoch, let last = record.lastEpoch { fills[record.key, default: []].append(first...last) }
        }
        for record in manifest.units.values.sorted(by: { $0.id < $1.id }) where record.status == .done {
            checked += 1
            guard let recordedFirst = record.firstEpoch, let recordedLast = record.lastEpoch else {
                if (record.rows ?? 0) != 0 { differences.append(.init(unit: record.id, detail: "no epochs recorded")) }
                continue
            }
            // The unit's period, widened to any row recorded outside it: the first and last rows
            // in file order are not the earliest and latest when an archive is out of order.
            let period = archivePeriod(ofRemotePath: record.remotePath)
            let first = min(recordedFirst, recordedLast, period?.start ?? .max)
            let last = max(recordedFirst, recordedLast, period.map { $0.end - 1 } ?? .min)  // a gap unit has no calendar period
            let results: [QueryResult]
            do {
                results = try await TargetReader(target: spec.target, caFile: spec.caFile).read(key: record.key, from: first, to: last)
            } catch let MarketStoreError.transport(reason) {
                throw TargetUnavailable(description: "MarketStore at \(spec.target.display) is unreachable: \(reason)")
            }
            var digest = ColumnDigest()
            var heldIDs: (first: Int64, last: Int64)?
            if let r = results.first {
                // A monthly with holes: the days it lacks are its repair units' to verify.
                let filled = record.id.hasPrefix("rest/gap/") || record.firstID != nil ? [] : fills[record.key] ?? []
                var keep = RepairDays(record.lacking ?? []).kept(r.epochs).filter { i in !filled.contains { $0.contains(r.epochs[i]) } }
                // Trades: the unit's own IDs (its range less its holes); other units' trades share its seconds.
                if let ids = Self.ownIDs(record), let column = r.names.firstIndex(where: { $0 == "TradeID" || $0 == "AggTradeID" }),
                   case let .int64(held) = r.columns[column] {
                    keep = keep.filter { ids($0 < held.count ? held[$0] : .min) }
                    let own = keep.map { held[$0] }
                    heldIDs = own.min().flatMap { low in own.max().map { (low, $0) } }
                }
                let all = keep.count == r.epochs.count
                digest.add(epochs: all ? r.epochs : keep.map { r.epochs[$0] },
                           columns: zip(r.names, r.columns).dropFirst().map { ($0, all ? $1 : $1.gathered(keep)) })
            }
            var problems: [String] = []
            if digest.rows != record.rows {
                problems.append("\(digest.rows) rows in the target, \(record.rows ?? 0) in the manifest")
            }
            // Digests without the current tag were written by an earlier version: rows still count.
            for (column, expected) in (record.digests ?? [:]).sorted(by: { $0.key < $1.key })
            where expected.hasPrefix(ColumnDigest.tag) && digest.hex[column] != expected {
                problems.append("column \(column) differs")
            }
            // Trades: the unit's first and last ID are in the target (one missing at either end
            // shows here even when a duplicate elsewhere keeps the row count).
            if let firstID = record.firstID, let lastID = record.lastID, (heldIDs?.first, heldIDs?.last) != (firstID, lastID) {
                problems.append("IDs \(heldIDs.map { "\($0.first)..\($0.last)" } ?? "none") in the target, \(firstID)..\(lastID) in the manifest")
            }
            if !problems.isEmpty {
                var detail = problems.joined(separator: "; ")
                if BucketKey(record.key)?.isDaily == true, let r = results.first, Self.lost1January(first: first, last: last, returned: r.epochs) {
                    detail += " (the 1 January row: MarketStore never serves it from 1D buckets)"
                }
                differences.append(.init(unit: record.id, detail: detail))
            }
        }
        return (checked, differences)
    }

    /// Whether an ID is one of a trade unit's: in its range and in none of its holes; nil for a
    /// unit without IDs.
    static func ownIDs(_ record: UnitRecord) -> ((Int64) -> Bool)? {
        guard let first = record.firstID, let last = record.lastID else { return nil }
        let holes = record.idHoles ?? []
        return { id in id >= first && id <= last && !holes.contains { $0.count >= 2 && id >= $0[0] && id <= $0[1] } }
    }

    /// A 1 January inside [first, last] that the target did not return.
    package static func lost1January(first: Int64, last: Int64, returned: [Int64]) -> Bool {
        var day = first - ((first % 86400) + 86400) % 86400
        let have = Set(returned)
        while day <= last {
            if UTCCalendar.isFirstOfJanuary(day), !have.contains(day) { return true }
            day += 86400
        }
        return false
    }
}

/// Reads rows back from a target: Query on a MarketStore server, or the year files of a directory.
public struct TargetReader: Sendable {
    public let target: ImportTarget
    /// CA certificates for a server behind a proxy with a private CA (`target.ca_file`).
    public let caFile: String?
    public init(target: ImportTarget, caFile: String? = nil) {
        self.target = target
        self.caFile = caFile
    }

    /// Every key the target holds (`SYMBOL/Timeframe/AttributeGroup`), sorted. A directory that
    /// does not exist, or is a file, is a usage error (exit 2); a server that does not answer is
    /// `TargetUnavailable` (exit 3).
    public func keys() async throws -> [String] {
        switch target {
        case let .marketstore(url):
            do {
                return try await MarketStoreClient(url: url, timeouts: .init(connect: 5, total: 30), caFile: caFile).listSymbols(format: "tbk").sorted()
            } catch let error as MarketStoreError {
                if let reason = error.unreachableReason { throw TargetUnavailable(description: "MarketStore at \(redactCredentials(url)) is unreachable: \(reason)") }
                throw error
            }
        case let .directory(path):
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw JobFileError(file: "command line", key: "--target", reason: "no directory \(path)")
            }
            guard isDirectory.boolValue else { throw JobFileError(file: "command line", key: "--target", reason: "\(path) is a file, not a data directory") }
            var keys: [String] = []
            let fm = FileManager.default
            func folders(_ dir: String) -> [String] {
                ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).filter { name in
                    var d: ObjCBool = false
                    return fm.fileExists(atPath: (dir as NSString).appendingPathComponent(name), isDirectory: &d) && d.boolValue
                }
            }
            for symbol in folders(path) {
                for timeframe in folders(path + "/" + symbol) {
                    for group in folders(path + "/" + symbol + "/" + timeframe) {
                        let files = (try? fm.contentsOfDirectory(atPath: "\(path)/\(symbol)/\(timeframe)/\(group)")) ?? []
                        if files.contains(where: { $0.hasSuffix(".bin") }) { keys.append("\(symbol)/\(timeframe)/\(group)") }
                    }
                }
            }
            return keys.sorted()
        }
    }

    /// Rows of `key` in [from, to] as the target serves them.
    public func read(key: String, from: Int64?, to: Int64?, limit: Int? = nil) async throws -> [QueryResult] {
        guard let bucket = BucketKey(key) else { throw MarketStoreModelError.invalidDataSet("key \(key) is not SYMBOL/Timeframe/AttributeGroup") }
        switch target {
        case let .marketstore(url):
            do {
                return try await MarketStoreClient(url: url, caFile: caFile).query(symbols: [bucket.symbol], timeframe: bucket.timeframe, attributeGroup: bucket.attributeGroup,
                                                                   from: from, to: to, limit: limit)
            } catch MarketStoreError.rpc(_, _, let message) where message.contains("no files returned") {
                return []
            }
        case let .directory(path):
            guard var rows = try DirectoryReader(root: path).read(key: key, from: from, to: to) else { return [] }
            if let limit, rows.columns[0].count > limit {
                let n = rows.columns[0].count
                rows.columns = rows.columns.map { $0.slice((n - limit)..<n) }
            }
            return [QueryResult(key: key, names: rows.names, columns: rows.columns)]
        }
    }

}
