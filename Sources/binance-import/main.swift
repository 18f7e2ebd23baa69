import ArgumentParser
import DurableFiles
import Foundation
import FuturesArchive
import ImportPipeline
import JobModel
import KlineArchive
import MarketStoreDirectory

/// The version `--version` prints.
let binanceImportVersion = "0.17.0"

/// Exit codes: 0 all done; 1 some units failed (or an archive that does not decode); 2 bad
/// usage or job file; 3 target unreachable or refused everything.
struct BinanceImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "binance-import",
        abstract: "Load Binance's public market data (klines, funding rates, futures metrics) into MarketStore.",
        version: binanceImportVersion,
        subcommands: [Run.self, Nightly.self, Follow.self, Status.self, Verify.self, Inspect.self, Show.self, Forget.self, Rebuild.self, Audit.self, Card.self, UniverseCommand.self]
    )

    static func mainWithExitCodes() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as KlineDecodeError {
            fatal(error.description, code: 1)
        } catch let error as FuturesDecodeError {
            fatal(error.description, code: 1)
        } catch let error as JobFileError {
            fatal(error.description, code: 2)
        } catch let error as JobLockError {
            fatal(error.description, code: 2)
        } catch let error as FileWriteError {
            // State that cannot be written (a full disk): nothing was lost; re-run when there is room.
            fatal(error.description, code: 1)
        } catch let error as TargetUnavailable {
            fatal(error.description, code: 3)
        } catch {
            let code = exitCode(for: error)
            // --help, --version.
            if code == .success { exit(withError: error) }
            // An ExitCode a command chose (it said why).
            if error is ExitCode { Foundation.exit(code.rawValue) }
            // Any other failure of a command: its message (as JSON too where the command speaks it).
            if code == ExitCode(1) { fatal("\(error)", code: 1) }
            // Usage errors: ArgumentParser's message, exit code 2.
            fatal(fullMessage(for: error), code: 2, prefix: "")
        }
    }

    /// A command whose standard output is JSON (`nightly`, `--log-format json`, `--json`): a
    /// fatal error is one JSON object there too, so a CI step parses every outcome.
    static var speaksJSON: Bool {
        let args = Array(CommandLine.arguments.dropFirst())
        return args.first == "nightly" || args.contains("--json") || args.contains("--log-format=json")
            || zip(args, args.dropFirst()).contains { $0 == "--log-format" && $1 == "json" }
    }

    /// The message on stderr (and as JSON on stdout where the command speaks JSON), then exit.
    static func fatal(_ message: String, code: Int32, prefix: String = "error: ") -> Never {
        FileHandle.standardError.write(Data((prefix + message + "\n").utf8))
        if speaksJSON {
            let object: [String: Any] = ["exit_code": Int(code), "error": message]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
            print(String(decoding: data, as: UTF8.self))
        }
        Foundation.exit(code)
    }
}

BatchMemory.reuseFreedBatches()
await BinanceImport.mainWithExitCodes()
