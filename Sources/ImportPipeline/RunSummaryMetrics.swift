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
        let job = [("job", self.job)]
        var m = MetricsText()
        m.addWrites(job: job, writes)
        m.add("binance_import_units", "gauge", "Units of the last run by outcome.",
              [("done", done), ("failed", failed), ("skipped", skipped), ("not_published", notPublished), ("superseded", superseded)]
                .map { (job + [("outcome", $0.0)], Double($0.1)) })
        m.add("binance_import_rest_requests_total", "counter", "REST requests made (to: now).", [(job, Double(restRequests))])
        m.add("binance_import_rest_weight_used_total", "counter", "Documented REST weight of those requests.", [(job, Double(restWeight))])
        m.add("binance_import_rest_used_weight_1m_max", "gauge", "Highest X-MBX-USED-WEIGHT-1M seen.", [(job, Double(restMaxUsedWeight1m))])
        m.add("binance_import_run_duration_seconds", "gauge", "How long the last run took.", [(job, seconds)])
        m.add("binance_import_run_exit_code", "gauge", "The last run's exit code (0 all done, 1 some units failed, 3 target unreachable).",
              [(job, Double(exitCode))])
        m.add("binance_import_run_timestamp_seconds", "gauge", "When the last run started (UTC).",
              [(job, (try? Date(startedAt, strategy: .iso8601))?.timeIntervalSince1970 ?? 0)])
        return m.text
    }
}
