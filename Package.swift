// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "binance-import",
    // Built and tested on Linux (Debian/Ubuntu, CI). On macOS the code needs 15: discarding task
    // groups (14), actor isolation parameters and Synchronization's Mutex (15).
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "binance-import", targets: ["binance-import"]),
        .library(name: "KlineArchive", targets: ["KlineArchive"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // Follow mode: a WebSocket client with TLS (swift-websocket's WSClient, on SwiftNIO) and
        // NIO's HTTP/1 server for /healthz and /metrics.
        .package(url: "https://github.com/hummingbird-project/swift-websocket", from: "1.6.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // Signals as an async sequence (already in the graph through swift-websocket).
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Metrics and their Prometheus exposition (swift-prometheus on swift-metrics).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // zlib (raw inflate and CRC-32, the reference inflater) through the system library: apt-get install zlib1g-dev.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // ISA-L's igzip (streaming raw inflate, fast CRC-32): apt-get install libisal-dev.
        .systemLibrary(name: "CIsal", path: "Sources/CIsal", pkgConfig: "libisal",
                       providers: [.apt(["libisal-dev"])]),
        // glibc's mallopt (malloc.h), for the decoders' batch memory (BatchMemory).
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        // SQLite, the job's state database: apt-get install libsqlite3-dev.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        // The AVX2 kernels of the kline and trade CSV parsers' common rows (C: byte shuffles and multiply-adds).
        .target(name: "CRowKernels"),
        // Typed contiguous columns, shared by the decoder and the MarketStore client.
        .target(name: "Columnar"),
        // Binance kline archive decoder: zip reader, exact number parser, CSV-to-columns, validation.
        // Arithmetic stays checked in every build (it reads untrusted bytes). Only the dynamic
        // exclusivity checks are off in release: measured side by side (decode-bench, 9 pairs), they
        // cost 25-29% of decode time, while checked arithmetic against -Ounchecked costs 0-1%.
        .target(name: "KlineArchive", dependencies: ["CIsal", "CZlib", "CMalloc", "CRowKernels", "Columnar"],
                swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        .executableTarget(name: "binance-import", dependencies: [
            "KlineArchive", "JobModel", "JobState", "ImportPipeline", "Follow", "MarketStore", "MarketStoreModel", "MarketStoreDirectory",
            "BinanceSource", "DurableFiles", "Columnar", "FuturesArchive", "TradeArchive",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        // `make bench-decode`: decode vs inflate-only timings on generated archives.
        .executableTarget(name: "decode-bench", dependencies: ["KlineArchive", "TradeArchive"]),
        // libcurl (apt-get install libcurl4-openssl-dev) through non-variadic C wrappers.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),
        // HTTP over libcurl: one reused connection per session, timeouts, streaming bodies.
        .target(name: "CurlHTTP", dependencies: ["CCurl"]),
        // Binance public data: archive addresses, S3 listing, verified downloads, the local cache,
        // REST klines, the kline streams' protocol.
        .target(name: "BinanceSource", dependencies: [
            "CurlHTTP", "KlineArchive", "FuturesArchive", "TradeArchive", "DurableFiles", "Columnar",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The one write path of the files this project keeps, and the job's lock.
        .target(name: "DurableFiles"),
        // What both targets share: datasets, column schemas, timeframes (no network).
        .target(name: "MarketStoreModel", dependencies: ["Columnar"]),
        // The offline sink: MarketStore's on-disk format written (and read) directly.
        .target(name: "MarketStoreDirectory", dependencies: ["Columnar", "MarketStoreModel", "DurableFiles"]),
        // Funding-rate and metrics archives (futures): CSV to columns, the metrics label change,
        // gaps.
        .target(name: "FuturesArchive", dependencies: ["KlineArchive", "Columnar", "MarketStoreModel"]),
        // Trades and aggTrades archives (spot, futures): CSV streamed to column chunks, ID continuity.
        // As in KlineArchive, the dynamic exclusivity checks are off in release (perf: a fifth of
        // the trades decode in swift_beginAccess/endAccess and their thread-local lookups).
        .target(name: "TradeArchive", dependencies: ["KlineArchive", "CRowKernels", "Columnar"],
                swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        // The job as written: job files, targets, shards.
        .target(name: "JobModel", dependencies: [
            "BinanceSource", "CurlHTTP", "KlineArchive", "FuturesArchive", "TradeArchive", "MarketStoreModel", "Columnar",
            .product(name: "Yams", package: "Yams"),
        ]),
        // What the job has done: the SQLite state, the manifest, column digests.
        .target(name: "JobState", dependencies: ["JobModel", "CSQLite", "DurableFiles", "KlineArchive", "FuturesArchive", "BinanceSource", "Columnar"]),
        // Counters, their Prometheus exposition, the /healthz and /metrics server.
        .target(name: "JobMetrics", dependencies: [
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // Plan, downloads → decoders → writer, REST edges, summaries, verification.
        .target(name: "ImportPipeline", dependencies: [
            "JobModel", "JobState", "JobMetrics", "BinanceSource", "CurlHTTP", "KlineArchive", "FuturesArchive", "TradeArchive", "MarketStore", "MarketStoreModel",
            "MarketStoreDirectory", "DurableFiles", "Columnar",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        // follow: Binance's kline streams into the pipeline's writer.
        .target(name: "Follow", dependencies: [
            "ImportPipeline", "JobModel", "JobState", "JobMetrics", "BinanceSource", "CurlHTTP", "KlineArchive", "MarketStore",
            "MarketStoreModel", "Columnar",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "WSClient", package: "swift-websocket"),
        ]),
        // msgpack codec (the subset MarketStore uses); no offline package provides one.
        .target(name: "MsgPack"),
        // MarketStore client: datasets, RPC over HTTP, schema guard, timeframes.
        .target(name: "MarketStore", dependencies: ["Columnar", "CurlHTTP", "MsgPack", "MarketStoreModel"]),
        .testTarget(name: "KlineArchiveTests", dependencies: ["KlineArchive", "CZlib", "TestSupport"]),
        .testTarget(name: "MsgPackTests", dependencies: ["MsgPack", "TestSupport"]),
        // Helpers of the test targets: Python test servers on ephemeral ports.
        .target(name: "TestSupport", dependencies: ["CurlHTTP", "CZlib"], path: "Tests/TestSupport"),
        .testTarget(name: "MarketStoreTests", dependencies: ["MarketStore", "MarketStoreModel", "MsgPack", "Columnar", "CurlHTTP", "TestSupport"]),
        .testTarget(name: "FuzzTests", dependencies: ["KlineArchive", "MsgPack", "TestSupport"]),
        .testTarget(name: "MarketStoreDirectoryTests", dependencies: ["MarketStoreDirectory", "MarketStoreModel", "KlineArchive", "MarketStore", "Columnar", "TestSupport"]),
        // In-memory fakes of the pipeline's seams (a MarketStore target), for in-process tests.
        .target(name: "PipelineFakes", dependencies: ["ImportPipeline", "BinanceSource", "MarketStore", "MarketStoreModel", "Columnar"], path: "Tests/PipelineFakes"),
        .testTarget(name: "ImportJobTests", dependencies: ["ImportPipeline", "Follow", "JobModel", "JobState", "JobMetrics", "KlineArchive", "TradeArchive", "MarketStore", "PipelineFakes",
                                                           "MarketStoreModel", "MarketStoreDirectory", "BinanceSource", "Columnar", "TestSupport", .product(name: "Crypto", package: "swift-crypto"), .product(name: "Yams", package: "Yams")],
                    exclude: ["fixtures"]),
        .testTarget(name: "FuturesArchiveTests", dependencies: ["FuturesArchive", "KlineArchive", "Columnar", "MarketStore", "MarketStoreModel",
                                                                "MarketStoreDirectory", "TestSupport"]),
        .testTarget(name: "TradeArchiveTests", dependencies: ["TradeArchive", "KlineArchive", "Columnar", "TestSupport"]),
        .testTarget(name: "BinanceSourceTests", dependencies: ["BinanceSource", "KlineArchive", "FuturesArchive", "CurlHTTP", "Columnar", "TestSupport"]),
    ]
)
