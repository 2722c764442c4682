import ServiceLifecycle

/// Looks at the files of a model set's loaded models every `interval` (`MODEL_RELOAD_INTERVAL`) and swaps in
/// what changed (`ModelSet.refresh()`): a new file renamed over a model's path or a link re-pointed (what the
/// local platform does to deploy), a canary or shadow that starts or ends, a folder's model removed. Without
/// an interval it looks once, at the start (the canary and shadow of a model given by its paths).
public struct ModelWatcher: Service {
    let models: ModelSet
    let interval: Duration?

    public init(models: ModelSet, interval: Duration?) {
        self.models = models
        self.interval = interval
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await models.refreshOffTasks()
            guard let interval else { return }
            while (try? await Task.sleep(for: interval)) != nil { await models.refreshOffTasks() }
        }
        // A service that returns would stop the group: stay until shutdown.
        try? await gracefulShutdown()
    }
}
