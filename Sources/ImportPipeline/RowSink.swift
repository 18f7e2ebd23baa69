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
    func write(_ dataset: WriteDataSet) async throws
}

extension SchemaGuard: RowSink {}

/// The directory sink behind the same interface (its errors are refusals of the rows, like a
/// server's).
package struct DirectorySink: RowSink {
    package let writer: DirectoryWriter
    /// The file writes' thread (one request is written at a time).
    package let thread = DispatchQueue(label: "binance-import.directory-writes")
    package func write(_ dataset: WriteDataSet) async throws {
        let writer = self.writer
        try await onThread(thread) { try writer.write(dataset) }
    }
}
