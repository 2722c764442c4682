import ArgumentParser
import CycloneModel
import CycloneTraining
import Foundation

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fit a model to a CSV file and write its artifact.",
        discussion: """
            Column types are inferred: numbers are numeric, true/false boolean, anything else categorical; an \
            empty cell is missing. Override with --numeric, --categorical, --boolean. Every column but the target \
            and those named by --ignore is a feature.
            """)

    @Option(help: "The training data, a CSV file with a header row.") var data: String
    @Option(help: "The column to predict.") var target: String
    @Option(help: "ridge (regression), logistic (classification) or gbdt (gradient-boosted trees: regression for a numeric target, classification with --classify or a text target).") var family: String
    @Flag(help: "gbdt: classify the target's values even when they are numbers.") var classify = false
    @Option(help: "Where to write the model artifact.") var out: String
    @Option(help: "The model's name.") var name: String = "model"
    @Option(help: "The model's version.") var version: String = "1"
    @OptionGroup var columns: ColumnOptions
    @Option(help: """
        Share of the labelled rows, from the end of the file (the newest, when it is in time order), held out \
        of training to score the model; the scores are kept as its holdout metrics, the baseline of relative \
        retrain thresholds such as 0.9x. 0 trains on every row.
        """)
    var holdout: Double = 0.2

    func run() throws {
        guard let family = Family(rawValue: family) else {
            Cyclone.fail("--family must be one of \(Family.allCases.map(\.rawValue).joined(separator: ", ")), not '\(self.family)'")
        }
        Cyclone.checkWritable(out)  // before the training it would lose
        let csv = Cyclone.csv(at: data)
        guard csv.header.contains(target) else {
            Cyclone.fail("--target '\(target)' is not a column of \(data) (columns: \(csv.header.joined(separator: ", ")))")
        }
        if let name = columns.missing(from: csv.header) { Cyclone.fail("'\(name)' is not a column of \(data)") }
        let features = csv.header.filter { $0 != target && !columns.ignore.contains($0) }
        guard !features.isEmpty else { Cyclone.fail("no feature columns left besides the target") }
        var options = columns.training(family)
        options.holdout = holdout
        do {
            let table = try FeatureTable(csv: csv, columns: features, kinds: columns.kinds)
            // A classifier's labels are read as text, so "1" stays "1".
            let targetKind: Feature.Kind = switch family {
            case .ridge: .numeric
            case .logistic: .categorical
            case .gbdt: classify || FeatureTable.inferKind(csv.column(target)!) != .numeric ? .categorical : .numeric
            }
            let labels = FeatureTable.Column(
                name: target, values: try FeatureTable.parse(csv.column(target)!, as: targetKind, column: target))
            let started = ContinuousClock.now
            let model = try Trainer(options: options).train(name: name, version: version, features: table, target: labels)
            let allSeconds = (ContinuousClock.now - started).seconds
            Cyclone.write(model, to: out)
            let kindsText = model.features.map { "\($0.name):\($0.kind.rawValue)" }.joined(separator: " ")
            print("trained \(model.name)@\(model.version) (\(family.rawValue), \(model.task.rawValue)) on \(model.training?.rows ?? 0) rows; features \(kindsText)")
            if let metrics = model.training?.holdoutMetrics, !metrics.isEmpty {
                let text = Cyclone.metricsText(metrics)
                print("holdout (\(model.training?.holdoutRows ?? 0) rows): \(text)")
            }
            print(String(format: "fit in %.3f s (%.3f s with the profile and scores)", model.training?.fitSeconds ?? 0, allSeconds))
            print("wrote \(out)")
        } catch {
            Cyclone.fail("\(error)")
        }
    }
}
