/// A model's labelled predictions, typed for training, oldest first: the features of each row, its label, what
/// was served for it and by which version. What a retrain learns from and judges on.
public struct LabelledPredictions: Sendable {
    /// The features, typed by the model's schema (missing: NaN or `nil`).
    public var features: FeatureTable
    /// The labels: numbers for a regression, class names for a classifier.
    public var target: FeatureTable.Column
    /// What was served for each row (`nil` when it does not read back against the model's classes).
    public var served: [Output?]
    /// The version that served each row.
    public var versions: [String]

    public var count: Int { versions.count }

    public init(features: FeatureTable, target: FeatureTable.Column, served: [Output?], versions: [String]) {
        self.features = features
        self.target = target
        self.served = served
        self.versions = versions
    }
}
