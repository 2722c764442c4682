import CycloneModel
import Foundation
import Synchronization

/// The models a process serves, by name: for each, the live version and, during a canary, a second version
/// that answers a share of the requests. A request takes its model once, at its start, and uses that one to
/// the end, so a swap never shows a request half of one model and half of another; a swap replaces a model
/// whole.
public final class ModelSet: Sendable {
    /// What serves one model name now.
    public struct Serving: Sendable {
        public var live: ServedModel
        public var canary: ServedModel?
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

    /// The version of `name` that answers the request whose first prediction id is `id`: the canary for
    /// `canaryPercent` of the ids, by the id's random bits, so the same id always goes the same way.
    public func model(_ name: String, for id: UUID) -> ServedModel? {
        serving.withLock { serving in
            guard let models = serving[name] else { return nil }
            guard let canary = models.canary else { return models.live }
            let u = id.uuid
            let bits = [u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return Int(bits % 100) < canaryPercent ? canary : models.live
        }
    }

    /// Makes `new` the live version of its name; returns the one it replaced. A canary of the same version
    /// is over: it has become the live one.
    @discardableResult
    public func swap(to new: ServedModel) -> ServedModel? {
        serving.withLock { serving in
            let name = new.artifact.name
            let old = serving[name]
            var models = Serving(live: new, canary: old?.canary)
            if models.canary?.artifact.version == new.artifact.version { models.canary = nil }
            serving[name] = models
            return old?.live
        }
    }

    /// Starts (or ends, with `nil`) the canary of `name`, a name already served.
    public func setCanary(_ canary: ServedModel?, of name: String) {
        serving.withLock { $0[name]?.canary = canary }
    }
}
