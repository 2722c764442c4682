// swift-tools-version: 6.2
import PackageDescription

/// Every target builds in Swift 6 mode with the same upcoming features.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// The products targets import, one constant each: a target lists exactly the modules its files import.
extension Target.Dependency {
    static let argumentParser = product(name: "ArgumentParser", package: "swift-argument-parser")
    static let asyncHTTPClient = product(name: "AsyncHTTPClient", package: "async-http-client")
    static let compressNIO = product(name: "CompressNIO", package: "compress-nio")
    static let configuration = product(name: "Configuration", package: "swift-configuration")
    static let coreMetrics = product(name: "CoreMetrics", package: "swift-metrics")
    static let crypto = product(name: "Crypto", package: "swift-crypto")
    static let cryptoExtras = product(name: "CryptoExtras", package: "swift-crypto")
    static let dequeModule = product(name: "DequeModule", package: "swift-collections")
    static let grpcCore = product(name: "GRPCCore", package: "grpc-swift-2")
    static let grpcNIOTransport = product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport")
    static let grpcProtobuf = product(name: "GRPCProtobuf", package: "grpc-swift-protobuf")
    static let swiftProtobuf = product(name: "SwiftProtobuf", package: "swift-protobuf")
    static let httpTypes = product(name: "HTTPTypes", package: "swift-http-types")
    static let hummingbird = product(name: "Hummingbird", package: "hummingbird")
    static let hummingbirdTesting = product(name: "HummingbirdTesting", package: "hummingbird")
    static let logging = product(name: "Logging", package: "swift-log")
    static let metrics = product(name: "Metrics", package: "swift-metrics")
    static let nioCore = product(name: "NIOCore", package: "swift-nio")
    static let nioHTTP1 = product(name: "NIOHTTP1", package: "swift-nio")
    static let nioPosix = product(name: "NIOPosix", package: "swift-nio")
    static let nioSSL = product(name: "NIOSSL", package: "swift-nio-ssl")
    static let postgresNIO = product(name: "PostgresNIO", package: "postgres-nio")
    static let prometheus = product(name: "Prometheus", package: "swift-prometheus")
    static let serviceLifecycle = product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
    static let unixSignals = product(name: "UnixSignals", package: "swift-service-lifecycle")
}

let package = Package(
    name: "cyclone",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "predict", targets: ["PredictMain"]),
        .executable(name: "label-ingest", targets: ["LabelIngestMain"]),
        .executable(name: "evaluate", targets: ["EvaluateMain"]),
        .executable(name: "retrain", targets: ["Retrain"]),
        .executable(name: "cyclone", targets: ["CycloneMain"]),
        // The serve image's binary: predict, label-ingest, evaluate and cyclone in one, picked by the name it
        // is run by (Functions/main/serve).
        .executable(name: "cyclone-serve", targets: ["Serve"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        // gRPC for the Open Inference Protocol's GRPCInferenceService (predict's GRPC_PORT); the messages and
        // stubs are generated once (scripts/generate-grpc) and committed.
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    ],
    targets: [
        // Core: dependencies point down this list, never up.
        .target(name: "CycloneModel", path: "Core/Model", swiftSettings: swiftSettings),
        .target(name: "CycloneMonitoring", dependencies: ["CycloneModel"], path: "Core/Monitoring",
                swiftSettings: swiftSettings),
        .target(name: "CyclonePrefetch", path: "Core/Prefetch"),
        .target(name: "CycloneTraining", dependencies: ["CycloneModel", "CycloneMonitoring", "CyclonePrefetch"],
                path: "Core/Training", swiftSettings: swiftSettings),
        // Runtime: what every process needs, HTTP or not (settings, Cloud Logging lines, SIGTERM, deadlines).
        .target(name: "CycloneRuntime",
                dependencies: ["CycloneModel", .configuration, .logging, .serviceLifecycle, .unixSignals],
                path: "Core/Runtime", swiftSettings: swiftSettings),
        // Store: PostgreSQL (migrations, the prediction writer, labels, windows, the registry).
        .target(name: "CycloneStore",
                dependencies: ["CycloneModel", "CycloneMonitoring", "CycloneRuntime", .configuration, .postgresNIO,
                               .nioCore, .nioSSL, .dequeModule, .logging, .metrics, .serviceLifecycle],
                path: "Core/Store", resources: [.embedInCode("Migrations"), .embedInCode("Routines")],
                swiftSettings: swiftSettings),
        // Cloud: the platforms the loop runs on, and Google's auth, registry and Cloud Run clients.
        .target(name: "CycloneCloud",
                dependencies: ["CycloneModel", "CycloneRuntime", .configuration, .asyncHTTPClient, .nioCore, .nioHTTP1,
                               .crypto, .cryptoExtras, .compressNIO],
                path: "Core/Cloud", swiftSettings: swiftSettings),
        // The Open Inference Protocol's gRPC messages and stubs, generated from its .proto (scripts/generate-grpc).
        .target(name: "CycloneGRPC", dependencies: [.grpcCore, .grpcProtobuf, .swiftProtobuf], path: "Core/GRPC",
                exclude: ["grpc_predict_v2.proto"]),
        // Serving: models by name with their canary, the scorer that makes outputs and stored rows, the watcher
        // that swaps a new file in; no HTTP, so every protocol's edge shares it.
        .target(name: "CycloneServing",
                dependencies: ["CycloneModel", "CycloneMonitoring", "CycloneRuntime", "CycloneStore", .logging, .metrics,
                               .serviceLifecycle],
                path: "Core/Serving", swiftSettings: swiftSettings),
        // HTTP: what every HTTP function shares (app set-up, health, /metrics, JSON errors, OpenAPI); no store, no cloud.
        .target(name: "CycloneHTTP",
                dependencies: ["CycloneModel", "CycloneRuntime", .hummingbird, .httpTypes, .configuration, .logging,
                               .metrics, .coreMetrics, .prometheus, .serviceLifecycle, .nioCore],
                path: "Core/HTTP", swiftSettings: swiftSettings),
        // The evaluation cycle: Store's windows judged by Monitoring's policy, retrains and rollouts through
        // Cloud's Platform.
        .target(name: "CycloneEvaluation",
                dependencies: ["CycloneModel", "CycloneMonitoring", "CycloneTraining", "CycloneStore", "CycloneCloud",
                               "CycloneRuntime", .postgresNIO, .asyncHTTPClient, .nioCore, .nioHTTP1, .configuration,
                               .logging],
                path: "Core/Evaluation", swiftSettings: swiftSettings),
        // Replay: the loop's backtest over a labelled stream, with the real servers and retrain job as child
        // processes, and its baselines (`cyclone demo` parses options around it).
        .target(name: "CycloneReplay",
                dependencies: ["CycloneModel", "CycloneMonitoring", "CycloneTraining", "CycloneStore", "CycloneCloud",
                               "CycloneEvaluation", .asyncHTTPClient, .nioCore, .nioHTTP1, .postgresNIO, .logging],
                path: "Core/Replay", swiftSettings: swiftSettings),

        // Functions: a module each, with a thin executable of its own (Functions/main); the serve image runs
        // the four it carries from one multi-call binary.
        .target(name: "Predict",
                dependencies: ["CycloneModel", "CycloneServing", "CycloneStore", "CycloneHTTP", "CycloneRuntime",
                               "CycloneGRPC", .grpcCore, .grpcNIOTransport, .grpcProtobuf, .swiftProtobuf, .hummingbird, .httpTypes, .configuration, .logging, .metrics, .postgresNIO,
                               .serviceLifecycle, .nioCore, .nioPosix],
                path: "Functions/predict", swiftSettings: swiftSettings),
        .target(name: "LabelIngest",
                dependencies: ["CycloneModel", "CycloneStore", "CycloneHTTP", "CycloneRuntime", .hummingbird,
                               .configuration, .logging, .metrics, .postgresNIO],
                path: "Functions/label-ingest", swiftSettings: swiftSettings),
        .target(name: "Evaluate",
                dependencies: ["CycloneModel", "CycloneMonitoring", "CycloneStore", "CycloneCloud", "CycloneHTTP",
                               "CycloneRuntime", "CycloneEvaluation", .hummingbird, .httpTypes, .configuration,
                               .logging, .postgresNIO],
                path: "Functions/evaluate", resources: [.embedInCode("Resources/dashboard.html")],
                swiftSettings: swiftSettings),
        .executableTarget(name: "Retrain",
                          dependencies: ["CycloneModel", "CycloneMonitoring", "CycloneTraining", "CycloneStore", "CycloneCloud",
                                         "CycloneRuntime", "CycloneEvaluation", .configuration, .postgresNIO, .logging,
                                         .serviceLifecycle, .unixSignals],
                          path: "Functions/retrain", swiftSettings: swiftSettings),
        .target(name: "CycloneCLI",
                dependencies: ["CycloneModel", "CycloneMonitoring", "CycloneTraining", "CycloneStore",
                               "CycloneRuntime", "CycloneCloud", "CycloneEvaluation", "CycloneReplay", .argumentParser, .configuration,
                               .postgresNIO, .logging, .unixSignals],
                path: "Functions/cyclone", swiftSettings: swiftSettings),
        .executableTarget(name: "PredictMain", dependencies: ["Predict"], path: "Functions/main/predict",
                          swiftSettings: swiftSettings),
        .executableTarget(name: "LabelIngestMain", dependencies: ["LabelIngest"], path: "Functions/main/label-ingest",
                          swiftSettings: swiftSettings),
        .executableTarget(name: "EvaluateMain", dependencies: ["Evaluate"], path: "Functions/main/evaluate",
                          swiftSettings: swiftSettings),
        .executableTarget(name: "CycloneMain", dependencies: ["CycloneCLI"], path: "Functions/main/cyclone",
                          swiftSettings: swiftSettings),
        .executableTarget(name: "Serve", dependencies: ["Predict", "LabelIngest", "Evaluate", "CycloneCLI"],
                          path: "Functions/main/serve", swiftSettings: swiftSettings),

        // Tests: a module's tests depend on it and the test support; whole-loop tests are in EndToEndTests.
        .target(name: "CycloneTestSupport",
                dependencies: ["CycloneModel", "CycloneTraining", "CycloneMonitoring", "CycloneStore", "CycloneCloud",
                               .postgresNIO, .hummingbird, .httpTypes, .nioCore, .nioHTTP1, .logging, .cryptoExtras,
                               .asyncHTTPClient],
                path: "Tests/Support", swiftSettings: swiftSettings),
        // Tree inference (scripts/bench-trees).
        .executableTarget(name: "TreeBenchmark", dependencies: ["CycloneModel"], path: "Tests/Benchmarks/Trees",
                          swiftSettings: swiftSettings),
        // The deploy benchmark (scripts/bench-deploy): a registry and Google's fakes, so it lives with the tests.
        .executableTarget(name: "DeployBenchmark",
                          dependencies: ["CycloneCloud", "CycloneModel", "CycloneRuntime", "CycloneTestSupport",
                                         .asyncHTTPClient, .configuration, .cryptoExtras, .hummingbird],
                          path: "Tests/Benchmarks/Deploy", swiftSettings: swiftSettings),
        // The inference benchmark's load generator (scripts/bench-inference): REST and gRPC by the same client.
        .executableTarget(name: "InferenceBenchmark",
                          dependencies: [.asyncHTTPClient, .grpcCore, .grpcNIOTransport, .nioCore, .nioHTTP1],
                          path: "Tests/Benchmarks/Inference", swiftSettings: swiftSettings),
        .testTarget(name: "CycloneModelTests", dependencies: ["CycloneModel", "CycloneTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "CycloneTrainingTests",
                    dependencies: ["CycloneTraining", "CycloneModel", "CycloneMonitoring", "CycloneTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "CycloneMonitoringTests",
                    dependencies: ["CycloneMonitoring", "CycloneModel", "CycloneTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "CycloneCloudTests",
                    dependencies: ["CycloneCloud", "CycloneModel", "CycloneRuntime", "CycloneStore", "CycloneTestSupport",
                                   .configuration, .postgresNIO, .hummingbird, .hummingbirdTesting, .httpTypes,
                                   .cryptoExtras, .nioCore],
                    swiftSettings: swiftSettings),
        .testTarget(name: "CycloneReplayTests",
                    dependencies: ["CycloneReplay", "CycloneModel", "CycloneTraining"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "CycloneServingTests",
                    dependencies: ["CycloneServing", "CycloneStore", "CycloneModel", "CycloneTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "CycloneStoreTests",
                    dependencies: ["CycloneStore", "CycloneModel", "CycloneRuntime", "CycloneTestSupport", .configuration,
                                   .logging, .postgresNIO, .serviceLifecycle],
                    swiftSettings: swiftSettings),
        .testTarget(name: "CycloneHTTPTests",
                    dependencies: ["CycloneHTTP", "CycloneRuntime", .hummingbird, .logging, .httpTypes, .configuration],
                    swiftSettings: swiftSettings),
        .testTarget(name: "CycloneEvaluationTests",
                    dependencies: ["CycloneEvaluation", "CycloneCloud", "CycloneStore", "CycloneMonitoring", "CycloneTraining",
                                   "CycloneModel", "CycloneRuntime", "CycloneTestSupport", .postgresNIO, .configuration,
                                   .logging, .hummingbird, .hummingbirdTesting, .httpTypes],
                    swiftSettings: swiftSettings),
        .testTarget(name: "EvaluateTests",
                    dependencies: ["Evaluate", "CycloneTestSupport", "CycloneCloud", "CycloneStore", "CycloneModel",
                                   "CycloneRuntime", "CycloneMonitoring", .asyncHTTPClient, .nioHTTP1, .hummingbirdTesting,
                                   .hummingbird, .httpTypes, .nioCore, .postgresNIO, .configuration],
                    swiftSettings: swiftSettings),
        .testTarget(name: "RetrainTests",
                    dependencies: ["Retrain", "CycloneTestSupport", "CycloneStore", "CycloneModel", "CycloneTraining",
                                   "CycloneRuntime", "CycloneCloud", .postgresNIO, .configuration, .logging],
                    swiftSettings: swiftSettings),
        .testTarget(name: "CycloneCLITests",
                    dependencies: ["CycloneModel", "CycloneMonitoring", "CycloneTraining", "CycloneStore", "CycloneTestSupport",
                                   .postgresNIO, .logging],
                    swiftSettings: swiftSettings),
        .testTarget(name: "PredictTests",
                    dependencies: ["Predict", "CycloneTestSupport", "CycloneCloud", "CycloneMonitoring", "CycloneModel",
                                   "CycloneRuntime", "CycloneServing", "CycloneStore", "CycloneGRPC", .grpcCore,
                                   .grpcNIOTransport, .swiftProtobuf, .hummingbirdTesting, .hummingbird, .httpTypes,
                                   .asyncHTTPClient, .nioCore, .nioHTTP1, .configuration, .logging, .postgresNIO],
                    swiftSettings: swiftSettings),
        .testTarget(name: "InfraTests",
                    dependencies: ["Predict", "LabelIngest", "Evaluate", "Retrain", "CycloneCloud", "CycloneEvaluation",
                                   "CycloneModel", "CycloneRuntime", "CycloneTestSupport", .configuration],
                    swiftSettings: swiftSettings),
        .testTarget(name: "LabelIngestTests",
                    dependencies: ["LabelIngest", "CycloneTestSupport", "CycloneCloud", "CycloneModel", "CycloneRuntime",
                                   "CycloneStore", .hummingbirdTesting, .hummingbird, .httpTypes, .configuration, .logging,
                                   .postgresNIO, .serviceLifecycle],
                    swiftSettings: swiftSettings),
        // The whole loop: the built executables as child processes (local, and against Google's fakes), the
        // demo, the dashboard in a browser, Grafana's queries. It runs what `swift build` made (scripts/test
        // builds first), so it does not depend on the executable targets.
        .testTarget(name: "EndToEndTests",
                    dependencies: ["CycloneCloud", "CycloneModel", "CycloneStore", "CycloneTestSupport", .asyncHTTPClient,
                                   .cryptoExtras, .hummingbird, .hummingbirdTesting, .nioCore, .nioHTTP1, .postgresNIO,
                                   .logging],
                    swiftSettings: swiftSettings),
    ]
)
