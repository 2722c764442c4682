import CycloneEvaluation
import CycloneModel
import CycloneStore
import Foundation
import Logging
import PostgresNIO

/// The replay: the stream's rows go to predict in time order, their labels to label-ingest once they are
/// `labelDelay` old, and evaluate runs every `every` of stream time. The servers run in real time; the
/// stream's clock moves on only when the loop has settled (a started retrain has finished and predict serves
/// what the registry says), and requests go one at a time, so what the loop does depends neither on the
/// machine's speed nor on chance: a canary's share is picked by each request's key, and training is seeded.
/// The same stream and settings give the same table.
public struct LoopReplay: Sendable {
    let stream: ReplayStream
    let servers: LoopServers
    let client: PostgresClient
    let logger: Logger
    let model: ModelArtifact
    let start: Date
    let every: TimeInterval
    let labelDelay: TimeInterval
    let metric: String
    /// The error the progress lines show beside the policy's metric (rmse, or log loss).
    let error: String
    /// How long predict may take to notice a re-pointed model link.
    let reload: Duration
    let output: ReplayOutput

    /// What the loop served for each row (`nil` before `start`), and how many retrains and deployments it made.
    public struct Outcome: Sendable {
        public var served: [Output?]
        public var retrains = 0
        /// Models trained: each retrain fits a candidate per training window and family, and refits the one accepted.
        public var fits = 0
        public var deployments = 0
        /// Wall-clock time spent sending predictions, sending labels, in evaluate, and waiting for retrains
        /// and swaps.
        public var predicting = Duration.zero, labelling = Duration.zero, evaluating = Duration.zero, waiting = Duration.zero
        public var requests = 0
    }

    func run() async throws -> Outcome {
        var outcome = Outcome(served: Array(repeating: nil, count: stream.count))
        // Each row's prediction id, which its label names: a key would label every prediction stored with it,
        // and the database may hold another replay of the same stream.
        var ids = [String?](repeating: nil, count: stream.count)
        var cursor = stream.rows(in: start..<Date.distantFuture).lowerBound
        var labelled = cursor
        var lastEvent = try await latestEventID()
        var cycle = 0
        var next = start.addingTimeInterval(every)
        while cursor < stream.count {
            // Across a gap in the data, the schedule moves on to the cycle of the next row or the next label due.
            if stream.times[cursor] >= next {
                var until = stream.times[cursor]
                if labelled < cursor { until = min(until, stream.times[labelled].addingTimeInterval(labelDelay)) }
                let cycles = (until.timeIntervalSince(next) / every).rounded(.down)
                if cycles >= 1 { next = next.addingTimeInterval(cycles * every) }
            }
            let segment = cursor..<stream.rows(in: Date.distantPast..<next).upperBound
            let clock = ContinuousClock()
            var mark = clock.now
            func lap() -> Duration {
                defer { mark = clock.now }
                return clock.now - mark
            }
            outcome.requests += try await predict(segment, into: &outcome.served, ids: &ids)
            outcome.predicting += lap()
            cursor = max(cursor, segment.upperBound)
            let due = labelled..<max(labelled, min(cursor, stream.rows(in: Date.distantPast..<next.addingTimeInterval(-labelDelay)).upperBound))
            try await label(due, ids: ids)
            labelled = due.upperBound
            outcome.labelling += lap()

            try await markClock(at: next)
            var report = try await evaluate()
            outcome.evaluating += lap()
            // The database may hold other models; the demo follows its own.
            report.models.removeAll { $0.name != model.name }
            report.canaries.removeAll { $0.name != model.name }
            report.shadows.removeAll { $0.name != model.name }
            cycle += 1
            var settled = false
            for decision in report.canaries where decision.action != .waiting {
                output.event(at: next, "\(decision.name)@\(decision.version) \(decision.action == .promoted ? "promoted" : decision.action == .rolledBack ? "rolled back" : "canary decision failed"): \(decision.reason)")
            }
            for decision in report.shadows where decision.action != .waiting {
                output.event(at: next, "\(decision.name)@\(decision.version) shadow \(decision.action == .failed ? "verdict failed" : decision.action.rawValue): \(decision.reason)")
            }
            if report.models.contains(where: { $0.action.kind == .retrainStarted }) {
                settled = try await waitForRetrain(after: lastEvent)
            }
            let events = try await events(after: lastEvent)
            lastEvent = events.last?.id ?? lastEvent
            for event in events {
                if let line = describe(event) { output.event(at: next, line) }
                if event.kind == "retrain_finished" {
                    outcome.retrains += 1
                    // Every candidate trained (one a window and family; not those another family passed over).
                    let trained = event.detail["windows"].array.filter { $0["skipped"] == .null }.count
                    outcome.fits += max(1, trained) + (event.detail["refitted"] == .bool(true) ? 1 : 0)
                }
                if ["deployed", "promoted"].contains(event.kind) { outcome.deployments += 1 }
            }
            if settled || events.contains(where: {
                ["deployed", "canary_started", "shadow_started", "promoted", "rolled_back", "discarded"].contains($0.kind)
            }) {
                try await waitForPredict()
            }
            outcome.waiting += lap()
            if cycle % max(1, Int((7 * 86_400 / every).rounded())) == 0 || cursor == stream.count {
                output.progress(at: next, report: report, metric: metric, error: error)
            }
            next = next.addingTimeInterval(every)
        }
        return outcome
    }

    /// Sends the rows to predict, a request per time step (at most 100 rows); returns the number of requests.
    private func predict(_ rows: Range<Int>, into served: inout [Output?], ids: inout [String?]) async throws -> Int {
        var requests: [Range<Int>] = []
        var lower = rows.lowerBound
        while lower < rows.upperBound {
            var upper = lower + 1
            while upper < rows.upperBound, upper - lower < 100, stream.times[upper] == stream.times[lower] { upper += 1 }
            requests.append(lower..<upper)
            lower = upper
        }
        let classes = model.classes ?? []
        // One request at a time, in stream order: the rows are stored in that order, so every window (the
        // newest N labelled rows) holds the same rows in every run.
        for range in requests {
            let body = "{\"instances\": [" + range.map { stream.instances[$0] }.joined(separator: ",")
                + "], \"keys\": [" + range.map { "\"row-\($0)\"" }.joined(separator: ",") + "]}"
            // By name: predict serves the model folder, which may hold other models.
            let path = "/predict/" + (model.name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? model.name)
            let answer = try await servers.post(servers.predict, path, body)
            guard answer["predictions"].array.count == range.count else {
                throw ReplayError("predict answered \(answer["predictions"].array.count) predictions for \(range.count) instances")
            }
            for (row, prediction) in zip(range, answer["predictions"].array) {
                ids[row] = prediction["id"].string
                if let value = prediction["value"].number {
                    served[row] = .value(value)
                } else if let name = prediction["class"].string, let index = classes.firstIndex(of: name) {
                    served[row] = .classification(classIndex: index,
                                                  probabilities: classes.map { prediction["probabilities"][$0].number ?? 0 })
                }
            }
        }
        return requests.count
    }

    /// Sends the labels of the rows that have one, a thousand a request, each to its prediction's id; every one
    /// must find its prediction.
    private func label(_ rows: Range<Int>, ids: [String?]) async throws {
        let rows = rows.filter { stream.labelled[$0] }
        for chunk in stride(from: 0, to: rows.count, by: 1_000) {
            let batch = rows[chunk..<min(rows.count, chunk + 1_000)]
            let body = try "{\"labels\": [" + batch.map { row in
                guard let id = ids[row] else { throw ReplayError("predict answered no id for row \(row)") }
                return "{\"id\": \"\(id)\", \"label\": \(stream.labels[row])}"
            }.joined(separator: ",") + "]}"
            let answer = try await servers.post(servers.labels, "/labels", body)
            guard answer["notFound"].array.isEmpty else {
                throw ReplayError("label-ingest found no prediction for \(answer["notFound"].array.count) of the labels sent")
            }
        }
    }

    /// Waits until predict serves what the registry says: the live version, and the canary or shadow if there
    /// is one. predict notices a re-pointed link within MODEL_RELOAD_INTERVAL.
    private func waitForPredict() async throws {
        var expected: [String: String] = [:]
        for try await (version, status) in try await client.query("""
            SELECT version, status FROM model WHERE name = \(model.name) AND status IN ('live', 'canary', 'shadow')
            """, logger: logger).decode((String, String).self) {
            expected[status] = version
        }
        var serving: [String: String] = [:]
        for _ in 0..<500 {
            let status = try await servers.get(servers.predict, "/model")
            serving = ["live": status["version"].string, "canary": status["canary"]["version"].string,
                       "shadow": status["shadow"]["version"].string].compactMapValues { $0 }
            if serving == expected { return }
            try await Task.sleep(for: reload)
        }
        let describe = { (versions: [String: String]) in
            versions.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
        throw ReplayError("predict serves \(describe(serving)), not the registry's \(describe(expected)); see predict.log")
    }

    private func evaluate() async throws -> EvaluationReport {
        let answer = try await servers.post(servers.evaluate, "/evaluate", "{}")
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            return try decoder.decode(EvaluationReport.self, from: Data(answer.jsonText.utf8))
        } catch {
            throw ReplayError("evaluate's report does not decode: \(error)")
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
                case "deployed", "canary_started", "shadow_started": return true
                default: continue
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ReplayError("a retrain of \(model.name) did not finish within two minutes; see retrain's lines in evaluate.log")
    }

    /// Records the stream's time now (a `replay_clock` event, with the wall clock to the millisecond), so the
    /// dashboard can draw the replay in stream time: the servers stamp what they store with the wall clock.
    private func markClock(at streamTime: Date) async throws {
        let precise = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        try await EvaluationStore(client: client, logger: logger).event(
            .replayClock, name: model.name, version: nil,
            detail: .object(["stream_at": .string(streamTime.formatted(.iso8601)),
                             "wall_at": .string(Date().formatted(precise))]))
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
        case "shadow_started": return "\(version) scored in shadow beside live, answering none"
        case "deployed": return "\(version) deployed to all requests"
        default: return nil  // retrain_started, alert; promotions and rollbacks come from the report
        }
    }
}
