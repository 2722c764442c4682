import CycloneStore
import CycloneTestSupport
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Testing

/// Runs a writer as a service next to `body`, then shuts it down gracefully (which flushes it).
func withWriter<T: Sendable>(
    database: DatabaseURL, configuration: PredictionWriter.Configuration = .patient,
    _ body: @Sendable (PredictionWriter) async throws -> T
) async throws -> T {
    let writer = PredictionWriter(database: database, logger: .test, configuration: configuration)
    let group = ServiceGroup(configuration: .init(services: [writer], logger: .test))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            let result = try await body(writer)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
}

func row(_ n: Int, key: String? = nil, at date: Date = Date()) -> PredictionRow {
    PredictionRow(id: UUIDv7.make(at: date), modelName: "bikes", modelVersion: "3", input: #"{"temp":\#(n)}"#,
                  prediction: #"{"value":\#(n * 2)}"#, key: key, createdAt: date)
}

@Suite struct PredictionWriterTests {
    @Test func durableAppendReturnsAfterCommit() async throws {
        try await withTestDatabase { db in
            let rows = [row(1, key: "order-1"), row(2)]
            let outcome = try await withWriter(database: try db.databaseURL) { writer in
                let outcome = await writer.append(rows, waitForCommit: true)
                // Committed means visible to another connection now, not after shutdown.
                let visible = try await db.predictions().count
                #expect(visible == 2)
                return outcome
            }
            #expect(outcome == .committed)
            let stored = try await db.predictions()
            #expect(stored.map(\.id) == rows.map(\.id).sorted { $0.uuidString < $1.uuidString })
            #expect(stored.first { $0.key == "order-1" }?.input == #"{"temp": 1}"#)
            #expect(stored.first { $0.key == nil }?.prediction == #"{"value": 4}"#)
        }
    }

    /// Many concurrent requests are written by far fewer INSERTs (group commit).
    @Test func concurrentAppendsShareInserts() async throws {
        try await withTestDatabase { db in
            let stats = try await withWriter(database: try db.databaseURL) { writer in
                await withTaskGroup(of: PredictionWriter.Outcome.self) { group in
                    for n in 0..<400 { group.addTask { await writer.append([row(n)], waitForCommit: true) } }
                    for await outcome in group { #expect(outcome == .committed) }
                }
                return writer.statistics
            }
            #expect(stats.rowsWritten == 400)
            #expect(stats.batchesWritten < 200)
            #expect(try await db.predictions().count == 400)
        }
    }

    @Test func asyncAppendsAreWrittenByShutdown() async throws {
        try await withTestDatabase { db in
            try await withWriter(database: try db.databaseURL) { writer in
                for n in 0..<50 { #expect(await writer.append([row(n)], waitForCommit: false) == .buffered) }
            }
            #expect(try await db.predictions().count == 50)
        }
    }

    /// A burst far above the buffer's size: appends wait for room instead of dropping, and every row is stored.
    @Test func aFullBufferAppliesBackpressure() async throws {
        try await withTestDatabase { db in
            var configuration = PredictionWriter.Configuration.patient
            configuration.maxBufferedRows = 5
            configuration.maxBatchRows = 3
            let outcomes = try await withWriter(database: try db.databaseURL, configuration: configuration) { writer in
                await withTaskGroup(of: PredictionWriter.Outcome.self) { group in
                    for n in 0..<200 { group.addTask { await writer.append([row(n)], waitForCommit: false) } }
                    return await group.reduce(into: [PredictionWriter.Outcome]()) { $0.append($1) }
                }
            }
            #expect(outcomes.allSatisfy { $0 == .buffered })
            #expect(try await db.predictions().count == 200)
        }
    }

    @Test func aBufferThatStaysFullDropsAndCounts() async throws {
        // An unreachable server: nothing can be written, so the buffer fills and stays full.
        var configuration = PredictionWriter.Configuration()
        configuration.durableTimeout = .milliseconds(300)
        configuration.maxBufferedRows = 10
        configuration.shutdownFlushTimeout = .milliseconds(300)
        configuration.writeTimeout = .milliseconds(200)
        var database = try DatabaseURL("postgres://u@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
        database.connectTimeout = .milliseconds(100)
        try await withWriter(database: database, configuration: configuration) { writer in
            #expect(await writer.append((0..<8).map { row($0) }, waitForCommit: false) == .buffered)
            #expect(await writer.append((0..<8).map { row($0) }, waitForCommit: false) == .dropped)
            #expect(writer.bufferedRows == 8)
        }
    }

    /// Rows PostgreSQL refuses as data (an index entry too large, a NUL in jsonb) are found, logged and counted;
    /// every other row, in the same batch or after it, is stored, and the queue never stalls on them.
    @Test func aRowPostgreSQLRefusesHoldsNothingBack() async throws {
        try await withTestDatabase { db in
            // Incompressible, so the index entry stays over PostgreSQL's limit of about 2,700 bytes.
            let longKey = row(1, key: (0..<80).map { _ in UUID().uuidString }.joined())
            func withNUL(_ n: Int) -> PredictionRow {
                var row = row(n)
                row.input = #"{"season":"a\u0000b"}"#
                return row
            }
            let nul = withNUL(2), another = withNUL(3)
            let good = (10..<60).map { row($0, key: "k\($0)") }
            let (outcomes, statistics) = try await withWriter(database: try db.databaseURL) { writer in
                // One request of many rows with both culprits inside, then requests after it, all at once.
                let mixed = Array(good[0..<20]) + [longKey] + Array(good[20..<30]) + [nul]
                async let first = writer.append(mixed, waitForCommit: true)
                async let later = withTaskGroup(of: PredictionWriter.Outcome.self) { group in
                    for row in good[30...] { group.addTask { await writer.append([row], waitForCommit: true) } }
                    return await group.reduce(into: [PredictionWriter.Outcome]()) { $0.append($1) }
                }
                let alone = await writer.append([another], waitForCommit: true)
                return ([await first, alone] + (await later), writer.statistics)
            }
            #expect(outcomes[0] == .dropped)
            #expect(outcomes[1] == .dropped)
            // Committed, or buffered where a loaded machine took longer than writeTimeout (then retried).
            #expect(outcomes[2...].allSatisfy { $0 == .committed || $0 == .buffered })
            #expect(statistics.refusedRows == 3)
            let stored = try await db.predictions()
            #expect(Set(stored.map(\.id)) == Set(good.map(\.id)))
            for try await rolled in try await db.client.query("SELECT sum(rows)::int FROM drift_rollup").decode(Int.self) {
                #expect(rolled == good.count)
            }
        }
    }

    /// PostgreSQL stops while predictions keep coming: durable requests answer `.buffered` after their timeout,
    /// and once the server is back every row is written — none lost, none twice.
    @Test func databaseDownAndBackLosesNothing() async throws {
        let cluster = try await Repository.Cluster.start()
        var database = try DatabaseURL(cluster.url)
        database.connectTimeout = .milliseconds(500)
        let client = PostgresClient(configuration: database.client, backgroundLogger: .test)
        let runner = DatabaseRunner(client)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await runner.run() }
            await runner.running()
            try await Migrator(client: client, logger: .test).migrate()
            try await Partitions(client: client, logger: .test).maintain(aheadDays: 1)
            var configuration = PredictionWriter.Configuration()
            // Long enough for a loaded machine to commit while the server is up; while it is down, appends
            // are answered as soon as a write fails (writeTimeout), not after this.
            configuration.durableTimeout = .seconds(2)
            configuration.retryInitial = .milliseconds(50)
            configuration.retryMax = .milliseconds(200)
            configuration.writeTimeout = .milliseconds(500)
            let sent = try await withWriter(database: database, configuration: configuration) { writer in
                var sent: [PredictionRow] = []
                for n in 0..<20 {
                    let rows = [row(n)]
                    // Committed, unless a loaded machine took longer than writeTimeout: then buffered and retried.
                    #expect(await writer.append(rows, waitForCommit: true) != .dropped)
                    sent += rows
                }
                try await cluster.stop(keepData: true)
                for n in 20..<60 {
                    let rows = [row(n)]
                    #expect(await writer.append(rows, waitForCommit: n % 2 == 0) == .buffered)
                    sent += rows
                }
                // The 40 of the outage, and any earlier ones a loaded machine did not commit within writeTimeout.
                #expect(writer.bufferedRows >= 40)
                try await cluster.startAgain()
                // Rows written by retries, without new traffic (bounded only against a hang: a loaded machine).
                let deadline = ContinuousClock.now.advanced(by: .seconds(60))
                while writer.bufferedRows > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
                #expect(writer.bufferedRows == 0)
                #expect(writer.statistics.probes > writer.statistics.failedProbes)
                #expect(writer.statistics.failedWrites > 0)
                return sent
            }
            var stored: [UUID] = []
            for try await id in try await client.query("SELECT id FROM prediction").decode(UUID.self) { stored.append(id) }
            #expect(Set(stored) == Set(sent.map(\.id)))
            #expect(stored.count == sent.count)
            // Retried batches count once in the drift rollups, however the retries went.
            for try await rolled in try await client.query("SELECT sum(rows)::int FROM drift_rollup").decode(Int.self) {
                #expect(rolled == sent.count)
            }
            group.cancelAll()
        }
        try await cluster.stop()
    }

    /// A server that refuses the writer (here: its database does not exist) is tried again on a doubling backoff
    /// (by writes or probes, depending on how the pool reports the refusal), not every tenth of a second, and
    /// shutdown still ends within its deadline.
    @Test func aRefusingServerIsProbedOnABackoff() async throws {
        var database = try DatabaseURL(try #require(ProcessInfo.processInfo.environment["DATABASE_URL"]))
        database.database = "cyclone_no_such_database"
        var configuration = PredictionWriter.Configuration()
        configuration.retryInitial = .milliseconds(50)
        configuration.retryMax = .milliseconds(400)
        configuration.writeTimeout = .milliseconds(300)
        configuration.shutdownFlushTimeout = .milliseconds(500)
        let clock = ContinuousClock()
        let tries: @Sendable (PredictionWriter.Statistics) -> Int = { $0.failedWrites + $0.failedProbes }
        let (first, statistics, stopped) = try await withWriter(database: database, configuration: configuration) { writer in
            #expect(await writer.append((0..<5).map { row($0) }, waitForCommit: false) == .buffered)
            // The first failure (a loaded machine may take a while), then three seconds of tries again.
            let deadline = clock.now.advanced(by: .seconds(30))
            while tries(writer.statistics) == 0, clock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            let first = tries(writer.statistics)
            try await Task.sleep(for: .seconds(3))
            return (first, writer.statistics, clock.now)
        }
        #expect(clock.now - stopped < .seconds(5), "shutdown within its deadline")
        // 50, 100, 200, 400, 400… ms apart is at most about 10 tries in 3 s; a try every retryInitial would be
        // over 40 (a loaded machine only makes fewer).
        #expect(first >= 1, "\(statistics)")
        #expect(tries(statistics) - first <= 16, "\(statistics)")
        #expect(statistics.rowsWritten == 0)
    }

    /// `.committed` means committed. PostgresNIO answers a statement at its CommandComplete, before PostgreSQL
    /// commits it, so a commit that then fails (here a deferred trigger; in life a crash in between) must not be
    /// answered committed: the rows stay queued and are stored once a commit goes through.
    @Test func committedMeansCommitted() async throws {
        try await withTestDatabase { db in
            for statement: PostgresQuery in [
                "CREATE TABLE hold_commits (held boolean)",
                "INSERT INTO hold_commits VALUES (true)",
                """
                CREATE FUNCTION refuse_while_held() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN IF EXISTS (SELECT FROM hold_commits) THEN RAISE EXCEPTION 'commits are held'; END IF; RETURN NULL; END $$
                """,
                """
                CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON drift_rollup
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_while_held()
                """,
            ] { try await db.client.query(statement, logger: .test) }
            var configuration = PredictionWriter.Configuration()
            configuration.durableTimeout = .seconds(1)
            configuration.retryInitial = .milliseconds(50)
            configuration.retryMax = .milliseconds(200)
            let rows = [row(1), row(2)]
            try await withWriter(database: try db.databaseURL, configuration: configuration) { writer in
                #expect(await writer.append(rows, waitForCommit: true) == .buffered)
                #expect(try await db.predictions().isEmpty)
                #expect(writer.bufferedRows == 2)
                try await db.client.query("DELETE FROM hold_commits", logger: .test)
                let deadline = ContinuousClock.now.advanced(by: .seconds(60))
                while writer.bufferedRows > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(Set(try await db.predictions().map(\.id)) == Set(rows.map(\.id)))
        }
    }
}
