import Configuration
import CycloneCloud
import CycloneModel
import CycloneRuntime
import CycloneStore
import CycloneTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import ServiceLifecycle
import Testing

@testable import LabelIngest

func settings(_ environment: [String: String]) throws -> LabelSettings {
    try LabelSettings(reader: ConfigReader.cyclone(environment: environment))
}

func json(_ buffer: ByteBuffer) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as! [String: Any]
}

/// Stores `rows` with the real writer, then runs `test` against the label-ingest app on the same database.
func withLabelIngest(
    rows: [PredictionRow], environment extra: [String: String] = [:],
    _ test: @escaping @Sendable (any TestClientProtocol, TestDatabase) async throws -> Void
) async throws {
    try await withTestDatabase { db in
        let writer = PredictionWriter(database: try db.databaseURL, logger: .test, configuration: .patient)
        let group = ServiceGroup(configuration: .init(services: [writer], logger: .test))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(await writer.append(rows, waitForCommit: true) == .committed)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        var environment = ["DATABASE_URL": db.url]
        environment.merge(extra) { _, new in new }
        let app = try await buildApplication(try settings(environment), logger: .test)
        try await app.test(.router) { client in try await test(client, db) }
    }
}

func row(key: String? = nil, prediction: String = #"{"value":1}"#) -> PredictionRow {
    PredictionRow(id: UUIDv7.make(), modelName: "bikes", modelVersion: "7", input: "{}", prediction: prediction,
                  key: key, createdAt: Date())
}

@Suite struct LabelIngestTests {
    @Test func labelsAttachByIDAndKeyAndReportWhatWasNotFound() async throws {
        let rows = [row(), row(key: "order-9", prediction: #"{"class":"yes","probabilities":{"no":0.2,"yes":0.8}}"#)]
        try await withLabelIngest(rows: rows) { client, db in
            let unknown = UUIDv7.make().uuidString.lowercased()
            let request = #"""
                {"labels": [{"id": "\#(rows[0].id.uuidString.lowercased())", "label": 12.5},
                            {"key": "order-9", "label": "yes"},
                            {"key": "order-404", "label": 1},
                            {"id": "\#(unknown)", "label": false}]}
                """#
            try await client.execute(uri: "/labels", method: .post, body: ByteBuffer(string: request)) { response in
                #expect(response.status == .ok)
                let answer = try json(response.body)
                #expect(answer["applied"] as? Int == 2)
                #expect(answer["overwritten"] as? Int == 0)
                let notFound = answer["notFound"] as! [[String: String]]
                #expect(notFound == [["key": "order-404"], ["id": unknown]])
            }
            let stored = try await db.predictions()
            #expect(stored.first { $0.id == rows[0].id }?.label == "12.5")
            #expect(stored.first { $0.key == "order-9" }?.label == "\"yes\"")
        }
    }

    @Test func aDifferentLabelOverwritesAndIsCounted() async throws {
        let rows = [row()]
        try await withLabelIngest(rows: rows) { client, db in
            let id = rows[0].id.uuidString.lowercased()
            for (label, overwritten, unchanged) in [("3", 0, 0), ("3", 0, 1), ("4", 1, 0)] {
                try await client.execute(uri: "/labels", method: .post,
                                         body: ByteBuffer(string: #"{"labels": [{"id": "\#(id)", "label": \#(label)}]}"#)) { response in
                    let answer = try json(response.body)
                    #expect(answer["applied"] as? Int == 1)
                    #expect(answer["overwritten"] as? Int == overwritten)
                    #expect(answer["unchanged"] as? Int == unchanged)
                }
            }
            #expect(try await db.predictions()[0].label == "4")
        }
    }

    static let badRequests: [(String, Int, String?)] = [
        ("{", 400, nil),
        (#"[{"id": "x"}]"#, 400, nil),
        (#"{"label": []}"#, 400, "labels"),
        (#"{"labels": {}}"#, 400, "labels"),
        (#"{"labels": []}"#, 400, "labels"),
        (#"{"labels": [], "extra": 1}"#, 400, "extra"),
        (#"{"labels": [7]}"#, 400, "labels[0]"),
        (#"{"labels": [{"label": 1}]}"#, 400, "labels[0]"),
        (#"{"labels": [{"id": "not-a-uuid", "label": 1}]}"#, 400, "labels[0].id"),
        (#"{"labels": [{"id": 5, "label": 1}]}"#, 400, "labels[0].id"),
        (#"{"labels": [{"key": "", "label": 1}]}"#, 400, "labels[0].key"),
        (#"{"labels": [{"key": "a", "id": "01a20148-971d-7a00-95be-28cbd1dc1874", "label": 1}]}"#, 400, "labels[0]"),
        (#"{"labels": [{"key": "a"}]}"#, 400, "labels[0].label"),
        (#"{"labels": [{"key": "a", "label": null}]}"#, 400, "labels[0].label"),
        (#"{"labels": [{"key": "a", "label": {"x": 1}}]}"#, 400, "labels[0].label"),
        (#"{"labels": [{"key": "a", "label": 1, "lable": 2}]}"#, 400, "labels[0].lable"),
        (#"{"labels": [{"key": "a", "label": 1}, {"key": "b", "label": 1}, {"key": "c", "label": 1}]}"#, 413, "labels"),
        // What PostgreSQL would refuse, or what would overflow the evaluator's sums, is refused at the door.
        (#"{"labels": [{"key": "a\u0000b", "label": 1}]}"#, 400, "labels[0].key"),
        (#"{"labels": [{"key": "\#(String(repeating: "k", count: 1_025))", "label": 1}]}"#, 400, "labels[0].key"),
        (#"{"labels": [{"key": "a", "label": "yes\u0000"}]}"#, 400, "labels[0].label"),
        (#"{"labels": [{"key": "a", "label": 1e200}]}"#, 400, "labels[0].label"),
        (#"{"labels": [{"key": "a", "label": -1e101}]}"#, 400, "labels[0].label"),
    ]

    /// Each bad request gets a 4xx JSON error naming where, and no label is applied.
    @Test(arguments: badRequests)
    func badInputGetsAClearClientError(_ request: String, _ status: Int, _ path: String?) async throws {
        try await withLabelIngest(rows: [row(key: "a")], environment: ["MAX_LABELS": "2"]) { client, db in
            try await client.execute(uri: "/labels", method: .post, body: ByteBuffer(string: request)) { response in
                #expect(response.status.code == status)
                let error = try json(response.body)["error"] as! [String: Any]
                #expect(error["path"] as? String == path)
            }
            #expect(try await db.predictions().allSatisfy { $0.label == nil })
        }
    }

    /// With PostgreSQL unreachable nothing is accepted: 503 with a JSON body and Retry-After.
    @Test func unavailableStoreAnswers503() async throws {
        let app = try await buildApplication(
            try settings(["DATABASE_URL": "postgres://u@127.0.0.1:\(freePort())/none?sslmode=disable&connect_timeout=1",
                          "DATABASE_TIMEOUT": "500ms"]),
            logger: .test)
        try await app.test(.router) { client in
            try await client.execute(uri: "/labels", method: .post,
                                     body: ByteBuffer(string: #"{"labels": [{"key": "a", "label": 1}]}"#)) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.retryAfter] == "5")
                let error = try json(response.body)["error"] as! [String: Any]
                #expect((error["message"] as! String).contains("retry"))
            }
        }
    }
}

extension LabelIngestTests {
    /// PostgreSQL stops under concurrent requests and comes back: every request is answered (503 with
    /// Retry-After meanwhile, none hangs), and once the server is back every label is applied.
    @Test func anOutageIsAnsweredAndSurvived() async throws {
        let cluster = try await Repository.Cluster.start()
        let url = cluster.url + "&connect_timeout=1"
        try await withClient(url: url) { client in
            try await Migrator(client: client, logger: .test).migrate()
            try await Partitions(client: client, logger: .test).maintain(aheadDays: 1)
            try await PredictionWriter.insert((0..<40).map { row(key: "order-\($0)") }, client: client, logger: .test)
        }
        let app = try await buildApplication(try settings(["DATABASE_URL": url, "DATABASE_TIMEOUT": "3s",
                                                           "DATABASE_POOL_SIZE": "4"]), logger: .test)
        try await app.test(.router) { client in
            @Sendable func send(_ n: Int, label: Int) async throws -> HTTPResponse.Status {
                try await client.execute(uri: "/labels", method: .post,
                                         body: ByteBuffer(string: #"{"labels": [{"key": "order-\#(n)", "label": \#(label)}]}"#)) {
                    if $0.status == .serviceUnavailable { #expect($0.headers[.retryAfter] == "5") }
                    return $0.status
                }
            }
            @Sendable func burst(label: Int) async throws -> [HTTPResponse.Status] {
                try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                    for n in 0..<40 { group.addTask { try await send(n, label: label) } }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            /// Bursts until every request is applied (a loaded machine may answer some 503 while the pool grows).
            @Sendable func untilApplied(label: Int) async throws -> Bool {
                for _ in 0..<60 {
                    let answers = try await burst(label: label)
                    #expect(answers.allSatisfy { $0 == .ok || $0 == .serviceUnavailable }, "\(answers)")
                    if answers.allSatisfy({ $0 == .ok }) { return true }
                    try await Task.sleep(for: .milliseconds(500))
                }
                return false
            }
            #expect(try await untilApplied(label: 1))
            try await cluster.stop(keepData: true)
            for _ in 0..<2 { #expect(try await burst(label: 2).allSatisfy { $0 == .serviceUnavailable }) }
            try await cluster.startAgain()
            #expect(try await untilApplied(label: 3))
            #expect(try await untilApplied(label: 4))
        }
        try await withClient(url: url) { client in
            let rows = try await client.query("SELECT count(*)::int FROM prediction WHERE label = '4'::jsonb", logger: .test)
            for try await count in rows.decode(Int.self) { #expect(count == 40) }
        }
        try await cluster.stop()
    }
}

extension LabelIngestTests {
    /// A string label for a regression model's prediction is refused at the door, naming its place, and the
    /// batch is applied not at all; `STRICT_LABELS=false` stores it. A version the registry does not hold is
    /// judged by its stored prediction (`{"value": …}`).
    @Test(arguments: [true, false], [true, false])
    func aLabelItsModelCannotHaveIsRefused(strict: Bool, registered: Bool) async throws {
        let rows = [row(key: "a"), row(key: "b")]
        try await withLabelIngest(rows: rows, environment: strict ? [:] : ["STRICT_LABELS": "false"]) { client, db in
            if registered {
                _ = try await ModelRegistry(client: db.client, logger: .test).register(try TestModels.regression(), status: .live)
            }
            let request = #"{"labels": [{"key": "a", "label": 12}, {"key": "b", "label": "high"}]}"#
            try await client.execute(uri: "/labels", method: .post, body: ByteBuffer(string: request)) { response in
                if strict {
                    #expect(response.status == .badRequest)
                    let error = try json(response.body)["error"] as! [String: Any]
                    #expect(error["path"] as? String == "labels[1].label")
                    #expect((error["message"] as? String)?.contains("regression model bikes") == true)
                } else {
                    #expect(response.status == .ok)
                }
            }
            let labels = try await db.predictions().map(\.label)
            #expect(labels.compactMap { $0 }.count == (strict ? 0 : 2))
        }
    }
}

extension LabelIngestTests {
    /// label-ingest describes itself, with the limits it enforces.
    @Test func theAPIIsDescribed() async throws {
        try await withLabelIngest(rows: []) { client, _ in
            try await client.execute(uri: "/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                let document = try json(response.body)
                #expect(document["openapi"] as? String == "3.1.0")
                let paths = try #require(document["paths"] as? [String: Any])
                #expect(paths["/labels"] != nil)
                #expect(String(buffer: response.body).contains("MAX_LABELS"))
            }
        }
    }
}
