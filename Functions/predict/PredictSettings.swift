import Configuration
import CycloneHTTP
import CycloneModel
import CycloneRuntime
import CycloneStore
import PostgresNIO

/// Everything `predict` reads from its environment.
struct PredictSettings: Sendable {
    /// `PORT`, `MAX_BODY_BYTES`, `GOOGLE_CLOUD_PROJECT`.
    var server: ServerSettings
    /// `DATABASE_URL`, `DATABASE_POOL_SIZE`.
    var database: DatabaseSettings
    /// What predict serves: `MODEL_PATH`, one model artifact (with `CANARY_MODEL_PATH` and `SHADOW_MODEL_PATH`
    /// beside it), or, without it, `MODEL_DIR`, a model folder of many (`ModelFolder`: `NAME.json`, `NAME.canary.json`,
    /// `NAME.shadow.json`), each loaded when first asked for. One of the two is required.
    var models: Models
    enum Models {
        case file(String)
        case folder(ModelFolder)
    }
    /// `MODEL_CACHE_SIZE`: the most models of `MODEL_DIR` loaded at once (100); the least recently used is
    /// unloaded to load another.
    var modelCacheSize: Int
    /// `MODEL_RELOAD_INTERVAL`: how often `MODEL_PATH`, or each loaded model's entries of `MODEL_DIR`, are
    /// checked for a new model to swap in (a file renamed over it or a symlink re-pointed); `1s`, `0s` never.
    var modelReload: Duration?
    /// `CANARY_MODEL_PATH`: a second model file (or symlink) that, while it exists, answers `CANARY_PERCENT`
    /// (10) percent of the requests, chosen by the request's first key (else its prediction id). Unset: no canary.
    var canaryPath: String?
    var canaryPercent: Int
    /// `SHADOW_MODEL_PATH`: a challenger file (or symlink) that, while it exists, scores every request beside
    /// the live model, answering none; its predictions are stored on the same rows. Refused, with live serving
    /// alone, when its features differ. Unset: no shadow.
    var shadowPath: String?
    /// `SHADOW_BUDGET`: the most time a request spends on shadow scores (5ms); instances left when it is spent
    /// go unscored by the shadow, counted in `cyclone_shadow_skipped_total`.
    var shadowBudget: Duration
    /// `STORE_MODE`: `durable` (default: answer after the rows are committed) or `async` (answer at once).
    var durable: Bool
    /// `STORE_TIMEOUT`: how long a durable request waits for its commit before answering anyway; `1s`.
    var storeTimeout: Duration
    /// `STORE_BUFFER_ROWS`: most rows held in memory while PostgreSQL is slow or down; 100000.
    var bufferRows: Int
    /// `STORE_BATCH_ROWS`: most rows per INSERT; 1000.
    var batchRows: Int
    /// `MAX_INSTANCES`: most instances in one request; 1000.
    var maxInstances: Int
    /// `GRPC_PORT`: serve the Open Inference Protocol's gRPC service on this port too (HTTP/2 cleartext), its
    /// messages bounded by `MAX_BODY_BYTES`. Unset: no gRPC.
    var grpcPort: Int?
    /// `REST_PORT`: the port REST listens on, `PORT` by default. Cloud Run sets `PORT` to the container's
    /// port; a service whose container port is gRPC's sets `GRPC_PORT` to it and moves REST aside.
    var restPort: Int
    /// `STRICT_CATEGORIES`: `true` rejects categories never seen in training (400) instead of serving them
    /// as unknown; `false` by default.
    var strictCategories: Bool

    init(reader: ConfigReader) throws {
        server = try ServerSettings(reader: reader)
        // MODEL_DIR is also where the local platform deploys: a stack that sets it for every process may still
        // point predict at one model's file.
        switch (reader.nonEmpty("model.path"), reader.nonEmpty("model.dir")) {
        case (let path?, _): models = .file(path)
        case (nil, let folder?): models = .folder(ModelFolder(folder))
        case (nil, nil):
            throw SettingError(variable: "MODEL_PATH", message: "is not set (the model file to serve; or MODEL_DIR, a folder of models)")
        }
        modelCacheSize = try reader.setting("model.cache.size", variable: "MODEL_CACHE_SIZE", default: 100,
                                            expected: "a positive integer", Int.positive)
        modelReload = try reader.setting("model.reload.interval", variable: "MODEL_RELOAD_INTERVAL", default: .seconds(1),
                                         expected: "a duration such as 1s or 500ms (0s: never)", Duration.setting)
        if modelReload == .zero { modelReload = nil }
        canaryPath = reader.nonEmpty("canary.model.path")
        canaryPercent = try reader.canaryPercent()
        shadowPath = reader.nonEmpty("shadow.model.path")
        if case .folder = models, let variable = [("CANARY_MODEL_PATH", canaryPath), ("SHADOW_MODEL_PATH", shadowPath)]
            .first(where: { $0.1 != nil })?.0
        {
            throw SettingError(variable: variable, message: "is for MODEL_PATH; in MODEL_DIR a model's canary and shadow are NAME.canary.json and NAME.shadow.json")
        }
        shadowBudget = try reader.setting("shadow.budget", variable: "SHADOW_BUDGET", default: .milliseconds(5),
                                          expected: "a duration such as 5ms or 1s", Duration.setting)
        database = try DatabaseSettings(reader: reader)
        durable = try reader.setting("store.mode", variable: "STORE_MODE", default: true, expected: "durable or async") {
            switch $0 { case "durable": true; case "async": false; default: nil }
        }
        storeTimeout = try reader.setting("store.timeout", variable: "STORE_TIMEOUT", default: .seconds(1),
                                          expected: "a duration such as 500ms or 2s", Duration.setting)
        bufferRows = try reader.setting("store.buffer.rows", variable: "STORE_BUFFER_ROWS", default: 100_000,
                                        expected: "a positive integer", Int.positive)
        batchRows = try reader.setting("store.batch.rows", variable: "STORE_BATCH_ROWS", default: 1_000,
                                       expected: "a positive integer", Int.positive)
        maxInstances = try reader.setting("max.instances", variable: "MAX_INSTANCES", default: 1_000,
                                          expected: "a positive integer", Int.positive)
        grpcPort = try reader.setting("grpc.port", variable: "GRPC_PORT", default: nil, expected: "a port number") {
            Int($0).flatMap { (0...65535).contains($0) ? $0 : nil }
        }
        restPort = try reader.setting("rest.port", variable: "REST_PORT", default: server.port, expected: "a port number") {
            Int($0).flatMap { (0...65535).contains($0) ? $0 : nil }
        }
        if let grpcPort, grpcPort == restPort, grpcPort != 0 {
            throw SettingError(variable: "GRPC_PORT", message: "is \(grpcPort), the port REST serves on (REST_PORT, else PORT); give each its own")
        }
        strictCategories = try reader.setting("strict.categories", variable: "STRICT_CATEGORIES", default: false,
                                              expected: "true or false") { Bool($0.lowercased()) }
    }

    var writerConfiguration: PredictionWriter.Configuration {
        var configuration = PredictionWriter.Configuration()
        configuration.durableTimeout = storeTimeout
        configuration.maxBufferedRows = bufferRows
        configuration.maxBatchRows = batchRows
        return configuration
    }
}
