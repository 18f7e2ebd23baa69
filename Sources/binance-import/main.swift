import ArgumentParser
import Foundation
import KlineArchive

/// Exit codes: 0 done; 1 some work failed (an archive that does not decode); 2 bad usage.
struct BinanceImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "binance-import",
        abstract: "Load Binance public kline archives into MarketStore.",
        subcommands: [Inspect.self]
    )

    static func mainWithExitCodes() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as KlineDecodeError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            Foundation.exit(1)
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

BinanceImport.mainWithExitCodes()
