import CycloneModel
import CycloneStore
import Foundation
import Metrics

/// Scores decoded instances with one model: each instance is encoded, predicted, and made into the row the
/// writer stores (its input in schema order, its prediction in `PredictionJSON`'s shape, its drift cells).
/// A protocol's routes only decode the request, pick the model and write the answer.
public struct Scorer: Sendable {
    /// One scored instance, for the answer.
    public struct Prediction: Sendable {
        public var id: UUID
        /// The caller's key for the instance, if it gave one.
        public var key: String?
        public var output: Output
    }

    /// A request's instances, scored.
    public struct Scored: Sendable {
        public var predictions: [Prediction]
        /// The rows to store, one per instance, in order.
        public var rows: [PredictionRow]
    }

    private let served = Counter(label: "cyclone_instances_served_total")
    private let shadowScored = Counter(label: "cyclone_shadow_scores_total")
    private let shadowFailed = Counter(label: "cyclone_shadow_skipped_total", dimensions: [("reason", "error")])
    private let shadowLate = Counter(label: "cyclone_shadow_skipped_total", dimensions: [("reason", "budget")])
    private let imputed = Counter(label: "cyclone_imputed_values_total")
    private let unknownCategories = Counter(label: "cyclone_unknown_categories_total")

    public init() {}

    /// Scores `instances` with `model` at `now`. The first instance gets `firstID` (the id that picked the
    /// model, during a canary; made with sequence 0), the others ids that sort after it in instance order
    /// (`UUIDv7.make(at:sequence:)`); `keys`, when given, has one entry per instance.
    /// Throws the first instance that cannot be scored, with its path (`instances[i]…`); nothing is counted then.
    public func score(_ instances: [JSONValue], keys: [String?]?, with model: ServedModel, firstID: UUID,
                      at now: Date) throws(InputError) -> Scored
    {
        precondition(keys.map { $0.count == instances.count } ?? true, "one key (or nil) per instance")
        var notes = InstanceEncoder.Notes()
        var predictions: [Prediction] = []
        var rows: [PredictionRow] = []
        predictions.reserveCapacity(instances.count)
        rows.reserveCapacity(instances.count)
        let artifact = model.artifact
        for (index, instance) in instances.enumerated() {
            let x = try model.encoder.encode(instance, path: "instances[\(index)]", notes: &notes)
            let output = artifact.predictor.predict(x)
            let id = index == 0 ? firstID : UUIDv7.make(at: now, sequence: index)
            let key = keys?[index] ?? nil
            rows.append(PredictionRow(id: id, modelName: artifact.name, modelVersion: artifact.version,
                                      input: model.inputJSON(instance), prediction: model.storedJSON(output), key: key,
                                      createdAt: now, drift: model.driftCells(instance, output)))
            predictions.append(Prediction(id: id, key: key, output: output))
        }
        served.increment(by: rows.count)
        if notes.imputed > 0 { imputed.increment(by: notes.imputed) }
        if notes.unknownCategories > 0 { unknownCategories.increment(by: notes.unknownCategories) }
        return Scored(predictions: predictions, rows: rows)
    }

    /// Scores the request's instances with `shadow` too, into `scored`'s rows (the answer is the live model's
    /// alone). An instance the shadow cannot take is stored with `{"error": …}` as its shadow prediction (the
    /// verdict counts it against the shadow); every instance left once `budget` is spent goes without a
    /// shadow score. Both are counted in `cyclone_shadow_skipped_total` (by `reason`): a shadow never fails a
    /// request and delays it by at most the budget and one instance.
    public func shadow(_ instances: [JSONValue], with shadow: ServedModel, into scored: inout Scored,
                       budget: Duration)
    {
        let clock = ContinuousClock(), deadline = clock.now + budget
        var notes = InstanceEncoder.Notes()
        var scoredCount = 0, failed = 0
        for (index, instance) in instances.enumerated() {
            guard clock.now < deadline else {
                shadowLate.increment(by: instances.count - index)
                break
            }
            let x: [Double]
            do {
                x = try shadow.encoder.encode(instance, path: "instances[\(index)]", notes: &notes)
            } catch {
                var refusal = JSONWriter(capacity: 64)
                refusal.raw("{\"error\":")
                refusal.string(error.description)
                refusal.raw(UInt8(ascii: "}"))
                scored.rows[index].shadow = PredictionRow.Shadow(version: shadow.artifact.version, prediction: refusal.string)
                failed += 1
                continue
            }
            scored.rows[index].shadow = PredictionRow.Shadow(version: shadow.artifact.version,
                                                             prediction: shadow.storedJSON(shadow.artifact.predictor.predict(x)))
            scoredCount += 1
        }
        if scoredCount > 0 { shadowScored.increment(by: scoredCount) }
        if failed > 0 { shadowFailed.increment(by: failed) }
    }
}
