import CycloneRuntime
import CycloneStore
import CycloneTestSupport
import Foundation
import PostgresNIO
import Testing

@Suite struct MigrationTests {
    @Test func everyMigrationFileIsListedInOrder() throws {
        let folder = Repository.root.appendingPathComponent("Core/Store/Migrations")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(files.map { Int($0.prefix(4))! } == Migrator.all.map(\.version))
        for (file, migration) in zip(files, Migrator.all) {
            #expect(try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8) == migration.sql)
        }
    }

    /// Running twice, and from several clients at once, applies each migration exactly once.
    @Test func migratingIsIdempotentAndSafeConcurrently() async throws {
        try await withTestDatabase { db in
            try await db.client.query("DROP SCHEMA public CASCADE; ", logger: .test)
            try await db.client.query("CREATE SCHEMA public", logger: .test)
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<4 { group.addTask { try await Migrator(client: db.client, logger: .test).migrate() } }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(applied.sorted() == Migrator.all.map(\.version))
            #expect(try await Migrator(client: db.client, logger: .test).migrate() == [])
            let count = try await db.client.query("SELECT count(*)::int FROM schema_migration").decode(Int.self)
            for try await n in count { #expect(n == Migrator.all.count) }
        }
    }

    /// A migration whose connection is closed under it (here, ended by the server while it waits for the lock)
    /// fails with an error, and promptly: a start that migrates never waits for an answer that cannot come.
    @Test func aMigrationWhoseConnectionClosesFails() async throws {
        try await withTestDatabase { db in
            try await db.client.withConnection { holder in
                try await holder.query("SELECT pg_advisory_lock(\(Int64(0x6379_636c_6f6e_65)))", logger: .test)
                let migration = Task { try await Migrator(client: db.client, logger: .test).migrate() }
                var pid: Int?
                for _ in 0..<500 where pid == nil {
                    let rows = try await holder.query("""
                        SELECT pid FROM pg_stat_activity
                        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%pg_advisory_lock%'
                        """, logger: .test)
                    for try await found in rows.decode(Int.self) { pid = found }
                    if pid == nil { try await Task.sleep(for: .milliseconds(20)) }
                }
                let waiting = try #require(pid, "the migration waits for the lock")
                try await holder.query("SELECT pg_terminate_backend(\(waiting)::int)", logger: .test)
                let started = ContinuousClock.now
                let outcome = try await withTimeout(.seconds(20)) { await migration.result }
                #expect(throws: (any Error).self) { try outcome.get() }
                #expect(ContinuousClock.now - started < .seconds(10))
                try await holder.query("SELECT pg_advisory_unlock_all()", logger: .test)
            }
        }
    }

    /// The unix-socket form of DATABASE_URL (Cloud SQL's `/cloudsql/…` path) reaches the server.
    @Test func migratesOverAUnixSocket() async throws {
        let cluster = try await Repository.Cluster.start()
        do {
            let applied = try await withClient(url: cluster.socketURL) { client in
                try await Migrator(client: client, logger: .test).migrate()
            }
            #expect(applied == Migrator.all.map(\.version))
            try await cluster.stop()
        } catch {
            try? await cluster.stop()
            throw error
        }
    }

    @Test func aFailingMigrationLeavesNothingBehind() async throws {
        try await withTestDatabase { db in
            let broken = Migration(version: 99, name: "broken", sql: "CREATE TABLE half_done (x int); SELECT 1/0;")
            await #expect(throws: (any Error).self) {
                try await Migrator(client: db.client, logger: .test, migrations: Migrator.all + [broken]).migrate()
            }
            let rows = try await db.client.query("SELECT to_regclass('half_done') IS NULL, (SELECT count(*)::int FROM schema_migration WHERE version = 99)")
                .decode((Bool, Int).self)
            for try await (absent, recorded) in rows {
                #expect(absent)
                #expect(recorded == 0)
            }
        }
    }
}

@Suite struct PartitionTests {
    func partitions(_ db: TestDatabase) async throws -> [String] {
        var names: [String] = []
        let rows = try await db.client.query("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'prediction'::regclass ORDER BY 1
            """).decode(String.self)
        for try await name in rows { names.append(name) }
        return names
    }

    func insert(_ db: TestDatabase, at date: Date) async throws -> UUID {
        let id = UUIDv7.make(at: date)
        try await db.client.query("""
            INSERT INTO prediction (id, model_name, model_version, input, prediction, created_at)
            VALUES (\(id), 'm', '1', '{}', '{}', \(date))
            """, logger: .test)
        return id
    }

    @Test func rowsOutsideEveryDayWaitInDefaultAndMoveIntoTheirDay() async throws {
        try await withTestDatabase { db in
            let day: TimeInterval = 86_400
            let future = Date().addingTimeInterval(30 * day)
            let id = try await insert(db, at: future)
            let created = try await Partitions(client: db.client, logger: .test).maintain(aheadDays: 31)
            #expect(created.count >= 30)
            let where_ = try await db.client.query("SELECT tableoid::regclass::text FROM prediction WHERE id = \(id)").decode(String.self)
            for try await table in where_ {
                #expect(table.hasPrefix("prediction_p"))
            }
            let names = try await partitions(db)
            #expect(names.contains("prediction_default"))
            // Twice is a no-op.
            #expect(try await Partitions(client: db.client, logger: .test).maintain(aheadDays: 31).isEmpty)
        }
    }

    @Test func retentionDropsOldDays() async throws {
        try await withTestDatabase { db in
            let old = Date().addingTimeInterval(-10 * 86_400)
            _ = try await insert(db, at: old)
            try await Partitions(client: db.client, logger: .test).maintain(aheadDays: 1)
            let before = try await partitions(db)
            let changes = try await Partitions(client: db.client, logger: .test).maintain(aheadDays: 1, retainDays: 5)
            #expect(changes.contains { $0.action == "dropped" })
            let after = try await partitions(db)
            #expect(after.count < before.count)
            let count = try await db.client.query("SELECT count(*)::int FROM prediction").decode(Int.self)
            for try await n in count { #expect(n == 0) }
        }
    }

    /// The partition function has one definition (`Routines/cyclone_ensure_partitions.sql`): the migrator
    /// creates it after the migrations, and leaves a newer build's alone.
    @Test func routinesAreCreatedAfterTheMigrationsUnlessTheDatabaseIsNewer() async throws {
        try await withTestDatabase { db in
            func definition() async throws -> String {
                for try await text in try await db.client.query(
                    "SELECT pg_get_functiondef('cyclone_ensure_partitions'::regproc)", logger: .test).decode(String.self)
                { return text }
                return ""
            }
            try await db.client.query("""
                CREATE OR REPLACE FUNCTION cyclone_ensure_partitions(ahead_days integer DEFAULT 7, retain_days integer DEFAULT NULL)
                RETURNS TABLE (action text, partition_name text) LANGUAGE sql AS $$ SELECT 'other'::text, 'x'::text $$
                """, logger: .test)
            try await Migrator(client: db.client, logger: .test).migrate()
            #expect(try await definition().contains("cyclone_moving"), "this build's definition, restored")
            let newer = "SELECT 'newer'::text, 'x'::text"
            try await db.client.query(PostgresQuery(unsafeSQL: """
                CREATE OR REPLACE FUNCTION cyclone_ensure_partitions(ahead_days integer DEFAULT 7, retain_days integer DEFAULT NULL)
                RETURNS TABLE (action text, partition_name text) LANGUAGE sql AS $$ \(newer) $$
                """), logger: .test)
            try await db.client.query("INSERT INTO schema_migration (version, name) VALUES (999, 'newer')", logger: .test)
            try await Migrator(client: db.client, logger: .test).migrate()
            #expect(try await definition().contains(newer), "a newer build's definition stands")
        }
    }
}
