// libFuzzer target: the CSV parser fed through the decoder's loop in pieces of 1-64 bytes (the
// first input byte chooses the piece size), so lines straddle buffer refills, or whole (a first
// byte of 192 or more), so that the row kernel reads rows with its span after them.
import Foundation
@testable import KlineArchive

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let pieces = data[0] >= 192 ? size : Int(data[0] % 64) + 1
    let input = UnsafeBufferPointer(start: data + 1, count: size - 1)
    let parser = KlineCSVParser<Float>(archive: "fuzz", columns: KlineColumn.allCases, intervalSeconds: 60,
                                       period: ArchivePeriod(year: 2024, month: 1, day: 1), reserve: 16)
    var offset = 0
    do {
        try KlineArchiveDecoder.run(archive: "fuzz", parser, chunkRows: 2, bufferSize: 4096, read: { buffer, capacity in
            let n = min(capacity, pieces, input.count - offset)
            if n > 0 { memcpy(buffer, input.baseAddress! + offset, n) }
            offset += n
            return n
        }) { _ in }
        var report = KlineReport(archive: "fuzz", member: "fuzz", interval: "1m")
        parser.finishReport(into: &report)
    } catch is KlineDecodeError {
    } catch {
        fatalError("not a decode error: \(error)")
    }
    return 0
}
