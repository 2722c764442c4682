import CycloneModel
import Foundation
import Logging
import PostgresNIO

/// The `model` table: every version Cyclone has served or trained, with its artifact.
///
/// The evaluator reads a version's artifact here (its task, classes and reference profile), so `predict`
/// registers the model it serves when it starts.
public struct ModelRegistry: Sendable {
    public enum Status: String, Sendable {
        case candidate, canary, shadow, live, retired, rejected
    }

    public let client: PostgresClient
    public let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Throws (a `StoreProblem.notMigrated` one) when the database lacks the `model` table's schema.
    public func checkSchema() async throws {
        try await client.query("SELECT name, version, status, artifact FROM model WHERE false", logger: logger)
    }

    /// Registers a version unless it is already known (a version's artifact never changes). Returns whether it
    /// was new.
    @discardableResult
    public func register(_ artifact: ModelArtifact, status: Status) async throws -> Bool {
        // Most starts serve a version registered already (by its retrain, or an earlier instance): asked first,
        // so a cold start does not encode a large model only for the insert to be skipped.
        let known = try await client.query("SELECT 1 FROM model WHERE name = \(artifact.name) AND version = \(artifact.version)",
                                           logger: logger)
        for try await _ in known.decode(Int.self) { return false }
        let document = String(decoding: try artifact.encoded(), as: UTF8.self)
        let family = artifact.training?.family ?? artifact.predictor.family
        let holdout = try artifact.training?.holdoutMetrics.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        let rows = try await client.query("""
            INSERT INTO model (name, version, family, task, status, artifact, parent_version, training_rows,
                               holdout_metrics)
            VALUES (\(artifact.name), \(artifact.version), \(family), \(artifact.task.rawValue), \(status.rawValue),
                    \(document)::jsonb, \(artifact.training?.parentVersion), \(artifact.training?.rows),
                    \(holdout)::jsonb)
            ON CONFLICT (name, version) DO NOTHING
            RETURNING version
            """, logger: logger)
        var inserted = false
        for try await _ in rows.decode(String.self) { inserted = true }
        return inserted
    }

    /// Registers a retrained model under the next version of its name (one above the highest integer version),
    /// numbered and inserted in one transaction under a lock on the name, so two retrains never collide: its
    /// artifact, parent, training window and rows, the holdout metrics of both it and the live model on the
    /// same rows, and the verdict (`candidate` or `rejected`, with the reason). A crash leaves it whole or
    /// absent. Returns the artifact as registered, with its version.
    public func registerRetrained(_ candidate: ModelArtifact, status: Status, window: (start: Date, end: Date),
                                  metric: String, candidateMetrics: [String: Double], liveMetrics: [String: Double],
                                  comparedRows: Int, reason: String) async throws -> ModelArtifact
    {
        let holdout = JSONValue.object([
            "metric": .string(metric), "rows": .number(Double(comparedRows)),
            "candidate": .object(candidateMetrics.mapValues { .number($0) }),
            "live": .object(liveMetrics.mapValues { .number($0) }),
        ]).jsonText
        return try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext('cyclone.version:' || \(candidate.name)))",
                                       logger: logger)
            var numbered = candidate
            let rows = try await connection.query("""
                SELECT coalesce(max(version::numeric), 0)::bigint + 1 FROM model
                WHERE name = \(candidate.name) AND version ~ '^[0-9]{1,18}$'
                """, logger: logger)
            for try await next in rows.decode(Int.self) { numbered.version = String(next) }
            let document = String(decoding: try numbered.encoded(), as: UTF8.self)
            try await connection.query("""
                INSERT INTO model (name, version, family, task, status, artifact, parent_version, training_window,
                                   training_rows, holdout_metrics, reason)
                VALUES (\(numbered.name), \(numbered.version), \(numbered.training?.family ?? numbered.predictor.family),
                        \(numbered.task.rawValue), \(status.rawValue), \(document)::jsonb, \(numbered.training?.parentVersion),
                        tstzrange(\(window.start), \(window.end), '[]'), \(numbered.training?.rows), \(holdout)::jsonb,
                        \(reason))
                """, logger: logger)
            return numbered
        }
    }

    /// Makes `version` the canary or the shadow (`status`) of `name`, with the digest of its own image when
    /// the platform built one; any other canary or shadow of it is rejected (superseded), so an old challenger
    /// can never come back. One statement: the status and the image it names land together.
    public func startChallenger(name: String, version: String, as status: Status, imageDigest: String? = nil)
        async throws
    {
        precondition(status == .canary || status == .shadow, "a challenger is a canary or a shadow")
        try await client.query("""
            UPDATE model SET status = CASE WHEN version = \(version) THEN \(status.rawValue) ELSE 'rejected' END,
                             reason = CASE WHEN version = \(version) THEN reason
                                           ELSE 'superseded by ' || \(status.rawValue) || ' ' || \(version) END,
                             image_digest = CASE WHEN version = \(version) THEN coalesce(\(imageDigest), image_digest)
                                                 ELSE image_digest END,
                             updated_at = now()
            WHERE name = \(name) AND (version = \(version) OR status IN ('canary', 'shadow'))
            """, logger: logger)
    }

    /// Sets a version's status, with the reason when there is one.
    public func setStatus(name: String, version: String, _ status: Status, reason: String? = nil) async throws {
        try await client.query("""
            UPDATE model SET status = \(status.rawValue), reason = coalesce(\(reason), reason), updated_at = now()
            WHERE name = \(name) AND version = \(version)
            """, logger: logger)
    }

    /// A registered version and when its status was last set.
    public struct Registered: Sendable {
        public var artifact: ModelArtifact
        public var since: Date
    }

    /// Which version of a model serves, the one rule the evaluator and the dashboard share: of the versions
    /// the registry holds `live`, the one set live last (`since`); when none is live (predict serves before
    /// its registration lands, or every version was retired by hand), the version that predicted last.
    public static func servingVersion(live: [(version: String, since: Date)],
                                      predicted: [(version: String, last: Date)]) -> String?
    {
        if let newest = live.max(by: { $0.since < $1.since }) { return newest.version }
        return predicted.max(by: { $0.last < $1.last })?.version
    }

    /// Which of `names` the registry holds a version of.
    public func known(_ names: [String]) async throws -> Set<String> {
        let rows = try await client.query("SELECT DISTINCT name FROM model WHERE name = ANY(\(names))", logger: logger)
        var known: Set<String> = []
        for try await name in rows.decode(String.self) { known.insert(name) }
        return known
    }

    /// The version of `name` with this status (the one set last, should there be several).
    public func version(of name: String, status: Status) async throws -> Registered? {
        let rows = try await client.query("""
            SELECT artifact::text, updated_at FROM model WHERE name = \(name) AND status = \(status.rawValue)
            ORDER BY updated_at DESC LIMIT 1
            """, logger: logger)
        for try await (text, since) in rows.decode((String, Date).self) {
            return Registered(artifact: try ModelArtifact.decode(Data(text.utf8)), since: since)
        }
        return nil
    }

    /// Marks `version` live, with the digest of the image that serves it when the platform built one, and the
    /// version that was live retired, in one statement; another canary or shadow of the model is rejected as
    /// superseded.
    public func markLive(name: String, version: String, imageDigest: String? = nil) async throws {
        try await client.query("""
            UPDATE model SET status = CASE WHEN version = \(version) THEN 'live'
                                           WHEN status = 'live' THEN 'retired' ELSE 'rejected' END,
                             reason = CASE WHEN version <> \(version) AND status IN ('canary', 'shadow')
                                           THEN 'superseded by ' || \(version) ELSE reason END,
                             image_digest = CASE WHEN version = \(version) THEN coalesce(\(imageDigest), image_digest)
                                                 ELSE image_digest END,
                             updated_at = now()
            WHERE name = \(name) AND (version = \(version) OR status IN ('live', 'canary', 'shadow'))
            """, logger: logger)
    }

    /// The artifact of a version, or `nil` when it is not registered.
    public func artifact(name: String, version: String) async throws -> ModelArtifact? {
        let rows = try await client.query(
            "SELECT artifact::text FROM model WHERE name = \(name) AND version = \(version)", logger: logger)
        for try await text in rows.decode(String.self) {
            return try ModelArtifact.decode(Data(text.utf8))
        }
        return nil
    }
}
