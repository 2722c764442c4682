import CycloneRuntime
import Logging
import PostgresNIO

/// One numbered schema change, from `Core/Store/Migrations/NNNN_name.sql`.
public struct Migration: Sendable {
    public var version: Int
    public var name: String
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// Applies the schema migrations in order, once each, recording them in `schema_migration`.
///
/// Runs under a session advisory lock, so two processes migrating at once apply each migration once; each
/// migration runs in one transaction with its bookkeeping row, so a failure leaves no half-applied change.
public struct Migrator: Sendable {
    /// Every migration, in order. A test checks this list against the files in `Migrations/`.
    public static let all: [Migration] = [
        Migration(version: 1, name: "schema", sql: String(decoding: PackageResources._001_schema_sql, as: UTF8.self)),
        Migration(version: 2, name: "partitions",
                  sql: String(decoding: PackageResources._002_partitions_sql, as: UTF8.self)),
        Migration(version: 3, name: "evaluation",
                  sql: String(decoding: PackageResources._003_evaluation_sql, as: UTF8.self)),
        Migration(version: 4, name: "drift_rollup",
                  sql: String(decoding: PackageResources._004_drift_rollup_sql, as: UTF8.self)),
        Migration(version: 5, name: "typed_outcomes",
                  sql: String(decoding: PackageResources._005_typed_outcomes_sql, as: UTF8.self)),
        Migration(version: 6, name: "latency", sql: String(decoding: PackageResources._006_latency_sql, as: UTF8.self)),
        Migration(version: 7, name: "shadow", sql: String(decoding: PackageResources._007_shadow_sql, as: UTF8.self)),
        Migration(version: 8, name: "estimates",
                  sql: String(decoding: PackageResources._008_estimates_sql, as: UTF8.self)),
        Migration(version: 9, name: "history", sql: String(decoding: PackageResources._009_history_sql, as: UTF8.self)),
    ]

    /// Functions with one definition each, in `Core/Store/Routines/`: created anew after the migrations (see
    /// `apply`), so that a change to one is made in one file rather than copied into a new migration.
    public static let routines: [(name: String, sql: String)] = [
        ("cyclone_ensure_partitions", String(decoding: PackageResources.cyclone_ensure_partitions_sql, as: UTF8.self)),
    ]

    /// Key of the advisory lock held while migrating ("cyclone" in ASCII).
    static let lockKey: Int64 = 0x6379_636c_6f6e_65

    public let client: PostgresClient
    public let logger: Logger
    public var migrations: [Migration]

    public init(client: PostgresClient, logger: Logger, migrations: [Migration] = Migrator.all) {
        self.client = client
        self.logger = logger
        self.migrations = migrations
    }

    /// Applies what is missing; returns the versions applied by this call.
    ///
    /// Every statement is raced with its connection's closing: PostgresNIO may never answer a query sent on a
    /// connection that closed under it (a database that dropped it, a pool shutting down), and a migration
    /// that waited for that answer held a process's start for good. Now it fails with `ConnectionClosed`.
    @discardableResult
    public func migrate() async throws -> [Int] {
        try await client.withConnection { connection in
            try await Self.run(on: connection, "SELECT pg_advisory_lock(\(Self.lockKey))", logger: logger)
            do {
                let applied = try await apply(on: connection)
                try await Self.run(on: connection, "SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                return applied
            } catch {
                _ = try? await Self.run(on: connection, "SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                throw error
            }
        }
    }

    /// The connection closed while a migration statement waited for its answer.
    public struct ConnectionClosed: Error, CustomStringConvertible {
        public var description: String { "the connection to PostgreSQL closed while migrating; nothing half-applied is kept (each migration is one transaction): run it again" }
    }

    /// Runs `query` on `connection` and reads every row of its first column as `Int` (none for a statement),
    /// or throws `ConnectionClosed` as soon as the connection closes, whatever the query does (and when the query
    /// itself fails because the connection closed).
    @discardableResult
    static func run(on connection: PostgresConnection, _ query: PostgresQuery, logger: Logger) async throws -> [Int] {
        let outcome = FirstOutcome<[Int]>()
        let task = Task {
            do {
                var values: [Int] = []
                let rows = try await connection.query(query, logger: logger)
                for try await row in rows { if let value = try? row.decode(Int.self) { values.append(value) } }
                outcome.finish(.success(values))
            } catch let error as PSQLError where [.serverClosedConnection, .clientClosedConnection, .connectionError].contains(error.code) {
                outcome.finish(.failure(ConnectionClosed()))  // the same failure, in one readable line
            } catch {
                outcome.finish(.failure(error))
            }
        }
        connection.closeFuture.whenComplete { _ in
            outcome.finish(.failure(ConnectionClosed()))
            task.cancel()
        }
        return try await withTaskCancellationHandler {
            try await outcome.value
        } onCancel: {
            outcome.finish(.failure(CancellationError()))
            task.cancel()
        }
    }

    private func apply(on connection: PostgresConnection) async throws -> [Int] {
        try await Self.run(on: connection, """
            CREATE TABLE IF NOT EXISTS schema_migration (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())
            """, logger: logger)
        var done: Set<Int> = []
        done.formUnion(try await Self.run(on: connection, "SELECT version FROM schema_migration", logger: logger))
        var applied: [Int] = []
        for migration in migrations.sorted(by: { $0.version < $1.version }) where !done.contains(migration.version) {
            logger.info("applying migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            // One transaction per migration, its bookkeeping row included.
            try await Self.run(on: connection, "BEGIN", logger: logger)
            do {
                for statement in SQLScript.statements(migration.sql) {
                    try await Self.run(on: connection, PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await Self.run(on: connection,
                    "INSERT INTO schema_migration (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger)
                try await Self.run(on: connection, "COMMIT", logger: logger)
            } catch {
                _ = try? await Self.run(on: connection, "ROLLBACK", logger: logger)
                throw error
            }
            applied.append(migration.version)
        }
        // The routines, as this build defines them, unless a newer build has migrated the database (its own
        // definitions stand). One transaction; `CREATE OR REPLACE` keeps what depends on them.
        let newest = done.union(applied).max() ?? 0
        if newest <= migrations.map(\.version).max() ?? 0 {
            try await Self.run(on: connection, "BEGIN", logger: logger)
            do {
                for routine in Self.routines {
                    for statement in SQLScript.statements(routine.sql) {
                        try await Self.run(on: connection, PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                }
                try await Self.run(on: connection, "COMMIT", logger: logger)
            } catch {
                _ = try? await Self.run(on: connection, "ROLLBACK", logger: logger)
                throw error
            }
        }
        return applied
    }
}
