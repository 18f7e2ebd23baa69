import Prometheus

/// A job's metrics in a Prometheus registry (swift-prometheus, whose metrics are swift-metrics
/// handlers), exposed in the text format (0.0.4) that /metrics and node_exporter's textfile
/// collector read. Every metric carries the job's label; registering a name and labels again
/// returns the same metric.
package struct Exposition: Sendable {
    package let registry = PrometheusCollectorRegistry()
    private let job: [(String, String)]

    package init(job: String) { self.job = [("job", job)] }

    package func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Counter {
        registry.makeCounter(name: name, labels: job + labels, help: help)
    }

    package func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(name: name, labels: job + labels, help: help)
    }

    package func histogram(_ name: String, _ help: String, buckets: [Double]) -> ValueHistogram {
        registry.makeValueHistogram(name: name, labels: job, buckets: buckets, help: help)
    }

    /// The exposition text.
    package var text: String { registry.emitToString() }
}

extension Exposition {
    /// The write metrics `run` (its metrics file) and `follow` (/metrics) share: what `counters`
    /// counted beyond `previous` is added (a run adds its whole count; follow what was counted
    /// since its last sync). Every error kind is exposed, counted or not.
    package func addWrites(_ counters: WriteCounters, since previous: WriteCounters = WriteCounters()) {
        let rows = "binance_import_rows_written_total", rowsHelp = "Rows acknowledged by the target."
        let requests = "binance_import_write_requests_total"
        let requestsHelp = "Write requests sent (per key: acknowledged ones that carried its rows)."
        counter(rows, rowsHelp).increment(by: growth(counters.rowsByKey.values.reduce(0, +), previous.rowsByKey.values.reduce(0, +)))
        for (key, n) in counters.rowsByKey { counter(rows, rowsHelp, [("key", key)]).increment(by: growth(n, previous.rowsByKey[key])) }
        counter(requests, requestsHelp).increment(by: growth(counters.requests, previous.requests))
        for (key, n) in counters.requestsByKey { counter(requests, requestsHelp, [("key", key)]).increment(by: growth(n, previous.requestsByKey[key])) }
        for kind in WriteErrorKind.allCases {
            counter("binance_import_write_errors_total", "Write requests refused or failed, by kind.", [("kind", kind.rawValue)])
                .increment(by: growth(counters.errorsByKind[kind] ?? 0, previous.errorsByKind[kind]))
        }
        for (key, time) in counters.lastWriteByKey {
            gauge("binance_import_last_write_timestamp_seconds", "When the target last acknowledged rows of the key (UTC).", [("key", key)]).set(time)
        }
    }

    /// A counter only grows: the part of `now` beyond `before`.
    private func growth(_ now: Int, _ before: Int?) -> Int64 { Int64(max(0, now - (before ?? 0))) }
}
