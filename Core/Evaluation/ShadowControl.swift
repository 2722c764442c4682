import CycloneCloud
import CycloneModel
import CycloneMonitoring
import CycloneStore
import Foundation
import Logging

/// What the cycle decided about a shadow: its losses and live's on the same labelled rows, tested at each look
/// as `ShadowPolicy` says, ending in promote, discard or wait, each written as an event with its figures (a
/// wait once at the start and after each look that decided nothing).
public struct ShadowDecision: Sendable, Codable, Equatable {
    public enum Action: String, Sendable, Codable {
        case waiting, promoted, discarded
        /// The platform could not carry the verdict out; it is tried again next cycle.
        case failed
    }

    public var name: String
    public var version: String
    public var liveVersion: String
    /// Labelled pairs so far, counted up to the sample size.
    public var pairs: Int
    public var sampleSize: Int
    /// The looks planned, those done, and the one that decided (1-based; 0 while waiting).
    public var looks: Int
    public var looksDone: Int
    public var look: Int
    /// The test at the deciding look, or at the last look done while waiting.
    public var comparison: PairedLossComparison?
    public var action: Action
    public var reason: String

    enum CodingKeys: String, CodingKey {
        case name, version, liveVersion = "live_version", pairs, sampleSize = "sample_size", looks,
             looksDone = "looks_done", look, comparison, action, reason
    }

    var text: String { "\(name)@\(version) shadow of live \(liveVersion): \(action.rawValue) — \(reason)" }

    /// The event's detail: the verdict's figures.
    var detail: JSONValue {
        var detail: [String: JSONValue] = [
            "live_version": .string(liveVersion), "pairs": .number(Double(pairs)),
            "sample_size": .number(Double(sampleSize)), "looks": .number(Double(looks)), "look": .number(Double(look)),
            "looks_done": .number(Double(looksDone)),
            "reason": .string(reason),
        ]
        if let comparison {
            detail["loss"] = .string("per-row loss: absolute error (regression), log loss (classification)")
            detail["live_mean_loss"] = .number(comparison.liveMeanLoss)
            detail["shadow_mean_loss"] = .number(comparison.challengerMeanLoss)
            detail["improvement"] = .number(comparison.improvement)
            detail["look_pairs"] = .number(Double(comparison.pairs))
            detail["test"] = .string("paired t, one-sided, serial correlation allowed for, O'Brien–Fleming boundary")
            detail["statistic"] = .number(comparison.statistic)
            detail["p_value"] = .number(comparison.pValue)
        }
        return .object(detail)
    }
}

extension Evaluator {
    /// Judges the shadow of `name`, if there is one, and carries out the verdict.
    func judgeShadow(of name: String, now: Date) async throws -> ShadowDecision? {
        guard let shadow = try await registry.version(of: name, status: .shadow),
              let live = try await registry.version(of: name, status: .live)
        else { return nil }
        let policy = settings.shadow
        let losses = try await windows.pairedLosses(of: live.artifact, shadow: shadow.artifact.version, rows: policy.rows,
                                                     since: shadow.since)
        let pairs = losses.live.count
        // Each look reads the first pairs up to its size: the samples are fixed, whenever the cycle runs.
        // A look whose losses cannot be tested (too large to sum) ends the looks there, keeping their numbers.
        var looksDone: [PairedLossComparison] = []
        for size in policy.lookSizes where size <= pairs {
            guard let comparison = PairedLossComparison(live: Array(losses.live.prefix(size)),
                                                        challenger: Array(losses.shadow.prefix(size)))
            else { break }
            looksDone.append(comparison)
        }
        let age = Duration.seconds(max(0, now.timeIntervalSince(shadow.since)))
        let (verdict, reason, look) = policy.verdict(pairs: pairs, looksDone: looksDone, age: age,
                                                     refused: losses.refused, unscored: losses.unscored)
        var decision = ShadowDecision(name: name, version: shadow.artifact.version, liveVersion: live.artifact.version,
                                      pairs: pairs, sampleSize: policy.rows, looks: policy.looks,
                                      looksDone: looksDone.count, look: look,
                                      comparison: look > 0 ? looksDone[look - 1] : looksDone.last, action: .waiting,
                                      reason: reason)
        guard verdict != .wait else {
            try await store.shadowWaiting(name: name, version: decision.version, looksDone: looksDone.count,
                                          detail: decision.detail)
            return decision
        }
        // A cycle stopped part-way leaves the shadow as it was, to be decided again next cycle.
        switch await carryOut(shadow.artifact, from: .shadow, promote: verdict == .promote, because: reason,
                              detail: decision.detail)
        {
        case .recordedOnly: decision.reason += VerdictOutcome.recordedOnlyNote
        case .carriedOut: decision.action = verdict == .promote ? .promoted : .discarded
        case .failed(let error):
            decision.action = .failed
            decision.reason += "; not carried out: \(error)"
            // A platform that keeps failing must not hold the loop: past SHADOW_MAX_AGE the shadow is recorded
            // rejected (the platform may still run it; nothing is promoted) and retrains may go on.
            if age > policy.maxAge {
                try await registry.setStatus(name: name, version: decision.version, .rejected,
                                             reason: "abandoned: " + decision.reason)
                try await store.event(.discarded, name: name, version: decision.version, detail: decision.detail)
                decision.action = .discarded
                decision.reason += "; abandoned after SHADOW_MAX_AGE"
            }
        }
        return decision
    }
}
