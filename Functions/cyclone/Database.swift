import ArgumentParser
import CycloneRuntime
import CycloneStore
import Foundation
import Logging
import PostgresNIO

/// `--database-url`, falling back to `DATABASE_URL`.
struct DatabaseOptions: ParsableArguments {
    @Option(help: "PostgreSQL URL (default: $DATABASE_URL).") var databaseURL: String?

    func configuration() -> PostgresClient.Configuration {
        guard let url = databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else {
            Cyclone.fail("DATABASE_URL is not set (export it or pass --database-url)")
        }
        do { return try PostgresClient.Configuration(databaseURL: url) } catch { Cyclone.fail("\(error)") }
    }

    /// Runs `body` with a running client; any failure becomes one line and exit 1.
    func withClient<T: Sendable>(_ body: @escaping @Sendable (PostgresClient, Logger) async throws -> T) async -> T {
        var logger = Logger(label: "cyclone")
        logger.logLevel = .warning
        let client = PostgresClient(configuration: configuration(), backgroundLogger: logger)
        do {
            return try await DatabaseRunner(client).whileRunning { client in
                // Unreachable is said in seconds, not after the pool's minute of retries.
                try await client.ping(within: .seconds(10), logger: logger)
                return try await body(client, logger)
            }
        } catch {
            Cyclone.fail(Self.describe(error))
        }
    }

    /// One line for a database error: the server's message when there is one.
    static func describe(_ error: any Error) -> String {
        switch StoreProblem(error) {
        case .unavailable:
            return "cannot reach PostgreSQL (\(error is TimeoutError ? "no answer within 10 s" : "\(error)"); is DATABASE_URL right and the server up?)"
        case .notMigrated: return StoreProblem(error).explanation
        case .refused(let message): return "PostgreSQL: \(message)"
        case .other(let message): return message
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the schema migrations (safe to run twice, or from two processes at once).")

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let applied = await database.withClient { client, logger in
            let applied = try await Migrator(client: client, logger: logger).migrate()
            try await Partitions(client: client, logger: logger).maintain()
            return applied
        }
        print(applied.isEmpty ? "schema is up to date" : "applied migrations \(applied.map(String.init).joined(separator: ", "))")
    }
}

struct PartitionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partitions",
        abstract: "Create the daily prediction partitions ahead and drop those past the retention.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Days ahead to create.") var aheadDays: Int = 7
    @Option(help: "Drop days older than this (default: keep everything).") var retainDays: Int?

    func run() async throws {
        let aheadDays = aheadDays
        let retainDays = retainDays
        let changes = await database.withClient { client, logger in
            try await Partitions(client: client, logger: logger).maintain(aheadDays: aheadDays, retainDays: retainDays)
        }
        for change in changes { print("\(change.action) \(change.partition)") }
        if changes.isEmpty { print("partitions are up to date") }
    }
}
