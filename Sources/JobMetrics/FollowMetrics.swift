import Foundation

/// What `follow` counts, for /metrics, and what /healthz decides from.
package actor FollowMetrics {
    package let job: String
    package let started = Date().timeIntervalSince1970
    /// The writer's counters: the writer alone counts writes and their errors.
    private var writes = WriteCounters()
    private var reconnects = 0
    private var duplicates = 0
    private var malformedFrames = 0
    private var gapFills = 0
    private var restWeight = 0
    /// Seconds from a closed kline's arrival to its acknowledgement by MarketStore.
    package static let lagBuckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30]
    private var lagCounts = [Int](repeating: 0, count: FollowMetrics.lagBuckets.count)
    private var lagSum = 0.0
    private var lagCount = 0
    private var connected: [String: Bool] = [:]
    private var lastClosedArrival: [String: Double] = [:]
    private var marketstoreReachable = true

    package init(job: String, connections: [String]) {
        self.job = job
        for c in connections { connected[c] = false }
    }

    /// The writer's counters (live klines and gap fills alike).
    package func sync(_ counters: WriteCounters) { writes = counters }

    package func written(lags: [Double]) {
        for lag in lags {
            lagSum += lag
            lagCount += 1
            if let i = Self.lagBuckets.firstIndex(where: { lag <= $0 }) { lagCounts[i] += 1 }
        }
    }

    package func closedArrived(key: String) { lastClosedArrival[key] = Date().timeIntervalSince1970 }
    package func duplicate() { duplicates += 1 }
    package func malformedFrame() { malformedFrames += 1 }
    /// A gap fill, with the REST client's weight used so far.
    package func gapFilled(restWeight: Int) {
        gapFills += 1
        self.restWeight = restWeight
    }
    package func connection(_ url: String, up: Bool) {
        if up == false && connected[url] == true { reconnects += 1 }
        connected[url] = up
    }
    package func marketstore(reachable: Bool) { marketstoreReachable = reachable }
    package var marketstoreUp: Bool { marketstoreReachable }

    /// Healthy when MarketStore answers, every stream connection is up and every key's newest
    /// closed kline arrived less than `staleAfter` seconds ago (counted from the start until the
    /// first one).
    package func health(keys: [String], staleAfter: Double) -> (healthy: Bool, json: String) {
        let now = Date().timeIntervalSince1970
        let stale = keys.filter { now - (lastClosedArrival[$0] ?? started) > staleAfter }.sorted()
        let down = connected.filter { !$0.value }.map(\.key).sorted()
        let healthy = marketstoreReachable && down.isEmpty && stale.isEmpty
        let report: [String: Any] = ["status": healthy ? "ok" : "unhealthy", "marketstore_reachable": marketstoreReachable,
                                     "streams_down": down, "stale_keys": stale, "stale_after_seconds": staleAfter]
        let json = (try? JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return (healthy, json)
    }

    package func text() -> String {
        let job = [("job", self.job)]
        var m = MetricsText()
        m.addWrites(job: job, writes)
        m.add("binance_import_stream_reconnects_total", "counter", "Stream connections lost and made again.", [(job, Double(reconnects))])
        m.add("binance_import_stream_duplicates_total", "counter", "Closed klines received again and dropped.", [(job, Double(duplicates))])
        m.add("binance_import_stream_malformed_frames_total", "counter", "Frames that were not a valid event, skipped.", [(job, Double(malformedFrames))])
        m.add("binance_import_gap_fills_total", "counter", "REST fills of a possible gap (after a reconnect, a stall or an outage).", [(job, Double(gapFills))])
        m.add("binance_import_rest_weight_used_total", "counter", "Documented REST weight used.", [(job, Double(restWeight))])
        m.add("binance_import_streams_connected", "gauge", "Stream connections up.", [(job, Double(connected.values.filter { $0 }.count))])
        m.add("binance_import_marketstore_up", "gauge", "MarketStore answered the last check.", [(job, marketstoreReachable ? 1 : 0)])
        var cumulative = 0
        var buckets: [([(String, String)], Double)] = []
        for (i, bound) in Self.lagBuckets.enumerated() {
            cumulative += lagCounts[i]
            buckets.append((job + [("le", MetricsText.number(bound))], Double(cumulative)))
        }
        buckets.append((job + [("le", "+Inf")], Double(lagCount)))
        m.addHistogram("binance_import_write_lag_seconds", "From a closed kline's arrival to its acknowledgement by MarketStore.",
                       buckets: buckets, sum: (job, lagSum), count: (job, Double(lagCount)))
        return m.text
    }
}

extension MetricsText {
    /// A histogram: its `_bucket` samples (cumulative, `le` labels), `_sum` and `_count`.
    package mutating func addHistogram(_ name: String, _ help: String, buckets: [([(String, String)], Double)],
                               sum: ([(String, String)], Double), count: ([(String, String)], Double)) {
        appendRaw("# HELP \(name) \(help)")
        appendRaw("# TYPE \(name) histogram")
        for (labels, value) in buckets { appendRaw(Self.sample(name + "_bucket", labels, value)) }
        appendRaw(Self.sample(name + "_sum", sum.0, sum.1))
        appendRaw(Self.sample(name + "_count", count.0, count.1))
    }
}
