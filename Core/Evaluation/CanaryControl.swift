import CycloneCloud
import CycloneModel
import CycloneMonitoring
import CycloneStore
import Foundation
import Logging

/// What the cycle decided about a canary: compared with the live version on the labels of the same period
/// (both since the canary started), it is promoted to all traffic or rolled back, once each side has
/// `CANARY_MIN_LABELS` labels; one still short of them after `CANARY_MAX_AGE` is rolled back.
public struct CanaryDecision: Sendable, Codable, Equatable {
    public enum Action: String, Sendable, Codable {
        /// Not enough labels yet on one side.
        case waiting
        case promoted
        case rolledBack = "rolled_back"
        /// The platform could not carry the decision out; it is tried again next cycle.
        case failed
    }

    public var name: String
    public var version: String
    public var liveVersion: String
    public var metric: String
    public var canaryLabels: Int
    public var liveLabels: Int
    public var canaryValue: Double?
    public var liveValue: Double?
    public var action: Action
    public var reason: String

    enum CodingKeys: String, CodingKey {
        case name, version, liveVersion = "live_version", metric, canaryLabels = "canary_labels",
             liveLabels = "live_labels", canaryValue = "canary_value", liveValue = "live_value", action, reason
    }

    var text: String {
        "\(name)@\(version) canary against live \(liveVersion): \(action.rawValue) — \(reason)"
    }
}

extension Evaluator {
    /// Judges the running canary of `name`, if there is one, and carries out the verdict.
    func judgeCanary(of name: String, now: Date) async throws -> CanaryDecision? {
        guard let canary = try await registry.version(of: name, status: .canary),
              let live = try await registry.version(of: name, status: .live)
        else { return nil }
        let metric = settings.policy.resolved(for: canary.artifact.task).metric
        // The same period for both: since the canary started.
        let period = WindowBounds(rows: 10_000_000, maxAge: .seconds(max(1, now.timeIntervalSince(canary.since))))
        async let canaryWindow = windows.performance(of: canary.artifact, bounds: period, now: now)
        async let liveWindow = windows.performance(of: live.artifact, bounds: period, now: now)
        let (c, l) = try await (canaryWindow, liveWindow)
        var decision = CanaryDecision(
            name: name, version: canary.artifact.version, liveVersion: live.artifact.version, metric: metric.rawValue,
            canaryLabels: c.labels, liveLabels: l.labels, canaryValue: c.metrics[metric.rawValue],
            liveValue: l.metrics[metric.rawValue], action: .waiting, reason: "")
        let minimum = settings.canaryMinimumLabels
        let promote: Bool
        if c.labels < minimum || l.labels < minimum {
            decision.reason = "\(c.labels) canary and \(l.labels) live labels since it started; \(minimum) each are needed (CANARY_MIN_LABELS)"
            // A canary that cannot gather its labels must not hold the loop (no retrain runs meanwhile).
            guard now.timeIntervalSince(canary.since) > settings.canaryMaxAge.seconds else { return decision }
            decision.reason += "; still short after CANARY_MAX_AGE"
            promote = false
        } else if let liveValue = decision.liveValue {
            let canaryValue = decision.canaryValue ?? .nan
            let slack = settings.canaryTolerance * abs(liveValue)
            let holds = metric.higherIsBetter ? canaryValue >= liveValue - slack : canaryValue <= liveValue + slack
            promote = holds && !canaryValue.isNaN
            decision.reason = "\(metric.rawValue) \(format(canaryValue)) against \(format(liveValue)) on \(c.labels) and \(l.labels) labels"
                + (promote ? "" : canaryValue.isNaN ? "; the canary's value is undefined" : "; worse than live")
        } else {
            decision.reason = "the live version's \(metric.rawValue) is undefined on its \(l.labels) labels; waiting"
            return decision
        }
        // A cycle stopped part-way leaves the canary as it was, to be decided again next cycle.
        switch await carryOut(canary.artifact, from: .canary, promote: promote, because: decision.reason,
                              detail: detail(decision))
        {
        case .recordedOnly: decision.reason += VerdictOutcome.recordedOnlyNote
        case .carriedOut: decision.action = promote ? .promoted : .rolledBack
        case .failed(let error):
            decision.action = .failed
            decision.reason += "; not carried out: \(error)"
        }
        return decision
    }

    private func detail(_ decision: CanaryDecision) -> JSONValue {
        .object([
            "live_version": .string(decision.liveVersion), "metric": .string(decision.metric),
            "canary_value": decision.canaryValue.map(JSONValue.number) ?? .null,
            "live_value": decision.liveValue.map(JSONValue.number) ?? .null,
            "canary_labels": .number(Double(decision.canaryLabels)), "live_labels": .number(Double(decision.liveLabels)),
        ])
    }

    private func format(_ value: Double) -> String { String(format: "%.4g", value) }
}
