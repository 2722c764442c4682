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
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cyclone-run-\(UUID().uuidString)")
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

/// A child process started by a test (a built executable), to signal and wait for.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    public let logPath: String

    /// Starts `executable` with `environment`, stdout and stderr going to `logPath`.
    public convenience init(_ executable: String, environment: [String: String], logPath: String) throws {
        try self.init(executable, arguments: [], environment: environment, stdout: logPath, stderr: nil)
    }

    /// Starts `executable`; stdin is /dev/null, stdout goes to the file `stdout`, stderr to `stderr` (or the
    /// same file when `nil`). posix_spawn, not Foundation's `Process`, which was seen here to leave an exited
    /// child unreaped and never return.
    public init(_ executable: String, arguments: [String], environment: [String: String], stdout: String,
                stderr: String?) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if let stderr {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard result == 0 else { throw TestDatabaseError(description: "cannot start \(executable): error \(result)") }
        self.pid = pid
        self.logPath = stdout
    }

    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// Waits for the process to end; returns its exit code, or 128 + the signal that ended it.
    public func wait() async -> Int32 {
        let pid = self.pid
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                let signal = status & 0x7f
                continuation.resume(returning: signal == 0 ? (status >> 8) & 0xff : 128 + signal)
            }
        }
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
}

/// A TCP port nothing listens on right now (the kernel's choice for port 0).
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
