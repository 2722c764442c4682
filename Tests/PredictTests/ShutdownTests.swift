import AsyncHTTPClient
import CycloneCloud
import CycloneModel
import CycloneTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ShutdownTests {
    /// The real `predict` process in async mode (answers before its rows are committed) gets SIGTERM while
    /// requests are in flight: it exits 0 and every prediction it answered is in PostgreSQL.
    @Test func sigtermWithRequestsInFlightCommitsEveryAcknowledgedRow() async throws {
        let binary = try Repository.product("predict")
        let model = try TestModels.file(TestModels.regression())
        try await withTestDatabase { db in
            let port = freePort()
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("predict-\(port).log").path
            let process = try ChildProcess(binary.path, environment: [
                "MODEL_PATH": model, "DATABASE_URL": db.url, "PORT": "\(port)", "STORE_MODE": "async",
                "LOG_LEVEL": "warning",
            ], logPath: log)
            let client = HTTPClient.shared
            let base = "http://127.0.0.1:\(port)"

            // Wait until it answers.
            var up = false
            for _ in 0..<100 where !up {
                if let response = try? await client.execute(HTTPClientRequest(url: base + "/healthz"), timeout: .seconds(1)),
                    response.status == .ok
                {
                    up = true
                } else {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            try #require(up, "predict did not start: \(process.log)")

            let acknowledged = Acknowledged()
            let body = #"{"instances": [\#(TestModels.bikeInstance.jsonText), \#(TestModels.bikeInstance.jsonText)]}"#
            await withTaskGroup(of: Void.self) { group in
                for n in 0..<400 {
                    group.addTask {
                        var request = HTTPClientRequest(url: base + "/predict")
                        request.method = .POST
                        request.body = .bytes(ByteBuffer(string: body))
                        guard let response = try? await client.execute(request, timeout: .seconds(3)),
                            response.status == .ok,
                            let bytes = try? await response.body.collect(upTo: 1 << 20),
                            let answer = try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any],
                            let predictions = answer["predictions"] as? [[String: Any]]
                        else { return }  // refused after shutdown began: not acknowledged
                        let ids = predictions.compactMap { $0["id"] as? String }
                        acknowledged.add(ids)
                    }
                    if n == 150 {
                        // Mid-stream: some answered (waiting for the first, however loaded the machine), many in
                        // flight or queued.
                        for _ in 0..<500 where acknowledged.ids.count < 2 { try? await Task.sleep(for: .milliseconds(10)) }
                        process.signal(SIGTERM)
                    }
                }
            }
            let status = await process.wait()
            #expect(status == 0, "predict exited \(status): \(process.log)")
            let ids = acknowledged.ids
            #expect(ids.count >= 2)
            let stored = Set(try await db.predictions().map { $0.id.uuidString.lowercased() })
            let missing = ids.filter { !stored.contains($0) }
            #expect(missing.isEmpty, "\(missing.count) acknowledged predictions were not stored")
        }
    }
}

/// Prediction ids the server answered with, from many tasks.
final class Acknowledged: Sendable {
    private let state = Mutex<[String]>([])
    func add(_ ids: [String]) { state.withLock { $0 += ids } }
    var ids: [String] { state.withLock { $0 } }
}
