import Foundation
import XCTest

/// What a test needs from the machine (python3 and its packages, the built binary, ../shared):
/// on CI (CI=true) its absence fails the test; elsewhere the test is skipped with the reason.
public func missing(_ why: String) -> Error {
    ServerProcess.mustStart ? ServerProcess.StartFailure(description: why) : XCTSkip(why)
}

extension ServerProcess {
    /// Starts a Python test server; one that cannot start fails on CI and skips elsewhere.
    public static func required(script: String, arguments: [String] = []) throws -> ServerProcess {
        do {
            return try ServerProcess(script: script, arguments: arguments)
        } catch let e as StartFailure {
            throw missing(e.description)
        }
    }
}

/// A new empty folder under the system's temporary directory, named after `prefix` and this
/// process; the test removes it.
public func makeTemporaryDirectory(_ prefix: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(getpid())-\(UUID().uuidString.prefix(6))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// A test case with a new empty folder of its own (`dir`) for each test, removed after it.
open class TemporaryDirectoryTestCase: XCTestCase {
    public var dir: URL!

    override open func setUpWithError() throws {
        try super.setUpWithError()
        dir = try makeTemporaryDirectory(String(describing: type(of: self)))
    }

    override open func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
        try super.tearDownWithError()
    }
}
