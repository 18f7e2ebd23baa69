import Foundation
import JobModel
import JobState
import MarketStore
import MarketStoreDirectory

/// `rebuild`: a key whose rows cannot be fixed in place (a trades bucket appends, and a
/// re-published archive changed a trade: MarketStore has no delete of a range) is destroyed, and
/// its units that wrote rows are recorded `writing`, so the next run writes them whole (a
/// `writing` unit is reconciled against what the key holds: nothing).
package enum KeyRebuild {
    /// The units of `key` whose rows the target holds (done or writing), by id.
    package static func units(of key: String, in manifest: Manifest) -> [UnitRecord] {
        manifest.units.values.filter { $0.key == key && [.done, .writing].contains($0.status) }.sorted { $0.id < $1.id }
    }

    /// Rebuilds `key` of the job: its units marked, then the key destroyed, under the job's lock.
    /// Returns the units marked.
    @discardableResult
    package static func run(spec: JobSpec, key: String, sink: (any RowSink)? = nil) async throws -> [UnitRecord] {
        guard try spec.symbols.map({ try $0.flatMap { try spec.keys(symbol: $0) }.contains(key) }) ?? true else {
            throw JobFileError(file: spec.file, key: "--key", reason: "\(key) is not a key of this job")
        }
        let units = units(of: key, in: try Manifest.load(path: spec.manifest, job: spec.name))
        let target = try sink ?? makeSink(spec)
        try await StateRecorder.rebuilding(ids: units.map(\.id), manifest: spec.manifest) { try await target.destroy(key: key) }
        return units
    }

    static func makeSink(_ spec: JobSpec) throws -> any RowSink {
        switch spec.target {
        case let .marketstore(url): return SchemaGuard(client: MarketStoreClient(url: url, caFile: spec.caFile))
        case let .directory(path): return DirectorySink(writer: try DirectoryWriter(root: path))
        }
    }
}
