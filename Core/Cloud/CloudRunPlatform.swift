import CycloneModel
import Foundation

/// The platform in production: a model version becomes a serving image (the serve image plus the model's
/// layer, pushed by `ImageAppend`) and a new revision of its model's predict service on Cloud Run (one service
/// for every model, or each model its own: `models`), at the canary's share of the traffic or all of it; promotion and rollback move traffic between revisions by name; a
/// retrain is an execution of the retrain job.
///
/// A shadow rides with the live version so traffic never splits: its image is the serve image, the live model
/// and the challenger's layer (`SHADOW_MODEL_PATH`), its revision takes all the traffic, and the live revision
/// stays listed at 0 % (tag `live`). Promoting the shadow deploys the challenger's own image (pushed with the
/// shadow's, named in the revision's annotation) as a new revision; discarding it gives the live revision its
/// traffic back.
public struct CloudRunPlatform: Platform {
    public var cloudRun: CloudRun
    /// The predict service and the retrain job.
    public var service: String
    public var job: String
    /// Builds the image of a model version: the serve image and the model (`live` nil), or the serve image,
    /// `live` and the model as its shadow. `nil`: no images can be built.
    public var images: (@Sendable (_ model: ModelArtifact, _ live: ModelArtifact?) async throws -> ImageReference)?
    /// The share of traffic a canary gets, 1 to 99 (0 or 100 deploys to all traffic at once).
    public var canaryPercent: Int
    /// Services serving the same models from the same images (predict over gRPC): each deploy, promotion and
    /// rollback is made on each of them, with revisions of their own, once it is made on `service`.
    public var mirrors: [String]
    /// The services of each model, by name, when each model has its own (`PREDICT_SERVICES`): a model's
    /// deploys, promotions and rollbacks go to its services only, and a model without any is refused. Empty:
    /// `service` and `mirrors` serve every model.
    public var models: [String: Services]

    /// A model's predict service and its mirrors.
    public struct Services: Sendable, Equatable {
        public var service: String
        public var mirrors: [String]

        public init(service: String, mirrors: [String] = []) {
            self.service = service
            self.mirrors = mirrors
        }
    }

    public init(cloudRun: CloudRun, service: String, job: String, canaryPercent: Int, mirrors: [String] = [],
                models: [String: Services] = [:],
                images: (@Sendable (ModelArtifact, ModelArtifact?) async throws -> ImageReference)?) {
        self.cloudRun = cloudRun
        self.service = service
        self.job = job
        self.canaryPercent = canaryPercent
        self.mirrors = mirrors
        self.models = models
        self.images = images
    }

    /// This platform on `model`'s own services; throws when the models have services of their own and `model`
    /// has none, so that no model is ever deployed onto another's service.
    func serving(_ model: ModelArtifact) throws -> CloudRunPlatform {
        guard !models.isEmpty else { return self }
        guard let services = models[model.name] else {
            throw CloudError("no predict service serves model '\(model.name)' (PREDICT_SERVICES names \(models.keys.sorted().joined(separator: ", "))): add its service before deploying it")
        }
        var platform = self
        platform.service = services.service
        platform.mirrors = services.mirrors
        platform.models = [:]
        return platform
    }

    /// This platform on each mirror instead of `service`.
    private var mirrored: [CloudRunPlatform] {
        mirrors.map { name in
            var mirror = self
            mirror.service = name
            mirror.mirrors = []
            return mirror
        }
    }

    /// Runs `change` on `service`, then on each mirror; answers `service`'s deployment. Promotion and rollback
    /// are made so that a step already made is a step done: after a mirror failed, the evaluator's next cycle
    /// passes over `service` and reaches the mirror again.
    private func everywhere(_ change: (CloudRunPlatform) async throws -> Deployment?) async throws -> Deployment? {
        let deployment = try await change(self)
        for mirror in mirrored {
            do {
                _ = try await change(mirror)
            } catch {
                throw CloudError("\(service) is updated but its mirror \(mirror.service) is not: \(error)")
            }
        }
        return deployment
    }

    public var deploys: Bool { true }

    /// The revision of a model version: `SERVICE-NAME-vVERSION-DIGEST8`, unique per image.
    public func revisionName(_ model: ModelArtifact, image: ImageReference) -> String {
        revisionStem(model) + "-" + String((image.digest ?? "").dropFirst(7).prefix(8))
    }

    /// `SERVICE-NAME-vVERSION`, lowercase, cut to leave room for the digest part in 63 characters.
    func revisionStem(_ model: ModelArtifact) -> String {
        let clean = { (text: String) in String(text.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }) }
        return String("\(service)-\(clean(model.name))-v\(clean(model.version))".prefix(63 - 9))
    }

    /// The revision template annotation naming a shadow's own image (the serve image and the challenger
    /// alone), which promoting the shadow deploys: evaluate, which promotes, builds no images.
    static let challengerImageAnnotation = "cyclone.dev/challenger-image"

    /// Deploys on the model's `service`, then on each mirror; when a mirror fails, `service` is rolled back (as
    /// far as it can be) so the deployment fails whole and the registry, which records only what succeeded,
    /// stays true.
    public func deploy(_ model: ModelArtifact, as role: Role, beside live: ModelArtifact?) async throws -> Deployment? {
        try await serving(model).deployEverywhere(model, as: role, beside: live)
    }

    private func deployEverywhere(_ model: ModelArtifact, as role: Role, beside live: ModelArtifact?) async throws -> Deployment? {
        let deployment = try await deployHere(model, as: role, beside: live)
        for mirror in mirrored {
            do {
                _ = try await mirror.deployHere(model, as: role, beside: live)
            } catch {
                let undone: String
                do {
                    _ = try await rollbackHere(model, from: role)
                    undone = "rolled back on \(service)"
                } catch let rollback {
                    undone = "and rolling it back on \(service) failed too: \(rollback)"
                }
                throw CloudError("deploying \(model.name)@\(model.version) on the mirror \(mirror.service) failed (\(error)); \(undone)")
            }
        }
        return deployment
    }

    private func deployHere(_ model: ModelArtifact, as role: Role, beside live: ModelArtifact?) async throws -> Deployment? {
        guard let images else { throw CloudError("no serve image to build \(model.name)@\(model.version)'s image on (SERVE_IMAGE)") }
        let own = try await images(model, nil)
        guard role == .shadow else {
            return try await deploy(own, of: model, canary: role == .canary && PlatformSettings.isCanary(canaryPercent))
        }
        guard let live else { throw CloudError("a shadow of \(model.name)@\(model.version) needs the live model to ride beside") }
        // The shadow rides in a revision of its own image: the serve image (today's predict), the live model,
        // and the challenger beside it; the live revision stays listed, at 0 %, to come back to.
        let image = try await images(model, live)
        let revision = revisionName(model, image: image)
        // Decided on the first read: a redo reads the service with our own revision on top.
        var liveRevision = ""
        let ready = try await update("deploying \(model.name)@\(model.version) as the shadow of \(live.version) on \(service)") { service in
            if liveRevision.isEmpty { liveRevision = try Self.liveRevision(service) }
            return ["template": try Self.template(service, image: image, revision: revision, annotation: own.description),
                    "traffic": [Self.target(revision, percent: 100), Self.target(liveRevision, percent: 0, tag: "live")]]
        }
        try check(ready, revision: revision)
        // The version's own image (what serves it once promoted) is the one the registry names.
        return Deployment(location: image.description,
                          detail: "revision \(revision) serves all of \(service): \(live.version) with \(model.version) in shadow (\(liveRevision) kept at 0 %)",
                          imageDigest: own.digest)
    }

    /// Deploys `image`, the image of `model`, as a new revision: with all the traffic, or as a canary.
    private func deploy(_ image: ImageReference, of model: ModelArtifact, canary: Bool) async throws -> Deployment {
        guard image.digest != nil else { throw CloudError("the image of \(model.name)@\(model.version) has no digest; revisions deploy by digest") }
        let revision = revisionName(model, image: image)
        // The live revision is decided on the first read: a redo reads the service with our own revision in it.
        var live = ""
        let ready = try await update("deploying \(model.name)@\(model.version) to \(service)") { service in
            if live.isEmpty { live = try Self.liveRevision(service) }
            return ["template": try Self.template(service, image: image, revision: revision, annotation: nil),
                    "traffic": canary
                        ? [Self.target(live, percent: 100 - canaryPercent), Self.target(revision, percent: canaryPercent, tag: "canary")]
                        : [Self.target(revision, percent: 100)]]
        }
        try check(ready, revision: revision)
        return Deployment(location: image.description,
                          detail: "revision \(revision) serves \(canary ? "\(canaryPercent) %" : "all") of \(service)",
                          imageDigest: image.digest)
    }

    /// The service's revision template with `image` in its container, a new revision named `revision`, and the
    /// challenger-image annotation set (or cleared).
    private static func template(_ service: JSONValue, image: ImageReference, revision: String, annotation: String?)
        throws -> JSONValue
    {
        guard case .object(var template) = service["template"], case .array(var containers) = template["containers"] ?? .null,
              case .object(var container) = containers.first ?? .null
        else { throw CloudError("service \(service["name"].string ?? "?") has no container to put the image in") }
        container["image"] = .string(image.description)
        containers[0] = .object(container)
        template["containers"] = .array(containers)
        template["revision"] = .string(revision)
        var annotations = template["annotations"]?.object ?? [:]
        annotations[challengerImageAnnotation] = annotation.map(JSONValue.string)
        template["annotations"] = annotations.isEmpty ? nil : .object(annotations)
        return .object(template)
    }

    private func check(_ ready: JSONValue, revision: String) throws {
        guard ready["latestReadyRevision"].string?.hasSuffix("/revisions/\(revision)") == true,
              ready["terminalCondition"]["state"].string == "CONDITION_SUCCEEDED", ready["reconciling"] != .bool(true)
        else {
            throw CloudError("revision \(revision) of \(service) did not become ready")
        }
    }

    public func promote(_ model: ModelArtifact, from role: Role) async throws -> Deployment? {
        try await serving(model).everywhere { try await $0.promoteHere(model, from: role) }
    }

    private func promoteHere(_ model: ModelArtifact, from role: Role) async throws -> Deployment? {
        guard role != .shadow else {
            // A shadow's revision serves the live version: the challenger's own image, pushed with the shadow's,
            // gets a revision of its own.
            let current = try await cloudRun.service(service)
            let shadowRevision = try revision(of: model, in: current)
            guard let text = try await cloudRun.revision(shadowRevision, of: service)["annotations"][Self.challengerImageAnnotation].string
            else {
                // The challenger's own revision (no annotation) already serves all: promoted before.
                let share = current["trafficStatuses"].array.first { $0["revision"].string == shadowRevision }?["percent"].number
                guard share == 100 else {
                    throw CloudError("revision \(shadowRevision) names no image of \(model.name)@\(model.version) of its own (\(Self.challengerImageAnnotation))")
                }
                return Deployment(location: shadowRevision, detail: "revision \(shadowRevision) serves all of \(service) already")
            }
            return try await deploy(try ImageReference(text), of: model, canary: false)
        }
        let revision = try await moveTraffic("promoting \(model.name)@\(model.version) on \(service)") { service in
            try self.revision(of: model, in: service)
        }
        return Deployment(location: revision, detail: "revision \(revision) serves all of \(service)")
    }

    /// Gives all the traffic to the revision besides the canary's or shadow's that had the most (the live
    /// one; a shadow's stays listed at 0 %).
    public func rollback(_ model: ModelArtifact, from role: Role) async throws -> Deployment? {
        try await serving(model).everywhere { try await $0.rollbackHere(model, from: role) }
    }

    private func rollbackHere(_ model: ModelArtifact, from role: Role) async throws -> Deployment? {
        let revision = try await moveTraffic("rolling back \(model.name)@\(model.version) on \(service)") { service in
            // No revision of the version serves: rolled back before; the serving revision keeps everything.
            guard let canary = try? self.revision(of: model, in: service) else { return try Self.liveRevision(service) }
            let others = service["trafficStatuses"].array.filter { $0["revision"].string.map { $0 != canary } ?? false }
            guard let other = others.max(by: { ($0["percent"].number ?? 0) < ($1["percent"].number ?? 0) })?["revision"].string
            else { throw CloudError("no revision besides \(canary) serves \(self.service) to roll back to") }
            return other
        }
        return Deployment(location: revision, detail: "revision \(revision) serves all of \(service) again")
    }

    /// A traffic-only update giving the chosen revision everything.
    private func moveTraffic(_ doing: String, choose: @escaping @Sendable (JSONValue) throws -> String) async throws -> String {
        // Chosen on the first read: another writer may have moved the traffic away from it before a redo. The
        // template goes as it was read (the field is required on a Service; the mask keeps it unchanged).
        var chosen = ""
        _ = try await update(doing, mask: "traffic") { service in
            if chosen.isEmpty { chosen = try choose(service) }
            return ["template": service["template"], "traffic": [Self.target(chosen, percent: 100)]]
        }
        return chosen
    }

    /// GET, change, PATCH the changed fields (named in `updateMask`, or `mask` when given), wait, and read the
    /// service back; returns the patch operation's service. `change` gives the fields to set from the service
    /// as read.
    ///
    /// services.patch takes no precondition (the service's `etag` is output only, ignored in a body), so a
    /// concurrent writer is not refused: whoever writes last wins. Reading back after the operation notices a
    /// writer that moved the traffic after us; the change is then made again from a fresh read, five times at
    /// most before giving up. A writer that lands between our read and our PATCH is overwritten unnoticed.
    private func update(_ doing: String, mask: String? = nil, change: (JSONValue) throws -> [String: JSONValue])
        async throws -> JSONValue
    {
        for _ in 0..<5 {
            let fields = try change(try await cloudRun.service(service))
            let operation = try await cloudRun.patchService(service, .object(fields),
                                                            updateMask: mask ?? fields.keys.sorted().joined(separator: ","))
            let done = try await cloudRun.wait(operation, doing: doing)
            if let traffic = fields["traffic"], !Self.sameTraffic(try await cloudRun.service(service)["traffic"], traffic) {
                continue
            }
            return done
        }
        throw CloudError("\(doing): the service kept changing under us (its traffic was not as asked after five tries)")
    }

    /// Whether two `traffic` lists are the same targets, as Cloud Run echoes them: default values (a 0 %
    /// share, an empty tag) are left out of its JSON.
    static func sameTraffic(_ a: JSONValue, _ b: JSONValue) -> Bool {
        func targets(_ traffic: JSONValue) -> [JSONValue] {
            traffic.array.map { target in
                .object((target.object ?? [:]).filter { $0.value != .number(0) && $0.value != .string("") && $0.value != .bool(false) })
            }
        }
        return targets(a) == targets(b)
    }

    /// Runs the retrain job for the request's model, unless an execution for that model still runs (one
    /// retrain at a time per model; other models' executions run beside it).
    public func startRetrain(_ request: RetrainRequest) async throws -> RetrainExecution {
        let running = try await cloudRun.executions(job).filter { $0["completionTime"] == .null }
        if let same = running.first(where: { execution in
            // An execution that does not say its model (not started by Cyclone) may be any model's.
            let model = execution["template"]["containers"].array.first?["env"].array
                .first { $0["name"].string == "RETRAIN_MODEL_NAME" }?["value"].string
            return model == nil || model == request.modelName
        }), let name = same["name"].string {
            return RetrainExecution(id: name, detail: "execution \(name) of \(job) is still running (for \(request.modelName), or naming no model); no second one started")
        }
        let execution = try await cloudRun.runJob(job, environment: request.environment)
        return RetrainExecution(id: execution, detail: "started execution \(execution) of \(job)")
    }

    /// The revision serving most of the traffic now.
    static func liveRevision(_ service: JSONValue) throws -> String {
        let statuses = service["trafficStatuses"].array
        if let top = statuses.max(by: { ($0["percent"].number ?? 0) < ($1["percent"].number ?? 0) }) {
            if let revision = top["revision"].string { return revision }
            if top["type"].string == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST",
               let latest = service["latestReadyRevision"].string?.split(separator: "/").last {
                return String(latest)
            }
        }
        throw CloudError("service \(service["name"].string ?? "?") has no ready revision serving traffic")
    }

    /// The serving revision of a model version: its exact stem, then the eight hex digits of its digest.
    func revision(of model: ModelArtifact, in service: JSONValue) throws -> String {
        let stem = revisionStem(model) + "-"
        let names = service["trafficStatuses"].array.compactMap { $0["revision"].string }
        guard let name = names.first(where: { name in
            name.hasPrefix(stem) && name.dropFirst(stem.count).count == 8 && name.dropFirst(stem.count).allSatisfy(\.isHexDigit)
        }) else {
            throw CloudError("no revision of \(model.name)@\(model.version) serves \(service["name"].string ?? "the service")")
        }
        return name
    }

    static func target(_ revision: String, percent: Int, tag: String? = nil) -> JSONValue {
        var target: [String: JSONValue] = ["type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": .string(revision),
                                           "percent": .number(Double(percent))]
        if let tag { target["tag"] = .string(tag) }
        return .object(target)
    }
}
