import CycloneMonitoring
import Foundation

/// One served instance as stored in `prediction`.
public struct PredictionRow: Sendable, Equatable {
    public var id: UUID
    public var modelName: String
    public var modelVersion: String
    /// The instance's features, as JSON text.
    public var input: String
    /// What was predicted, as JSON text.
    public var prediction: String
    /// The caller's own id for the instance, to attach its label by later.
    public var key: String?
    public var createdAt: Date
    /// Where the row falls against its model version's reference profile (`DriftLayout`): the writer sums
    /// these into the `drift_rollup` row it commits with the batch. `nil` when the model has no profile.
    public var drift: DriftCells?
    /// How long predict took for the request, in milliseconds, up to handing the rows to the writer; on the
    /// request's first row only.
    public var latencyMs: Double?
    /// What the model's shadow (a challenger scored beside the served version, answering nobody) predicted
    /// for the instance: stored on the same row, so its label joins both. `nil` without a shadow, or when the
    /// shadow's score was skipped.
    public var shadow: Shadow?

    /// A shadow's prediction of one instance.
    public struct Shadow: Sendable, Equatable {
        public var version: String
        /// As JSON text, in the shape of `prediction`.
        public var prediction: String

        public init(version: String, prediction: String) {
            self.version = version
            self.prediction = prediction
        }
    }

    public init(id: UUID, modelName: String, modelVersion: String, input: String, prediction: String,
                key: String? = nil, createdAt: Date, drift: DriftCells? = nil, latencyMs: Double? = nil,
                shadow: Shadow? = nil)
    {
        self.shadow = shadow
        self.drift = drift
        self.latencyMs = latencyMs
        self.id = id
        self.modelName = modelName
        self.modelVersion = modelVersion
        self.input = input
        self.prediction = prediction
        self.key = key
        self.createdAt = createdAt
    }
}
