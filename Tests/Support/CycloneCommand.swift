import Foundation

/// The built `cyclone` command, as an operator runs it.
public enum CycloneCommand {
    /// Runs `cyclone` with `arguments`: the status, and stdout (or, on a non-zero exit, stderr).
    public static func run(_ arguments: [String], environment: [String: String] = [:]) async throws
        -> (status: Int32, output: String)
    {
        let binary = try Repository.product("cyclone")
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        do {
            return (0, try await Repository.run(binary.path, arguments, environment: env))
        } catch let error as TestDatabaseError {
            return (1, error.description)
        }
    }

    /// A new path in the test process's folder, for a file or folder named `name`.
    public static func temporary(_ name: String) -> String {
        TestFiles.folder.appendingPathComponent("cyclone-cli-\(UUID().uuidString)-\(name)").path
    }
}
