import AsyncHTTPClient
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
    /// The real `evaluate` process gets SIGTERM while Cloud Scheduler's cycle is in flight: the cycle finishes,
    /// its report is answered and its rows are written, and the process exits 0.
    @Test func sigtermLetsTheCycleInFlightFinish() async throws {
        let binary = try Repository.product("evaluate")
        let model = try TestModels.regressionWithProfile()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            let served = (0..<2_000).map { i in
                ServedInstance(input: TestModels.bikeInstance, output: .value(100), label: .number(Double(90 + i % 21)))
            }
            try await db.store(served, model: model, spacing: 0.01)
            let port = freePort()
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("evaluate-\(port).log").path
            let process = try ChildProcess(binary.path, environment: [
                "DATABASE_URL": db.url, "PORT": "\(port)", "LOG_LEVEL": "warning",
            ], logPath: log)
            let base = "http://127.0.0.1:\(port)"
            var up = false
            for _ in 0..<200 where !up {
                if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: base + "/healthz"),
                                                                       timeout: .seconds(1)),
                    response.status == .ok
                {
                    up = true
                } else {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            try #require(up, "evaluate did not start: \(process.log)")

            var request = HTTPClientRequest(url: base + "/evaluate")
            request.method = .POST
            async let answer = HTTPClient.shared.execute(request, timeout: .seconds(30))
            try await Task.sleep(for: .milliseconds(5))
            process.signal(SIGTERM)
            let response = try await answer
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
