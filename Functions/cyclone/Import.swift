import ArgumentParser
import CycloneModel
import CycloneTraining
import Foundation

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Make an artifact of an XGBoost or LightGBM model, served as it is.",
        discussion: """
            The feature schema comes from a small file (--schema: a JSON list of {"name", "type"} with type \
            numeric, categorical or boolean, in any order) or from the training CSV (--data with --target), \
            which also gives the reference profile drift is measured against, and the model's metrics on \
            those rows as the baseline of relative retrain thresholds (pass held-out rows for an honest one). \
            Every feature may be missing or null: the trees route missing values.
            """)

    @Option(help: "An XGBoost JSON model (save_model(\"model.json\")).") var xgboost: String?
    @Option(help: "A LightGBM text model (save_model(\"model.txt\")).") var lightgbm: String?
    @Option(help: "The feature schema, a JSON file.") var schema: String?
    @Option(help: "A CSV with the model's features (and the target).") var data: String?
    @Option(help: "The label column of --data.") var target: String?
    @Option(help: "Where to write the model artifact.") var out: String
    @Option(help: "The model's name.") var name: String = "model"
    @Option(help: "The model's version.") var version: String = "1"

    func run() throws {
        let trees: ImportedTrees
        switch (xgboost, lightgbm) {
        case (let path?, nil):
            guard let bytes = FileManager.default.contents(atPath: path) else { Cyclone.fail("cannot read --xgboost \(path)") }
            do { trees = try ImportedTrees.xgboost(Array(bytes)) } catch { Cyclone.fail("\(path): \(error)") }
        case (nil, let path?):
            guard let bytes = FileManager.default.contents(atPath: path) else { Cyclone.fail("cannot read --lightgbm \(path)") }
            do { trees = try ImportedTrees.lightgbm(String(decoding: bytes, as: UTF8.self)) } catch { Cyclone.fail("\(path): \(error)") }
        default:
            Cyclone.fail("give one model: --xgboost FILE or --lightgbm FILE")
        }
        let names = trees.featureNames ?? (0..<trees.featureCount).map { "f\($0)" }
        let categorical = Set(trees.categoricalCodes.keys.map { names[$0] })
        var table: FeatureTable?
        var labels: FeatureTable.Column?
        let features: [Feature]
        switch (schema, data) {
        case (let path?, nil):
            guard target == nil else { Cyclone.fail("--target goes with --data, not --schema") }
            features = Self.readSchema(path)
        case (nil, let path?):
            guard let target else { Cyclone.fail("--data needs --target, the label column") }
            let csv = Cyclone.csv(at: path)
            guard csv.header.contains(target) else {
                Cyclone.fail("--target '\(target)' is not a column of \(path) (columns: \(csv.header.joined(separator: ", ")))")
            }
            if let absent = names.first(where: { !csv.header.contains($0) }) {
                Cyclone.fail("the model's feature '\(absent)' is not a column of \(path)")
            }
            do {
                // LightGBM's categorical columns hold integer codes, which would read as numbers.
                let kinds = Dictionary(uniqueKeysWithValues: categorical.map { ($0, Feature.Kind.categorical) })
                let read = try FeatureTable(csv: csv, columns: names, kinds: kinds)
                table = read
                features = read.columns.map { Feature(name: $0.name, kind: $0.values.kind) }
                let kind: Feature.Kind = trees.task == .regression ? .numeric : .categorical
                labels = .init(name: target, values: try FeatureTable.parse(csv.column(target)!, as: kind, column: target))
            } catch {
                Cyclone.fail("\(path): \(error)")
            }
        default:
            Cyclone.fail("give the features: --schema FILE, or --data FILE with --target COLUMN")
        }

        var artifact: ModelArtifact
        do { artifact = try trees.artifact(name: name, version: version, features: features, target: target) } catch {
            Cyclone.fail("\(error)")
        }
        if let table, let labels {
            artifact.profile = artifact.profile(of: table)
            artifact.training?.rows = table.rowCount
            let metrics = artifact.metrics(outputs: artifact.outputs(for: table), labels: labels.values)
            artifact.training?.holdoutMetrics = metrics
            artifact.training?.holdoutRows = table.rowCount
        }
        Cyclone.write(artifact, to: out)
        let source = trees.library == .xgboost ? "XGBoost" : "LightGBM"
        print("imported \(source) \(trees.objective): \(trees.ensemble.treeCount) trees, \(artifact.task.rawValue), features "
            + artifact.features.map { "\($0.name):\($0.kind.rawValue)" }.joined(separator: " "))
        if let metrics = artifact.training?.holdoutMetrics, !metrics.isEmpty {
            let text = Cyclone.metricsText(metrics)
            print("on \(data ?? "") (\(artifact.training?.holdoutRows ?? 0) rows): \(text)")
        }
        print("wrote \(out)")
    }

    /// `[{"name": …, "type": …}]`, or `{"features": [...]}`.
    static func readSchema(_ path: String) -> [Feature] {
        guard let data = FileManager.default.contents(atPath: path) else { Cyclone.fail("cannot read --schema \(path)") }
        struct Wrapped: Decodable { var features: [Feature] }
        if let features = try? JSONDecoder().decode([Feature].self, from: data) { return features }
        do { return try JSONDecoder().decode(Wrapped.self, from: data).features } catch {
            Cyclone.fail("\(path): not a feature schema (a JSON list of {\"name\", \"type\"}): \(error)")
        }
    }
}
