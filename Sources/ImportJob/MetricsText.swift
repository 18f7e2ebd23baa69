import Foundation

/// Metrics in Prometheus' text exposition format (0.0.4), the format node_exporter's textfile
/// collector reads. Written by hand: a few counters and gauges do not need a metrics library.
struct MetricsText {
    private var lines: [String] = []

    /// One metric family: its HELP and TYPE lines, then a sample per label set.
    mutating func add(_ name: String, _ type: String, _ help: String, _ samples: [([(String, String)], Double)]) {
        guard !samples.isEmpty else { return }
        lines.append("# HELP \(name) \(help)")
        lines.append("# TYPE \(name) \(type)")
        for (labels, value) in samples { lines.append(Self.sample(name, labels, value)) }
    }

    mutating func appendRaw(_ line: String) { lines.append(line) }

    /// `name{label="value",...} number`.
    static func sample(_ name: String, _ labels: [(String, String)], _ value: Double) -> String {
        let text = labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
        return "\(name)\(text) \(number(value))"
    }

    var text: String { lines.joined(separator: "\n") + "\n" }

    /// Label values escape backslash, double quote and newline.
    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Go's ParseFloat spellings, which Prometheus reads: NaN, +Inf, -Inf (Swift prints nan, inf).
    static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v < 0 ? "-Inf" : "+Inf" }
        return v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}

extension MetricsText {
    /// The write counters `run`/`nightly` (metrics file) and `follow` (/metrics) share.
    mutating func addWrites(job: [(String, String)], _ w: WriteCounters) {
        add("binance_import_rows_written_total", "counter", "Rows acknowledged by the target.",
            [(job, Double(w.rowsByKey.values.reduce(0, +)))] + w.rowsByKey.sorted { $0.key < $1.key }.map { (job + [("key", $0.key)], Double($0.value)) })
        add("binance_import_write_requests_total", "counter", "Write requests sent (per key: acknowledged ones that carried its rows).",
            [(job, Double(w.requests))] + w.requestsByKey.sorted { $0.key < $1.key }.map { (job + [("key", $0.key)], Double($0.value)) })
        add("binance_import_write_errors_total", "counter", "Write requests refused or failed, by kind.",
            WriteErrorKind.allCases.map { (job + [("kind", $0.rawValue)], Double(w.errorsByKind[$0] ?? 0)) })
        add("binance_import_last_write_timestamp_seconds", "gauge", "When the target last acknowledged rows of the key (UTC).",
            w.lastWriteByKey.sorted { $0.key < $1.key }.map { (job + [("key", $0.key)], $0.value) })
    }
}

extension RunSummary {
    /// The summary's write counters, as the writer counted them.
    var writes: WriteCounters {
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
