import ArgumentParser
import CycloneModel
import CycloneTraining
import Foundation

struct Profile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add the reference profile of a CSV file (the training data) to a model file.",
        discussion: "For models trained elsewhere or before profiles existed. Columns are read with the model's feature types.")

    @Option(help: "The data the model was trained on, a CSV file with a header row.") var data: String
    @Option(help: "The model file to profile.") var model: String
    @Option(help: "Where to write the profiled model (default: overwrite --model).") var out: String?

    func run() throws {
        let artifact = Cyclone.model(at: model)
        let csv = Cyclone.csv(at: data)
        let kinds = Dictionary(uniqueKeysWithValues: artifact.features.map { ($0.name, $0.kind) })
        do {
            let table = try FeatureTable(csv: csv, columns: artifact.features.map(\.name), kinds: kinds)
            var profiled = artifact
            profiled.profile = artifact.profile(of: table)
            Cyclone.write(profiled, to: out ?? model)
            print("profiled \(artifact.name)@\(artifact.version) on \(table.rowCount) rows; wrote \(out ?? model)")
        } catch {
            Cyclone.fail("\(error)")
        }
    }
}
