import CIsal
import CZlib

/// Which library inflates deflated zip members. Both stream through the caller's fixed buffer.
public enum InflateEngine: String, Sendable, CaseIterable {
    /// Intel's ISA-L igzip (libisal): about 2.4x zlib's speed on kline CSV, with a CRC-32 that uses
    /// the CPU's carry-less multiply. The default.
    case isal
    /// zlib: the reference implementation, and the decode benchmark's baseline.
    case zlib
}

extension InflateEngine {
    /// CRC-32 (the zip/gzip polynomial) of `count` more bytes, continuing from `crc`.
    func crc32(_ crc: UInt32, _ bytes: UnsafePointer<UInt8>, count: Int) -> UInt32 {
        switch self {
        case .isal: return crc32_gzip_refl(crc, bytes, UInt64(count))
        case .zlib: return UInt32(truncatingIfNeeded: CZlib.crc32(UInt(crc), bytes, UInt32(count)))
        }
    }
}

/// One raw deflate stream (no zlib/gzip wrapper), fed compressed bytes and drained into the
/// caller's buffer, behind the same small interface for both engines.
final class RawInflater {
    private enum Stream {
        case isal(UnsafeMutablePointer<inflate_state>)
        case zlib(UnsafeMutablePointer<z_stream>)
    }
    private let stream: Stream

    init(engine: InflateEngine) throws(RawInflateError) {
        switch engine {
        case .isal:
            let state = UnsafeMutablePointer<inflate_state>.allocate(capacity: 1)
            isal_inflate_init(state)
            state.pointee.crc_flag = UInt32(ISAL_DEFLATE)
            state.pointee.hist_bits = 0  // the full 32 KiB window
            stream = .isal(state)
        case .zlib:
            let z = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            z.initialize(to: z_stream())
            let rc = inflateInit2_(z, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
            guard rc == Z_OK else {
                z.deallocate()
                throw RawInflateError(reason: "inflateInit2 failed (\(rc))")
            }
            stream = .zlib(z)
        }
    }

    deinit {
        switch stream {
        case let .isal(state): state.deallocate()
        case let .zlib(z):
            inflateEnd(z)
            z.deallocate()
        }
    }

    /// Compressed bytes handed in and not consumed yet.
    var availableInput: Int {
        switch stream {
        case let .isal(state): return Int(state.pointee.avail_in)
        case let .zlib(z): return Int(z.pointee.avail_in)
        }
    }

    /// After the end of the stream: compressed bytes that were not part of it. igzip reads ahead
    /// into a 64-bit bit buffer, so whole bytes still there count as unused too (the bits short of
    /// a byte are the last byte's padding).
    var unusedInputAfterEnd: Int {
        switch stream {
        case let .isal(state): return Int(state.pointee.avail_in) + Int(max(0, state.pointee.read_in_length)) / 8
        case let .zlib(z): return Int(z.pointee.avail_in)
        }
    }

    /// Hands in the next compressed bytes; call only when `availableInput` is 0.
    func setInput(_ bytes: UnsafeMutablePointer<UInt8>, count: Int) {
        switch stream {
        case let .isal(state):
            state.pointee.next_in = bytes
            state.pointee.avail_in = UInt32(count)
        case let .zlib(z):
            z.pointee.next_in = bytes
            z.pointee.avail_in = UInt32(count)
        }
    }

    /// Inflates into `out` until it is full, the input runs out or the stream ends. Returns the
    /// bytes produced and whether the end-of-stream block was reached (and everything flushed).
    func inflate(into out: UnsafeMutablePointer<UInt8>, capacity: Int) throws(RawInflateError) -> (produced: Int, ended: Bool) {
        let room = UInt32(min(capacity, Int(UInt32.max)))
        switch stream {
        case let .isal(state):
            state.pointee.next_out = out
            state.pointee.avail_out = room
            let rc = isal_inflate(state)
            guard rc >= 0 else { throw RawInflateError(reason: RawInflater.isalMessage(rc)) }
            return (Int(room - state.pointee.avail_out), state.pointee.block_state == ISAL_BLOCK_FINISH)
        case let .zlib(z):
            z.pointee.next_out = out
            z.pointee.avail_out = room
            let rc = CZlib.inflate(z, Z_NO_FLUSH)
            // Z_BUF_ERROR only says that no progress was possible; the caller decides if that is a truncation.
            guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else {
                throw RawInflateError(reason: z.pointee.msg.map { String(cString: $0) } ?? "zlib error \(rc)")
            }
            return (Int(room - z.pointee.avail_out), rc == Z_STREAM_END)
        }
    }

    private static func isalMessage(_ rc: Int32) -> String {
        switch rc {
        case ISAL_INVALID_BLOCK: return "invalid deflate block"
        case ISAL_INVALID_SYMBOL: return "invalid deflate symbol"
        case ISAL_INVALID_LOOKBACK: return "invalid back-reference distance"
        default: return "igzip error \(rc)"
        }
    }
}

struct RawInflateError: Error {
    let reason: String
}
