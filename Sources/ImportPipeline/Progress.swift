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

/// Counters of a run and the progress display: a live line on a TTY, a log line every few
/// seconds otherwise.
package actor Progress {
    private(set) var total: Int
    package let live: Bool
    package let logger: Logger
    package let started = Date()
    private(set) var done = 0, failedCount = 0, notPublishedCount = 0, rows = 0, anomalies = 0, downloads = 0, bytes: UInt64 = 0
    private(set) var failures: [String: String] = [:]

    package init(total: Int, live: Bool, logger: Logger) {
        self.total = total
        self.live = live
        self.logger = logger
    }

    /// Conventions applied by rule, by kind (see `UnitFacts.adjustments`).
    private(set) var adjustments: [String: Int] = [:]

    package func unitDone(rows: Int, anomalies: Int, bytes: UInt64, adjustments: [String: Int] = [:]) {
        self.adjustments.merge(adjustments, uniquingKeysWith: +)
        done += 1
        self.rows += rows
        self.anomalies += anomalies
        self.bytes += bytes
    }

    package func failed(_ id: String, _ message: String) {
        failedCount += 1
        failures[id] = message
    }

    /// Units found during the run (the daily archives that repair a monthly's holes).
    package func add(units: Int) { total += units }

    package func notPublished() { notPublishedCount += 1 }
    package func downloaded() { downloads += 1 }

    package func counts() -> (done: Int, failed: Int, notPublished: Int, rows: Int, anomalies: Int, downloads: Int, failures: [String: String],
                              adjustments: [String: Int]) {
        (done, failedCount, notPublishedCount, rows, anomalies, downloads, failures, adjustments)
    }

    package var line: String {
        let elapsed = max(0.001, Date().timeIntervalSince(started))
        let finished = done + failedCount + notPublishedCount
        let rate = Double(rows) / elapsed
        let eta = finished > 0 ? elapsed / Double(finished) * Double(total - finished) : 0
        return String(format: "units %d/%d (failed %d)  rows %d  %.1f MB  %.0f rows/s  ETA %.0f s",
                      finished, total, failedCount, rows, Double(bytes) / 1e6, rate, eta)
    }

    package func tick() async {
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: live ? 1_000_000_000 : 5_000_000_000)
            if Task.isCancelled { break }
            if live { FileHandle.standardError.write(Data(("\r\u{1B}[2K" + line).utf8)) } else { logger.info("\(line)") }
        }
    }

    package func finish() {
        if live { FileHandle.standardError.write(Data(("\r\u{1B}[2K" + line + "\n").utf8)) }
    }
}
