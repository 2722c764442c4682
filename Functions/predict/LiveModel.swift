import CycloneModel
import CycloneStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The models predict serves now: the live one and, during a canary, a second version that answers a share
/// of the requests. A request takes its model once, at its start, and uses that one to the end, so a swap
/// never shows a request half of one model and half of another; a swap replaces a model whole.
final class LiveModel: Sendable {
    private struct Serving {
        var live: ServedModel
        var canary: ServedModel?
    }

    private let serving: Mutex<Serving>
    /// The share of requests, in percent, the canary answers.
    let canaryPercent: Int

    init(_ model: ServedModel, canaryPercent: Int = 0) {
        serving = Mutex(Serving(live: model))
        self.canaryPercent = canaryPercent
    }

    /// The live model.
    var current: ServedModel { serving.withLock { $0.live } }

    var canary: ServedModel? { serving.withLock { $0.canary } }

    /// The model that answers the request whose first prediction id is `id`: the canary for `canaryPercent`
    /// of the ids, by the id's random bits, so the same id always goes the same way.
    func model(for id: UUID) -> ServedModel {
        serving.withLock { serving in
            guard let canary = serving.canary else { return serving.live }
            let u = id.uuid
            let bits = [u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return Int(bits % 100) < canaryPercent ? canary : serving.live
        }
    }

    /// Replaces the live model; returns the one it replaced.
    @discardableResult
    func swap(to new: ServedModel) -> ServedModel {
        serving.withLock { serving in
            defer { serving.live = new }
            return serving.live
        }
    }

    /// Starts (or ends, with `nil`) the canary.
    func setCanary(_ canary: ServedModel?) {
        serving.withLock { $0.canary = canary }
    }
}

/// Watches `MODEL_PATH` (and `CANARY_MODEL_PATH`) and swaps in the model a path points to when it changes: a
/// new file renamed over it, or a symlink re-pointed (what the local platform does to deploy). The new file is
/// loaded and checked before the swap; a file that does not load, or holds another model's name, is logged and
/// the current model keeps serving. A canary path that disappears ends the canary. A swapped-in version is
/// registered like the first one.
struct ModelWatcher: Service {
    let path: String
    let canaryPath: String?
    let interval: Duration
    let live: LiveModel
    let strictCategories: Bool
    let registry: ModelRegistry
    let logger: Logger

    /// What identifies the file behind `path` (symlinks followed); `nil` when there is none.
    static func identity(of path: String) -> [Int]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [Int(info.st_dev), Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec)]
    }

    func run() async throws {
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
        let current = live.current.artifact
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
        let old = live.current.artifact
        guard new.artifact != old else { return }
        live.swap(to: new)
        // A canary that has become the live version is over.
        if live.canary?.artifact.version == new.artifact.version { live.setCanary(nil) }
        logger.notice("model swapped", metadata: [
            "model": "\(old.name)", "from_version": "\(old.version)", "version": "\(new.artifact.version)"])
        register(new.artifact, status: .live)
    }

    private func reloadCanary(_ canaryPath: String) {
        guard Self.identity(of: canaryPath) != nil else {
            if let ended = live.canary?.artifact {
                live.setCanary(nil)
                logger.notice("canary ended", metadata: ["model": "\(ended.name)", "version": "\(ended.version)"])
            }
            return
        }
        // A canary file that does not load, or is the live model, ends the canary: the share must not keep
        // going to a version the evaluator is no longer judging.
        guard let canary = load(canaryPath), canary.artifact != live.current.artifact else {
            live.setCanary(nil)
            return
        }
        live.setCanary(canary)
        logger.notice("canary serving", metadata: [
            "model": "\(canary.artifact.name)", "version": "\(canary.artifact.version)",
            "percent": "\(live.canaryPercent)"])
        register(canary.artifact, status: .canary)
    }

    /// Registers a swapped-in version in the background: a database outage must not stop the watching.
    private func register(_ artifact: ModelArtifact, status: ModelRegistry.Status) {
        Task { [registry, logger] in
            await ModelRegistration.register(artifact, status: status, in: registry, logger: logger)
        }
    }
}
