import CycloneModel
import CycloneStore
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Watches `MODEL_PATH` (and `CANARY_MODEL_PATH`) and swaps in the model a path points to when it changes: a
/// new file renamed over it, or a symlink re-pointed (what the local platform does to deploy). The new file is
/// loaded and checked before the swap; a file that does not load, or holds another model's name, is logged and
/// the current model keeps serving. A canary path that disappears ends the canary. A swapped-in version is
/// registered like the first one.
public struct ModelWatcher: Service {
    let path: String
    let canaryPath: String?
    let interval: Duration
    let models: ModelSet
    /// The model name watched, served by `models`.
    let name: String
    let strictCategories: Bool
    let registry: ModelRegistry
    let logger: Logger

    public init(path: String, canaryPath: String?, interval: Duration, models: ModelSet, name: String,
                strictCategories: Bool, registry: ModelRegistry, logger: Logger)
    {
        precondition(models[name] != nil, "the watcher's model '\(name)' is not in the set")
        self.path = path
        self.canaryPath = canaryPath
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
    }

    private func watch() async {
        var seen = Self.identity(of: path)
        var seenCanary = canaryPath.flatMap(Self.identity)
        if let canaryPath, seenCanary != nil { reloadCanary(canaryPath) }
        while !Task.isCancelled {
            guard (try? await Task.sleep(for: interval)) != nil else { return }
            if let now = Self.identity(of: path), now != seen {
                seen = now
                reload()
            }
            if let canaryPath {
                let now = Self.identity(of: canaryPath)
                if now != seenCanary {
                    seenCanary = now
                    reloadCanary(canaryPath)
                }
            }
        }
    }

    private func load(_ path: String) -> ServedModel? {
        let current = serving.live.artifact
        do {
            let new = try ServedModel.load(path: path, strictCategories: strictCategories)
            guard new.artifact.name == current.name else {
                logger.error("the new model file holds another model; serving the current one", metadata: [
                    "path": "\(path)", "found": "\(new.artifact.name)", "model": "\(current.name)",
                    "version": "\(current.version)"])
                return nil
            }
            return new
        } catch {
            logger.error("the new model file does not load; serving the current one", metadata: [
                "path": "\(path)", "error": "\(error)", "model": "\(current.name)", "version": "\(current.version)"])
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
    }

    private func reloadCanary(_ canaryPath: String) {
        guard Self.identity(of: canaryPath) != nil else {
            if let ended = serving.canary?.artifact {
                models.setCanary(nil, of: name)
                logger.notice("canary ended", metadata: ["model": "\(ended.name)", "version": "\(ended.version)"])
            }
            return
        }
        // A canary file that does not load, or is the live model, ends the canary: the share must not keep
        // going to a version the evaluator is no longer judging.
        guard let canary = load(canaryPath), canary.artifact != serving.live.artifact else {
            models.setCanary(nil, of: name)
            return
        }
        models.setCanary(canary, of: name)
        logger.notice("canary serving", metadata: [
            "model": "\(canary.artifact.name)", "version": "\(canary.artifact.version)",
            "percent": "\(models.canaryPercent)"])
        register(canary.artifact, status: .canary)
    }

    /// Registers a swapped-in version in the background: a database outage must not stop the watching.
    private func register(_ artifact: ModelArtifact, status: ModelRegistry.Status) {
        Task { [registry, logger] in
            await ModelRegistration.register(artifact, status: status, in: registry, logger: logger)
        }
    }
}
