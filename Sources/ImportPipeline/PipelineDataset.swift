import BinanceSource
import FuturesArchive
import JobModel
import JobState
import KlineArchive

/// The pipeline's side of a dataset (`Dataset` is the job's): how a run plans it, what the dry
/// run shows, how the plan is executed and the state settled, and what `status` plans. Each
/// dataset type conforms here; the planner and the runner ask the job's dataset and never which one it is.
/// Adding a dataset: its `Dataset` type (JobModel), its decoder, and its conformance here with
/// a plan type of its own.
protocol PipelineDataset: Dataset {
    func plan(_ planner: Planner, _ options: RunOptions, state: StateRecorder, binding: PlannedBinding,
              summary: inout RunSummary) async throws -> any PlannedWork
    /// The keys and units a run would plan now against a recorded state (for `status`).
    func plan(_ planner: Planner, today: ArchivePeriod, index: [String: UnitIndexEntry]) async throws -> (keys: [String], units: [any WorkUnit])
}

/// A run's plan, of whatever dataset: what it shows in a dry run and how it is carried out.
protocol PlannedWork {
    var workCount: Int { get }
    /// What the plan decided that the state keeps (recorded when the run goes on).
    var decisions: PlanDecisions { get }
    func printDryRun(_ runner: ImportRunner, summary: RunSummary)
    /// The work, then the state settled for the job's keys.
    func execute(_ runner: ImportRunner, state: StateRecorder, writer: Writer, progress: Progress, summary: inout RunSummary) async throws
}

extension KlineDataset: PipelineDataset {
    func plan(_ planner: Planner, _ options: RunOptions, state: StateRecorder, binding: PlannedBinding,
                      summary: inout RunSummary) async throws -> any PlannedWork {
        try await planner.plan(self, options, state: state, binding: binding, summary: &summary)
    }

    func plan(_ planner: Planner, today: ArchivePeriod, index: [String: UnitIndexEntry]) async throws -> (keys: [String], units: [any WorkUnit]) {
        let plan = try await planner.makePlan(self, symbols: try await planner.symbols(), today: today, index: index)
        return (plan.coverage.map(\.key), plan.units)
    }
}

extension PlannedKlineRun: PlannedWork {
    var workCount: Int { work.count }
    func printDryRun(_ runner: ImportRunner, summary: RunSummary) { runner.printDryRun(self, summary: summary) }
    func execute(_ runner: ImportRunner, state: StateRecorder, writer: Writer, progress: Progress, summary: inout RunSummary) async throws {
        let repairs = try await runner.execute(self, state: state, writer: writer, progress: progress, summary: &summary)
        try await runner.settle(self, repairs: repairs, state: state, progress: progress, summary: &summary)
    }
}

/// Funding rates and metrics share one plan (one cadence each, no repairs).
extension FuturesArchiveDataset {
    func plan(_ planner: Planner, _ options: RunOptions, state: StateRecorder, binding: PlannedBinding,
                      summary: inout RunSummary) async throws -> any PlannedWork {
        try await planner.planFutures(archives, options, state: state, binding: binding, summary: &summary)
    }

    func plan(_ planner: Planner, today: ArchivePeriod, index: [String: UnitIndexEntry]) async throws -> (keys: [String], units: [any WorkUnit]) {
        let plan = try await planner.makeFuturesPlan(archives, symbols: try await planner.symbols(), today: today, index: index)
        return (plan.keys, plan.units)
    }
}

extension FundingRates: PipelineDataset {}
extension FuturesMetrics: PipelineDataset {}

extension PlannedFuturesRun: PlannedWork {
    var workCount: Int { work.count }
    func printDryRun(_ runner: ImportRunner, summary: RunSummary) { runner.printDryRun(self, summary: summary) }
    func execute(_ runner: ImportRunner, state: StateRecorder, writer: Writer, progress: Progress, summary: inout RunSummary) async throws {
        try await runner.execute(self, state: state, writer: writer, progress: progress, summary: &summary)
        try await runner.closeState(keys: Set(plan.keys), binding: binding, state: state, progress: progress, summary: &summary)
    }
}

extension TradesDataset: PipelineDataset {
    func plan(_ planner: Planner, _ options: RunOptions, state: StateRecorder, binding: PlannedBinding,
              summary: inout RunSummary) async throws -> any PlannedWork {
        try await planner.planTrades(self, options, state: state, binding: binding, summary: &summary)
    }

    func plan(_ planner: Planner, today: ArchivePeriod, index: [String: UnitIndexEntry]) async throws -> (keys: [String], units: [any WorkUnit]) {
        let plan = try await planner.makeTradesPlan(self, symbols: try await planner.symbols(), today: today, index: index)
        return (plan.keys, plan.units)
    }
}

extension PlannedTradesRun: PlannedWork {
    var workCount: Int { work.count }
    func printDryRun(_ runner: ImportRunner, summary: RunSummary) { runner.printDryRun(self, summary: summary) }
    func execute(_ runner: ImportRunner, state: StateRecorder, writer: Writer, progress: Progress, summary: inout RunSummary) async throws {
        try await runner.execute(self, state: state, writer: writer, progress: progress, summary: &summary)
        try await runner.closeState(keys: Set(plan.keys), binding: binding, state: state, progress: progress, summary: &summary)
    }
}

extension JobSpec {
    /// The job's dataset as the pipeline serves it. Every `Dataset` type conforms above; one that
    /// does not is said, not crashed on.
    func pipelineDataset() throws -> any PipelineDataset {
        guard let dataset = dataset as? any PipelineDataset else {
            throw JobFileError(file: file, key: "dataset", reason: "\(dataset.name) has no import pipeline in this version")
        }
        return dataset
    }
}
