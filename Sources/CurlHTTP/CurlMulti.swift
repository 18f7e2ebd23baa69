import CCurl
import Foundation
import Synchronization

/// One libcurl multi handle that runs the transfers of many sessions on one thread, sharing their
/// connections: where a server speaks HTTP/2 (over TLS, as data.binance.vision does), concurrent
/// transfers to it are streams of one connection; where it speaks HTTP/1.1, each concurrent
/// transfer keeps a connection of its own alive, as separate sessions do. Each transfer keeps its
/// own timeouts and cancellation (they are options of its easy handle).
public final class CurlMulti: Sendable {
    private let engine: Engine

    public init() {
        _ = CurlSession.globalInit
        engine = Engine()
        let engine = self.engine
        let thread = Thread { engine.loop() }
        thread.name = "binance-import.curl-multi"
        thread.start()
    }

    deinit { engine.stop() }

    /// Runs the transfer an easy handle is set up for; `done` gets its result code on the multi's
    /// thread. The handle is the caller's again once `done` is called.
    func start(_ easy: OpaquePointer, done: @escaping @Sendable (CURLcode) -> Void) {
        engine.add(easy, done)
    }

    /// The loop: adds new transfers, drives them all, hands out the finished ones, and sleeps in
    /// curl_multi_poll until a socket is ready or a transfer is added (curl_multi_wakeup).
    private final class Engine: Sendable {
        // nonisolated(unsafe): the multi handle is only used on the loop's thread, except for
        // curl_multi_wakeup, which libcurl allows from any thread.
        nonisolated(unsafe) let multi: OpaquePointer
        /// An easy handle handed to the loop's thread (it is used by one thread at a time).
        struct Easy: @unchecked Sendable { let handle: OpaquePointer }
        struct Shared {
            var adding: [(Easy, @Sendable (CURLcode) -> Void)] = []
            var stopping = false
        }
        let shared = Mutex(Shared())

        init() {
            multi = OpaquePointer(curl_multi_init())
            // Streams of one HTTP/2 connection (libcurl's default since 7.62, set so it stays so).
            ccurl_multi_setopt_long(UnsafeMutableRawPointer(multi), CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
        }

        func add(_ easy: OpaquePointer, _ done: @escaping @Sendable (CURLcode) -> Void) {
            shared.withLock { $0.adding.append((Easy(handle: easy), done)) }
            curl_multi_wakeup(UnsafeMutableRawPointer(multi))
        }

        func stop() {
            shared.withLock { $0.stopping = true }
            curl_multi_wakeup(UnsafeMutableRawPointer(multi))
        }

        func loop() {
            let m = UnsafeMutableRawPointer(multi)
            var running: [OpaquePointer: @Sendable (CURLcode) -> Void] = [:]
            while true {
                let (adding, stopping) = shared.withLock { state in
                    defer { state.adding = [] }
                    return (state.adding, state.stopping)
                }
                for (added, done) in adding {
                    let easy = added.handle
                    let code = curl_multi_add_handle(m, UnsafeMutableRawPointer(easy))
                    if code == CURLM_OK {
                        running[easy] = done
                    } else {
                        done(CURLE_FAILED_INIT)
                    }
                }
                if stopping && running.isEmpty { break }
                var active: Int32 = 0
                curl_multi_perform(m, &active)
                var queued: Int32 = 0
                while let message = curl_multi_info_read(m, &queued) {
                    guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle else { continue }
                    let easy = OpaquePointer(handle)
                    let code = message.pointee.data.result
                    curl_multi_remove_handle(m, handle)
                    running.removeValue(forKey: easy)?(code)
                }
                // Progress callbacks (cancellation) and timeouts are checked at least every 100 ms.
                curl_multi_poll(m, nil, 0, 100, nil)
            }
            curl_multi_cleanup(m)
        }
    }
}
