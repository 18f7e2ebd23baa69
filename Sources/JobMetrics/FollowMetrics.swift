import Foundation
import Prometheus

/// What `follow` counts, for /metrics, and what /healthz decides from.
package actor FollowMetrics {
    package let job: String
    package let started = Date().timeIntervalSince1970
    private let exposition: Exposition
    /// The writer's counters as last synced: the writer alone counts writes and their errors.
    private var writes = WriteCounters()
    private let reconnects, duplicates, malformedFrames, gapFills, restWeight: Counter
    private var restWeightSeen = 0
    private let streamsConnected, marketstoreUpGauge: Gauge
    /// Seconds from a closed kline's arrival to its acknowledgement by MarketStore.
    package static let lagBuckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30]
    private let lag: ValueHistogram
    private var connected: [String: Bool] = [:]
    private var lastClosedArrival: [String: Double] = [:]
    private var marketstoreReachable = true

    package init(job: String, connections: [String]) {
        self.job = job
        let m = Exposition(job: job)
        exposition = m
        m.addWrites(WriteCounters())
        reconnects = m.counter("binance_import_stream_reconnects_total", "Stream connections lost and made again.")
        duplicates = m.counter("binance_import_stream_duplicates_total", "Closed klines received again and dropped.")
        malformedFrames = m.counter("binance_import_stream_malformed_frames_total", "Frames that were not a valid event, skipped.")
        gapFills = m.counter("binance_import_gap_fills_total", "REST fills of a possible gap (after a reconnect, a stall or an outage).")
        restWeight = m.counter("binance_import_rest_weight_used_total", "Documented REST weight used.")
        streamsConnected = m.gauge("binance_import_streams_connected", "Stream connections up.")
        marketstoreUpGauge = m.gauge("binance_import_marketstore_up", "MarketStore answered the last check.")
        marketstoreUpGauge.set(Double(1))
        lag = m.histogram("binance_import_write_lag_seconds", "From a closed kline's arrival to its acknowledgement by MarketStore.",
                          buckets: Self.lagBuckets)
        for c in connections { connected[c] = false }
    }

    /// The writer's counters (live klines and gap fills alike).
    package func sync(_ counters: WriteCounters) {
        exposition.addWrites(counters, since: writes)
        writes = counters
    }

    package func written(lags: [Double]) {
        for value in lags { lag.record(value) }
    }

    package func closedArrived(key: String) { lastClosedArrival[key] = Date().timeIntervalSince1970 }
    package func duplicate() { duplicates.increment() }
    package func malformedFrame() { malformedFrames.increment() }
    /// A gap fill, with the REST client's weight used so far.
    package func gapFilled(restWeight used: Int) {
        gapFills.increment()
        restWeight.increment(by: Int64(max(0, used - restWeightSeen)))
        restWeightSeen = max(restWeightSeen, used)
    }
    package func connection(_ url: String, up: Bool) {
        if up == false && connected[url] == true { reconnects.increment() }
        connected[url] = up
        streamsConnected.set(Double(connected.values.filter { $0 }.count))
    }
    package func marketstore(reachable: Bool) {
        marketstoreReachable = reachable
        marketstoreUpGauge.set(Double(reachable ? 1 : 0))
    }
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

    /// Seconds since each key's newest closed kline arrived (since the start, before the first).
    package func lags(keys: [String]) -> [String: Double] {
        let now = Date().timeIntervalSince1970
        return Dictionary(uniqueKeysWithValues: keys.map { ($0, now - (lastClosedArrival[$0] ?? started)) })
    }

    /// /metrics.
    package func text() -> String { exposition.text }
}
