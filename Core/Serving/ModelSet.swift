import CycloneModel
import Foundation
import Synchronization

/// The models a process serves, by name: for each, the live version and, during a canary, a second version
/// that answers a share of the requests, or, during a shadow evaluation, a challenger scored beside the live
/// version on every request and answering none. A request takes its models once, at its start, and uses those
/// to the end, so a swap never shows a request half of one model and half of another; a swap replaces a model
/// whole.
public final class ModelSet: Sendable {
    /// What serves one model name now.
    public struct Serving: Sendable {
        public var live: ServedModel
        public var canary: ServedModel?
        public var shadow: ServedModel?
    }

    private let serving: Mutex<[String: Serving]>
    /// The share of requests, in percent, a canary answers.
    public let canaryPercent: Int

    /// Serves `models`, one live version per name (a later model of the same name replaces an earlier one).
    public init(_ models: [ServedModel], canaryPercent: Int = 0) {
        serving = Mutex(Dictionary(models.map { ($0.artifact.name, Serving(live: $0)) }) { _, later in later })
        self.canaryPercent = canaryPercent
    }

    /// The names served, sorted.
    public var names: [String] { serving.withLock { $0.keys.sorted() } }

    /// What serves `name` now; `nil` for a name not served.
    public subscript(name: String) -> Serving? { serving.withLock { $0[name] } }

    /// What a request of `name` is served by: the version that answers it and, when that is the live
    /// version, the shadow scored beside it (a canary's requests are the canary's experiment).
    public struct Pick: Sendable {
        public var model: ServedModel
        public var shadow: ServedModel?
    }

    /// The version of `name` that answers a request: during a canary, the canary for `canaryPercent` of the
    /// caller's keys (by a hash of `key` with the canary's version, so a key always goes the same way during
    /// one canary, a replay is repeatable, and each canary draws its own keys) or, for a request without a
    /// key, of the prediction ids (by the random bits of `id`, its first one).
    public func model(_ name: String, for id: UUID, key: String? = nil) -> ServedModel? {
        pick(name, for: id, key: key)?.model
    }

    /// The version that answers a request of `name`, as `model(_:for:key:)` chooses it, with the shadow scored
    /// beside it: read under one lock, so a swap never pairs a version with another's shadow.
    public func pick(_ name: String, for id: UUID, key: String? = nil) -> Pick? {
        serving.withLock { serving in
            guard let models = serving[name] else { return nil }
            guard let canary = models.canary else { return Pick(model: models.live, shadow: models.shadow) }
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
            return Int(bucket % 100) < canaryPercent ? Pick(model: canary, shadow: nil)
                                                     : Pick(model: models.live, shadow: models.shadow)
        }
    }

    /// The pick for a request that names `version` of `name`: the live version with its shadow, or the canary;
    /// `nil` when no version of that name answers requests.
    public func pick(_ name: String, version: String) -> Pick? {
        serving.withLock { serving in
            guard let models = serving[name] else { return nil }
            if models.live.artifact.version == version { return Pick(model: models.live, shadow: models.shadow) }
            if let canary = models.canary, canary.artifact.version == version { return Pick(model: canary, shadow: nil) }
            return nil
        }
    }

    /// Makes `new` the live version of its name; returns the one it replaced. A canary or shadow of the same
    /// version is over: it has become the live one; so is a shadow whose schema no longer fits.
    @discardableResult
    public func swap(to new: ServedModel) -> ServedModel? {
        serving.withLock { serving in
            let name = new.artifact.name
            let old = serving[name]
            var models = Serving(live: new, canary: old?.canary, shadow: old?.shadow)
            if models.canary?.artifact.version == new.artifact.version { models.canary = nil }
            // A shadow is scored on live's requests: it ends when it becomes live, or no longer fits live's schema.
            if let shadow = models.shadow?.artifact,
               shadow.version == new.artifact.version || new.challengeProblem(shadow) != nil
            {
                models.shadow = nil
            }
            serving[name] = models
            return old?.live
        }
    }

    /// Starts (or ends, with `nil`) the canary of `name`, a name already served.
    public func setCanary(_ canary: ServedModel?, of name: String) {
        serving.withLock { $0[name]?.canary = canary }
    }

    /// Starts (or ends, with `nil`) the shadow of `name`, a name already served.
    public func setShadow(_ shadow: ServedModel?, of name: String) {
        serving.withLock { $0[name]?.shadow = shadow }
    }

}
