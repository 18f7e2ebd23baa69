import Columnar
import CurlHTTP
import DurableFiles
import Foundation
import JobMetrics
import JobModel
import JobState
import KlineArchive
import Logging
import MarketStore
import MarketStoreDirectory
import MarketStoreModel

/// Where the writer sends its requests: a MarketStore server (through the schema guard) or a
/// data directory.
public protocol RowSink: Sendable {
    /// Writes rows to fixed-length buckets (a row written again replaces itself).
    func write(_ dataset: WriteDataSet) async throws
    /// Appends records to variable-length buckets (trades: a record written again is there twice).
    func append(_ dataset: WriteDataSet) async throws
    /// The records a key holds with epochs in [from, to] (inclusive); nil when the key does not
    /// exist. What reconciles an append-only unit that may be partly written.
    func records(key: String, from: Int64, to: Int64) async throws -> QueryResult?
    /// Removes a key and all its rows (`rebuild`); a key that does not exist is not an error.
    func destroy(key: String) async throws
    /// Whether an append can still land after its caller died (a server goes on applying a
    /// request whose client is gone; files written in-process stop with the process). When it
    /// can, the writer records each append until answered (`InFlightAppends`).
    var appendsOutliveTheCaller: Bool { get }
}

extension RowSink {
    public var appendsOutliveTheCaller: Bool { true }
}

extension SchemaGuard: RowSink {}

/// The directory sink behind the same interface (its errors are refusals of the rows, like a
/// server's).
package struct DirectorySink: RowSink {
    package let writer: DirectoryWriter
    /// The file writes' thread (one request is written at a time).
    package let thread = DispatchQueue(label: "binance-import.directory-writes")
    package var appendsOutliveTheCaller: Bool { false }
    package func write(_ dataset: WriteDataSet) async throws {
        let writer = self.writer
        try await onThread(thread) { try writer.write(dataset) }
    }

    package func append(_ dataset: WriteDataSet) async throws {
        let writer = self.writer
        try await onThread(thread) { try writer.append(dataset) }
    }

    package func records(key: String, from: Int64, to: Int64) async throws -> QueryResult? {
        let root = writer.root
        return try await onThread(thread) {
            try DirectoryReader(root: root).read(key: key, from: from, to: to).map { QueryResult(key: key, names: $0.names, columns: $0.columns) }
        }
    }

    /// The key's folder and its year files.
    package func destroy(key: String) async throws {
        guard let bucket = BucketKey(key) else { throw DirectoryError.badKey(key) }
        let folder = [writer.root, bucket.symbol, bucket.timeframe, bucket.attributeGroup].joined(separator: "/")
        guard FileManager.default.fileExists(atPath: folder) else { return }
        try FileManager.default.removeItem(atPath: folder)
    }
}
