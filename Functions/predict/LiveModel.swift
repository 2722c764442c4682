import CycloneModel
import CycloneStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The model predict serves now. A request takes it once, at its start, and uses that one to the end, so a
/// swap never shows a request half of one model and half of another; a swap replaces it whole.
final class LiveModel: Sendable {
    private let model: Mutex<ServedModel>

    init(_ model: ServedModel) { self.model = Mutex(model) }

    var current: ServedModel { model.withLock { $0 } }

    /// Replaces the served model; returns the one it replaced.
    @discardableResult
    func swap(to new: ServedModel) -> ServedModel {
        model.withLock { current in
            defer { current = new }
            return current
        }
    }
}

/// Watches `MODEL_PATH` and swaps in the model it points to when it changes: a new file renamed over it, or a
/// symlink re-pointed (what the local platform does to deploy). The new file is loaded and checked before
/// the swap; a file that does not load, or holds another model's name, is logged and the current model
/// keeps serving. A swapped-in version is registered like the first one.
struct ModelWatcher: Service {
    let path: String
    let interval: Duration
    let live: LiveModel
    let strictCategories: Bool
    let registry: ModelRegistry
    let logger: Logger

    /// What identifies the file behind `path` (symlinks followed); `nil` when it cannot be read.
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
        while !Task.isCancelled {
            guard (try? await Task.sleep(for: interval)) != nil else { return }
            let now = Self.identity(of: path)
            guard let now, now != seen else { continue }
            seen = now
            await reload()
        }
    }

    private func reload() async {
        let old = live.current.artifact
        let new: ServedModel
        do {
            new = try ServedModel.load(path: path, strictCategories: strictCategories)
        } catch {
            logger.error("the new model file does not load; serving the current one", metadata: [
                "path": "\(path)", "error": "\(error)", "model": "\(old.name)", "version": "\(old.version)"])
            return
        }
        guard new.artifact.name == old.name else {
            logger.error("the new model file holds another model; serving the current one", metadata: [
                "path": "\(path)", "found": "\(new.artifact.name)", "model": "\(old.name)", "version": "\(old.version)"])
            return
        }
        guard new.artifact != old else { return }
        live.swap(to: new)
        logger.notice("model swapped", metadata: [
            "model": "\(old.name)", "from_version": "\(old.version)", "version": "\(new.artifact.version)"])
        await ModelRegistration.register(new.artifact, in: registry, logger: logger)
    }
}
