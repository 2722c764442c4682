import ArgumentParser
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
}
