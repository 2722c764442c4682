import Configuration
import CycloneCloud
import CycloneModel
import CycloneMonitoring
import CycloneRuntime
import CycloneStore
import CycloneTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import Predict

/// Settings as `predict` would read them from this environment.
func settings(_ environment: [String: String]) throws -> PredictSettings {
    try PredictSettings(reader: ConfigReader.cyclone(environment: environment))
}

func body(_ json: String) -> ByteBuffer { ByteBuffer(string: json) }

func json(_ buffer: ByteBuffer) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as! [String: Any]
}

/// Runs `test` against the predict app built on a fresh database and a model file.
func withPredict(
    model: ModelArtifact? = nil, modelPath: String? = nil, environment extra: [String: String] = [:],
    _ test: @escaping @Sendable (any TestClientProtocol, TestDatabase) async throws -> Void
) async throws {
    let path = try modelPath ?? TestModels.file(model ?? TestModels.regression())
    try await withTestDatabase { db in
        // A loaded test machine can take over a second to commit; these tests are about what gets stored.
        var environment = ["MODEL_PATH": path, "DATABASE_URL": db.url, "STORE_TIMEOUT": "60s"]
        environment.merge(extra) { _, new in new }
        let app = try await buildApplication(try settings(environment), logger: .test)
        try await app.test(.router) { client in try await test(client, db) }
    }
}

/// A new model folder holding `bikes-7.json` (the test regression), `bikes-8.json` (the same with its
/// intercept raised by `offset`) and the link `bikes.json` to version 7, as the local platform lays it out.
func twoVersions(eightPredictsMoreBy offset: Double) throws -> URL {
    let seven = try TestModels.regression()
    var eight = seven
    eight.version = "8"
    if case .linear(var linear) = eight.predictor {
        linear.intercept += offset
        eight.predictor = .linear(linear)
    }
    let folder = TestFiles.folder.appendingPathComponent("cyclone-models-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    try seven.write(to: folder.appendingPathComponent("bikes-7.json"))
    try eight.write(to: folder.appendingPathComponent("bikes-8.json"))
    try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("bikes.json").path,
                                               withDestinationPath: "bikes-7.json")
    return folder
}

/// Waits (up to 5 s) until predict's `GET /model` mentions `text` (a canary or shadow taking effect).
func waitForModelStatus(_ client: any TestClientProtocol, containing text: String) async throws {
    func status() async throws -> String {
        try await client.execute(uri: "/model", method: .get) { String(buffer: $0.body) }
    }
    var waited = 0
    while try await !status().contains(text), waited < 500 {
        waited += 1
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// A count shared by concurrent tasks.
final class Count: Sendable {
    let value = Atomic(0)
}

/// One answer of predict, as a load test records it.
struct Answer: Sendable {
    var status: Int
    var version: String?
    var value: Double?
    var id: String?
}

@Suite struct PredictTests {
    @Test func everyServedInstanceIsStoredWithItsIdAndKey() async throws {
        try await withPredict { client, db in
            let instance = TestModels.bikeInstance.jsonText
            try await client.execute(uri: "/predict", method: .post,
                                     body: body(#"{"instances": [\#(instance), \#(instance)], "keys": ["order-1", null]}"#)) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.init("Cyclone-Stored")!] == "committed")
                let answer = try json(response.body)
                let predictions = answer["predictions"] as! [[String: Any]]
                #expect(predictions.count == 2)
                #expect(predictions[0]["key"] as? String == "order-1")
                #expect(predictions[1]["key"] == nil)
                #expect((answer["model"] as! [String: String]) == ["name": "bikes", "version": "7"])
                // Durable: committed before the answer.
                let stored = try await db.predictions()
                #expect(Set(stored.map { $0.id.uuidString.lowercased() }) == Set(predictions.map { $0["id"] as! String }))
                let first = stored.first { $0.key == "order-1" }!
                #expect(first.modelName == "bikes")
                #expect(first.modelVersion == "7")
                #expect(first.input.contains("\"season\": \"summer\""))
                #expect(stored.filter { ($0.latencyMs ?? 0) > 0 }.count == 1, "the request's latency, on one of its rows")
                let value = predictions[0]["value"] as! Double
                let storedValue = try JSONSerialization.jsonObject(with: Data(first.prediction.utf8)) as! [String: Double]
                #expect(storedValue["value"] == value)
                // The prediction is the model's.
                let artifact = try TestModels.regression()
                var notes = InstanceEncoder.Notes()
                let x = try artifact.encoder().encode(TestModels.bikeInstance, path: "", notes: &notes)
                #expect(artifact.predictor.predict(x) == .value(value))
            }
        }
    }

    @Test func classifiersAnswerClassAndProbabilities() async throws {
        let model = try TestModels.binary()
        try await withPredict(model: model) { client, db in
            let instance = try LinearCase.all().first { $0.name == "logistic_binary" }!.testInstances()[0].jsonText
            try await client.execute(uri: "/predict", method: .post, body: body(#"{"instances": [\#(instance)]}"#)) { response in
                #expect(response.status == .ok)
                let prediction = (try json(response.body)["predictions"] as! [[String: Any]])[0]
                let probabilities = prediction["probabilities"] as! [String: Double]
                #expect(Set(probabilities.keys) == ["no", "yes"])
                #expect(abs(probabilities.values.reduce(0, +) - 1) < 1e-12)
                #expect(prediction["class"] as? String == (probabilities["yes"]! > 0.5 ? "yes" : "no"))
                #expect(try await db.predictions(awaiting: 1).first?.prediction.contains("\"probabilities\"") == true)
            }
        }
    }

    static let badRequests: [(String, Int, String?)] = [
        (#"{"instances": [{"temp": 1"#, 400, nil),
        (#"{"rows": []}"#, 400, "instances"),
        (#"{"instances": {"temp": 1}}"#, 400, "instances"),
        (#"{"instances": []}"#, 400, "instances"),
        (#"[1, 2]"#, 400, nil),
        (#"{"instances": [5]}"#, 400, "instances[0]"),
        (#"{"instances": [{"temp": 1, "humidity": 0.4, "wind": 2, "holiday": false, "season": "summer"}]}"#, 400, "instances[0]"),
        (#"{"instances": [\#(TestModels.bikeInstance.jsonText), {"temp": "warm", "humidity": 0.4, "wind": 2, "holiday": false, "season": "summer", "weather": "clear"}]}"#, 400, "instances[1].temp"),
        (#"{"instances": [{"temp": 1, "humidity": 0.4, "wind": 2, "holiday": false, "season": "summer", "weather": "clear", "tmp": 3}]}"#, 400, "instances[0].tmp"),
        (#"{"instances": [{"temp": 1e999, "humidity": 0.4, "wind": 2, "holiday": false, "season": "summer", "weather": "clear"}]}"#, 400, nil),
        (#"{"instances": [{"temp": null, "humidity": 0.4, "wind": 2, "holiday": false, "season": "summer", "weather": "clear"}]}"#, 400, "instances[0].temp"),
        (#"{"instances": [\#(TestModels.bikeInstance.jsonText)], "keys": ["a", "b"]}"#, 400, "keys"),
        (#"{"instances": [\#(TestModels.bikeInstance.jsonText)], "keys": [""]}"#, 400, "keys[0]"),
        (#"{"instances": [\#(TestModels.bikeInstance.jsonText)], "keys": [7]}"#, 400, "keys[0]"),
        // What PostgreSQL would refuse, or what would overflow the evaluator's sums, is refused at the door.
        (#"{"instances": [\#(TestModels.bikeInstance.jsonText)], "keys": ["a\u0000"]}"#, 400, "keys[0]"),
        (#"{"instances": [\#(TestModels.bikeInstance.jsonText)], "keys": ["\#(String(repeating: "é", count: 513))"]}"#, 400, "keys[0]"),
        (#"{"instances": [{"temp": 1, "humidity": 0.4, "wind": 2, "holiday": false, "season": "sum\u0000mer", "weather": "clear"}]}"#, 400, "instances[0].season"),
        (#"{"instances": [{"temp": 1e308, "humidity": 0.4, "wind": 2, "holiday": false, "season": "summer", "weather": "clear"}]}"#, 400, "instances[0].temp"),
        (#"{"instances": [\#(Array(repeating: TestModels.bikeInstance.jsonText, count: 4).joined(separator: ","))]}"#, 413, "instances"),
        (#"{"instances": [\#(TestModels.bikeInstance.jsonText)], "padding": "\#(String(repeating: "x", count: 5000))"}"#, 413, nil),
    ]

    /// Each bad request gets a 4xx JSON error naming where the fault is, and nothing is stored.
    @Test(arguments: badRequests)
    func badInputGetsAClearClientError(_ request: String, _ status: Int, _ path: String?) async throws {
        try await withPredict(environment: ["MAX_INSTANCES": "3", "MAX_BODY_BYTES": "4096"]) { client, db in
            try await client.execute(uri: "/predict", method: .post, body: body(request)) { response in
                #expect(response.status.code == status)
                let error = try json(response.body)["error"] as! [String: Any]
                #expect(error["status"] as? Int == status)
                #expect(error["path"] as? String == path)
                #expect((error["message"] as? String)?.isEmpty == false)
                #expect(try await db.predictions().isEmpty)
            }
        }
    }

    @Test func unseenCategoriesAreServedUnlessStrict() async throws {
        var instance = TestModels.bikeInstance
        if case .object(var fields) = instance { fields["season"] = "monsoon"; instance = .object(fields) }
        let request = #"{"instances": [\#(instance.jsonText)]}"#
        try await withPredict { client, _ in
            try await client.execute(uri: "/predict", method: .post, body: body(request)) { response in
                #expect(response.status == .ok)
            }
        }
        try await withPredict(environment: ["STRICT_CATEGORIES": "true"]) { client, _ in
            try await client.execute(uri: "/predict", method: .post, body: body(request)) { response in
                #expect(response.status == .badRequest)
                let error = try json(response.body)["error"] as! [String: Any]
                #expect(error["path"] as? String == "instances[0].season")
                #expect((error["message"] as! String).contains("monsoon"))
            }
        }
    }

    /// With a reference profile, each stored batch carries its drift rollup: the rows counted into the
    /// profile's cells (an unseen season by name), and the requests refused before it.
    @Test func storedRowsCarryTheirDriftRollupAndRefusalsAreCounted() async throws {
        let model = try TestModels.regressionWithProfile()
        var instance = TestModels.bikeInstance
        if case .object(var fields) = instance { fields["season"] = "monsoon"; instance = .object(fields) }
        let request = #"{"instances": [\#(TestModels.bikeInstance.jsonText), \#(instance.jsonText)]}"#
        try await withPredict(model: model) { client, db in
            try await client.execute(uri: "/predict", method: .post, body: body(#"{"instances": []}"#)) { response in
                #expect(response.status == .badRequest)
            }
            // A refused request counts the instances it carried: here 2 (one of them wrongly typed).
            let wrong = #"{"instances": [\#(TestModels.bikeInstance.jsonText), {"temp": "hot"}]}"#
            try await client.execute(uri: "/predict", method: .post, body: body(wrong)) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/predict", method: .post, body: body(request)) { response in
                #expect(response.status == .ok)
            }
            let window = try await EvaluationWindows(client: db.client, logger: .test)
                .drift(of: model, bounds: WindowBounds(rows: 100, maxAge: .seconds(3_600)))
            #expect(window.rows == 2 && window.rejected == 1 + 2)
            #expect(window.columns["season"]?.categories == ["summer": 1, "monsoon": 1])
            #expect(window.columns["temp"]?.count == 2 && window.prediction?.count == 2)
        }
    }

    /// The model file is swapped (a symlink re-pointed, as the local platform deploys) while requests pour in:
    /// none fails, each is answered wholly by one version, and each stored row names the version that
    /// answered it.
    // A run that loses predict under load records a failure here after 3 minutes; a hang that ignores the
    // cancellation is ended by scripts/test's TEST_TIMEOUT.
    @Test(.timeLimit(.minutes(3))) func aModelSwapUnderLoadFailsNoRequest() async throws {
        let folder = try twoVersions(eightPredictsMoreBy: 1_000)
        let link = folder.appendingPathComponent("bikes.json").path
        let request = #"{"instances": [\#(TestModels.bikeInstance.jsonText)]}"#
        try await withPredict(modelPath: link, environment: ["MODEL_RELOAD_INTERVAL": "10ms"]) { client, db in
            // Four clients hammer predict; the link is re-pointed once 40 answers are in, and each client goes
            // on until it has seen 10 answers of the new version (or 30 s pass).
            let answered = Count()
            let answers = try await withThrowingTaskGroup(of: [Answer].self) { group in
                let deadline = ContinuousClock.now + .seconds(30)
                for _ in 0..<4 {
                    group.addTask {
                        var answers: [Answer] = []
                        while answers.filter({ $0.version == "8" }).count < 10, ContinuousClock.now < deadline {
                            try await client.execute(uri: "/predict", method: .post, body: body(request)) { response in
                                let raw = String(buffer: response.body)
                                let answer = try? JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any]
                                let prediction = (answer?["predictions"] as? [[String: Any]])?.first
                                answers.append(Answer(status: Int(response.status.code),
                                                      version: (answer?["model"] as? [String: String])?["version"],
                                                      value: prediction?["value"] as? Double, id: prediction?["id"] as? String))
                            }
                            answered.value.add(1, ordering: .relaxed)
                        }
                        return answers
                    }
                }
                group.addTask {
                    while answered.value.load(ordering: .relaxed) < 40 { try await Task.sleep(for: .milliseconds(5)) }
                    // Re-point atomically: a new link renamed over the old one.
                    let next = folder.appendingPathComponent("next.json").path
                    try FileManager.default.createSymbolicLink(atPath: next, withDestinationPath: "bikes-8.json")
                    let renamed = rename(next, link)
                    #expect(renamed == 0)
                    return []
                }
                return try await group.reduce([], +)
            }
            #expect(answers.allSatisfy { $0.status == 200 }, "\(answers.filter { $0.status != 200 }.count) failed")
            let sevens = answers.filter { $0.version == "7" }, eights = answers.filter { $0.version == "8" }
            var histogram: [String: Int] = [:]
            for answer in answers { histogram["\(answer.version ?? "nil") \(answer.value ?? -1)", default: 0] += 1 }
            #expect(!sevens.isEmpty && !eights.isEmpty && sevens.count + eights.count == answers.count,
                    "\(sevens.count) \(eights.count) \(answers.count) \(histogram)")
            let (a, b) = (try #require(sevens.first?.value), try #require(eights.first?.value))
            #expect(sevens.allSatisfy { $0.value == a } && eights.allSatisfy { $0.value == b } && abs(b - a - 1_000) < 1e-6,
                    "\(Set(sevens.map(\.value))) \(Set(eights.map(\.value)))")
            let stored = Dictionary(uniqueKeysWithValues: try await db.predictions().map { ($0.id.uuidString.lowercased(), $0.modelVersion) })
            #expect(answers.allSatisfy { stored[$0.id ?? ""] == $0.version })
            let registered = try await ModelRegistry(client: db.client, logger: .test).artifact(name: "bikes", version: "8")
            #expect(registered?.version == "8", "the swapped-in version is registered")
        }
    }

    /// A canary file beside the live one answers its share of the requests, chosen by prediction id; every
    /// stored row names the version that answered; when the canary link goes, the live version answers all.
    @Test func aCanaryAnswersItsShareAndEnds() async throws {
        let folder = try twoVersions(eightPredictsMoreBy: 0)
        let canary = folder.appendingPathComponent("bikes.canary.json").path
        try FileManager.default.createSymbolicLink(atPath: canary, withDestinationPath: "bikes-8.json")
        let request = #"{"instances": [\#(TestModels.bikeInstance.jsonText)]}"#
        try await withPredict(modelPath: folder.appendingPathComponent("bikes.json").path, environment: [
            "MODEL_RELOAD_INTERVAL": "10ms", "CANARY_MODEL_PATH": canary, "CANARY_PERCENT": "30",
        ]) { client, db in
            func ask() async throws -> (version: String, id: String) {
                try await client.execute(uri: "/predict", method: .post, body: body(request)) { response in
                    let answer = try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any]
                    let version = (answer?["model"] as? [String: String])?["version"] ?? ""
                    let id = ((answer?["predictions"] as? [[String: Any]])?.first?["id"] as? String) ?? ""
                    return (version, id)
                }
            }
            func status() async throws -> String {
                try await client.execute(uri: "/model", method: .get) { String(buffer: $0.body) }
            }
            var waited = 0
            while try await ask().version != "8", waited < 500 { waited += 1; try await Task.sleep(for: .milliseconds(10)) }
            #expect(try await status() == #"{"canary":{"percent":30,"version":"8"},"name":"bikes","version":"7"}"#)
            var answers: [(version: String, id: String)] = []
            for _ in 0..<400 { answers.append(try await ask()) }
            let share = Double(answers.filter { $0.version == "8" }.count) / Double(answers.count)
            #expect(share > 0.2 && share < 0.4, "canary share \(share)")
            let stored = Dictionary(uniqueKeysWithValues: try await db.predictions().map { ($0.id.uuidString.lowercased(), $0.modelVersion) })
            #expect(answers.allSatisfy { stored[$0.id] == $0.version })

            try FileManager.default.removeItem(atPath: canary)
            try await Task.sleep(for: .milliseconds(300))
            var after: Set<String> = []
            for _ in 0..<50 { after.insert(try await ask().version) }
            #expect(after == ["7"])
            #expect(try await status() == #"{"name":"bikes","version":"7"}"#)
        }
    }

    /// A shadow scores every request beside live and answers none: each stored row carries the shadow's version
    /// and prediction beside live's, under the id answered, so a label joins both; a shadow whose features
    /// differ is refused while live serves on; a spent budget skips the shadow and counts it in `/metrics`.
    @Test func aShadowIsStoredBesideLiveAndAnswersNothing() async throws {
        let folder = try twoVersions(eightPredictsMoreBy: 5)
        var other = try TestModels.regression(version: "9")
        other.features[0].required = false  // a valid model whose schema differs from live's
        try other.write(to: folder.appendingPathComponent("bikes-9.json"))
        let shadow = folder.appendingPathComponent("bikes.shadow.json").path
        try FileManager.default.createSymbolicLink(atPath: shadow, withDestinationPath: "bikes-8.json")
        let request = #"{"instances": [\#(TestModels.bikeInstance.jsonText), \#(TestModels.bikeInstance.jsonText)], "keys": ["a", "b"]}"#
        try await withPredict(modelPath: folder.appendingPathComponent("bikes.json").path, environment: [
            "MODEL_RELOAD_INTERVAL": "10ms", "SHADOW_MODEL_PATH": shadow,
        ]) { client, db in
            func status() async throws -> String {
                try await client.execute(uri: "/model", method: .get) { String(buffer: $0.body) }
            }
            var waited = 0
            while try await status() != #"{"name":"bikes","shadow":{"version":"8"},"version":"7"}"#, waited < 500 {
                waited += 1
                try await Task.sleep(for: .milliseconds(10))
            }
            let answer = try await client.execute(uri: "/predict", method: .post, body: body(request)) { try json($0.body) }
            #expect((answer["model"] as? [String: String])?["version"] == "7")
            let ids = ((answer["predictions"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
            let values = ((answer["predictions"] as? [[String: Any]]) ?? []).compactMap { $0["value"] as? Double }
            #expect(ids.count == 2 && values.count == 2)
            // The labels, as label-ingest attaches them; both losses are then there on every row.
            try await db.client.query("UPDATE prediction SET label = '100'::jsonb, labeled_at = now()", logger: .test)
            let rows = try await db.client.query("""
                SELECT id::text, model_version, shadow_version, value_number, (shadow_prediction->>'value')::float8,
                       abs(value_number - label_number), abs((shadow_prediction->>'value')::float8 - label_number)
                FROM prediction ORDER BY id
                """, logger: .test)
            var stored: [(String, String, String?, Double, Double?, Double, Double?)] = []
            for try await row in rows.decode((String, String, String?, Double, Double?, Double, Double?).self) {
                stored.append(row)
            }
            #expect(stored.map(\.0) == ids)
            for (index, row) in stored.enumerated() where index < values.count {
                #expect(row.1 == "7" && row.2 == "8")
                #expect(row.3 == values[index])
                #expect(abs((row.4 ?? .nan) - row.3 - 5) < 1e-9)
                #expect(row.5 == abs(row.3 - 100) && row.6 == abs((row.4 ?? .nan) - 100))
            }
            var registered: String?
            for _ in 0..<100 where registered == nil {
                registered = try await ModelRegistry(client: db.client, logger: .test).version(of: "bikes", status: .shadow)?
                    .artifact.version
                if registered == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(registered == "8")

            // A shadow whose features differ is refused; live serves alone.
            let next = shadow + ".next"
            try FileManager.default.createSymbolicLink(atPath: next, withDestinationPath: "bikes-9.json")
            #expect(rename(next, shadow) == 0)
            waited = 0
            while try await status() != #"{"name":"bikes","version":"7"}"#, waited < 500 {
                waited += 1
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(try await status() == #"{"name":"bikes","version":"7"}"#)
            try await client.execute(uri: "/predict", method: .post, body: body(request)) { #expect($0.status == .ok) }
        }

        // No time for the shadow: the answer is live's, the rows have no shadow, the skips are counted.
        try await withPredict(modelPath: folder.appendingPathComponent("bikes.json").path, environment: [
            "MODEL_RELOAD_INTERVAL": "0s", "SHADOW_MODEL_PATH": folder.appendingPathComponent("bikes-8.json").path,
            "SHADOW_BUDGET": "0s",
        ]) { client, db in
            var waited = 0
            func status() async throws -> String {
                try await client.execute(uri: "/model", method: .get) { String(buffer: $0.body) }
            }
            while try await !status().contains("shadow"), waited < 500 {
                waited += 1
                try await Task.sleep(for: .milliseconds(10))
            }
            try await client.execute(uri: "/predict", method: .post, body: body(request)) { #expect($0.status == .ok) }
            #expect(try await db.predictions(awaiting: 2).count == 2)
            let shadows = try await db.client.query("SELECT count(shadow_version)::int FROM prediction", logger: .test)
            for try await count in shadows.decode(Int.self) { #expect(count == 0) }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let line = String(buffer: response.body).split(separator: "\n")
                    .first { $0.hasPrefix("cyclone_shadow_skipped_total{reason=\"budget\"}") }
                #expect((line?.split(separator: " ").last).flatMap { Double($0) }.map { $0 >= 2 } == true,
                        "\(line.map(String.init) ?? "no line")")
            }
        }
    }

    /// A live swap to a version the shadow does not fit ends the shadow, saying so; a swap back brings it
    /// back, checked anew against the live version.
    @Test func aShadowFollowsTheLiveVersionsSchema() async throws {
        let folder = try twoVersions(eightPredictsMoreBy: 5)
        var optional = try TestModels.regression(version: "9")
        optional.features[0].required = false
        try optional.write(to: folder.appendingPathComponent("bikes-9.json"))
        let live = folder.appendingPathComponent("bikes.json").path
        let shadow = folder.appendingPathComponent("bikes.shadow.json").path
        try FileManager.default.createSymbolicLink(atPath: shadow, withDestinationPath: "bikes-8.json")
        try await withPredict(modelPath: live, environment: [
            "MODEL_RELOAD_INTERVAL": "10ms", "SHADOW_MODEL_PATH": shadow,
        ]) { client, _ in
            func wait(for expected: String) async throws -> String {
                var status = ""
                for _ in 0..<500 {
                    status = try await client.execute(uri: "/model", method: .get) { String(buffer: $0.body) }
                    if status == expected { break }
                    try await Task.sleep(for: .milliseconds(10))
                }
                return status
            }
            func point(to file: String) throws {
                let next = live + ".next"
                try FileManager.default.createSymbolicLink(atPath: next, withDestinationPath: file)
                #expect(rename(next, live) == 0)
            }
            #expect(try await wait(for: #"{"name":"bikes","shadow":{"version":"8"},"version":"7"}"#)
                    == #"{"name":"bikes","shadow":{"version":"8"},"version":"7"}"#)
            try point(to: "bikes-9.json")
            #expect(try await wait(for: #"{"name":"bikes","version":"9"}"#) == #"{"name":"bikes","version":"9"}"#)
            try point(to: "bikes-7.json")
            #expect(try await wait(for: #"{"name":"bikes","shadow":{"version":"8"},"version":"7"}"#)
                    == #"{"name":"bikes","shadow":{"version":"8"},"version":"7"}"#)
        }
    }

    /// Concurrent requests are stored by fewer transactions than requests (group commit): rows written by one
    /// INSERT share their transaction id.
    @Test func concurrentRequestsShareInserts() async throws {
        try await withPredict { client, db in
            let request = #"{"instances": [\#(TestModels.bikeInstance.jsonText)]}"#
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        try await client.execute(uri: "/predict", method: .post, body: body(request)) { response in
                            #expect(response.status == .ok)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let rows = try await db.client.query("SELECT count(*)::int, count(DISTINCT xmin::text)::int FROM prediction")
                .decode((Int, Int).self)
            for try await (count, transactions) in rows {
                #expect(count == 200)
                #expect(transactions < 100)
            }
        }
    }

    @Test func asyncModeAnswersFirstAndStoresByShutdown() async throws {
        let path = try TestModels.file(TestModels.regression())
        try await withTestDatabase { db in
            let app = try await buildApplication(
                try settings(["MODEL_PATH": path, "DATABASE_URL": db.url, "STORE_MODE": "async"]), logger: .test)
            try await app.test(.router) { client in
                for _ in 0..<20 {
                    try await client.execute(uri: "/predict", method: .post,
                                             body: body(#"{"instances": [\#(TestModels.bikeInstance.jsonText)]}"#)) { response in
                        #expect(response.status == .ok)
                        #expect(response.headers[.init("Cyclone-Stored")!] == "buffered")
                    }
                }
            }
            // The test framework shut the app down gracefully: the writer flushed.
            #expect(try await db.predictions().count == 20)
        }
    }

    /// With PostgreSQL unreachable, predictions still answer; the header says the rows are only buffered.
    @Test func predictionsAnswerWhenTheDatabaseIsDown() async throws {
        let path = try TestModels.file(TestModels.regression())
        let app = try await buildApplication(
            try settings(["MODEL_PATH": path, "STORE_TIMEOUT": "200ms",
                          "DATABASE_URL": "postgres://u@127.0.0.1:\(freePort())/none?sslmode=disable&connect_timeout=1"]),
            logger: .test)
        try await app.test(.router) { client in
            try await client.execute(uri: "/predict", method: .post,
                                     body: body(#"{"instances": [\#(TestModels.bikeInstance.jsonText)]}"#)) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.init("Cyclone-Stored")!] == "buffered")
                let predictions = try json(response.body)["predictions"] as! [Any]
                #expect(predictions.count == 1)
            }
        }
    }

    @Test func operationalEndpoints() async throws {
        try await withPredict { client, _ in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/predict", method: .post,
                                     body: body(#"{"instances": [\#(TestModels.bikeInstance.jsonText)]}"#)) { _ in }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("cyclone_instances_served_total"))
                #expect(text.contains("cyclone_prediction_rows_written_total"))
                #expect(text.contains("http_server_request_duration_bucket"))
            }
            try await client.execute(uri: "/openapi.json", method: .get) { response in
                let document = try json(response.body)
                let schemas = (document["components"] as! [String: Any])["schemas"] as! [String: Any]
                let instance = schemas["Instance"] as! [String: Any]
                #expect(Set((instance["properties"] as! [String: Any]).keys) == ["temp", "humidity", "wind", "holiday", "season", "weather"])
                #expect((instance["required"] as! [String]).count == 6)
            }
            try await client.execute(uri: "/nowhere", method: .get) { response in
                #expect(response.status == .notFound)
                let answer = try json(response.body)
                #expect(answer["error"] != nil)
            }
        }
    }

    @Test(arguments: [
        (["MODEL_PATH": "/m.json"], "DATABASE_URL is not set"),
        (["DATABASE_URL": "postgres://u@h/d"], "MODEL_PATH is not set"),
        (["MODEL_PATH": "/m.json", "DATABASE_URL": "postgres://u@h/d", "PORT": "http"], "PORT 'http' is not a port number"),
        (["MODEL_PATH": "/m.json", "DATABASE_URL": "postgres://u@h/d", "STORE_MODE": "eventually"], "STORE_MODE 'eventually' is not durable or async"),
    ])
    func badSettingsNameTheVariable(_ environment: [String: String], _ message: String) {
        #expect { try settings(environment) } throws: { "\($0)".hasPrefix(message) }
    }

    @Test func aBadModelFileStopsStartUpNamingTheField() async throws {
        let url = TestFiles.folder.appendingPathComponent("bad-\(UUID()).json")
        try Data(#"{"format": 1, "name": "m", "version": "1", "task": "regression", "features": []}"#.utf8).write(to: url)
        await #expect { try await buildApplication(try settings(["MODEL_PATH": url.path, "DATABASE_URL": "postgres://u@h/d"]), logger: .test) }
            throws: { ($0 as? ArtifactError)?.path == "preprocessing" }
    }
}

extension ModelArtifact {
    func encoder() -> InstanceEncoder { InstanceEncoder(features: features, preprocessing: preprocessing) }
}

/// A database the migrations have not reached: predict is not ready and says what to do, in one line; once
/// migrated it becomes ready, and what it held meanwhile is stored.
@Test func anUnmigratedDatabaseIsNotReadyUntilMigrated() async throws {
    let cluster = try await Repository.Cluster.start()
    let path = try TestModels.file(TestModels.regression())
    let app = try await buildApplication(try settings(["MODEL_PATH": path, "DATABASE_URL": cluster.url, "STORE_TIMEOUT": "200ms"]),
                                         logger: .test)
    try await app.test(.router) { client in
        var reason: String?
        for _ in 0..<100 where reason == nil {
            try await client.execute(uri: "/readyz", method: .get) { response in
                if response.status == .serviceUnavailable { reason = String(buffer: response.body) }
            }
            if reason == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(reason?.contains("not migrated") == true && reason?.contains("cyclone migrate") == true, "\(reason ?? "ready")")
        try await client.execute(uri: "/predict", method: .post,
                                 body: body(#"{"instances": [\#(TestModels.bikeInstance.jsonText)]}"#)) { response in
            #expect(response.status == .ok)
            #expect(response.headers[HTTPField.Name("Cyclone-Stored")!] == "buffered")
        }
        try await withClient(url: cluster.url) { db in
            try await Migrator(client: db, logger: .test).migrate()
            try await Partitions(client: db, logger: .test).maintain(aheadDays: 1)
        }
        var ready = false
        for _ in 0..<200 where !ready {
            try await client.execute(uri: "/readyz", method: .get) { ready = $0.status == .ok }
            if !ready { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(ready)
        var stored = 0
        for _ in 0..<200 where stored == 0 {
            try await withClient(url: cluster.url) { db in
                for try await n in try await db.query("SELECT count(*)::int FROM prediction", logger: .test).decode(Int.self) { stored = n }
            }
            if stored == 0 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(stored == 1)
    }
    try await cluster.stop()
}

/// A wrong method is 405 naming what the path serves (not 404), and a body declared as anything but JSON is
/// 415; both with the JSON error body. OPTIONS names the methods; HEAD answers as GET without the body.
@Test func wrongMethodsAndContentTypesAreNamed() async throws {
    try await withPredict { client, db in
        for (uri, method, allow) in [("/predict", HTTPRequest.Method.get, "OPTIONS, POST"),
                                     ("/model", .post, "GET, HEAD, OPTIONS"), ("/healthz", .delete, "GET, HEAD, OPTIONS"),
                                     ("/openapi.json", .put, "GET, HEAD, OPTIONS")] {
            try await client.execute(uri: uri, method: method) { response in
                #expect(response.status == .methodNotAllowed, "\(method) \(uri)")
                #expect(response.headers[.allow] == allow, "\(method) \(uri)")
                let error = try json(response.body)["error"] as! [String: Any]
                #expect(error["status"] as? Int == 405)
            }
            try await client.execute(uri: uri, method: .options) { response in
                #expect(response.status == .noContent, "OPTIONS \(uri)")
                #expect(response.headers[.allow] == allow, "OPTIONS \(uri)")
            }
        }
        let model = try await client.execute(uri: "/model", method: .get) { $0 }
        try await client.execute(uri: "/model", method: .head) { response in
            #expect(response.status == .ok)
            #expect(response.body.readableBytes == 0)
            #expect(response.headers[.contentType] == model.headers[.contentType])
            #expect(response.headers[.contentLength] == "\(model.body.readableBytes)")
        }
        try await client.execute(uri: "/predict", method: .head) { response in
            #expect(response.status == .methodNotAllowed)
            #expect(response.body.readableBytes == 0)
        }
        let instance = #"{"instances": [\#(TestModels.bikeInstance.jsonText)]}"#
        for (type, status) in [("text/plain", 415), ("application/x-www-form-urlencoded", 415), (";", 200),
                               ("application/json; charset=utf-8", 200), ("application/vnd.api+json", 200)] {
            try await client.execute(uri: "/predict", method: .post, headers: [.contentType: type], body: body(instance)) { response in
                #expect(response.status.code == status, "\(type)")
                if status == 415 {
                    let error = try json(response.body)["error"] as! [String: Any]
                    #expect((error["message"] as? String)?.contains(type) == true)
                }
            }
        }
        #expect(try await db.predictions(awaiting: 3).count == 3)
        // A null for a required feature says so, rather than that the feature is missing.
        try await client.execute(uri: "/predict", method: .post,
                                 body: body(#"{"instances": [{"temp": null, "humidity": 0.4, "wind": 2, "holiday": false, "season": "summer", "weather": "clear"}]}"#)) { response in
            let error = try json(response.body)["error"] as! [String: Any]
            #expect((error["message"] as? String)?.contains("is null") == true)
        }
    }
    // A body over MAX_BODY_BYTES is 413 naming the setting.
    try await withPredict(environment: ["MAX_BODY_BYTES": "1000"]) { client, _ in
        let padding = String(repeating: "x", count: 2000)
        try await client.execute(uri: "/predict", method: .post, body: body(#"{"instances": [], "pad": "\#(padding)"}"#)) { response in
            #expect(response.status == .contentTooLarge)
            let error = try json(response.body)["error"] as! [String: Any]
            #expect((error["message"] as? String)?.contains("MAX_BODY_BYTES") == true)
        }
    }
}
