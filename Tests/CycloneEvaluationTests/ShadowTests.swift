import CycloneCloud
import CycloneEvaluation
import CycloneModel
import CycloneMonitoring
import CycloneStore
import CycloneTestSupport
import CycloneTraining
import Foundation
import PostgresNIO
import Testing

/// Rows served by `live` with `shadow` scored beside it, labelled.
func shadowedRows(live: ModelArtifact, shadow: ModelArtifact, _ rows: [Stream.Row]) throws -> [ServedInstance] {
    try rows.map {
        ServedInstance(input: $0.instance, output: .value(try predicted(live, $0)), label: .number($0.y),
                       shadow: (shadow.version, .value(try predicted(shadow, $0))))
    }
}

/// A new model folder with `live` serving and `shadow` beside it, registered as such.
func deployShadow(_ shadow: ModelArtifact, beside live: ModelArtifact, _ db: TestDatabase) async throws
    -> (String, LocalPlatform)
{
    let folder = TestFiles.folder.appendingPathComponent("cyclone-shadow-\(UUID().uuidString)").path
    let platform = LocalPlatform(modelDirectory: folder)
    _ = try await platform.deploy(live, as: .live)
    _ = try await platform.deploy(shadow, as: .shadow)
    let registry = ModelRegistry(client: db.client, logger: .test)
    _ = try await registry.register(live, status: .live)
    _ = try await registry.register(shadow, status: .shadow)
    return (folder, platform)
}

/// A ridge model of the changed (broken) world, version 2, trained on the stream's next 600 rows.
func changedWorldModel(_ stream: inout Stream) throws -> ModelArtifact {
    let changed = stream.rows(600, broken: true)
    let table = FeatureTable(columns: [
        .init(name: "x1", values: .numeric(changed.map(\.x1))), .init(name: "x2", values: .numeric(changed.map(\.x2))),
        .init(name: "x3", values: .numeric(changed.map(\.x3))),
        .init(name: "colour", values: .categorical(changed.map(\.colour))),
        .init(name: "flag", values: .boolean(changed.map { $0.flag ? 1 : 0 })),
    ])
    return try Trainer(options: .init(family: .ridge)).train(
        name: "demand", version: "2", features: table, target: .init(name: "y", values: .numeric(changed.map(\.y))))
}

func eventDetails(_ db: TestDatabase, kind: String) async throws -> [JSONValue] {
    let rows = try await db.client.query("SELECT detail::text FROM event WHERE kind = \(kind) ORDER BY id", logger: .test)
    var details: [JSONValue] = []
    for try await text in rows.decode(String.self) { details.append(try JSONParser.parse(Array(text.utf8))) }
    return details
}

@Suite struct ShadowTests {
    /// The world changed; the shadow was trained on the new one. It waits for its whole sample (one
    /// `shadow_waiting` event while no look is done, not one per cycle), then is promoted with the paired test's
    /// figures, which are those of `PairedLossComparison` on the same losses; predict's links follow.
    @Test func aBetterShadowIsPromotedOnceItsSampleIsComplete() async throws {
        let live = try trainedModel()
        var stream = Stream(seed: 31)
        let shadow = try changedWorldModel(&stream)
        let first = stream.rows(150, broken: true), second = stream.rows(100, broken: true)
        try await withTestDatabase { db in
            let (folder, platform) = try await deployShadow(shadow, beside: live, db)
            // One look at the full sample (the fixed-sample test): nothing is decided on a part of it.
            let environment = ["SHADOW_ROWS": "200", "SHADOW_LOOKS": "1", "RETRAIN_COOLDOWN": "0s"]
            try await db.store(try shadowedRows(live: live, shadow: shadow, first), model: live, spacing: 0.001)
            for _ in 0..<2 {
                let waiting = try await evaluator(db, environment, platform: platform).run()
                let decision = try #require(waiting.shadows.first)
                #expect(decision.action == .waiting && decision.pairs == 150 && decision.comparison == nil, "\(decision)")
                // Live's broken world would ask for a retrain; the shadow's verdict comes first.
                #expect(waiting.models.first?.action.kind == ModelEvaluation.Action.Kind.none)
            }
            #expect(try await eventDetails(db, kind: "shadow_waiting").map { $0["pairs"].number } == [150])

            try await db.store(try shadowedRows(live: live, shadow: shadow, second), model: live, spacing: 0.001)
            let judged = try await evaluator(db, environment, platform: platform).run()
            let decision = try #require(judged.shadows.first)
            #expect(decision.action == .promoted, "\(decision)")
            // The sample is the first 200 pairs, in the order served.
            let sample = Array((first + second).prefix(200))
            let expected = try #require(PairedLossComparison(
                live: try sample.map { abs(try predicted(live, $0) - $0.y) },
                challenger: try sample.map { abs(try predicted(shadow, $0) - $0.y) }))
            let comparison = try #require(decision.comparison)
            #expect(comparison.pairs == 200 && abs(comparison.pValue - expected.pValue) <= 1e-12)
            #expect(abs(comparison.liveMeanLoss - expected.liveMeanLoss) <= 1e-9 * expected.liveMeanLoss)
            #expect(comparison.improvement > 0.1 && comparison.pValue < 0.05)
            let promoted = try #require(try await eventDetails(db, kind: "promoted").first)
            #expect(promoted["p_value"].number == comparison.pValue && promoted["pairs"].number == 200)
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: LocalPlatform.servingPath(name: "demand", in: folder)) == "versions/demand-2.json")
            #expect(!FileManager.default.fileExists(atPath: LocalPlatform.path(name: "demand", .shadow, in: folder)))
            let registry = ModelRegistry(client: db.client, logger: .test)
            #expect(try await registry.version(of: "demand", status: .live)?.artifact.version == "2")
            #expect(try await registry.version(of: "demand", status: .shadow) == nil)
        }
    }

    /// With the default four looks a much better shadow is promoted at the first, on the first quarter of its
    /// sample, rather than after the whole of it.
    @Test func aMuchBetterShadowIsPromotedAtAnEarlyLook() async throws {
        let live = try trainedModel()
        var stream = Stream(seed: 34)
        let shadow = try changedWorldModel(&stream)
        let rows = stream.rows(110, broken: true)
        try await withTestDatabase { db in
            let (_, platform) = try await deployShadow(shadow, beside: live, db)
            try await db.store(try shadowedRows(live: live, shadow: shadow, rows), model: live, spacing: 0.001)
            let report = try await evaluator(db, ["SHADOW_ROWS": "400"], platform: platform).run()
            let decision = try #require(report.shadows.first)
            #expect(decision.action == .promoted, "\(decision)")
            #expect(decision.look == 1 && decision.looks == 4, "\(decision)")
            #expect(decision.comparison?.pairs == 100 && decision.pairs == 110)
            #expect(try await eventDetails(db, kind: "promoted").first?["look"].number == 1)
        }
    }

    /// A shadow no better than live (here worse by an offset) is discarded at its sample, with the figures;
    /// and the next cycle asks for no new challenger until a window of fresh labels has come (no daily thrash).
    @Test func aWorseShadowIsDiscardedAndTheNextChallengerWaitsForFreshLabels() async throws {
        let live = try trainedModel()
        var worse = live
        worse.version = "2"
        if case .linear(var linear) = worse.predictor {
            linear.intercept += 0.5
            worse.predictor = .linear(linear)
        }
        let shadow = worse
        try await withTestDatabase { db in
            let (folder, platform) = try await deployShadow(shadow, beside: live, db)
            // The threshold trigger on R² (a broken world breaches it at once), a 100-label window.
            let environment = ["SHADOW_ROWS": "120", "PERFORMANCE_WINDOW_ROWS": "100", "RETRAIN_COOLDOWN": "0s",
                               "MIN_LABELS": "20"]
            var stream = Stream(seed: 32)
            try await db.store(try shadowedRows(live: live, shadow: shadow, stream.rows(120, broken: true)), model: live,
                               spacing: 0.001)
            let judged = try await evaluator(db, environment, platform: platform).run()
            let decision = try #require(judged.shadows.first)
            #expect(decision.action == .discarded, "\(decision)")
            #expect(try #require(decision.comparison).improvement < 0)
            #expect(!FileManager.default.fileExists(atPath: LocalPlatform.path(name: "demand", .shadow, in: folder)))
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: LocalPlatform.servingPath(name: "demand", in: folder)) == "versions/demand-1.json")
            let rows = try await modelRows(db)
            #expect(rows.map(\.status) == ["live", "rejected"])
            #expect(rows[1].reason?.hasPrefix("discarded: ") == true)
            #expect(try await eventDetails(db, kind: "discarded").first?["live_version"].string == "1")
            // The same cycle, and the next, wait for fresh labels rather than ask for the same retrain again.
            #expect(judged.models.first?.action.kind == .awaitingLabels, "\(judged.models.first?.action as Any)")
            let next = try await evaluator(db, environment, platform: platform).run()
            #expect(next.models.first?.action.kind == .awaitingLabels)
            try await db.store(try regressionRows(live, stream.rows(100, broken: true)), model: live, spacing: 0.001)
            let fresh = try await evaluator(db, environment, platform: platform).run()
            #expect(fresh.models.first?.action.kind == .retrainStarted, "\(fresh.models.first?.action as Any)")
        }
    }

    /// A shadow that refused instances live answered is discarded (promoted, it would refuse them); so is one
    /// predict never scored while live gathered a look's worth of labels; a new live version deployed directly
    /// ends the local shadow link too.
    @Test func aShadowThatRefusesRowsOrIsNotRunIsDiscarded() async throws {
        let live = try trainedModel()
        var second = live
        second.version = "2"
        let shadow = second
        var stream = Stream(seed: 35)
        let (first, more) = (stream.rows(80), stream.rows(60))
        try await withTestDatabase { db in
            let (_, platform) = try await deployShadow(shadow, beside: live, db)
            let ids = try await db.store(try shadowedRows(live: live, shadow: shadow, first), model: live, spacing: 0.001)
            try await db.client.query("""
                UPDATE prediction SET shadow_prediction = '{"error": "instances[0].colour: not a known category"}'
                WHERE id = \(ids[3])
                """, logger: .test)
            let refused = try #require(try await evaluator(db, ["SHADOW_ROWS": "200"], platform: platform).run().shadows.first)
            #expect(refused.action == .discarded && refused.reason.contains("could not score 1 labelled"), "\(refused)")
        }
        try await withTestDatabase { db in
            let (folder, platform) = try await deployShadow(shadow, beside: live, db)
            try await db.store(try regressionRows(live, more), model: live, endingAgo: -1, spacing: 0.001)
            let unscored = try #require(try await evaluator(db, ["SHADOW_ROWS": "200"], platform: platform).run().shadows.first)
            #expect(unscored.action == .discarded && unscored.reason.contains("predict does not run it"), "\(unscored)")

            _ = try await platform.deploy(shadow, as: .shadow)
            var third = live
            third.version = "3"
            _ = try await platform.deploy(third, as: .live)
            #expect(!FileManager.default.fileExists(atPath: LocalPlatform.path(name: "demand", .shadow, in: folder)))
        }
    }

    /// A late label joins the end of the sample (ordered by arrival), never an earlier look's part of it.
    @Test func aLateLabelJoinsTheEndOfTheSample() async throws {
        let live = try trainedModel()
        var second = live
        second.version = "2"
        let shadow = second
        var stream = Stream(seed: 36)
        let rows = stream.rows(30)
        try await withTestDatabase { db in
            let (_, _) = try await deployShadow(shadow, beside: live, db)
            let ids = try await db.store(try shadowedRows(live: live, shadow: shadow, rows), model: live, spacing: 0.001)
            // The first row served is the last labelled.
            try await db.client.query("UPDATE prediction SET labeled_at = now() + interval '1 hour' WHERE id = \(ids[0])",
                                      logger: .test)
            let windows = EvaluationWindows(client: db.client, logger: .test)
            let pairs = try await windows.pairedLosses(of: live, shadow: "2", rows: 30, since: .distantPast)
            let expected = try rows.map { abs(try predicted(live, $0) - $0.y) }
            #expect(pairs.live.first == expected[1] && pairs.live.last == expected[0])
            #expect(pairs.refused == 0 && pairs.live.count == 30)
        }
    }

    /// A shadow that cannot gather its pairs within `SHADOW_MAX_AGE` is discarded.
    @Test func aShadowShortOfPairsTooLongIsDiscarded() async throws {
        let live = try trainedModel()
        var second = live
        second.version = "2"
        let shadow = second
        try await withTestDatabase { db in
            let (_, platform) = try await deployShadow(shadow, beside: live, db)
            var stream = Stream(seed: 33)
            try await db.store(try shadowedRows(live: live, shadow: shadow, stream.rows(40)), model: live, spacing: 0.001)
            let environment = ["SHADOW_ROWS": "100", "SHADOW_MAX_AGE": "1h"]
            #expect(try await evaluator(db, environment, platform: platform).run().shadows.map(\.action) == [.waiting])
            let late = try await evaluator(db, environment, platform: platform).run(now: Date().addingTimeInterval(7_200))
            let decision = try #require(late.shadows.first)
            #expect(decision.action == .discarded && decision.reason.contains("SHADOW_MAX_AGE"), "\(decision)")
        }
    }
}

@Suite struct ShadowPolicyTests {
    private func comparison(live: Double, challenger: Double, p: Double, pairs: Int = 100) -> PairedLossComparison {
        var c = PairedLossComparison(live: [1, 2], challenger: [1, 2])!
        (c.pairs, c.liveMeanLoss, c.challengerMeanLoss, c.pValue) = (pairs, live, challenger, p)
        return c
    }

    /// O'Brien–Fleming's constants against Jennison and Turnbull's table (Group Sequential Methods, 2000,
    /// Table 2.3: C_B(K, α) for two-sided α = 0.05, the one-sided 0.025 boundary): 1.960, 1.977, 2.004, 2.024,
    /// 2.040 for 1 to 5 looks.
    @Test(arguments: [(1, 1.960), (2, 1.977), (3, 2.004), (4, 2.024), (5, 2.040)])
    func theBoundaryMatchesThePublishedConstants(_ looks: Int, _ published: Double) {
        let c = ShadowPolicy.obrienFlemingConstant(looks: looks, alpha: 0.025)
        #expect(abs(c - published) < 0.0015, "\(looks) looks: \(c)")
    }

    @Test func theVerdictNeedsALookTheBoundaryAndTheEffect() {
        let policy = ShadowPolicy(rows: 100, alpha: 0.05, minimumImprovement: 0.02, maxAge: .seconds(3_600), looks: 4,
                                  lastLook: .significant)
        #expect(policy.lookSizes == [25, 50, 75, 100])
        let first = policy.promotionLevel(look: 1), last = policy.promotionLevel(look: 4)
        #expect(first < last && last < 0.05, "stricter early, near the fixed-sample level at the end")
        #expect(policy.verdict(pairs: 24, looksDone: [], age: .seconds(10)).0 == .wait)
        #expect(policy.verdict(pairs: 24, looksDone: [], age: .seconds(3_601)).0 == .discard)
        // Look 1: promoted only past its strict boundary.
        let strong = comparison(live: 1, challenger: 0.7, p: first / 2, pairs: 25)
        #expect(policy.verdict(pairs: 30, looksDone: [strong], age: .zero) == (.promote, policy.verdict(pairs: 30, looksDone: [strong], age: .zero).1, 1))
        let moderate = comparison(live: 1, challenger: 0.9, p: (first + last) / 2, pairs: 25)
        #expect(policy.verdict(pairs: 30, looksDone: [moderate], age: .zero).0 == .wait)
        // Not significant at any look (the levels grow to the last one's).
        let weak = comparison(live: 1, challenger: 0.9, p: last * 1.5)
        // Significantly worse at an interim look: discarded early. As good as live (p = 1 from all-zero
        // differences): not.
        #expect(policy.verdict(pairs: 30, looksDone: [comparison(live: 1, challenger: 1.3, p: 1 - first / 2, pairs: 25)], age: .zero).0 == .discard)
        #expect(policy.verdict(pairs: 30, looksDone: [comparison(live: 1, challenger: 1, p: 1, pairs: 25)], age: .zero).0 == .wait)
        // The last look: significant and large enough, or discarded.
        let three = [weak, weak, weak]
        #expect(policy.verdict(pairs: 100, looksDone: three + [comparison(live: 1, challenger: 0.9, p: last / 2)], age: .zero).2 == 4)
        #expect(policy.verdict(pairs: 100, looksDone: three + [comparison(live: 1, challenger: 0.9, p: last / 2)], age: .zero).0 == .promote)
        #expect(policy.verdict(pairs: 100, looksDone: three + [comparison(live: 1, challenger: 0.99, p: 0.0001)], age: .zero).0 == .discard)
        #expect(policy.verdict(pairs: 100, looksDone: three + [comparison(live: 1, challenger: 0.8, p: last * 2)], age: .zero).0 == .discard)

        // SHADOW_LAST_LOOK lower (the default): at the last look a lower mean loss wins the tie; one not lower by
        // MIN_IMPROVEMENT, or higher, does not.
        var lower = policy
        lower.lastLook = .lower
        #expect(lower.verdict(pairs: 100, looksDone: three + [comparison(live: 1, challenger: 0.8, p: last * 2)], age: .zero).0 == .promote)
        #expect(lower.verdict(pairs: 100, looksDone: three + [comparison(live: 1, challenger: 0.99, p: 0.3)], age: .zero).0 == .discard)
        #expect(lower.verdict(pairs: 100, looksDone: three + [comparison(live: 1, challenger: 1.1, p: 0.8)], age: .zero).0 == .discard)
        #expect(lower.verdict(pairs: 30, looksDone: [weak], age: .zero).0 == .wait, "an interim look is as before")
    }

    /// Over many shadows (300 pairs, four looks): one whose mean loss on its look is higher than live's is
    /// never promoted, and of those in truth 20 % better nearly all are, most before the last look. With
    /// `significant`: of those in truth 5 % worse, few (chance samples favouring them); of those as good as
    /// live, about `alpha` over all looks together. With `lower`, the tie's price: more of both (13 % and 44 %
    /// on this seed).
    @Test(arguments: [ShadowPolicy.LastLook.significant, .lower])
    func promotionsKeepTheirLevelOverAllLooks(_ lastLook: ShadowPolicy.LastLook) {
        var random = SplitMix64(seed: 404)
        let policy = ShadowPolicy(rows: 300, lastLook: lastLook)
        var promoted = ["worse": 0, "equal": 0, "better": 0], early = 0, withHigherLoss = 0
        let trials = 1_000
        for _ in 0..<trials {
            let shared = (0..<300).map { _ in random.normal() }
            let live = shared.map { abs($0 + random.normal()) }
            let challengers = [("worse", shared.map { abs($0 + 1.1 * random.normal()) }),
                               ("equal", shared.map { abs($0 + random.normal()) }),
                               ("better", shared.map { abs($0 + 0.53 * random.normal()) })]
            for (kind, challenger) in challengers {
                let looksDone = policy.lookSizes.compactMap {
                    PairedLossComparison(live: Array(live.prefix($0)), challenger: Array(challenger.prefix($0)))
                }
                let (verdict, _, look) = policy.verdict(pairs: 300, looksDone: looksDone, age: .zero)
                guard verdict == .promote else { continue }
                promoted[kind, default: 0] += 1
                if kind == "better", look < policy.looks { early += 1 }
                if looksDone[look - 1].challengerMeanLoss > looksDone[look - 1].liveMeanLoss { withHigherLoss += 1 }
            }
        }
        let rate = { (kind: String) in Double(promoted[kind]!) / Double(trials) }
        #expect(withHigherLoss == 0)
        #expect(rate("better") > 0.97 && early > trials / 2, "\(promoted), \(early) early")
        switch lastLook {
        case .significant:
            #expect(rate("worse") < 0.02, "\(promoted)")
            #expect(rate("equal") < 0.07, "\(promoted)")
        case .lower:
            // The price of the tie going to the fresher model: one as good as live is promoted about half the
            // time (a deploy, no loss), and one in truth 5 % worse when its sample happens to favour it.
            #expect(rate("worse") < 0.2, "\(promoted)")
            #expect(rate("equal") < 0.55, "\(promoted)")
        }
    }
}
