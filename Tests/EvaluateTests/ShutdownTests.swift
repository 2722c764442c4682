import AsyncHTTPClient
import CycloneCloud
import CycloneModel
import CycloneStore
import CycloneTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import PostgresNIO
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct EvaluateShutdownTests {
    /// The real `evaluate` process gets SIGTERM while Cloud Scheduler's cycle is in flight (held at its metric
    /// rows by a table lock): the cycle finishes, its report is answered and its rows are written, and the
    /// process exits 0.
    @Test func sigtermLetsTheCycleInFlightFinish() async throws {
        let binary = try Repository.product("evaluate")
        let model = try TestModels.regressionWithProfile()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            let served = (0..<2_000).map { i in
                ServedInstance(input: TestModels.bikeInstance, output: .value(100), label: .number(Double(90 + i % 21)))
            }
            try await db.store(served, model: model, spacing: 0.01)
            let (process, port) = try await ChildServer.start(
                binary.path, environment: ["DATABASE_URL": db.url, "LOG_LEVEL": "warning"],
                log: { TestFiles.folder.appendingPathComponent("evaluate-\($0).log").path }, ready: "/healthz")
            let base = "http://127.0.0.1:\(port)"

            // Hold the cycle mid-way: it waits to write its metric rows while this transaction locks the table.
            // SIGTERM arrives while it waits; once the lock goes, the cycle must still finish and answer.
            var request = HTTPClientRequest(url: base + "/evaluate")
            request.method = .POST
            let answer = try await db.client.withTransaction(logger: .test) { [request] connection in
                try await connection.query("LOCK TABLE metric IN EXCLUSIVE MODE", logger: .test)
                let answer = Task { try await HTTPClient.shared.execute(request, timeout: .seconds(60)) }
                var waiting = false
                for _ in 0..<400 where !waiting {
                    let rows = try await db.client.query(
                        "SELECT count(*)::int FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO metric%'",
                        logger: .test)
                    for try await count in rows.decode(Int.self) { waiting = count > 0 }
                    if !waiting { try await Task.sleep(for: .milliseconds(25)) }
                }
                try #require(waiting, "the cycle never reached its metric rows: \(process.log)")
                process.signal(SIGTERM)
                try await Task.sleep(for: .milliseconds(300))
                return answer
            }
            let response = try await answer.value
            #expect(response.status == .ok)
            let body = try await response.body.collect(upTo: 1 << 20)
            #expect(String(buffer: body).contains(#""name":"bikes""#))
            let status = await process.wait()
            #expect(status == 0, "evaluate exited \(status): \(process.log)")
            let rows = try await db.client.query("SELECT count(*)::int FROM metric WHERE name = 'mae'", logger: .test)
            for try await count in rows.decode(Int.self) { #expect(count == 1) }
        }
    }
}
