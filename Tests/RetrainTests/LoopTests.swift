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

@Suite struct LoopTests {
    /// The loop closed on one machine with the real binaries: predict serves version 1 from the model folder,
    /// the world changes, labels arrive, `cyclone evaluate` sees the breach and starts `retrain`, which trains
    /// version 2, finds it better than what predict served, deploys it to the folder, and predict swaps to it.
    @Test func degradationRetrainsAndTheNewVersionServes() async throws {
        let (predict, cyclone, retrain) = (try Repository.product("predict"), try Repository.product("cyclone"),
                                          try Repository.product("retrain"))
        let live = try liveModel()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cyclone-loop-\(UUID().uuidString)").path
        _ = try await LocalPlatform(modelDirectory: folder).deploy(live)
        try await withTestDatabase { db in
            let port = freePort()
            let server = try ChildProcess(predict.path, environment: [
                "MODEL_PATH": LocalPlatform.servingPath(name: "demand", in: folder), "DATABASE_URL": db.url,
                "PORT": "\(port)", "MODEL_RELOAD_INTERVAL": "100ms", "LOG_LEVEL": "warning",
            ], logPath: "\(folder)/predict.log")
            defer { server.signal(SIGTERM) }
            let base = "http://127.0.0.1:\(port)"

            // The world changes: y = -3·x1 + 2·x2 now. predict serves version 1 on 500 such rows.
            let (table, y) = rows(500, seed: 11, a: -3, b: 2)
            guard case .numeric(let x1) = table.columns[0].values, case .numeric(let x2) = table.columns[1].values,
                  case .categorical(let colour) = table.columns[2].values
            else { return }
            let instances = (0..<500).map { i in
                JSONValue.object(["x1": .number(x1[i]), "x2": .number(x2[i]), "colour": .string(colour[i]!)]).jsonText
            }
            let first = try await post(base, instances: Array(instances[0..<250]), keys: 0..<250)
            let second = try await post(base, instances: Array(instances[250...]), keys: 250..<500)
            #expect(first == "1" && second == "1")
            try await db.client.query("""
                UPDATE prediction p SET label = to_jsonb(l.y), labeled_at = now()
                FROM UNNEST(\((0..<500).map { "row-\($0)" })::text[], \(y)::float8[]) AS l(k, y) WHERE p.key = l.k
                """, logger: .test)

            let evaluation = try ChildProcess(cyclone.path, arguments: ["evaluate"], environment: [
                "DATABASE_URL": db.url, "RETRAIN_COMMAND": retrain.path, "MODEL_DIR": folder, "RETRAIN_COOLDOWN": "0s",
                "LOG_LEVEL": "error", "PATH": "/usr/bin:/bin",
            ], stdout: "\(folder)/evaluate.log", stderr: nil)
            #expect(await evaluation.wait() == 0, "\(evaluation.log)")
            #expect(evaluation.log.contains("action: retrain_started"), "\(evaluation.log)")

            // retrain runs on its own; wait for its deployment, then for predict to serve it.
            var served = "1"
            for _ in 0..<600 where served != "2" {
                try await Task.sleep(for: .milliseconds(100))
                served = try await post(base, instances: [instances[0]], keys: nil)
            }
            #expect(served == "2", "predict: \(server.log)")
            var kinds: [String] = []
            for try await kind in try await db.client.query("SELECT kind FROM event ORDER BY id", logger: .test)
                .decode(String.self) { kinds.append(kind) }
            #expect(kinds == ["retrain_requested", "retrain_started", "retrain_finished", "deployed"], "\(kinds)")
            #expect(try await modelRows(db).map(\.status) == ["retired", "live"])
        }
    }

    /// POSTs instances to predict; returns the version that answered.
    private func post(_ base: String, instances: [String], keys: Range<Int>?) async throws -> String {
        var request = HTTPClientRequest(url: base + "/predict")
        request.method = .POST
        let keyList = keys.map { ", \"keys\": [" + $0.map { "\"row-\($0)\"" }.joined(separator: ",") + "]" } ?? ""
        request.body = .bytes(ByteBuffer(string: "{\"instances\": [\(instances.joined(separator: ","))]\(keyList)}"))
        var lastError: (any Error)?
        for _ in 0..<100 {
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                let body = try await response.body.collect(upTo: 1 << 22)
                guard response.status == .ok,
                      let answer = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
                      let model = answer["model"] as? [String: String], let version = model["version"]
                else { throw TestDatabaseError(description: "predict answered \(response.status): \(String(buffer: body))") }
                return version
            } catch {
                lastError = error  // not up yet
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw lastError!
    }
}
