import Foundation
import KlineArchive
import TestSupport
import XCTest

@testable import Follow
@testable import ImportPipeline
@testable import JobModel

/// Stops by signal end through the StopRequest and cancellation alone, leave the signal
/// dispositions as they found them, and give 128 + the signal as the exit code (issue 32).
final class LifecycleTests: XCTestCase {
    static func disposition(_ sig: Int32) -> Int {
        let current = signal(sig, SIG_DFL)
        signal(sig, current)
        return unsafeBitCast(current, to: Int.self)
    }

    /// After `withStopOnSignals` the process's SIGINT and SIGTERM are what they were before.
    func testSignalDispositionsAreRestoredAfterTheWork() async throws {
        let before = [SIGINT, SIGTERM].map(Self.disposition)
        let value = try await withStopOnSignals(StopRequest(), logger: .init(label: "test"), saying: "stopping") { 7 }
        XCTAssertEqual(value, 7)
        XCTAssertEqual([SIGINT, SIGTERM].map(Self.disposition), before, "SIG_IGN left behind")
    }

    /// Work that takes longer than 10 s after the signal to return (a write the server is slow
    /// to acknowledge, not cancellable) returns its value: no timer ends the process.
    func testASlowStopIsNotCutShortByATimer() async throws {
        let stop = StopRequest()
        let started = Date()
        let value = try await withStopOnSignals(stop, logger: .init(label: "test"), saying: "stopping") { () -> Int in
            kill(getpid(), SIGTERM)
            // Not cancellable: a blocking wait on another thread.
            await withCheckedContinuation { continuation in
                DispatchQueue.global().asyncAfter(deadline: .now() + 11) { continuation.resume() }
            }
            return 42
        }
        XCTAssertEqual(value, 42)
        XCTAssertEqual(stop.exitCode, 143)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 11)
    }
}

extension ImportJobTests {
    /// `follow` stopped by a signal while it catches up exits 128 + the signal, as `run` does
    /// (it exited 1, which a supervisor reads as a failure to restart on).
    func testFollowStoppedDuringItsCatchUpGivesTheSignalsExitCode() async throws {
        let path = try job("follow-stopped", symbols: ["BTCUSDT"], intervals: ["1m"], from: "2024-02", to: "2024-02")
        let spec = try JobSpec.load(path: path)
        let stop = StopRequest()
        stop.request(signal: SIGTERM)
        var options = FollowOptions(today: ArchivePeriod(day: "2024-03-05")!)
        options.metricsPort = 0
        let code = try await Follower(spec: spec, logger: .init(label: "test"), stop: stop).run(options)
        XCTAssertEqual(code, 143)
    }
}

/// REST's funding history has no interval: it is derived so that a month served by REST stores
/// what the archive would (issue 32): the hours since the funding before, the new interval from
/// the first funding after a change, and a schedule back on its grid (a 3 h step after hourly
/// fundings) given the interval it returns to.
final class FundingIntervalTests: XCTestCase {
    func testIntervalsDerivedFromFundingTimesReadAsTheArchivesDo() {
        // 8 h, a change to 4 h, a capped rate's hourly funding, back on the 4 h grid with a 3 h step.
        let hours: [Int64] = [0, 8, 16, 24, 28, 32, 33, 36, 40]
        XCTAssertEqual(ImportRunner.fundingIntervals(hours), [8, 8, 8, 8, 4, 4, 1, 4, 4])
        // A missing funding (a 16 h step) takes the interval before it; a lone funding 8.
        XCTAssertEqual(ImportRunner.fundingIntervals([0, 8, 24, 32]), [8, 8, 8, 8])
        XCTAssertEqual(ImportRunner.fundingIntervals([5]), [8])
    }
}
