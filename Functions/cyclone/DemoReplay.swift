import CycloneEvaluation
import CycloneModel
import CycloneStore
import Foundation
import Logging
import PostgresNIO

/// The replay: the stream's rows go to predict in time order, their labels to label-ingest once they are
/// `labelDelay` old, and evaluate runs every `every` of stream time. The servers run in real time; the
/// stream's clock moves on only when the loop has settled (a started retrain has finished and a new
/// model serves), so what the loop does is the same however fast the machine is.
struct DemoReplay {
    let stream: ReplayStream
    let servers: DemoServers
    let client: PostgresClient
    let logger: Logger
    let model: ModelArtifact
    let start: Date
    let every: TimeInterval
    let labelDelay: TimeInterval
    let metric: String
    /// How long predict may take to notice a re-pointed model link.
    let reload: Duration
    let output: DemoOutput

    /// What the loop served for each row (`nil` before `start`), and how many retrains and deployments it made.
    struct Outcome {
        var served: [Output?]
        var retrains = 0
        var deployments = 0
        /// Wall-clock time spent sending predictions, sending labels, in evaluate, and waiting for retrains
        /// and swaps.
        var predicting = Duration.zero, labelling = Duration.zero, evaluating = Duration.zero, waiting = Duration.zero
        var requests = 0
    }

    func run() async throws -> Outcome {
        var outcome = Outcome(served: Array(repeating: nil, count: stream.count))
        var cursor = stream.rows(in: start..<Date.distantFuture).lowerBound
        var labelled = cursor
        var lastEvent = try await latestEventID()
        var cycle = 0
        var next = start.addingTimeInterval(every)
        while cursor < stream.count {
            let segment = cursor..<stream.rows(in: Date.distantPast..<next).upperBound
            let clock = ContinuousClock()
            var mark = clock.now
            func lap() -> Duration {
                defer { mark = clock.now }
                return clock.now - mark
            }
            outcome.requests += try await predict(segment, into: &outcome.served)
            outcome.predicting += lap()
            cursor = max(cursor, segment.upperBound)
            let due = labelled..<max(labelled, min(cursor, stream.rows(in: Date.distantPast..<next.addingTimeInterval(-labelDelay)).upperBound))
            try await label(due)
            labelled = due.upperBound
            outcome.labelling += lap()

            var report = try await evaluate()
            outcome.evaluating += lap()
            // The database may hold other models; the demo follows its own.
            report.models.removeAll { $0.name != model.name }
            report.canaries.removeAll { $0.name != model.name }
            cycle += 1
            var settled = false
            for decision in report.canaries where decision.action != .waiting {
                output.event(at: next, "\(decision.name)@\(decision.version) \(decision.action == .promoted ? "promoted" : decision.action == .rolledBack ? "rolled back" : "canary decision failed"): \(decision.reason)")
            }
            if report.models.contains(where: { $0.action.kind == .retrainStarted }) {
                settled = try await waitForRetrain(after: lastEvent)
            }
            let events = try await events(after: lastEvent)
            lastEvent = events.last?.id ?? lastEvent
            var changed = report.canaries.contains { $0.action == .promoted || $0.action == .rolledBack }
            for event in events {
                if let line = describe(event) { output.event(at: next, line) }
                if event.kind == "retrain_finished" { outcome.retrains += 1 }
                if ["deployed", "promoted"].contains(event.kind) { outcome.deployments += 1 }
                if ["deployed", "canary_started", "promoted", "rolled_back"].contains(event.kind) { changed = true }
            }
            if changed || settled {
                // predict checks its links every MODEL_RELOAD_INTERVAL; give it a few.
                try await Task.sleep(for: reload * 4)
            }
            outcome.waiting += lap()
            if cycle % max(1, Int((7 * 86_400 / every).rounded())) == 0 || cursor == stream.count {
                output.progress(at: next, report: report, metric: metric)
            }
            next = next.addingTimeInterval(every)
        }
        return outcome
    }

    /// Sends the rows to predict, a request per time step (at most 100 rows), eight requests at a time;
    /// returns the number of requests.
    private func predict(_ rows: Range<Int>, into served: inout [Output?]) async throws -> Int {
        var requests: [Range<Int>] = []
        var lower = rows.lowerBound
        while lower < rows.upperBound {
            var upper = lower + 1
            while upper < rows.upperBound, upper - lower < 100, stream.times[upper] == stream.times[lower] { upper += 1 }
            requests.append(lower..<upper)
            lower = upper
        }
        let classes = model.classes ?? []
        for batch in stride(from: 0, to: requests.count, by: 8) {
            let answers = try await withThrowingTaskGroup(of: (Range<Int>, JSONValue).self) { group in
                for range in requests[batch..<min(requests.count, batch + 8)] {
                    let body = "{\"instances\": [" + range.map { stream.instances[$0] }.joined(separator: ",")
                        + "], \"keys\": [" + range.map { "\"row-\($0)\"" }.joined(separator: ",") + "]}"
                    group.addTask { (range, try await servers.post(servers.predict, "/predict", body)) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for (range, answer) in answers {
                for (row, prediction) in zip(range, answer["predictions"].array) {
                    if let value = prediction["value"].number {
                        served[row] = .value(value)
                    } else if let name = prediction["class"].string, let index = classes.firstIndex(of: name) {
                        served[row] = .classification(classIndex: index,
                                                      probabilities: classes.map { prediction["probabilities"][$0].number ?? 0 })
                    }
                }
            }
        }
        return requests.count
    }

    private func label(_ rows: Range<Int>) async throws {
        for chunk in stride(from: rows.lowerBound, to: rows.upperBound, by: 1_000) {
            let range = chunk..<min(rows.upperBound, chunk + 1_000)
            let body = "{\"labels\": [" + range.map { "{\"key\": \"row-\($0)\", \"label\": \(stream.labels[$0])}" }
                .joined(separator: ",") + "]}"
            _ = try await servers.post(servers.labels, "/labels", body)
        }
    }

    private func evaluate() async throws -> EvaluationReport {
        let answer = try await servers.post(servers.evaluate, "/evaluate", "{}")
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            return try decoder.decode(EvaluationReport.self, from: Data(answer.jsonText.utf8))
        } catch {
            throw DemoError("evaluate's report does not decode: \(error)")
        }
    }

    struct Event {
        var id: Int64
        var kind: String
        var version: String?
        var detail: JSONValue
    }

    private func latestEventID() async throws -> Int64 {
        var id: Int64 = 0
        for try await value in try await client.query("SELECT coalesce(max(id), 0) FROM event", logger: logger)
            .decode(Int64.self) { id = value }
        return id
    }

    private func events(after id: Int64) async throws -> [Event] {
        var events: [Event] = []
        let rows = try await client.query("""
            SELECT id, kind, model_version, detail::text FROM event
            WHERE id > \(id) AND model_name = \(model.name) ORDER BY id
            """, logger: logger)
        for try await (id, kind, version, detail) in rows.decode((Int64, String, String?, String).self) {
            events.append(Event(id: id, kind: kind, version: version,
                                detail: (try? JSONParser.parse(Array(detail.utf8))) ?? .null))
        }
        return events
    }

    /// Waits until the retrain requested after event `id` has ended: failed, rejected its candidate, or
    /// deployed it. Returns whether a new version went into service.
    private func waitForRetrain(after id: Int64) async throws -> Bool {
        for _ in 0..<1_200 {
            for event in try await events(after: id) {
                switch event.kind {
                case "retrain_failed": return false
                case "retrain_finished" where event.detail["status"].string == "rejected": return false
                case "deployed", "canary_started": return true
                default: continue
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw DemoError("a retrain of \(model.name) did not finish within two minutes; see retrain's lines in evaluate.log")
    }

    /// One line for an event of the loop, or `nil` for those the cycle's report already tells.
    private func describe(_ event: Event) -> String? {
        let version = "\(model.name)@\(event.version ?? "?")"
        let reason = event.detail["reason"].string ?? event.detail["error"].string ?? ""
        switch event.kind {
        case "retrain_requested": return "retrain requested for \(version): \(reason)"
        case "retrain_finished":
            let accepted = event.detail["status"].string == "candidate"
            let rows = Int(event.detail["training_rows"].number ?? 0)
            return "\(version) \(accepted ? "accepted" : "rejected") (trained on \(rows) rows): \(reason)"
        case "retrain_failed": return "retrain failed: \(reason)"
        case "canary_started": return "\(version) serves \(Int(event.detail["percent"].number ?? 0)) % of requests as a canary"
        case "deployed": return "\(version) deployed to all requests"
        default: return nil  // retrain_started, alert; promotions and rollbacks come from the report
        }
    }
}
