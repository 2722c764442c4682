import ArgumentParser
import CycloneModel
import CycloneTraining
import Foundation

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a model artifact on a labelled CSV: its metrics, through the serving path's preprocessing.")

    @Option(help: "The model artifact.") var model: String
    @Option(help: "A CSV with the model's features and its target column.") var data: String
    @Option(help: "The label column (default: the model's target).") var target: String?

    func run() throws {
        let artifact = Cyclone.model(at: model)
        guard let target = target ?? artifact.target else { Cyclone.fail("the model names no target: pass --target") }
        let csv = Cyclone.csv(at: data)
        guard let labels = csv.column(target) else { Cyclone.fail("--target '\(target)' is not a column of \(data)") }
        if let absent = artifact.features.first(where: { !csv.header.contains($0.name) }) {
            Cyclone.fail("the model's feature '\(absent.name)' is not a column of \(data)")
        }
        do {
            let kinds = Dictionary(uniqueKeysWithValues: artifact.features.map { ($0.name, $0.kind) })
            let table = try FeatureTable(csv: csv, columns: artifact.features.map(\.name), kinds: kinds)
            let values = try FeatureTable.parse(labels, as: artifact.task == .regression ? .numeric : .categorical, column: target)
            let started = ContinuousClock.now
            let outputs = artifact.outputs(for: table)
            let seconds = (ContinuousClock.now - started).seconds
            let metrics = artifact.metrics(outputs: outputs, labels: values)
            let text = Cyclone.metricsText(metrics, digits: 6)
            print("\(artifact.name)@\(artifact.version) on \(table.rowCount) rows: \(text)")
            print(String(format: "predicted in %.3f s", seconds))
        } catch {
            Cyclone.fail("\(data): \(error)")
        }
    }
}
