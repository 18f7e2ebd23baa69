import Columnar
import Foundation
import ImportPipeline
import MarketStore
import MarketStoreModel
import Synchronization

/// A MarketStore target in memory, for pipeline tests that run in-process: fixed-slot buckets
/// (a row written again to the same epoch replaces the one there, as MarketStore's fixed-length
/// buckets do), every request recorded, and faults on demand: a key refused, or a stop asked
/// while a request is under way.
public final class MemoryTarget: RowSink, Sendable {
    /// One bucket: column names (Epoch first) and rows by epoch.
    public struct Bucket: Sendable {
        public var names: [String] = []
        public var rows: [Int64: [Double]] = [:]

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
    }

    private struct State {
        var buckets: [String: Bucket] = [:]
        var requests: [[String]] = []
        var faults: [Fault] = []
    }

    private let state = Mutex(State())

    public init(faults: [Fault] = []) { state.withLock { $0.faults = faults } }

    public func write(_ dataset: WriteDataSet) async throws {
        let fault: Error? = state.withLock { s in
            s.requests.append(dataset.keys.map(\.key))
            for fault in s.faults {
                switch fault {
                case let .refuse(key) where dataset.keys.contains(where: { $0.key == key }):
                    return MarketStoreError.refused(method: "DataService.Write", keys: [key], message: "memory target: \(key) refused")
                case let .stopDuring(request, stop, signal) where s.requests.count == request:
                    stop.request(signal: signal)
                    return MarketStoreError.transport(.init(code: 56, message: "cut short by the stop", url: "memory://"))
                default: continue
                }
            }
            return nil
        }
        if let fault { throw fault }
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
    }

    /// The keys the target holds, and one bucket.
    public var keys: [String] { state.withLock { $0.buckets.keys.sorted() } }
    public func bucket(_ key: String) -> Bucket? { state.withLock { $0.buckets[key] } }
    /// The keys of each request, in order.
    public var requests: [[String]] { state.withLock { $0.requests } }
}
