import Columnar
import Foundation
import ImportPipeline
import MarketStore
import MarketStoreModel
import Synchronization

/// A MarketStore target in memory, for pipeline tests that run in-process: fixed-slot buckets
/// (a row written again to the same epoch replaces the one there, as MarketStore's fixed-length
/// buckets do) and variable-length ones (records appended: written twice, there twice; read
/// back ordered by second and nanoseconds, equal times in write order), every request recorded,
/// and faults on demand: a key refused, a stop asked while a request is under way, or a request
/// applied and then its answer lost (a crash between the server's write and the state's).
public final class MemoryTarget: RowSink, Sendable {
    /// One bucket: column names (Epoch first) and rows by epoch.
    public struct Bucket: Sendable {
        public var names: [String] = []
        public var rows: [Int64: [Double]] = [:]
        /// A variable-length bucket's records, column by column (Epoch first, Nanoseconds last), in
        /// write order.
        public var records: [ColumnValues] = []
        public var variableLength: Bool { !records.isEmpty }

        /// Epochs in order, and each column (after Epoch) as doubles in that order.
        public var epochs: [Int64] { rows.keys.sorted() }
        public func column(_ name: String) -> [Double] {
            guard let i = names.dropFirst().firstIndex(of: name) else { return [] }
            return epochs.map { rows[$0]![i - 1] }
        }
    }

    public enum Fault: Sendable {
        /// The key is refused for its own reasons (another schema in its bucket), each time.
        case refuse(key: String)
        /// At the request numbered `request` (1 = the first), the stop is asked and the request
        /// is cut short, as a signal during a write does.
        case stopDuring(request: Int, stop: StopRequest, signal: Int32)
        /// The request numbered `request` is applied, and then the connection drops before its
        /// answer (`part` of its rows applied: 1 = all of them).
        case lostAnswer(request: Int, part: Double)
        /// The request numbered `request` loses its answer (the client is gone) and the server,
        /// still applying it, shows its rows `after` seconds later, as MarketStore does.
        case appliedLate(request: Int, after: Double)
    }

    private struct State {
        var buckets: [String: Bucket] = [:]
        var requests: [[String]] = []
        var faults: [Fault] = []
    }

    private let state = Mutex(State())

    public init(faults: [Fault] = []) { state.withLock { $0.faults = faults } }

    public func write(_ dataset: WriteDataSet) async throws {
        let (fault, applied) = self.fault(dataset)
        if let fault, applied == 0 { throw fault }
        state.withLock { s in
            for k in dataset.keys {
                var bucket = s.buckets[k.key] ?? Bucket()
                bucket.names = dataset.names
                guard case let .int64(epochs) = dataset.columns[0] else { continue }
                for row in k.start..<(k.start + k.count) {
                    bucket.rows[epochs[row]] = dataset.columns.dropFirst().map { $0.double(at: row) }
                }
                s.buckets[k.key] = bucket
            }
        }
        if let fault { throw fault }
    }

    public func append(_ dataset: WriteDataSet) async throws {
        let (fault, part) = self.fault(dataset)
        if let fault, part == 0 { throw fault }
        if let fault, part < 0 {  // applied late: the rows land after the caller has its error
            Task { [self] in
                try await Task.sleep(nanoseconds: UInt64(-part * 1e9))
                try await self.append(dataset)
            }
            throw fault
        }
        state.withLock { s in
            for k in dataset.keys {
                var bucket = s.buckets[k.key] ?? Bucket()
                if bucket.records.isEmpty {
                    bucket.names = dataset.names
                    bucket.records = dataset.columns.map { $0.slice(0..<0) }
                }
                let applied = Int((Double(k.count) * part).rounded(.down))
                for (i, name) in bucket.names.enumerated() {
                    guard let j = dataset.names.firstIndex(of: name) else { continue }
                    bucket.records[i].append(contentsOf: dataset.columns[j].slice(k.start..<(k.start + applied)))
                }
                s.buckets[k.key] = bucket
            }
        }
        if let fault { throw fault }
    }

    public func records(key: String, from: Int64, to: Int64) async throws -> QueryResult? {
        guard let bucket = bucket(key) else { return nil }
        guard case let .int64(epochs)? = bucket.records.first, case let .int32(nanos)? = bucket.records.last else {
            return QueryResult(key: key, names: bucket.names, columns: bucket.records)
        }
        let order = epochs.indices.filter { epochs[$0] >= from && epochs[$0] <= to }
            .sorted { (epochs[$0], nanos[$0], $0) < (epochs[$1], nanos[$1], $1) }
        return QueryResult(key: key, names: bucket.names, columns: bucket.records.map { $0.gathered(order) })
    }

    public func destroy(key: String) async throws { _ = state.withLock { $0.buckets.removeValue(forKey: key) } }

    /// The fault of this request, if any (the request recorded first), and the part of its rows
    /// applied before it (1 without a fault).
    private func fault(_ dataset: WriteDataSet) -> (error: Error?, applied: Double) {
        state.withLock { s in
            s.requests.append(dataset.keys.map(\.key))
            for fault in s.faults {
                switch fault {
                case let .refuse(key) where dataset.keys.contains(where: { $0.key == key }):
                    return (MarketStoreError.refused(method: "DataService.Write", keys: [key], message: "memory target: \(key) refused"), 0)
                case let .stopDuring(request, stop, signal) where s.requests.count == request:
                    stop.request(signal: signal)
                    return (MarketStoreError.transport(.init(code: 56, message: "cut short by the stop", url: "memory://")), 0)
                case let .lostAnswer(request, part) where s.requests.count == request:
                    return (MarketStoreError.transport(.init(code: 52, message: "empty reply from server", url: "memory://")), part)
                case let .appliedLate(request, after) where s.requests.count == request:
                    return (MarketStoreError.transport(.init(code: 52, message: "empty reply from server", url: "memory://")), -after)
                default: continue
                }
            }
            return (nil, 1)
        }
    }

    /// The keys the target holds, and one bucket.
    public var keys: [String] { state.withLock { $0.buckets.keys.sorted() } }
    public func bucket(_ key: String) -> Bucket? { state.withLock { $0.buckets[key] } }
    /// The keys of each request, in order.
    public var requests: [[String]] { state.withLock { $0.requests } }
}
