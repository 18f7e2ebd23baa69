// libFuzzer target: the bounded msgpack decoder on any bytes.
import MsgPack

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do {
        _ = try MsgPackReader.decode(Array(UnsafeBufferPointer(start: data, count: size)))
    } catch is MsgPackDecodeError {
    } catch {
        fatalError("not a decode error: \(error)")
    }
    return 0
}
