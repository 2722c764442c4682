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
    /// version 2, finds it better than what predict served and deploys it as a canary; predict answers half
    /// the requests with it; with the labels of that period the next cycle promotes it, and predict serves
    /// version 2 only.
    @Test func degradationRetrainsAndTheNewVersionServes() async throws {
        let (predict, cyclone, retrain) = (try Repository.product("predict"), try Repository.product("cyclone"),
                                          try Repository.product("retrain"))
        let live = try liveModel()
        let folder = TestFiles.folder.appendingPathComponent("cyclone-loop-\(UUID().uuidString)").path
        _ = try await LocalPlatform(modelDirectory: folder).deploy(live, as: .live)
        try await withTestDatabase { db in
            let (server, port) = try await ChildServer.start(predict.path, environment: [
                "MODEL_PATH": LocalPlatform.servingPath(name: "demand", in: folder), "DATABASE_URL": db.url,
                "CANARY_MODEL_PATH": LocalPlatform.path(name: "demand", .canary, in: folder), "CANARY_PERCENT": "50",
                "MODEL_RELOAD_INTERVAL": "100ms", "LOG_LEVEL": "warning",
            ], log: { _ in "\(folder)/predict.log" }, ready: "/healthz")
            defer { server.signal(SIGTERM) }
            let base = "http://127.0.0.1:\(port)"

            // The world changes: y = -3·x1 + 2·x2 now. predict serves version 1 on 500 such rows.
            let (table, y) = rows(900, seed: 11, a: -3, b: 2)
            guard case .numeric(let x1) = table.columns[0].values, case .numeric(let x2) = table.columns[1].values,
                  case .categorical(let colour) = table.columns[2].values
            else { return }
            let instances = (0..<900).map { i in
                JSONValue.object(["x1": .number(x1[i]), "x2": .number(x2[i]), "colour": .string(colour[i]!)]).jsonText
            }
            for start in stride(from: 0, to: 500, by: 50) {
                #expect(try await post(base, instances: Array(instances[start..<(start + 50)]), keys: start..<(start + 50)) == "1")
            }
            try await label(db, y, 0..<500)
            let environment = [
                "DATABASE_URL": db.url, "RETRAIN_COMMAND": retrain.path, "MODEL_DIR": folder, "RETRAIN_COOLDOWN": "0s",
                "RETRAIN_TRIGGER": "threshold",
                "ROLLOUT": "canary", "CANARY_PERCENT": "50", "CANARY_MIN_LABELS": "50", "LOG_LEVEL": "error", "PATH": "/usr/bin:/bin",
            ]
            let first = try ChildProcess(cyclone.path, arguments: ["evaluate"], environment: environment,
                                         stdout: "\(folder)/evaluate-1.log", stderr: nil)
            #expect(await first.wait() == 0, "\(first.log)")
            #expect(first.log.contains("action: retrain_started"), "\(first.log)")

            // retrain runs on its own; wait until predict answers some requests with the canary.
            var versions: Set<String> = []
            for _ in 0..<600 where !versions.contains("2") {
                try await Task.sleep(for: .milliseconds(100))
                versions.insert(try await post(base, instances: [instances[0]], keys: nil))
            }
            #expect(versions.contains("2"), "predict: \(server.log)")
            // The canary's period: requests one instance each, so the split shows per request.
            var answered: [String: Int] = [:]
            for i in 500..<900 { answered[try await post(base, instances: [instances[i]], keys: i..<(i + 1)), default: 0] += 1 }
            #expect((answered["1"] ?? 0) > 100 && (answered["2"] ?? 0) > 100, "\(answered)")
            try await label(db, y, 500..<900)

            let second = try ChildProcess(cyclone.path, arguments: ["evaluate"], environment: environment,
                                          stdout: "\(folder)/evaluate-2.log", stderr: nil)
            #expect(await second.wait() == 0, "\(second.log)")
            #expect(second.log.contains("demand@2 canary against live 1: promoted"), "\(second.log)")
            var served = ""
            for _ in 0..<100 where served != "2" {
                try await Task.sleep(for: .milliseconds(100))
                served = try await post(base, instances: [instances[0]], keys: nil)
            }
            var last: Set<String> = []
            for _ in 0..<20 { last.insert(try await post(base, instances: [instances[1]], keys: nil)) }
            #expect(last == ["2"], "after the promotion only version 2 answers")
            var kinds: [String] = []
            for try await kind in try await db.client.query("SELECT kind FROM event ORDER BY id", logger: .test)
                .decode(String.self) { kinds.append(kind) }
            #expect(kinds == ["retrain_requested", "retrain_started", "retrain_finished", "canary_started", "promoted"],
                    "\(kinds)")
            #expect(try await modelRows(db).map(\.status) == ["retired", "live"])
        }
    }

    private func label(_ db: TestDatabase, _ y: [Double], _ range: Range<Int>) async throws {
        try await db.client.query("""
            UPDATE prediction p SET label = to_jsonb(l.y), labeled_at = now()
            FROM UNNEST(\(range.map { "row-\($0)" })::text[], \(Array(y[range]))::float8[]) AS l(k, y) WHERE p.key = l.k
            """, logger: .test)
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
