import CycloneModel
import CycloneStore
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Watches `MODEL_PATH` (and `CANARY_MODEL_PATH`, `SHADOW_MODEL_PATH`) and swaps in the model a path points to
/// when it changes: a new file renamed over it, or a symlink re-pointed (what the local platform does to
/// deploy). The new file is loaded and checked before the swap; a file that does not load, or holds another
/// model's name, is logged and the current model keeps serving. A canary or shadow path that disappears ends
/// the canary or the shadow; a shadow whose schema differs from live's is refused. A swapped-in version is
/// registered like the first one.
public struct ModelWatcher: Service {
    /// A second version beside the live one, from its own path.
    enum Challenger: String {
        case canary, shadow
    }

    let path: String
    let canaryPath: String?
    let shadowPath: String?
    /// How often the paths are checked; `nil`: the canary and shadow are loaded at the start, then nothing changes.
    let interval: Duration?
    let models: ModelSet
    /// The model name watched, served by `models`.
    let name: String
    let strictCategories: Bool
    let registry: ModelRegistry
    let logger: Logger

    public init(path: String, canaryPath: String?, shadowPath: String? = nil, interval: Duration?, models: ModelSet,
                name: String, strictCategories: Bool, registry: ModelRegistry, logger: Logger)
    {
        precondition(models[name] != nil, "the watcher's model '\(name)' is not in the set")
        self.path = path
        self.canaryPath = canaryPath
        self.shadowPath = shadowPath
        self.interval = interval
        self.models = models
        self.name = name
        self.strictCategories = strictCategories
        self.registry = registry
        self.logger = logger
    }

    /// What serves `name` now (always present: a model set never drops a name).
    private var serving: ModelSet.Serving { models[name]! }

    /// What identifies the file behind `path` (symlinks followed); `nil` when there is none.
    static func identity(of path: String) -> [Int]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [Int(info.st_dev), Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec)]
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await watch() }
        // A service that returns would stop the group: stay until shutdown.
        try? await gracefulShutdown()
    }

    private func watch() async {
        var seen = Self.identity(of: path)
        let challengers = [(Challenger.canary, canaryPath), (.shadow, shadowPath)].compactMap { role, path in
            path.map { (role, $0) }
        }
        var seenChallengers = challengers.map { Self.identity(of: $0.1) }
        for (index, (role, path)) in challengers.enumerated() where seenChallengers[index] != nil {
            reload(role, from: path)
        }
        guard let interval else { return }
        while !Task.isCancelled {
            guard (try? await Task.sleep(for: interval)) != nil else { return }
            if let now = Self.identity(of: path), now != seen {
                seen = now
                reload()
            }
            for (index, (role, path)) in challengers.enumerated() {
                let now = Self.identity(of: path)
                if now != seenChallengers[index] {
                    seenChallengers[index] = now
                    reload(role, from: path)
                }
            }
        }
    }

    /// Loads the file at `path` for `role` (`nil`: the live model); a file that does not load, or holds another
    /// model, is logged, saying what keeps serving, and gives `nil`.
    private func load(_ path: String, for role: Challenger? = nil) -> ServedModel? {
        let current = serving.live.artifact
        let outcome = role.map { "the \($0.rawValue) ends; live serves alone" } ?? "serving the current one"
        let file = role.map { "the \($0.rawValue) model file" } ?? "the new model file"
        do {
            let new = try ServedModel.load(path: path, strictCategories: strictCategories)
            guard new.artifact.name == current.name else {
                logger.error("\(file) holds another model; \(outcome)", metadata: [
                    "path": "\(path)", "found": "\(new.artifact.name)", "model": "\(current.name)",
                    "version": "\(current.version)"])
                return nil
            }
            return new
        } catch {
            logger.error("\(file) does not load; \(outcome)", metadata: [
                "path": "\(path)", "error": "\(String(reflecting: error))", "model": "\(current.name)",
                "version": "\(current.version)"])
            return nil
        }
    }

    private func reload() {
        guard let new = load(path) else { return }
        let old = serving.live.artifact
        guard new.artifact != old else { return }
        // A canary that has become the live version is over (the swap ends it).
        models.swap(to: new)
        logger.notice("model swapped", metadata: [
            "model": "\(old.name)", "from_version": "\(old.version)", "version": "\(new.artifact.version)"])
        register(new.artifact, status: .live)
        // The shadow is judged against the live version: the swap may have ended it (it no longer fits, or is
        // now live) or let it fit again, so it is loaded and checked anew, saying why when it does not serve.
        if let shadowPath, Self.identity(of: shadowPath) != nil { reload(.shadow, from: shadowPath) }
    }

    private func reload(_ role: Challenger, from challengerPath: String) {
        let current = role == .canary ? serving.canary : serving.shadow
        let set = { (model: ServedModel?) in
            role == .canary ? models.setCanary(model, of: name) : models.setShadow(model, of: name)
        }
        guard Self.identity(of: challengerPath) != nil else {
            if let ended = current?.artifact {
                set(nil)
                logger.notice("\(role.rawValue) ended", metadata: ["model": "\(ended.name)", "version": "\(ended.version)"])
            }
            return
        }
        // A file that does not load, or is the live model, ends the canary or shadow: traffic must not keep going
        // to, nor labels be paired with, a version the evaluator is no longer judging.
        guard let challenger = load(challengerPath, for: role) else {
            set(nil)
            return
        }
        guard challenger.artifact.version != serving.live.artifact.version else {
            if current != nil {
                logger.notice("the \(role.rawValue) is the live version now; it ends", metadata: [
                    "path": "\(challengerPath)", "version": "\(challenger.artifact.version)"])
            } else {
                logger.warning("the \(role.rawValue) model file holds the live version; nothing to compare it with", metadata: [
                    "path": "\(challengerPath)", "version": "\(challenger.artifact.version)"])
            }
            set(nil)
            return
        }
        // A shadow is scored on the live model's requests: it must take the same instances.
        if role == .shadow, let problem = serving.live.challengeProblem(challenger.artifact) {
            logger.error("the shadow model is refused; live keeps serving alone", metadata: [
                "path": "\(challengerPath)", "version": "\(challenger.artifact.version)", "problem": "\(problem)"])
            set(nil)
            return
        }
        set(challenger)
        var metadata: Logger.Metadata = ["model": "\(challenger.artifact.name)", "version": "\(challenger.artifact.version)"]
        if role == .canary { metadata["percent"] = "\(models.canaryPercent)" }
        logger.notice("\(role.rawValue) serving", metadata: metadata)
        register(challenger.artifact, status: role == .canary ? .canary : .shadow)
    }

    /// Registers a swapped-in version in the background: a database outage must not stop the watching.
    private func register(_ artifact: ModelArtifact, status: ModelRegistry.Status) {
        Task { [registry, logger] in
            await ModelRegistration.register(artifact, status: status, in: registry, logger: logger)
        }
    }
}
