import CycloneModel

extension ModelArtifact {
    /// The reference profile of `table` (this model's features), with the distribution of this model's own
    /// predictions on those rows.
    public func profile(of table: FeatureTable) -> ReferenceProfile {
        let fitted = FittedPreprocessing(features: features, preprocessing: preprocessing)
        let x = fitted.designMatrix(table)
        let p = preprocessing.width
        var values: [Double] = []
        var classes: [String?] = []
        x.withUnsafeBufferPointer { x in
            for row in 0..<table.rowCount {
                let output = predictor.predict(UnsafeBufferPointer(rebasing: x[(row * p)..<((row + 1) * p)]))
                switch output {
                case .value(let value): values.append(value)
                case .classification(let index, let probabilities):
                    if probabilities.count == 2 { values.append(probabilities[1]) } else { classes.append(self.classes?[index]) }
                }
            }
        }
        let prediction: FeatureProfile = task == .multiclass ? .categorical(classes) : .numeric(values)
        return ReferenceProfile(table: table, prediction: prediction)
    }
}
