import Configuration
import CycloneModel
import CycloneRuntime
import Foundation

/// Where the loop acts, from the environment (evaluate, `cyclone evaluate` and retrain read the same):
/// `PLATFORM=local` (the default) runs retrains as child processes and deploys into a model folder;
/// `PLATFORM=cloudrun` runs the retrain job and deploys model images as revisions of the predict service.
public struct PlatformSettings: Sendable {
    public enum Kind: Sendable {
        /// `RETRAIN_COMMAND` (words split on spaces) and `MODEL_DIR`; unset, each is recorded only.
        case local(retrainCommand: [String]?, modelDirectory: String?)
        case cloudRun(CloudRunSettings)
    }

    public var kind: Kind
    /// `CANARY_PERCENT` (10): the share of traffic a canary gets; 0 deploys it to all at once.
    public var canaryPercent: Int
    /// `ROLLOUT`: how a retrained version that passed its holdout goes into service: `shadow` (scored beside
    /// live on every request, answering none, until the paired verdict), `canary` (answering `CANARY_PERCENT`
    /// of the requests until the canary's verdict), `direct` (in place of live at once). Unset: `shadow`,
    /// unless `CANARY_PERCENT` is set (as before `ROLLOUT` existed): then `canary`, or `direct` for 0.
    public var rollout: RolloutMode

    public enum RolloutMode: String, Sendable, CaseIterable {
        case shadow, canary, direct
    }

    /// The role a new version is deployed in.
    public var newVersionRole: Role {
        switch rollout {
        case .shadow: .shadow
        case .canary: Self.isCanary(canaryPercent) ? .canary : .live
        case .direct: .live
        }
    }

    /// Whether a deployment with `canaryPercent` is a canary: 1…99 are; 0 and 100 replace the live version.
    public static func isCanary(_ canaryPercent: Int) -> Bool { (1..<100).contains(canaryPercent) }

    public init(reader: ConfigReader) throws {
        canaryPercent = try reader.canaryPercent()
        let previous: RolloutMode = reader.nonEmpty("canary.percent") == nil ? .shadow : canaryPercent == 0 ? .direct : .canary
        rollout = try reader.setting("rollout", variable: "ROLLOUT", default: previous, expected: "shadow, canary or direct") {
            RolloutMode(rawValue: $0)
        }
        let platform = try reader.setting("platform", variable: "PLATFORM", default: "local",
                                          expected: "local or cloudrun") { ["local", "cloudrun"].contains($0) ? $0 : nil }
        if platform == "local" {
            kind = .local(retrainCommand: reader.string(forKey: "retrain.command")
                .map { $0.split(separator: " ").map(String.init) }.flatMap { $0.isEmpty ? nil : $0 },
                          modelDirectory: reader.nonEmpty("model.dir"))
        } else {
            kind = .cloudRun(try CloudRunSettings(reader: reader))
        }
    }


    /// The platform these settings describe.
    public func platform() throws -> any Platform {
        switch kind {
        case .local(let command, let directory):
            return LocalPlatform(retrainCommand: command, modelDirectory: directory)
        case .cloudRun(let settings):
            return try settings.platform(canaryPercent: canaryPercent)
        }
    }
}

/// `PLATFORM=cloudrun`: the project and region, the predict service and retrain job, the serve image a
/// model image is built on and the repository model images go to.
public struct CloudRunSettings: Sendable {
    /// `GOOGLE_CLOUD_PROJECT` and `GOOGLE_CLOUD_REGION` (required).
    public var project: String
    public var region: String
    /// `PREDICT_SERVICE` (predict) and `RETRAIN_JOB` (retrain).
    public var service: String
    public var job: String
    /// `PREDICT_GRPC_SERVICE`: the service serving the same models over gRPC, which every deploy, promotion
    /// and rollback updates after predict's. Unset: none.
    public var grpcService: String?
    /// `PREDICT_SERVICES` and `PREDICT_GRPC_SERVICES`, `NAME=SERVICE` pairs separated by commas: each model's
    /// own predict service (and its gRPC service), so that a model's deploys never touch another's. Set,
    /// `PREDICT_SERVICE` and `PREDICT_GRPC_SERVICE` are not used and a model not named is not deployed.
    public var models: [String: CloudRunPlatform.Services]
    /// `SERVE_IMAGE`: the serve image without a model, which each model image extends. Only what deploys
    /// (retrain) needs it; without it a deploy fails saying so.
    public var serveImage: ImageReference?
    /// `MODEL_IMAGE_REPOSITORY` (the serve image's repository): where model images are pushed, tagged
    /// `NAME-VERSION`.
    public var modelImages: ImageReference?
    /// `CLOUD_RUN_ENDPOINT` (https://run.googleapis.com).
    public var endpoint: String

    public init(reader: ConfigReader) throws {
        project = try reader.required("google.cloud.project", variable: "GOOGLE_CLOUD_PROJECT")
        region = try reader.required("google.cloud.region", variable: "GOOGLE_CLOUD_REGION")
        service = reader.nonEmpty("predict.service") ?? "predict"
        job = reader.nonEmpty("retrain.job") ?? "retrain"
        grpcService = reader.nonEmpty("predict.grpc.service")
        let rest = try Self.pairs(reader.nonEmpty("predict.services"), variable: "PREDICT_SERVICES")
        let grpc = try Self.pairs(reader.nonEmpty("predict.grpc.services"), variable: "PREDICT_GRPC_SERVICES")
        if let stray = grpc.keys.sorted().first(where: { rest[$0] == nil }) {
            throw SettingError(variable: "PREDICT_GRPC_SERVICES", message: "names model '\(stray)', which PREDICT_SERVICES does not")
        }
        models = rest.mapValues { CloudRunPlatform.Services(service: $0) }
        for (name, service) in grpc { models[name]?.mirrors = [service] }
        if !models.isEmpty {
            // Each model's own: the shared variables would be ignored, and a service named twice is shared.
            if let shared = [("PREDICT_SERVICE", "predict.service"), ("PREDICT_GRPC_SERVICE", "predict.grpc.service")]
                .first(where: { reader.nonEmpty(ConfigKey($0.1)) != nil })?.0
            {
                throw SettingError(variable: shared, message: "is for every model's one service; with PREDICT_SERVICES each model names its own: unset it")
            }
            let all = models.values.flatMap { [$0.service] + $0.mirrors }
            if let twice = Dictionary(grouping: all, by: { $0 }).filter({ $0.value.count > 1 }).keys.min() {
                throw SettingError(variable: "PREDICT_SERVICES", message: "service \(twice) is named twice (PREDICT_SERVICES and PREDICT_GRPC_SERVICES together): each model needs services of its own")
            }
        }
        if let image = reader.nonEmpty("serve.image") {
            do { serveImage = try ImageReference(image) } catch {
                throw SettingError(variable: "SERVE_IMAGE", message: "'\(image)': \(error)")
            }
        }
        if let repository = reader.nonEmpty("model.image.repository") {
            do { modelImages = try ImageReference(repository) } catch {
                throw SettingError(variable: "MODEL_IMAGE_REPOSITORY", message: "'\(repository)': \(error)")
            }
        } else if let serveImage {
            modelImages = ImageReference(registry: serveImage.registry, repository: serveImage.repository)
        }
        endpoint = reader.nonEmpty("cloud.run.endpoint") ?? "https://run.googleapis.com"
    }

    /// `NAME=SERVICE[,NAME=SERVICE…]` as a map; `nil` as an empty one.
    static func pairs(_ text: String?, variable: String) throws(SettingError) -> [String: String] {
        guard let text else { return [:] }
        var pairs: [String: String] = [:]
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw SettingError(variable: variable, message: "'\(item)' is not MODEL=SERVICE")
            }
            guard pairs.updateValue(parts[1], forKey: parts[0]) == nil else {
                throw SettingError(variable: variable, message: "names model '\(parts[0])' twice")
            }
        }
        return pairs
    }

    func platform(canaryPercent: Int) throws -> CloudRunPlatform {
        let credentials = try GoogleCredentials.fromEnvironment()
        let google: @Sendable (String) -> GoogleCredentials? = { host in
            host.hasSuffix(".pkg.dev") || host.hasSuffix("gcr.io") ? credentials : nil
        }
        let cloudRun = CloudRun(endpoint: endpoint, project: project, region: region, credentials: credentials)
        let mirrors = grpcService.map { [$0] } ?? []
        guard let base = serveImage, let target = modelImages else {
            return CloudRunPlatform(cloudRun: cloudRun, service: service, job: job, canaryPercent: canaryPercent,
                                    mirrors: mirrors, models: models, images: nil)
        }
        return CloudRunPlatform(cloudRun: cloudRun, service: service, job: job, canaryPercent: canaryPercent,
                                mirrors: mirrors, models: models) { model, live in
            func tagged(_ tag: String) -> ImageReference {
                var tagged = target
                tagged.tag = String(tag.map { $0.isLetter || $0.isNumber || "._-".contains($0) ? $0 : "-" }.prefix(128))
                tagged.digest = nil
                return tagged
            }
            // A registry on loopback (a test's) speaks plain HTTP.
            func registry(_ image: ImageReference) -> Registry {
                Registry(host: image.registry, insecure: image.isLoopback, credentials: google(image.registry))
            }
            func push(_ model: ModelArtifact, on base: ImageReference, tag: String, as role: Role) async throws -> ImageReference {
                try await ImageAppend(base: base, target: tagged(tag), baseRegistry: registry(base), targetRegistry: registry(target),
                                      role: role)
                    .push(model: model, bytes: Array(try model.encoded())).image
            }
            guard let live else { return try await push(model, on: base, tag: "\(model.name)-\(model.version)", as: .live) }
            // The live model on today's serve image (the same image as its own when the serve image has not
            // changed), then the challenger beside it.
            let liveImage = try await push(live, on: base, tag: "\(live.name)-\(live.version)", as: .live)
            return try await push(model, on: liveImage, tag: "\(model.name)-\(model.version)-shadow", as: .shadow)
        }
    }
}
