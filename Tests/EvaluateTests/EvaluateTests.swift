import Configuration
import CycloneModel
import CycloneMonitoring
import CycloneServer
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
            let settings = try EvaluateSettings(reader: ConfigReader.cyclone(environment: ["DATABASE_URL": db.url]))
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
                for (query, path) in [("limit=0", "limit"), ("since=yesterday", "since"), ("colour=red", "colour")] {
                    try await client.execute(uri: "/api/metrics?\(query)", method: .get) { response in
                        #expect(response.status == .badRequest)
                        let body = try json(response.body)
                        let error = try #require(body["error"] as? [String: Any])
                        #expect(error["path"] as? String == path, "\(query)")
                    }
                }
            }
        }
    }
}
