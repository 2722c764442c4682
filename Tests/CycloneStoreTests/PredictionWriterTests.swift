import CycloneStore
import CycloneTestSupport
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Testing

/// Runs a writer as a service next to `body`, then shuts it down gracefully (which flushes it).
func withWriter<T: Sendable>(
    database: PostgresClient.Configuration, configuration: PredictionWriter.Configuration = .patient,
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

extension PredictionWriter.Configuration {
    /// Durable appends wait as long as a loaded test machine needs: these tests are about what gets stored,
    /// not about the timeout (which `databaseDownAndBackLosesNothing` covers).
    static var patient: Self {
        var configuration = Self()
        configuration.durableTimeout = .seconds(60)
        return configuration
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
            let outcome = try await withWriter(database: try db.configuration) { writer in
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
            let stats = try await withWriter(database: try db.configuration) { writer in
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
            try await withWriter(database: try db.configuration) { writer in
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
            let outcomes = try await withWriter(database: try db.configuration, configuration: configuration) { writer in
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
        var database = try PostgresClient.Configuration(databaseURL: "postgres://u@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
        database.options.connectTimeout = .milliseconds(100)
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
            let (outcomes, statistics) = try await withWriter(database: try db.configuration) { writer in
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
        var database = try PostgresClient.Configuration(databaseURL: cluster.url)
        database.options.connectTimeout = .milliseconds(500)
        let client = PostgresClient(configuration: database, backgroundLogger: .test)
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
                #expect(writer.bufferedRows == 40)
                try await cluster.startAgain()
                // Rows written by retries, without new traffic.
                while writer.bufferedRows > 0 { try await Task.sleep(for: .milliseconds(50)) }
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
}
