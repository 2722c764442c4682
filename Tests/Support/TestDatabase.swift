import CycloneModel
import CycloneMonitoring
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

    /// `url` read, for what makes connections of its own (the prediction writer).
    public var databaseURL: DatabaseURL {
        get throws { try DatabaseURL(url) }
    }

    /// Rows of `prediction` as (id, model_version, input, prediction, key, label).
    public func predictions() async throws -> [StoredPrediction] {
        var rows: [StoredPrediction] = []
        let query: PostgresQuery = """
            SELECT id, model_name, model_version, input::text, prediction::text, key, label::text, created_at,
                   latency_ms::float8
            FROM prediction ORDER BY id
            """
        for try await (id, name, version, input, prediction, key, label, createdAt, latency) in try await client.query(query)
            .decode((UUID, String, String, String, String, String?, String?, Date, Double?).self)
        {
            rows.append(StoredPrediction(id: id, modelName: name, modelVersion: version, input: input,
                                         prediction: prediction, key: key, label: label, createdAt: createdAt,
                                         latencyMs: latency))
        }
        return rows
    }

    /// `predictions()` once at least `count` rows are visible, or after `within`. A durable request is answered
    /// after its commit, but `buffered` when a write failed (a statement over the writer's 5 s timeout on a loaded
    /// machine), and the retry commits a little later: a test that counts the rows of its requests waits for it.
    /// More rows than `count` are returned at once, so an exact count still catches a row stored twice.
    public func predictions(awaiting count: Int, within: Duration = .seconds(30)) async throws -> [StoredPrediction] {
        let deadline = ContinuousClock.now.advanced(by: within)
        while true {
            let rows = try await predictions()
            if rows.count >= count || ContinuousClock.now >= deadline { return rows }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// One served instance for `TestDatabase.store`: what predict got, what it answered, and the label (if any).
public struct ServedInstance: Sendable {
    public var input: JSONValue
    public var output: Output
    public var label: JSONValue?
    /// The shadow's version and output, stored on the same row.
    public var shadow: (version: String, output: Output)?

    public init(input: JSONValue, output: Output, label: JSONValue? = nil, shadow: (version: String, output: Output)? = nil) {
        self.input = input
        self.output = output
        self.label = label
        self.shadow = shadow
    }
}

extension TestDatabase {
    /// Stores instances as predict does (rows and drift rollup through the writer's statement, `batch` rows a
    /// statement), `spacing` seconds apart and ending `endingAgo` seconds before now, then their labels as
    /// label-ingest does. Returns the ids.
    @discardableResult
    public func store(_ instances: [ServedInstance], model: ModelArtifact, endingAgo: TimeInterval = 0,
                      spacing: TimeInterval = 1, batch: Int = 100) async throws -> [UUID]
    {
        let layout = DriftLayout(model)
        let end = Date().addingTimeInterval(-endingAgo)
        var rows: [PredictionRow] = []
        for (i, instance) in instances.enumerated() {
            let time = end.addingTimeInterval(-Double(instances.count - 1 - i) * spacing)
            var drift: DriftCells?
            if let layout, case .object(let values) = instance.input {
                drift = layout.cells(instance: values, output: instance.output, classes: model.classes)
            }
            rows.append(PredictionRow(id: UUIDv7.make(at: time), modelName: model.name, modelVersion: model.version,
                                      input: instance.input.jsonText,
                                      prediction: Self.predictionJSON(instance.output, classes: model.classes),
                                      createdAt: time, drift: drift,
                                      shadow: instance.shadow.map {
                                          PredictionRow.Shadow(version: $0.version,
                                                               prediction: Self.predictionJSON($0.output, classes: model.classes))
                                      }))
        }
        for start in stride(from: 0, to: rows.count, by: batch) {
            try await PredictionWriter.insert(Array(rows[start..<min(start + batch, rows.count)]), client: client,
                                              logger: .test)
        }
        let labelled = zip(rows, instances).compactMap { row, instance in instance.label.map { (row.id, $0.jsonText) } }
        if !labelled.isEmpty {
            try await client.query("""
                UPDATE prediction p SET label = l.label::jsonb, labeled_at = p.created_at
                FROM UNNEST(\(labelled.map(\.0))::uuid[], \(labelled.map(\.1))::text[]) AS l(id, label)
                WHERE p.id = l.id
                """, logger: .test)
        }
        return rows.map(\.id)
    }

    /// The prediction as predict stores it.
    public static func predictionJSON(_ output: Output, classes: [String]?) -> String {
        PredictionJSON(classes: classes).text(output)
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
    /// How long predict took for the request that stored the row (milliseconds), on its first row only.
    public var latencyMs: Double?
}

public struct TestDatabaseError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

extension Logger {
    /// A quiet logger for tests: the faults they cause on purpose log warnings and errors by the hundred, which
    /// would bury a failure. `CYCLONE_TEST_LOG=warning` (or another level) shows them.
    public static var test: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = ProcessInfo.processInfo.environment["CYCLONE_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
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
    return try await DatabaseRunner(client).whileRunning(body)
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

extension PredictionWriter.Configuration {
    /// Durable appends and the writes under them wait as long as a loaded test machine needs (with every
    /// suite at once on two cores a commit has taken over 5 s, the default write timeout, and a failed write
    /// answers a durable append `.buffered` at once): for tests about what gets stored, not about the
    /// timeouts (which `PredictionWriterTests.databaseDownAndBackLosesNothing` covers).
    public static var patient: Self {
        var configuration = Self()
        configuration.durableTimeout = .seconds(60)
        configuration.writeTimeout = .seconds(60)
        return configuration
    }
}
