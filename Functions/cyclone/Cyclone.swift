import ArgumentParser
import CycloneModel
import Foundation

@main
struct Cyclone: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cyclone",
        abstract: "Operate Cyclone: train and register models, evaluate them, migrate and maintain the evaluation store.",
        subcommands: [Demo.self, Train.self, Import.self, Score.self, Profile.self, ImageCommand.self, Migrate.self, PartitionsCommand.self, Register.self,
                      EvaluateCommand.self])

    /// Prints `cyclone: MESSAGE` to stderr and exits 1: every failure is one readable line.
    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("cyclone: \(message)\n".utf8))
        Foundation.exit(1)
    }

    /// The model artifact at `path`, or a failure naming the file.
    static func model(at path: String) -> ModelArtifact {
        do { return try ModelArtifact.load(contentsOf: URL(fileURLWithPath: path)) } catch { fail("\(path): \(error)") }
    }

    /// Metrics as `name value, name value`, by name, each value to `digits` significant digits.
    static func metricsText(_ metrics: [String: Double], digits: Int = 4) -> String {
        metrics.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.\(digits)g", $0.value))" }.joined(separator: ", ")
    }

    /// The CSV file at `path`, or a failure naming the file.
    static func csv(at path: String) -> CSV {
        do { return try CSV(contentsOf: URL(fileURLWithPath: path)) } catch { fail("\(path): \(error)") }
    }
}
