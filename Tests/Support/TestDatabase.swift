import CycloneStore
import Foundation
import Logging
import PostgresNIO

/// A fresh, migrated database for one test, on the PostgreSQL named by `DATABASE_URL` (the test script starts
/// a throwaway cluster and exports it). Created from a migrated template, dropped afterwards.
public struct TestDatabase: Sendable {
    public let client: PostgresClient
    /// URL of this test's database, for processes the test starts.
    public let url: String
    public let name: String

    /// Rows of `prediction` as (id, model_version, input, prediction, key, label).
    public func predictions() async throws -> [StoredPrediction] {
        var rows: [StoredPrediction] = []
        let query: PostgresQuery = """
            SELECT id, model_name, model_version, input::text, prediction::text, key, label::text, created_at
            FROM prediction ORDER BY id
            """
        for try await (id, name, version, input, prediction, key, label, createdAt) in try await client.query(query)
            .decode((UUID, String, String, String, String, String?, String?, Date).self)
        {
            rows.append(StoredPrediction(id: id, modelName: name, modelVersion: version, input: input,
                                         prediction: prediction, key: key, label: label, createdAt: createdAt))
        }
        return rows
    }
}

public struct StoredPrediction: Sendable, Equatable {
    public var id: UUID
    public var modelName: String
    public var modelVersion: String
    public var input: String
    public var prediction: String
    public var key: String?
    /// The label as jsonb text (`201`, `"yes"`), `nil` while unlabelled.
    public var label: String?
    public var createdAt: Date
}

public struct TestDatabaseError: Error, CustomStringConvertible {
    public var description: String
}

extension Logger {
    /// A quiet logger for tests (warnings and worse).
    public static var test: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }
}

/// Runs `body` with a running client on a new database; drops the database afterwards.
public func withTestDatabase<T: Sendable>(
    _ body: @Sendable (TestDatabase) async throws -> T
) async throws -> T {
    let baseURL = try TestDatabases.baseURL()
    let template = try await TestDatabases.shared.template(baseURL: baseURL)
    let name = "cyclone_t_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
    try await withClient(url: baseURL) { admin in
        try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name) TEMPLATE \(template)"), logger: .test)
    }
    let url = TestDatabases.url(baseURL, database: name)
    do {
        let result = try await withClient(url: url) { client in
            try await body(TestDatabase(client: client, url: url, name: name))
        }
        try await drop(name, baseURL: baseURL)
        return result
    } catch {
        try? await drop(name, baseURL: baseURL)
        throw error
    }
}

private func drop(_ name: String, baseURL: String) async throws {
    try await withClient(url: baseURL) { admin in
        try await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: .test)
    }
}

/// Runs `body` with a running `PostgresClient` for `url`.
@discardableResult
public func withClient<T: Sendable>(url: String, _ body: (PostgresClient) async throws -> T) async throws -> T {
    let client = PostgresClient(configuration: try .init(databaseURL: url), backgroundLogger: .test)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}

/// The migrated template databases, made once per test process and schema.
actor TestDatabases {
    static let shared = TestDatabases()
    private var made: [String: Task<String, any Error>] = [:]

    static func baseURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else {
            throw TestDatabaseError(description:
                "DATABASE_URL is not set: run the tests with scripts/test, which starts a throwaway PostgreSQL")
        }
        return url
    }

    static func url(_ base: String, database: String) -> String {
        var components = URLComponents(string: base)!
        components.path = "/" + database
        return components.string!
    }

    /// A template named after the migrations' content, so a changed migration gets a new one.
    func template(baseURL: String) async throws -> String {
        var hasher = FNV1a()
        for migration in Migrator.all { hasher.add(migration.sql) }
        let name = "cyclone_tpl_\(String(hasher.value, radix: 16))"
        if let task = made[name] { return try await task.value }
        let task = Task<String, any Error> {
            let exists = try await withClient(url: baseURL) { admin in
                let rows = try await admin.query("SELECT 1 FROM pg_database WHERE datname = \(name)", logger: .test)
                for try await _ in rows { return true }
                return false
            }
            if !exists {
                let building = name + "_build_\(getpid())"
                try await withClient(url: baseURL) { admin in
                    try await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(building)"), logger: .test)
                    try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(building)"), logger: .test)
                }
                try await withClient(url: Self.url(baseURL, database: building)) { client in
                    try await Migrator(client: client, logger: .test).migrate()
                }
                // Rename into place; another test process may have won the race, which is fine.
                try await withClient(url: baseURL) { admin in
                    do {
                        try await admin.query(PostgresQuery(unsafeSQL: "ALTER DATABASE \(building) RENAME TO \(name)"), logger: .test)
                    } catch {
                        try await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(building)"), logger: .test)
                    }
                }
            }
            return name
        }
        made[name] = task
        return try await task.value
    }
}

/// 64-bit FNV-1a, for naming templates after their content.
struct FNV1a {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ text: String) {
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value &*= 0x0000_0100_0000_01b3
        }
    }
}
