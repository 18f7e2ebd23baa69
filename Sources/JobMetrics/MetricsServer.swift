import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1 server on SwiftNIO for `follow`'s /healthz and /metrics: each GET (or HEAD) is
/// answered by `respond(path)` and the connection closed; other methods get 405. A connection
/// that sends nothing for `idleTimeout` is closed, so idle clients cannot hold sockets open.
package struct MetricsServer {
    package typealias Responder = @Sendable (String) async -> (status: Int, contentType: String, body: String)

    /// Binds `host:port` (port 0: any) and returns the bound port and the task that serves.
    package static func start(host: String, port: Int, idleTimeout: TimeAmount = .seconds(10), logger: Logger,
                      respond: @escaping Responder) async throws -> (port: Int, serving: Task<Void, Never>) {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(CloseWhenIdle())
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        let bound = server.channel.localAddress?.port ?? port
        let serving = Task<Void, Never> {
            do {
                try await server.executeThenClose { connections in
                    try await withThrowingDiscardingTaskGroup { group in
                        for try await connection in connections {
                            group.addTask {
                                do {
                                    try await answer(connection, respond)
                                } catch {
                                    // One client's broken connection is its own; the server goes on.
                                    logger.debug("metrics server: a connection ended with \(error)")
                                }
                            }
                        }
                    }
                }
            } catch is CancellationError {
                // follow is stopping
            } catch {
                logger.error("metrics server on \(host):\(bound) stopped: \(error)")
            }
        }
        return (bound, serving)
    }

    private static func answer(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, _ respond: Responder) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var request: HTTPRequestHead?
            for try await part in inbound {
                switch part {
                case let .head(head): request = head
                case .body: continue
                case .end:
                    let method = request?.method ?? .GET
                    var (status, type, body) = (405, "text/plain", "method not allowed: GET or HEAD\n")
                    if method == .GET || method == .HEAD {
                        (status, type, body) = await respond(String((request?.uri ?? "/").prefix { $0 != "?" }))
                    }
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Type", value: type)
                    headers.add(name: "Content-Length", value: String(body.utf8.count))
                    headers.add(name: "Connection", value: "close")
                    if status == 405 { headers.add(name: "Allow", value: "GET, HEAD") }
                    try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)))
                    if method != .HEAD { try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body)))) }
                    try await outbound.write(.end(nil))
                    return
                }
            }
        }
    }
}

/// Closes a connection when IdleStateHandler says it was idle.
private final class CloseWhenIdle: ChannelInboundHandler, Sendable {
    package typealias InboundIn = NIOAny

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
