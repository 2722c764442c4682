// swift-tools-version: 6.2
import PackageDescription

/// Every target builds in Swift 6 mode with the same upcoming features.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "cyclone",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "predict", targets: ["Predict"]),
        .executable(name: "label-ingest", targets: ["LabelIngest"]),
        .executable(name: "evaluate", targets: ["Evaluate"]),
        .executable(name: "retrain", targets: ["Retrain"]),
        .executable(name: "cyclone", targets: ["CycloneCLI"]),
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
    ],
    targets: [
        // Core: dependencies point down this list, never up.
        .target(name: "CycloneModel", path: "Core/Model", swiftSettings: swiftSettings),
        .target(name: "CycloneMonitoring", dependencies: ["CycloneModel"], path: "Core/Monitoring",
                swiftSettings: swiftSettings),
        .target(name: "CyclonePrefetch", path: "Core/Prefetch"),
        .target(name: "CycloneTraining", dependencies: ["CycloneModel", "CycloneMonitoring", "CyclonePrefetch"], path: "Core/Training",
                swiftSettings: swiftSettings),
        // Runtime: what every process needs, HTTP or not (settings, Cloud Logging lines, SIGTERM, deadlines).
        .target(
            name: "CycloneRuntime",
            dependencies: [
                "CycloneModel",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Core/Runtime",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CycloneStore",
            dependencies: [
                "CycloneModel", "CycloneMonitoring", "CycloneRuntime",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Core/Store",
            resources: [.embedInCode("Migrations"), .embedInCode("Routines")],
            swiftSettings: swiftSettings
        ),
        // Cloud: the platforms the loop runs on, and Google's auth, registry and Cloud Run clients.
        .target(
            name: "CycloneCloud",
            dependencies: [
                "CycloneModel", "CycloneRuntime",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            path: "Core/Cloud",
            swiftSettings: swiftSettings
        ),
        // Serving: models by name with their canary, the scorer that makes outputs and stored rows, the watcher
        // that swaps a new file in; no HTTP, so every protocol's edge shares it.
        .target(
            name: "CycloneServing",
            dependencies: [
                "CycloneModel", "CycloneMonitoring", "CycloneStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Core/Serving",
            swiftSettings: swiftSettings
        ),
        // HTTP: what every HTTP function shares (app set-up, health, /metrics, JSON errors, OpenAPI); no store, no cloud.
        .target(
            name: "CycloneHTTP",
            dependencies: [
                "CycloneModel", "CycloneRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Core/HTTP",
            swiftSettings: swiftSettings
        ),
        // The evaluation cycle: Store's windows judged by Monitoring's policy, retrains through Cloud's Platform.
        .target(
            name: "CycloneEvaluation",
            dependencies: [
                "CycloneModel", "CycloneMonitoring", "CycloneStore", "CycloneCloud", "CycloneRuntime",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Core/Evaluation",
            swiftSettings: swiftSettings
        ),

        // Replay: the loop's backtest over a labelled stream, with the real servers and retrain job as child
        // processes, and its baselines (`cyclone demo` parses options around it).
        .target(
            name: "CycloneReplay",
            dependencies: [
                "CycloneModel", "CycloneMonitoring", "CycloneTraining", "CycloneStore", "CycloneCloud", "CycloneEvaluation",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Core/Replay",
            swiftSettings: swiftSettings
        ),

        // Functions: one thin executable each.
        .executableTarget(
            name: "Predict",
            dependencies: [
                "CycloneModel", "CycloneServing", "CycloneStore", "CycloneHTTP", "CycloneRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            path: "Functions/predict",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "LabelIngest",
            dependencies: [
                "CycloneModel", "CycloneStore", "CycloneHTTP", "CycloneRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            path: "Functions/label-ingest",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Evaluate",
            dependencies: [
                "CycloneModel", "CycloneMonitoring", "CycloneStore", "CycloneCloud", "CycloneHTTP", "CycloneRuntime",
                "CycloneEvaluation",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Functions/evaluate",
            resources: [.embedInCode("Resources/dashboard.html")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Retrain",
            dependencies: [
                "CycloneModel", "CycloneMonitoring", "CycloneTraining", "CycloneStore", "CycloneCloud", "CycloneRuntime",
                "CycloneEvaluation",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Functions/retrain",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CycloneCLI",
            dependencies: [
                "CycloneModel", "CycloneMonitoring", "CycloneTraining", "CycloneStore", "CycloneRuntime", "CycloneCloud",
                "CycloneEvaluation", "CycloneReplay",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Functions/cyclone",
            swiftSettings: swiftSettings
        ),

        // Tests
        .target(
            name: "CycloneTestSupport",
            dependencies: [
                "CycloneModel", "CycloneTraining", "CycloneMonitoring", "CycloneStore", "CycloneCloud",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            path: "Tests/Support",
            swiftSettings: swiftSettings
        ),
        // Tree inference (scripts/bench-trees).
        .executableTarget(name: "TreeBenchmark", dependencies: ["CycloneModel"], path: "Tests/Benchmarks/Trees",
                          swiftSettings: swiftSettings),
        // The deploy benchmark (scripts/bench-deploy): a registry and Google's fakes, so it lives with the tests.
        .executableTarget(
            name: "DeployBenchmark",
            dependencies: [
                "CycloneCloud", "CycloneModel", "CycloneHTTP", "CycloneRuntime", "CycloneTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Tests/Benchmarks/Deploy",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "CycloneModelTests", dependencies: ["CycloneModel", "CycloneTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "CycloneTrainingTests",
                    dependencies: ["CycloneTraining", "CycloneModel", "CycloneMonitoring", "CycloneTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "CycloneMonitoringTests",
                    dependencies: ["CycloneMonitoring", "CycloneModel", "CycloneTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(
            name: "CycloneCloudTests",
            dependencies: [
                "CycloneCloud", "CycloneModel", "CycloneHTTP", "CycloneRuntime", "CycloneStore", "CycloneTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "CycloneReplayTests",
                    dependencies: ["CycloneReplay", "CycloneModel", "CycloneTraining"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "CycloneServingTests",
                    dependencies: ["CycloneServing", "CycloneStore", "CycloneModel", "CycloneTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "CycloneStoreTests",
                    dependencies: ["CycloneStore", "CycloneModel", "CycloneTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(
            name: "CycloneHTTPTests",
            dependencies: [
                "CycloneHTTP", "CycloneRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CycloneEvaluationTests",
            dependencies: [
                "CycloneEvaluation", "CycloneCloud", "CycloneStore", "CycloneMonitoring", "CycloneTraining",
                "CycloneModel", "CycloneHTTP", "CycloneRuntime", "CycloneTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EvaluateTests",
            dependencies: [
                "Evaluate", "CycloneTestSupport", "CycloneCloud", "CycloneStore", "CycloneModel", "CycloneHTTP", "CycloneRuntime", "CycloneMonitoring",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RetrainTests",
            dependencies: [
                "Retrain", "CycloneTestSupport", "CycloneStore", "CycloneModel", "CycloneTraining", "CycloneHTTP", "CycloneRuntime",
                "CycloneCloud",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CycloneCLITests",
            dependencies: [
                "CycloneModel", "CycloneTestSupport", "CycloneCloud",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PredictTests",
            dependencies: [
                "Predict", "CycloneTestSupport", "CycloneCloud", "CycloneMonitoring",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InfraTests",
            dependencies: [
                "Predict", "LabelIngest", "Evaluate", "Retrain", "CycloneCloud", "CycloneEvaluation", "CycloneModel",
                "CycloneHTTP", "CycloneRuntime", "CycloneTestSupport",
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LabelIngestTests",
            dependencies: [
                "LabelIngest", "CycloneTestSupport", "CycloneCloud",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
