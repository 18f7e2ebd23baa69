import ArgumentParser
import Foundation
import ImportPipeline
import JobModel

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Whether the sources agree: each done monthly kline archive against its month's daily archives, row by row, and the target against the state.",
        discussion: "Downloads the daily archives into the cache. Keeps each archive's result beside the state (<manifest>.audit.json) with the checksums it "
            + "was made from, so a re-run audits only what changed or was not audited yet. Exit 1 on any disagreement.")
    @OptionGroup var options: JobOptions
    @Option(help: "Audit at most N monthly archives, spread over the job's.") var sample: Int?
    @Option(help: "Also compare N days of the job's archives (spread over them) with Binance's REST klines, within the job's REST weight budget.") var rest: Int = 0
    @Option(help: "Also compare N of the job's kline archives (spread over them) with bars rebuilt from the raw trades archives of the same periods.") var trades: Int = 0
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let spec = try options.load()
        if let sample, sample < 1 { throw ValidationError("--sample must be at least 1") }
        if rest < 0 { throw ValidationError("--rest must be 0 or more") }
        let report = try await Auditor(spec: spec, logger: options.logger("binance-import")).audit(sample: sample, restDays: rest, tradeDays: trades)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            for d in report.disagreements.prefix(200) { print("DISAGREE \(d)") }
            if report.disagreements.count > 200 { print("... and \(report.disagreements.count - 200) more (--json lists them all)") }
            for path in report.tradesNotPublished { print("not compared (no trades archive): \(path)") }
            for (unit, days) in report.daysWithoutDaily.sorted(by: { $0.key < $1.key }) {
                print("not compared (no daily archive): \(unit): \(days.count) day(s), \(days.prefix(5).joined(separator: ", "))\(days.count > 5 ? ", ..." : "")")
            }
            print("audited \(report.auditedNow.count + report.reused.count) monthly archive(s) against their dailies (\(report.reused.count) unchanged since the last audit), "
                  + "\(report.unitsChecked) unit(s) against the target: \(report.disagreements.isEmpty ? "all agree" : "\(report.disagreements.count) disagreement(s)")")
        }
        if !report.disagreements.isEmpty { throw ExitCode(1) }
    }
}
