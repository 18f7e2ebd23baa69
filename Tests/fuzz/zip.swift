// libFuzzer target: the zip reader and the whole archive decoder, both inflaters, on any bytes.
// Any thrown KlineDecodeError is a clean refusal; a trap or an ASan report is a finding.
import Foundation
@testable import KlineArchive

// The decoder reads the interval and period from the file name: a folder of its own per process.
let path: String = {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-zip-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent("BTCUSDT-1m-2024-01-01.zip").path
}()
var round = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FileManager.default.createFile(atPath: path, contents: Data(bytes: data, count: size))
    round += 1
    do {
        _ = try KlineArchiveDecoder.decode(path: path, options: .init(inflater: round % 2 == 0 ? .isal : .zlib))
    } catch is KlineDecodeError {
    } catch {
        fatalError("not a decode error: \(error)")
    }
    return 0
}
