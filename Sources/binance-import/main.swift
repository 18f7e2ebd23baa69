import ArgumentParser
import Foundation
import ImportJob
import KlineArchive
import MarketStoreDirectory

/// Exit codes: 0 all done; 1 some units failed (or an archive that does not decode); 2 bad
/// usage or job file; 3 target unreachable or refused everything.
struct BinanceImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "binance-import",
        abstract: "Load Binance public kline archives into MarketStore.",
        subcommands: [Run.self, Nightly.self, Follow.self, Status.self, Verify.self, Inspect.self, Show.self]
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
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            Foundation.exit(1)
        } catch let error as JobFileError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            Foundation.exit(2)
        } catch let error as FileWriteError {
            // State that cannot be written (a full disk): nothing was lost; re-run when there is room.
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            Foundation.exit(1)
        } catch let error as TargetUnavailable {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            Foundation.exit(3)
        } catch {
            let code = exitCode(for: error)
            if code == .success || code == ExitCode(1) && !(error is ExitCode) {
                // --help, --version, or an ExitCode a command chose.
                exit(withError: error)
            }
            if error is ExitCode { Foundation.exit(code.rawValue) }
            // Usage errors: ArgumentParser's message, exit code 2.
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
    }
}

await BinanceImport.mainWithExitCodes()
