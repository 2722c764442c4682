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

    public init(id: UUID, modelName: String, modelVersion: String, input: String, prediction: String,
                key: String? = nil, createdAt: Date, drift: DriftCells? = nil, latencyMs: Double? = nil)
    {
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
