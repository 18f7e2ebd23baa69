import Columnar
import DurableFiles
import Foundation
import JobMetrics
import JobModel
import JobState
import MarketStoreModel

extension RunSummary {
    /// The summary's write counters, as the writer counted them.
    package var writes: WriteCounters {
        var w = WriteCounters()
        w.requests = writeRequests
        w.rowsByKey = rowsByKey
        w.requestsByKey = requestsByKey
        w.lastWriteByKey = lastWriteByKey
        for (kind, n) in writeErrors { if let k = WriteErrorKind(rawValue: kind) { w.errorsByKind[k] = n } }
        return w
    }

    /// The run's counters as a metrics file: what a scheduled batch reports to the same
    /// dashboards as `follow` (README: Operations, metrics).
    public func metrics() -> String {
        let m = Exposition(job: job)
        m.addWrites(writes)
        for (outcome, n) in [("done", done), ("failed", failed), ("skipped", skipped), ("not_published", notPublished), ("superseded", superseded)] {
            m.gauge("binance_import_units", "Units of the last run by outcome.", [("outcome", outcome)]).set(Double(n))
        }
        m.counter("binance_import_rest_requests_total", "REST requests made (to: now).").increment(by: Int64(restRequests))
        m.counter("binance_import_rest_weight_used_total", "Documented REST weight of those requests.").increment(by: Int64(restWeight))
        m.gauge("binance_import_rest_used_weight_1m_max", "Highest X-MBX-USED-WEIGHT-1M seen.").set(Double(restMaxUsedWeight1m))
        m.gauge("binance_import_run_duration_seconds", "How long the last run took.").set(seconds)
        m.gauge("binance_import_run_exit_code", "The last run's exit code (0 all done, 1 some units failed, 3 target unreachable).").set(Double(exitCode))
        m.gauge("binance_import_run_timestamp_seconds", "When the last run started (UTC).")
            .set((try? Date(startedAt, strategy: .iso8601))?.timeIntervalSince1970 ?? 0)
        return m.text
    }
}
