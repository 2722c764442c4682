import Configuration
import CycloneModel
import CycloneMonitoring
import CycloneRuntime
import CycloneStore
import CycloneTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

@testable import Evaluate

func json(_ buffer: ByteBuffer) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as! [String: Any]
}

@Suite struct EvaluateTests {
    /// Scheduler's POST runs a cycle over what predict stored; the dashboards then read its series.
    @Test func evaluateAnswersTheReportAndTheSeriesFollow() async throws {
        let model = try TestModels.regression()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            let input = TestModels.bikeInstance.jsonText
            // Predictions of 100, labels of 90 to 110: R² is defined and the labels count.
            let labels = (0..<120).map { 90 + Double($0 % 21) }
            try await db.client.query("""
                INSERT INTO prediction (id, model_name, model_version, input, prediction, label, created_at, labeled_at)
                SELECT gen_random_uuid(), 'bikes', '7', \(input)::jsonb, '{"value": 100}'::jsonb, to_jsonb(l), now(), now()
                FROM UNNEST(\(labels)::float8[]) AS l
                """, logger: .test)
            let settings = try EvaluateSettings(reader: ConfigReader.cyclone(environment: ["DATABASE_URL": db.url, "RETRAIN_TRIGGER": "threshold"]))
            let app = try await buildApplication(settings, logger: .test)
            try await app.test(.router) { client in
                try await client.execute(uri: "/evaluate", method: .post) { response in
                    #expect(response.status == .ok)
                    let report = try json(response.body)
                    let models = try #require(report["models"] as? [[String: Any]])
                    #expect(models.count == 1)
                    let performance = try #require(models[0]["performance"] as? [String: Any])
                    #expect(performance["labelled"] as? Int == 120)
                    let metrics = try #require(performance["metrics"] as? [String: Double])
                    let expected = RegressionMetrics(labels: labels, predictions: labels.map { _ in 100 }).mae!
                    #expect(abs(metrics["mae"]! - expected) < 1e-12)
                    let judgement = try #require(models[0]["judgement"] as? [String: Any])
                    #expect(judgement["breached"] as? Bool == true, "a constant prediction has R² ≤ 0")
                    #expect((models[0]["note"] as? String)?.contains("no reference profile") == true)
                }
                try await client.execute(uri: "/api/metrics?model=bikes&metric=mae", method: .get) { response in
                    #expect(response.status == .ok)
                    let body = try json(response.body)
                    let series = try #require(body["series"] as? [[String: Any]])
                    #expect(series.count == 1 && series[0]["metric"] as? String == "mae")
                    #expect((series[0]["points"] as? [[String: Any]])?.first?["rows"] as? Int == 120)
                }
                try await client.execute(uri: "/api/drift?model=bikes", method: .get) { response in
                    #expect(response.status == .ok)
                    let series = try json(response.body)["series"] as? [Any]
                    #expect(series?.isEmpty == true, "no profile, no drift rows")
                }
                // Durations too long for a clock (once a trap that killed evaluate) are refused as any typo is.
                let bad = [("limit=0", "limit"), ("since=yesterday", "since"), ("colour=red", "colour"), ("since=INF", "since"),
                           ("since=inf", "since"), ("since=1e20", "since"), ("since=99999999999999d", "since"),
                           ("since=1e300ms", "since"), ("since=nan", "since"), ("since=-5s", "since")]
                for (query, path) in bad {
                    try await client.execute(uri: "/api/metrics?\(query)", method: .get) { response in
                        #expect(response.status == .badRequest)
                        let body = try json(response.body)
                        let error = try #require(body["error"] as? [String: Any])
                        #expect(error["path"] as? String == path, "\(query)")
                    }
                }
                // A NUL in a name (which PostgreSQL refuses to read) is the caller's fault, not a 500.
                for (endpoint, key) in [("metrics", "model"), ("drift", "version"), ("volume", "model"), ("events", "kind"),
                                        ("events", "version")] {
                    try await client.execute(uri: "/api/\(endpoint)?\(key)=a%00b", method: .get) { response in
                        #expect(response.status == .badRequest, "\(endpoint) \(key)")
                        let error = try #require(try json(response.body)["error"] as? [String: Any])
                        #expect(error["path"] as? String == key, "\(endpoint) \(key)")
                    }
                }
                // An empty `since`, which the schema allows, is the default window.
                try await client.execute(uri: "/api/metrics?since=", method: .get) { response in
                    #expect(response.status == .ok)
                }
            }
        }
    }
}

/// The JSON API the dashboard reads, on a registry with a live version and its canary, their stored
/// predictions with latencies, and the loop's events; and on an empty database.
@Suite struct DashboardAPITests {
    @Test func theAPIDescribesTheLoop() async throws {
        let live = try TestModels.regression(version: "7")
        let canary = {
            var canary = live
            canary.version = "8"
            canary.training = TrainingInfo(family: "ridge", parameters: [:], rows: 100, trainedAt: Date(),
                                           holdoutMetrics: ["rmse": 3.5, "r2": 0.8], parentVersion: "7")
            return canary
        }()
        try await withTestDatabase { db in
            let registry = ModelRegistry(client: db.client, logger: .test)
            // An older live row (predict registers each model it loads as live): only the newest serves.
            _ = try await registry.register(try TestModels.regression(version: "6"), status: .live)
            _ = try await registry.register(live, status: .live)
            _ = try await registry.register(canary, status: .canary)
            let store = EvaluationStore(client: db.client, logger: .test)
            let reason: JSONValue = ["reason": "r2 0.1 < 0.4"]
            try await store.event(.retrainRequested, name: "bikes", version: "7", detail: reason)
            try await store.event(.canaryStarted, name: "bikes", version: "8", detail: ["percent": 25])
            // 30 predictions of 7 and 10 of 8, one a second, with latencies 1…40 ms; a third of 7's labelled.
            let start = Date(timeIntervalSinceNow: -120).rounded(to: 60)
            let input = TestModels.bikeInstance.jsonText
            var rows: [PredictionRow] = []
            for i in 0..<40 {
                let at = start.addingTimeInterval(Double(i))
                // Version 9 in shadow beside 7 on its first 20 rows, predicting 95.
                rows.append(PredictionRow(id: UUIDv7.make(at: at), modelName: "bikes", modelVersion: i < 30 ? "7" : "8",
                                          input: input, prediction: #"{"value": 100}"#, key: "k\(i)", createdAt: at,
                                          latencyMs: Double(i + 1),
                                          shadow: i < 20 ? .init(version: "9", prediction: #"{"value": 95}"#) : nil))
            }
            try await PredictionWriter.insert(rows, client: db.client, logger: .test)
            let labelled = (0..<10).map { "k\($0 * 3)" }
            try await db.client.query("UPDATE prediction SET label = '90', labeled_at = now() WHERE key = ANY(\(labelled))",
                                      logger: .test)

            let settings = try EvaluateSettings(reader: ConfigReader.cyclone(environment: ["DATABASE_URL": db.url, "RETRAIN_TRIGGER": "threshold"]))
            let app = try await buildApplication(settings, logger: .test)
            try await app.test(.router) { client in
                try await client.execute(uri: "/api/models", method: .get) { response in
                    #expect(response.status == .ok)
                    let models = try #require(try json(response.body)["models"] as? [[String: Any]])
                    #expect(models.map { $0["version"] as? String } == ["6", "7", "8"])
                    #expect(models.map { $0["traffic_percent"] as? Int } == [0, 75, 25],
                            "the canary's share as its event recorded it, the rest to the newest live version")
                    #expect(models.map { $0["predictions"] as? Int } == [0, 30, 10])
                    #expect(models[2]["parent_version"] as? String == "7" && models[1]["parent_version"] is NSNull)
                    let policy = try #require(models[2]["policy"] as? [String: Any])
                    #expect(policy["metric"] as? String == "r2" && policy["limit"] as? Double == 0.4
                            && policy["higher_is_better"] as? Bool == true)
                    #expect((models[2]["holdout_metrics"] as? [String: Double])?["rmse"] == 3.5)
                    #expect(models[1]["first_prediction_at"] as? String == start.formatted(.iso8601))
                }
                try await client.execute(uri: "/api/events?model=bikes", method: .get) { response in
                    let events = try #require(try json(response.body)["events"] as? [[String: Any]])
                    #expect(events.map { $0["kind"] as? String } == ["retrain_requested", "canary_started"])
                    #expect((events[0]["detail"] as? [String: Any])?["reason"] as? String == "r2 0.1 < 0.4")
                }
                try await client.execute(uri: "/api/volume?model=bikes&bucket=60", method: .get) { response in
                    #expect(response.status == .ok)
                    let body = try json(response.body)
                    #expect(body["bucket_seconds"] as? Int == 60)
                    let series = try #require(body["series"] as? [[String: Any]])
                    #expect(series.map { $0["version"] as? String } == ["7", "8"])
                    let points = try #require(series[0]["points"] as? [[String: Any]])
                    #expect(points.compactMap { $0["predictions"] as? Int }.reduce(0, +) == 30)
                    #expect(points.compactMap { $0["labelled"] as? Int }.reduce(0, +) == 10)
                    // Version 8's ten rows (31…40 ms) fall in one minute: PostgreSQL's interpolated percentiles.
                    let eight = try #require((series[1]["points"] as? [[String: Any]])?.first)
                    #expect(abs((eight["latency_ms_p50"] as? Double ?? 0) - 35.5) < 1e-4)
                    #expect(abs((eight["latency_ms_p95"] as? Double ?? 0) - 39.55) < 1e-4)
                }
                try await client.execute(uri: "/api/volume?model=bikes", method: .get) { response in
                    let body = try json(response.body)
                    #expect(body["bucket_seconds"] as? Int == 1, "39 s of predictions: 1 s buckets")
                }
                // Labels 90 on k0, k3, … k27: seven of them on rows version 9 scored too.
                try await client.execute(uri: "/api/shadow?model=bikes", method: .get) { response in
                    #expect(response.status == .ok)
                    let comparisons = try #require(try json(response.body)["comparisons"] as? [[String: Any]])
                    #expect(comparisons.count == 1)
                    let c = try #require(comparisons.first)
                    #expect(c["live_version"] as? String == "7" && c["shadow_version"] as? String == "9")
                    #expect(c["pairs"] as? Int == 7 && c["loss"] as? String == "absolute error")
                    #expect(c["live_mean_loss"] as? Double == 10 && c["shadow_mean_loss"] as? Double == 5)
                }
                try await client.execute(uri: "/api/shadow?model=bikes&version=8", method: .get) { response in
                    let comparisons = try json(response.body)["comparisons"] as? [Any]
                    #expect(comparisons?.isEmpty == true)
                }
                for (uri, path) in [("/api/volume?bucket=0", "bucket"), ("/api/events?feature=x", "feature"),
                                    ("/api/shadow?kind=x", "kind")] {
                    try await client.execute(uri: uri, method: .get) { response in
                        #expect(response.status == .badRequest)
                        let error = try json(response.body)["error"] as? [String: Any]
                        #expect(error?["path"] as? String == path, "\(uri)")
                    }
                }
                // The document names every GET route the page reads.
                try await client.execute(uri: "/openapi.json", method: .get) { response in
                    let paths = try #require(try json(response.body)["paths"] as? [String: Any])
                    for path in ["/api/models", "/api/metrics", "/api/drift", "/api/volume", "/api/events", "/api/shadow",
                                 "/dashboard", "/evaluate"] {
                        #expect(paths[path] != nil, "\(path)")
                    }
                }
                try await client.execute(uri: "/dashboard", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                    #expect(response.headers[.contentSecurityPolicy]?.hasPrefix("default-src 'none'") == true)
                    let page = String(buffer: response.body)
                    #expect(!page.contains("http://") && !page.contains("https://"), "nothing fetched from elsewhere")
                }
            }
        }
    }

    @Test func anEmptyDatabaseAnswersEmptyLists() async throws {
        try await withTestDatabase { db in
            let settings = try EvaluateSettings(reader: ConfigReader.cyclone(environment: ["DATABASE_URL": db.url, "RETRAIN_TRIGGER": "threshold"]))
            let app = try await buildApplication(settings, logger: .test)
            try await app.test(.router) { client in
                for (uri, key) in [("/api/models", "models"), ("/api/events", "events"), ("/api/volume", "series"),
                                   ("/api/metrics", "series"), ("/api/drift", "series")] {
                    try await client.execute(uri: uri, method: .get) { response in
                        #expect(response.status == .ok, "\(uri)")
                        let list = try json(response.body)[key] as? [Any]
                        #expect(list?.isEmpty == true, "\(uri)")
                    }
                }
            }
        }
    }
}

extension Date {
    /// This time, down to a whole multiple of `seconds` since 1970.
    func rounded(to seconds: TimeInterval) -> Date {
        Date(timeIntervalSince1970: (timeIntervalSince1970 / seconds).rounded(.down) * seconds)
    }
}

extension EvaluateTests {
    /// With PostgreSQL gone, the scheduler's POST and the dashboard's reads answer 503 with Retry-After within
    /// seconds (not a 500, nor after the pool's minute of trying).
    @Test func anOutageIsAnswered503() async throws {
        let cluster = try await Repository.Cluster.start()
        let settings = try EvaluateSettings(reader: ConfigReader.cyclone(environment: [
            "DATABASE_URL": cluster.url + "&connect_timeout=1", "DATABASE_TIMEOUT": "1s"]))
        let app = try await buildApplication(settings, logger: .test)
        try await app.test(.router) { client in
            try await client.execute(uri: "/api/models", method: .get) { #expect($0.status == .ok) }
            try await cluster.stop()
            for (uri, method) in [("/evaluate", HTTPRequest.Method.post), ("/api/models", .get), ("/api/metrics", .get),
                                  ("/api/events", .get)] {
                try await client.execute(uri: uri, method: method) { response in
                    #expect(response.status == .serviceUnavailable, "\(uri)")
                    #expect(response.headers[.retryAfter] != nil, "\(uri)")
                    let error = try #require(json(response.body)["error"] as? [String: Any])
                    #expect((error["message"] as? String)?.contains("unavailable") == true, "\(uri)")
                }
            }
        }
    }
}
