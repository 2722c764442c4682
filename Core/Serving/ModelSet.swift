import CycloneModel
import CycloneStore
import Foundation
import Logging
import Metrics
import Synchronization

/// The models a process serves, by name: for each, the live version and, during a canary, a second version
/// that answers a share of the requests, or, during a shadow evaluation, a challenger scored beside the live
/// version on every request and answering none.
///
/// A set built from a `ModelSource` loads a model the first time a request names it, and keeps at most
/// `capacity` models loaded, unloading the least recently used (as Ray Serve's model multiplexing does for
/// many small models); `refresh()` swaps in the files that changed. A request takes its models once, at its
/// start, and uses those to the end, so neither a swap nor an unload ever shows a request half of one model
/// and half of another.
public final class ModelSet: Sendable {
    /// What serves one model name now.
    public struct Serving: Sendable {
        public var live: ServedModel
        public var canary: ServedModel?
        public var shadow: ServedModel?

        public init(live: ServedModel, canary: ServedModel? = nil, shadow: ServedModel? = nil) {
            self.live = live
            self.canary = canary
            self.shadow = shadow
        }

        /// The versions that answer requests: live, then a canary's.
        public var versions: [String] { [live.artifact.version] + (canary.map { [$0.artifact.version] } ?? []) }

        subscript(slot: ModelFolder.Slot) -> ServedModel? {
            get {
                switch slot {
                case .live: live
                case .canary: canary
                case .shadow: shadow
                }
            }
            set {
                switch slot {
                case .live: if let newValue { live = newValue }
                case .canary: canary = newValue
                case .shadow: shadow = newValue
                }
            }
        }

        /// The version that answers a request: during a canary, the canary for `canaryPercent` of the caller's
        /// keys (by a hash of `key` with the canary's version, so a key always goes the same way during one
        /// canary, a replay is repeatable, and each canary draws its own keys) or, for a request without a key,
        /// of the prediction ids (by the random bits of `id`, its first one); with the shadow scored beside the
        /// live version (a canary's requests are the canary's experiment).
        public func pick(for id: UUID, key: String? = nil, canaryPercent: Int) -> Pick {
            guard let canary else { return Pick(model: live, shadow: shadow) }
            let bucket: UInt64
            if let key {
                // FNV-1a, 64-bit, then SplitMix64's finaliser so that keys differing in a last digit spread:
                // stable across processes and machines (Swift's Hasher is seeded per process).
                let text = canary.artifact.version + "\u{0}" + key
                var z = text.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
                z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
                z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
                bucket = z ^ (z >> 31)
            } else {
                let u = id.uuid
                bucket = [u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            }
            return Int(bucket % 100) < canaryPercent ? Pick(model: canary, shadow: nil) : Pick(model: live, shadow: shadow)
        }

        /// The pick for a request that names `version`: the live version with its shadow, or the canary; `nil`
        /// when no version of that name answers requests.
        public func pick(version: String) -> Pick? {
            if live.artifact.version == version { return Pick(model: live, shadow: shadow) }
            if let canary, canary.artifact.version == version { return Pick(model: canary, shadow: nil) }
            return nil
        }
    }

    /// What a request is served by: the version that answers it and, when that is the live version, the shadow
    /// scored beside it.
    public struct Pick: Sendable {
        public var model: ServedModel
        public var shadow: ServedModel?
    }

    /// Why a model cannot be served.
    public enum LoadError: Error, CustomStringConvertible {
        /// No model of that name is served here; `names` are the ones that are.
        case notFound(name: String, names: [String])
        /// Its file is there but does not load.
        case unloadable(name: String, problem: String)

        public var description: String {
            let shown = name.count > 200 ? name.prefix(200) + "…" : name
            switch self {
            case .notFound(_, let names):
                return "model '\(shown)' is not served here (models: \(ModelSet.listing(names)))"
            case .unloadable(_, let problem): return "model '\(shown)' does not load: \(problem)"
            }
        }

        public var name: String {
            switch self {
            case .notFound(let name, _), .unloadable(let name, _): name
            }
        }
    }

    /// Model names for a message: the first 20, then how many more (a folder may hold thousands).
    public static func listing(_ names: [String]) -> String {
        guard !names.isEmpty else { return "none" }
        let more = names.count > 20 ? ", and \(names.count - 20) more" : ""
        return names.prefix(20).joined(separator: ", ") + more
    }

    /// One loaded model: what serves it, what its files were when read, when a request last used it, and which
    /// load it is (a change read from the files is applied only to the load it was read for).
    private struct Entry {
        var serving: Serving
        var seen: [ModelFolder.Slot: [Int]]
        var used: UInt64
        var generation: UInt64
        /// Its folder entry was missing at the last look (a second look unloads it).
        var missing = false
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var clock: UInt64 = 0
        var loading: [String: Task<Serving, any Error>] = [:]
        /// The last failed load of each name, by its file's identity and when: the same file is not read again
        /// for `failureMemory`.
        var failed: [String: (identity: [Int], at: ContinuousClock.Instant, error: LoadError)] = [:]
        /// The source's names, with the folder's identity when they were read.
        var listed: (identity: [Int]?, names: [String])?
        /// Whether a `refresh()` runs (one at a time).
        var refreshing = false

        mutating func tick() -> UInt64 {
            clock += 1
            return clock
        }

        mutating func touch(_ name: String) -> Serving? {
            guard entries[name] != nil else { return nil }
            entries[name]!.used = tick()
            return entries[name]!.serving
        }
    }

    private let state: Mutex<State>
    /// The share of requests, in percent, a canary answers.
    public let canaryPercent: Int
    /// The most models loaded at once.
    public let capacity: Int
    /// Where models come from; `nil` for a fixed set.
    public let source: ModelSource?
    /// Told of every version that starts serving (live, canary or shadow): predict registers it.
    private let served: @Sendable (ModelArtifact, ModelRegistry.Status) -> Void
    /// Where model files are read and decoded: off the tasks' shared threads, which a large model would hold.
    private static let reading = DispatchQueue(label: "cyclone.model-set.reading", attributes: .concurrent)
    /// How long a file that failed to load is not read again while it stays the same.
    static let failureMemory = Duration.seconds(10)

    private let loaded = Gauge(label: "cyclone_models_loaded")
    private let loads = Counter(label: "cyclone_model_loads_total")
    private let evictions = Counter(label: "cyclone_model_evictions_total")

    /// Serves `models`, one live version per name (a later model of the same name replaces an earlier one), and
    /// nothing else.
    public convenience init(_ models: [ServedModel], canaryPercent: Int = 0) {
        self.init(source: nil, preloaded: models, canaryPercent: canaryPercent)
    }

    /// Serves the models of `source`, loading each when first asked for, at most `capacity` at once; `preloaded`
    /// are loaded already (their challengers are read by the first `refresh()`).
    public init(source: ModelSource?, preloaded: [ServedModel] = [], capacity: Int = .max, canaryPercent: Int,
                served: @escaping @Sendable (ModelArtifact, ModelRegistry.Status) -> Void = { _, _ in })
    {
        precondition(capacity > 0, "a model set holds at least one model")
        var state = State()
        for model in preloaded {
            let live = source?.path(of: model.artifact.name, .live).flatMap(ModelSource.identity(of:))
            state.entries[model.artifact.name] = Entry(serving: Serving(live: model), seen: live.map { [.live: $0] } ?? [:],
                                                       used: 0, generation: state.tick())
        }
        self.state = Mutex(state)
        self.canaryPercent = canaryPercent
        self.capacity = capacity
        self.source = source
        self.served = served
        loaded.record(state.entries.count)
    }

    /// The names served, sorted: the source's (read again when its folder changed, never for a model given by
    /// its paths; the last list while the folder cannot be read), and those loaded.
    public var names: [String] {
        let identity = source?.listIdentity
        let (listed, loadedNames) = state.withLock { ($0.listed, Array($0.entries.keys)) }
        var names = listed?.names ?? []
        if let source, listed == nil || listed?.identity != identity, let read = source.names() {
            names = read
            state.withLock { $0.listed = (identity, read) }
        }
        return Set(names + loadedNames).sorted()
    }

    /// The names loaded now, sorted.
    public var loadedNames: [String] { state.withLock { $0.entries.keys.sorted() } }

    /// What serves `name` now, if it is loaded.
    public subscript(name: String) -> Serving? { state.withLock { $0.entries[name]?.serving } }

    /// What serves `name`, loaded first when it is not (one load however many requests wait for it), which may
    /// unload the least recently used model.
    public func serving(_ name: String) async throws(LoadError) -> Serving {
        enum Found { case serving(Serving), loading(Task<Serving, any Error>) }
        let found: Found? = state.withLock { state in
            if let serving = state.touch(name) { return .serving(serving) }
            if let task = state.loading[name] { return .loading(task) }
            guard source != nil else { return nil }
            let task = Task {
                try await withCheckedThrowingContinuation { continuation in
                    Self.reading.async { continuation.resume(with: Result { try self.load(name) }) }
                }
            }
            state.loading[name] = task
            return .loading(task)
        }
        switch found {
        case nil: throw .notFound(name: name, names: names)
        case .serving(let serving)?: return serving
        case .loading(let task)?:
            do { return try await task.value } catch let error as LoadError { throw error } catch {
                throw .unloadable(name: name, problem: "\(error)")
            }
        }
    }

    /// Loads `name` from the source, adds it (unloading the least recently used beyond `capacity`) and tells of
    /// its versions.
    private func load(_ name: String) throws -> Serving {
        do {
            let (serving, seen) = try read(name)
            let evicted: [String] = state.withLock { state in
                state.loading[name] = nil
                state.failed[name] = nil
                let now = state.tick()
                state.entries[name] = Entry(serving: serving, seen: seen, used: now, generation: now)
                var evicted: [String] = []
                while state.entries.count > capacity,
                      let oldest = state.entries.filter({ $0.key != name }).min(by: { $0.value.used < $1.value.used })?.key
                {
                    state.entries[oldest] = nil
                    evicted.append(oldest)
                }
                loaded.record(state.entries.count)
                return evicted
            }
            loads.increment()
            if !evicted.isEmpty { evictions.increment(by: evicted.count) }
            let artifact = serving.live.artifact
            source?.logger.info("model loaded", metadata: [
                "model": "\(artifact.name)", "version": "\(artifact.version)", "unloaded": "\(evicted.joined(separator: ","))"])
            served(artifact, .live)
            if let canary = serving.canary { served(canary.artifact, .canary) }
            if let shadow = serving.shadow { served(shadow.artifact, .shadow) }
            return serving
        } catch {
            state.withLock { _ = $0.loading.removeValue(forKey: name) }
            throw error
        }
    }

    /// Reads `name`'s live version and challengers from the source, with what their files were before reading.
    /// A live file that failed to load is not read again until it changes.
    private func read(_ name: String) throws(LoadError) -> (Serving, [ModelFolder.Slot: [Int]]) {
        guard let source, let livePath = source.path(of: name, .live) else { throw .notFound(name: name, names: names) }
        guard let liveIdentity = ModelSource.identity(of: livePath), source.holds(name) else {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: livePath) {
                throw .unloadable(name: name, problem: "\(livePath) is a link to \(target), which does not exist")
            }
            // A folder gone for a moment (a mount's blip, a link swapped) is no answer about the model.
            if case .folder(let folder) = source.location, ModelSource.identity(of: folder.path) == nil {
                throw .unloadable(name: name, problem: "the model folder \(folder.path) cannot be read")
            }
            throw .notFound(name: name, names: names)
        }
        if let failed = state.withLock({ $0.failed[name] }), failed.identity == liveIdentity,
           ContinuousClock.now - failed.at < Self.failureMemory
        {
            throw failed.error
        }
        let live: ServedModel
        do { live = try source.live(name, from: livePath) } catch {
            let failure = LoadError.unloadable(name: name, problem: "\(error)")
            state.withLock { $0.failed[name] = (liveIdentity, ContinuousClock.now, failure) }
            throw failure
        }
        var serving = Serving(live: live)
        var seen: [ModelFolder.Slot: [Int]] = [.live: liveIdentity]
        for slot in [ModelFolder.Slot.canary, .shadow] {
            guard let path = source.path(of: name, slot), let identity = ModelSource.identity(of: path) else { continue }
            seen[slot] = identity
            serving[slot] = source.challenger(slot, from: path, live: live, current: nil)
        }
        return (serving, seen)
    }

    /// One look at the files of the models loaded: a live file renamed over or a link re-pointed is swapped in
    /// (a file that does not load, or holds another model, is logged and the current version keeps serving); a
    /// canary or shadow file that appears, changes or goes starts, replaces or ends it; a folder's model whose
    /// file is gone at two looks in a row is no longer served. The folder's names are listed anew.
    public func refresh() {
        guard let source else { return }
        let loaded = state.withLock { state -> [String: (seen: [ModelFolder.Slot: [Int]], generation: UInt64, missing: Bool)]? in
            guard !state.refreshing else { return nil }
            state.refreshing = true
            let now = ContinuousClock.now
            state.failed = state.failed.filter { now - $0.value.at < Self.failureMemory }
            return state.entries.mapValues { (seen: $0.seen, generation: $0.generation, missing: $0.missing) }
        }
        guard let loaded else { return }
        defer { state.withLock { $0.refreshing = false } }
        for (name, entry) in loaded.sorted(by: { $0.key < $1.key }) {
            var seen = entry.seen
            if let path = source.path(of: name, .live) {
                let now = ModelSource.identity(of: path)
                if now == nil, case .folder = source.location, seen[.live] != nil {
                    // A link re-pointed by unlinking first, or a network mount's blip, is not a removal yet.
                    if entry.missing {
                        unload(name, generation: entry.generation, because: "its file is gone from the model folder", path: path)
                    } else {
                        state.withLock { state in
                            if state.entries[name]?.generation == entry.generation { state.entries[name]?.missing = true }
                        }
                    }
                    continue
                }
                if entry.missing { state.withLock { $0.entries[name]?.missing = false } }
                if let now, now != seen[.live] {
                    reloadLive(name, from: path, identity: now, generation: entry.generation)
                    // The swap looked at the challengers anew.
                    seen = state.withLock { $0.entries[name]?.seen } ?? seen
                }
            }
            for slot in [ModelFolder.Slot.canary, .shadow] {
                guard let path = source.path(of: name, slot) else { continue }
                let now = ModelSource.identity(of: path)
                if now != seen[slot] { reload(slot, of: name, from: path, identity: now, generation: entry.generation) }
            }
        }
    }

    /// `refresh()` on the reading queue, off the tasks' shared threads.
    public func refreshOffTasks() async {
        await withCheckedContinuation { continuation in
            Self.reading.async {
                self.refresh()
                continuation.resume()
            }
        }
    }

    private func unload(_ name: String, generation: UInt64, because reason: String, path: String) {
        let unloaded = state.withLock { state in
            guard state.entries[name]?.generation == generation else { return false }
            state.entries[name] = nil
            loaded.record(state.entries.count)
            return true
        }
        if unloaded {
            source?.logger.notice("model no longer served: \(reason)", metadata: ["model": "\(name)", "path": "\(path)"])
        }
    }

    /// Swaps in the live file of `name` that changed, if the load `generation` still serves it.
    private func reloadLive(_ name: String, from path: String, identity: [Int], generation: UInt64) {
        guard let source, let before = self[name] else { return }
        let current = before.live.artifact
        /// Records the file as seen (and swaps in `new`) unless the model was loaded anew or swapped meanwhile.
        func apply(_ new: ServedModel?) -> Bool {
            state.withLock { state in
                guard let entry = state.entries[name], entry.generation == generation,
                      entry.serving.live.artifact == current
                else { return false }
                state.entries[name]?.seen[.live] = identity
                if let new, new.artifact != current { Self.swap(&state, to: new) }
                return true
            }
        }
        let new: ServedModel
        do { new = try source.live(name, from: path) } catch {
            guard apply(nil) else { return }
            source.logger.error("the new model file does not load; serving the current one", metadata: [
                "path": "\(path)", "error": "\(String(reflecting: error))", "model": "\(name)",
                "version": "\(current.version)"])
            return
        }
        guard apply(new), new.artifact != current else { return }
        source.logger.notice("model swapped", metadata: [
            "model": "\(name)", "from_version": "\(current.version)", "version": "\(new.artifact.version)"])
        served(new.artifact, .live)
        // The challengers are judged against the live version: the swap may have ended one (it no longer fits,
        // or is now live) or let one serve again, so each is loaded and checked anew, saying why when it does
        // not serve.
        for slot in [ModelFolder.Slot.canary, .shadow] {
            if let challengerPath = source.path(of: name, slot), let identity = ModelSource.identity(of: challengerPath) {
                reload(slot, of: name, from: challengerPath, identity: identity, generation: generation, before: before[slot])
            }
        }
    }

    /// Starts, replaces or ends the canary or shadow of `name` from its file, if the load `generation` still
    /// serves it.
    /// `before`: what served in `slot` before a swap that asks for this look (its log then tells of it).
    private func reload(_ slot: ModelFolder.Slot, of name: String, from path: String, identity: [Int]?, generation: UInt64,
                        before: ServedModel?? = nil) {
        guard let source, let serving = self[name] else { return }
        let current = before ?? serving[slot]
        let challenger = identity == nil ? nil
            : source.challenger(slot, from: path, live: serving.live, current: current)
        let applied = state.withLock { state in
            // Checked against the live version it was read beside; seen only when applied.
            guard state.entries[name]?.generation == generation,
                  state.entries[name]?.serving.live.artifact == serving.live.artifact
            else { return false }
            state.entries[name]?.seen[slot] = identity
            state.entries[name]?.serving[slot] = challenger
            return true
        }
        guard applied else { return }
        guard let challenger else {
            if identity == nil, let ended = current?.artifact {
                source.logger.notice("\(slot.rawValue) ended", metadata: ["model": "\(name)", "version": "\(ended.version)"])
            }
            return
        }
        var metadata: Logger.Metadata = ["model": "\(name)", "version": "\(challenger.artifact.version)"]
        if slot == .canary { metadata["percent"] = "\(canaryPercent)" }
        source.logger.notice("\(slot.rawValue) serving", metadata: metadata)
        served(challenger.artifact, slot == .canary ? .canary : .shadow)
    }

    /// The version of `name` that answers a request, as `Serving.pick(for:key:canaryPercent:)` chooses it;
    /// `nil` for a name not loaded.
    public func model(_ name: String, for id: UUID, key: String? = nil) -> ServedModel? {
        self[name]?.pick(for: id, key: key, canaryPercent: canaryPercent).model
    }

    /// Makes `new` the live version of its name; returns the one it replaced. A canary or shadow of the same
    /// version is over: it has become the live one; so is a shadow whose schema no longer fits.
    @discardableResult
    public func swap(to new: ServedModel) -> ServedModel? {
        state.withLock { state in
            let old = state.entries[new.artifact.name]?.serving.live
            Self.swap(&state, to: new)
            loaded.record(state.entries.count)
            return old
        }
    }

    private static func swap(_ state: inout State, to new: ServedModel) {
        let name = new.artifact.name
        let old = state.entries[name]
        var models = Serving(live: new, canary: old?.serving.canary, shadow: old?.serving.shadow)
        if models.canary?.artifact.version == new.artifact.version { models.canary = nil }
        // A shadow is scored on live's requests: it ends when it becomes live, or no longer fits live's schema.
        if let shadow = models.shadow?.artifact, shadow.version == new.artifact.version || new.challengeProblem(shadow) != nil {
            models.shadow = nil
        }
        let now = state.tick()
        state.entries[name] = Entry(serving: models, seen: old?.seen ?? [:], used: old?.used ?? now,
                                    generation: old?.generation ?? now)
    }

    /// Starts (or ends, with `nil`) the canary of `name`, a name loaded.
    public func setCanary(_ canary: ServedModel?, of name: String) {
        state.withLock { $0.entries[name]?.serving.canary = canary }
    }

    /// Starts (or ends, with `nil`) the shadow of `name`, a name loaded.
    public func setShadow(_ shadow: ServedModel?, of name: String) {
        state.withLock { $0.entries[name]?.serving.shadow = shadow }
    }
}
