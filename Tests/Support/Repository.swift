import CycloneCloud
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Paths in the source tree and its build, for tests that run scripts or the built executables.
public enum Repository {
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A built product of the current build (`swift build` puts them in `.build/debug`).
    public static func product(_ name: String) throws -> URL {
        let url = root.appendingPathComponent(".build/debug/\(name)")
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw TestDatabaseError(description: "\(url.path) is not built: run `swift build` before the tests (scripts/test does)")
        }
        return url
    }

    /// Runs a command to completion; returns stdout; throws with stderr on a non-zero exit.
    ///
    /// Output goes through temporary files, not pipes: a daemon the command starts may keep a pipe open long
    /// after the command has exited. Waiting happens off the cooperative pool (`ChildProcess.wait`).
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> String {
        let folder = TestFiles.folder.appendingPathComponent("cyclone-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outPath = folder.appendingPathComponent("out").path
        let errPath = folder.appendingPathComponent("err").path
        let process = try ChildProcess(executable, arguments: arguments,
                                       environment: environment ?? ProcessInfo.processInfo.environment,
                                       stdout: outPath, stderr: errPath)
        let status = await process.wait()
        let output = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let errors = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            throw TestDatabaseError(description: "\(executable) \(arguments.joined(separator: " ")) failed (status \(status)): \(errors)")
        }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A throwaway PostgreSQL cluster of the test's own (for tests that stop and start the server).
    public struct Cluster: Sendable {
        public let folder: String
        public var url: String { "postgres://cyclone:cyclone@127.0.0.1:\(port)/cyclone?sslmode=disable" }
        /// The same database through the unix socket, as Cloud Run reaches Cloud SQL.
        public var socketURL: String { "postgres://cyclone:cyclone@/cyclone?host=\(folder)/socket&port=\(port)" }
        public let port: String
        static var script: String { root.appendingPathComponent("scripts/pg").path }

        public static func start() async throws -> Cluster {
            let url = try await Repository.run(script, ["start"])
            let folder = try await Repository.run(script, ["dir", url])
            let port = try String(contentsOfFile: folder + "/port", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            return Cluster(folder: folder, port: port)
        }
        public func stop(keepData: Bool = false) async throws {
            try await Repository.run(Self.script, keepData ? ["stop", "--keep", folder] : ["stop", folder])
        }
        public func startAgain() async throws { try await Repository.run(Self.script, ["start", folder]) }
    }
}

extension ChildProcess {
    /// Starts `executable` with `environment`, stdout and stderr going to `logPath`.
    public convenience init(_ executable: String, environment: [String: String], logPath: String) throws {
        try self.init(executable, arguments: [], environment: environment, stdout: logPath, stderr: nil)
    }
}
