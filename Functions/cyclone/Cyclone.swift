import ArgumentParser
import CycloneModel
import Foundation

/// The operator command. Its entry point is `main()`: its own executable's `main.swift` calls it, and so does
/// the serve image's multi-call binary (`cyclone-serve`).
public struct Cyclone: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cyclone",
        abstract: "Operate Cyclone: train and register models, evaluate them, migrate and maintain the evaluation store.",
        subcommands: [Demo.self, Train.self, Import.self, Score.self, Profile.self, DriftCommand.self, EstimateCommand.self, ImageCommand.self, Migrate.self, PartitionsCommand.self, Register.self,
                      EvaluateCommand.self])

    /// Runs the command line; a first word that is neither an option nor a subcommand is named as such.
    /// `cyclone --version` prints the version here: ArgumentParser's own flag would also answer a subcommand's
    /// `--version` option (`train … --version 3`) whenever that command line has another fault.
    public static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments == ["--version"] {
            print("cyclone \(version)")
            Foundation.exit(0)
        }
        let names = configuration.subcommands.map { $0._commandName }
        if let first = arguments.first, !first.hasPrefix("-"), first != "help", !names.contains(first) {
            fail("'\(first)' is not a subcommand (one of: \(names.joined(separator: ", ")); cyclone --help says more)")
        }
        await main(arguments)
    }

    public init() {}

    /// This build's version, as `--version` prints it.
    static let version = "0.16.0"

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

    /// Fails with one line unless a file can be written at `path` (its folder exists and is writable): checked
    /// before work whose result would go there.
    static func checkWritable(_ path: String) {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            fail("cannot write \(path): the folder \(folder) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: folder) else { fail("cannot write \(path): \(folder) is not writable") }
    }

    /// Writes `artifact` to `path`, or fails with one line naming it.
    static func write(_ artifact: ModelArtifact, to path: String) {
        checkWritable(path)
        do { try artifact.write(to: URL(fileURLWithPath: path)) } catch {
            fail("cannot write \(path): \((error as NSError).localizedDescription)")
        }
    }

    /// The CSV file at `path`, or a failure naming the file.
    static func csv(at path: String) -> CSV {
        do { return try CSV(contentsOf: URL(fileURLWithPath: path)) } catch { fail("\(path): \(error)") }
    }

    /// The CSV files at `first` and `second`, read side by side (a core each), or a failure naming the first
    /// that cannot be read.
    static func csvs(at first: String, _ second: String) -> (CSV, CSV) {
        let files = sideBySide([first, second].map { path in
            { () throws -> CSV in
                do { return try CSV(contentsOf: URL(fileURLWithPath: path)) } catch {
                    throw Failure(description: "\(path): \(error)")
                }
            }
        })
        return (files[0], files[1])
    }

    /// Why a job run by `sideBySide` failed: the one line to fail with.
    struct Failure: Error { var description: String }

    /// Runs `jobs` side by side (a core each) and returns their results in order, or fails with the first
    /// job's failure in that order (whichever finished first). A job fails by throwing a `Failure`.
    static func sideBySide<T: Sendable>(_ jobs: [@Sendable () throws -> T]) -> [T] {
        let results = concurrentMap(jobs.count) { index -> Result<T, Failure> in
            do { return .success(try jobs[index]()) } catch {
                return .failure(error as? Failure ?? Failure(description: "\(error)"))
            }
        }
        return results.map { result -> T in
            switch result {
            case .success(let value): return value
            case .failure(let failure): fail(failure.description)
            }
        }
    }
}

