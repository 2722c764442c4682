import AsyncHTTPClient
import CycloneModel
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// One breach worth a human's attention.
public struct Alert: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The watched metric is worse than the policy's threshold.
        case performanceBreach = "performance_breach"
        /// At least the policy's share of features drifted.
        case datasetDrift = "dataset_drift"
        /// The model's outputs drifted.
        case predictionDrift = "prediction_drift"
        /// The labels drifted against the reference window's.
        case targetDrift = "target_drift"
        /// The features drifted together: the PCA reconstruction error left the reference's band.
        case multivariateDrift = "multivariate_drift"
        /// A data-quality check breached (missing, wrongly typed, out-of-range or unseen values, refused
        /// requests): the input pipeline needs a look.
        case dataQuality = "data_quality"
        /// A retrain was asked for but could not be started.
        case retrainFailed = "retrain_failed"
    }

    public var kind: Kind
    public var modelName: String
    public var modelVersion: String
    public var message: String
    /// Extra fields for the log line and the webhook body (metric, value, threshold…).
    public var fields: [String: JSONValue]

    /// Performance breaches, data-quality breaches and failed retrains are errors; drift is a warning.
    public var level: Logger.Level {
        switch kind {
        case .performanceBreach, .retrainFailed, .dataQuality: .error
        case .datasetDrift, .predictionDrift, .targetDrift, .multivariateDrift: .warning
        }
    }

    public init(kind: Kind, modelName: String, modelVersion: String, message: String, fields: [String: JSONValue] = [:]) {
        self.kind = kind
        self.modelName = modelName
        self.modelVersion = modelVersion
        self.message = message
        self.fields = fields
    }

    /// The webhook body: every field at the top level.
    var json: JSONValue {
        var body = fields
        body["alert"] = .string(kind.rawValue)
        body["severity"] = .string(level == .error ? "ERROR" : "WARNING")
        body["model"] = .string(modelName)
        body["version"] = .string(modelVersion)
        body["message"] = .string(message)
        return .object(body)
    }
}

/// Sends alerts: always one structured log line (`alert` = the kind, so a log-based alert policy can match
/// `jsonPayload.alert="performance_breach"`), and, when a webhook is configured, a JSON POST to it.
///
/// Delivery never blocks the cycle: `send` returns at once and the POST is retried in the background
/// (`attempts` tries, the delay doubling from `retryDelay`); `drain` waits for pending deliveries, for a
/// process about to exit.
public actor AlertNotifier {
    public nonisolated let webhook: String?
    let logger: Logger
    let attempts: Int
    let retryDelay: Duration
    let timeout: Duration
    private var pending: [Int: Task<Void, Never>] = [:]
    private var nextID = 0

    /// - Parameter timeout: for each attempt, connecting included.
    public init(webhook: String?, logger: Logger, attempts: Int = 4, retryDelay: Duration = .seconds(1),
                timeout: Duration = .seconds(5))
    {
        self.webhook = webhook
        self.logger = logger
        self.attempts = attempts
        self.retryDelay = retryDelay
        self.timeout = timeout
    }

    public func send(_ alert: Alert) {
        var metadata: Logger.Metadata = [
            "alert": "\(alert.kind.rawValue)", "model": "\(alert.modelName)", "version": "\(alert.modelVersion)",
        ]
        for (key, value) in alert.fields { metadata[key] = "\(value.jsonText)" }
        logger.log(level: alert.level, "\(alert.message)", metadata: metadata)
        guard let webhook else { return }
        let id = nextID
        nextID += 1
        let body = alert.json.jsonText
        pending[id] = Task { [logger, attempts, retryDelay, timeout] in
            await Self.deliver(body, to: webhook, attempts: attempts, retryDelay: retryDelay, timeout: timeout,
                               logger: logger)
            self.finished(id)
        }
    }

    /// Waits until every pending delivery has ended, or `timeout` has passed; then gives up on the rest.
    public func drain(timeout: Duration = .seconds(10)) async {
        let tasks = Array(pending.values)
        guard !tasks.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for task in tasks { await task.value } }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            for task in tasks { task.cancel() }
            group.cancelAll()
        }
    }

    private func finished(_ id: Int) { pending[id] = nil }

    private static func deliver(_ body: String, to url: String, attempts: Int, retryDelay: Duration,
                                timeout: Duration, logger: Logger) async
    {
        var delay = retryDelay
        for attempt in 1...attempts {
            do {
                var request = HTTPClientRequest(url: url)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: body))
                let response = try await HTTPClient.shared.execute(request, timeout: TimeAmount(timeout))
                _ = try? await response.body.collect(upTo: 64 << 10)
                if (200..<300).contains(response.status.code) { return }
                logger.warning("alert webhook refused the alert", metadata: [
                    "status": "\(response.status.code)", "attempt": "\(attempt)"])
            } catch {
                logger.warning("alert webhook unreachable", metadata: [
                    "error": "\(String(reflecting: error))", "attempt": "\(attempt)"])
            }
            guard attempt < attempts, (try? await Task.sleep(for: delay)) != nil else { break }
            delay *= 2
        }
        logger.error("alert not delivered to the webhook", metadata: ["attempts": "\(attempts)"])
    }
}
