import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1 server on SwiftNIO for `follow`'s /healthz and /metrics: each GET is answered
/// by `respond(path)` and the connection closed.
struct MetricsServer {
    typealias Responder = @Sendable (String) async -> (status: Int, contentType: String, body: String)

    /// Binds `host:port` (port 0: any) and returns the bound port and the task that serves.
    static func start(host: String, port: Int, respond: @escaping Responder) async throws -> (port: Int, serving: Task<Void, Never>) {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        let bound = server.channel.localAddress?.port ?? port
        let serving = Task<Void, Never> {
            _ = try? await server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        group.addTask { try? await answer(connection, respond) }
                    }
                }
            }
        }
        return (bound, serving)
    }

    private static func answer(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, _ respond: Responder) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var path = "/"
            for try await part in inbound {
                switch part {
                case let .head(head): path = String(head.uri.prefix { $0 != "?" })
                case .body: continue
                case .end:
                    let (status, type, body) = await respond(path)
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Type", value: type)
                    headers.add(name: "Content-Length", value: String(body.utf8.count))
                    headers.add(name: "Connection", value: "close")
                    try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)))
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body))))
                    try await outbound.write(.end(nil))
                    return
                }
            }
        }
    }
}
