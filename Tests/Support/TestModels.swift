import CycloneModel
import CycloneTraining
import Foundation

/// Models for handler tests, from the scikit-learn fixtures, written to temporary files.
public enum TestModels {
    /// A ridge regression on temp, humidity, wind (numeric), holiday (boolean), season, weather (categorical).
    /// Every feature is required.
    public static func regression(name: String = "bikes", version: String = "7") throws -> ModelArtifact {
        var artifact = try LinearCase.all().first { $0.name == "ridge_mixed" }!.artifact()
        artifact.name = name
        artifact.version = version
        artifact.features = artifact.features.map { var feature = $0; feature.required = true; return feature }
        return artifact
    }

    /// `regression()` with the reference profile of its training data (as `cyclone train` writes it).
    public static func regressionWithProfile(name: String = "bikes", version: String = "7") throws -> ModelArtifact {
        var artifact = try regression(name: name, version: version)
        let csv = try CSV(contentsOf: Fixture.url("linear/ridge_mixed-train.csv"))
        let table = try FeatureTable(csv: csv, columns: artifact.features.map(\.name),
                                     kinds: Dictionary(uniqueKeysWithValues: artifact.features.map { ($0.name, $0.kind) }))
        artifact.profile = artifact.profile(of: table)
        return artifact
    }

    /// A binary classifier with classes `no` and `yes`.
    public static func binary() throws -> ModelArtifact {
        var artifact = try LinearCase.all().first { $0.name == "logistic_binary" }!.artifact()
        artifact.name = "churn"
        artifact.version = "2"
        return artifact
    }

    /// Writes `artifact` to a new temporary file and returns its path.
    public static func file(_ artifact: ModelArtifact) throws -> String {
        let url = TestFiles.folder.appendingPathComponent("cyclone-model-\(UUID().uuidString).json")
        try artifact.write(to: url)
        return url.path
    }

    /// A valid instance for `regression()`.
    public static let bikeInstance: JSONValue = [
        "temp": 21.5, "humidity": 0.4, "wind": 2.0, "holiday": false, "season": "summer", "weather": "clear",
    ]
}
