import CycloneCloud
import CycloneEvaluation
import CycloneModel
import CycloneMonitoring
import CycloneStore
import CycloneTestSupport
import Foundation
import Testing

/// The default trigger: the serving version's loss against its own first window, on a stream with a known
/// answer (stationary, then a step change), through the evaluator and real PostgreSQL. Each batch of rows is
/// stamped just before now, after the previous cycle, so the batches never interleave in time.
@Suite struct LossTriggerTests {
    /// The loss test alone (the data-growth challenge has its own test below).
    static let environment = ["RETRAIN_TRIGGER": "loss", "PERFORMANCE_WINDOW_ROWS": "100", "MIN_LABELS": "50", "RETRAIN_COOLDOWN": "0s",
                              "PERFORMANCE_WINDOW_MAX_AGE": "30d", "RETRAIN_DATA_GROWTH": "off"]

    /// 80 cycles of 25 fresh labels from the world the model knows: the loss test fires in about 1 % of
    /// cycles at most (its level; the windows overlap, so the cycles are not independent). Then the world
    /// breaks: the test fires within three cycles, and says why. With a holdout the model has two references,
    /// its first window and its holdout's loss, tested together at the same level.
    @Test(arguments: [0, 0.2])
    func aStationaryStreamRaisesFewAlarmsAndAStepChangeIsCaughtSoon(holdout: Double) async throws {
        let model = try trainedModel(holdout: holdout)
        #expect((model.training?.holdoutLoss?.rows ?? 0) == Int(600 * holdout))
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            var stream = Stream(seed: 41)
            try await db.store(try regressionRows(model, stream.rows(100)), model: model, endingAgo: 1, spacing: 0.0001)
            let first = try await evaluator(db, Self.environment).run()
            #expect(first.models.first?.judgement?.reason.contains("labels since the reference window") == true
                    || first.models.first?.judgement?.reason.contains("no labels since") == true,
                    "\(String(describing: first.models.first?.judgement))")
            var falseAlarms = 0
            for _ in 0..<80 {
                try await db.store(try regressionRows(model, stream.rows(25)), model: model, spacing: 0.0001)
                let judgement = try #require(try await evaluator(db, Self.environment).run().models.first?.judgement)
                #expect(judgement.lossShift?.referenceRows == 100)
                #expect(judgement.holdoutLossShift?.referenceRows == (holdout > 0 ? 120 : nil))
                if judgement.retrain { falseAlarms += 1 }
            }
            #expect(falseAlarms <= 3, "\(falseAlarms) false alarms in 80 cycles at level 0.01")

            var caughtAfter: Int?
            for cycle in 1...6 where caughtAfter == nil {
                try await db.store(try regressionRows(model, stream.rows(25, broken: true)), model: model, spacing: 0.0001)
                let evaluation = try #require(try await evaluator(db, Self.environment).run().models.first)
                if evaluation.judgement?.retrain == true {
                    caughtAfter = cycle
                    #expect(evaluation.judgement?.reason.contains("Welch p = ") == true, "\(evaluation)")
                    #expect(evaluation.action.kind == .retrainStarted)
                }
            }
            #expect((caughtAfter ?? 99) <= 3, "caught after \(String(describing: caughtAfter)) cycles of 25 broken rows")
        }
    }

    /// A version that serves a world already broken is its own first window, so that test never fires; the
    /// loss its holdout promised does, as soon as there are labels enough for a decision, and says so. A
    /// turned-down challenger retires the promise for a while: a window of fresh labels after the first
    /// turn-down, two after the second, four after the third, so that a promise out of reach asks again only
    /// as the logarithm of the labels.
    @Test func aVersionPoorFromItsFirstRowIsHeldToItsHoldout() async throws {
        let model = try trainedModel(holdout: 0.2)
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            var stream = Stream(seed: 45)
            try await db.store(try regressionRows(model, stream.rows(25, broken: true)), model: model, endingAgo: 1,
                               spacing: 0.0001)
            let early = try #require(try await evaluator(db, Self.environment).run().models.first)
            #expect(early.action.kind == .none && early.judgement?.holdoutLossShift?.currentRows == 25, "\(early)")
            try await db.store(try regressionRows(model, stream.rows(25, broken: true)), model: model, spacing: 0.0001)
            let caught = try #require(try await evaluator(db, Self.environment).run().models.first)
            #expect(caught.action.kind == .retrainStarted, "\(caught)")
            #expect(caught.judgement?.lossShift == nil, "the reference window is still filling")
            let reason = caught.judgement?.reason ?? ""
            #expect(reason.hasPrefix("the reference window is filling: 50 of 100 labels; mean loss ×") &&
                    reason.contains("its holdout's on 50 labels against 120"), "\(reason)")
            // Each challenger is turned down; the next is asked for once the wait is over, not before.
            var asked: [Int] = []
            for cycle in 1...28 {
                if cycle == 1 || asked.last == cycle - 1 {
                    try await EvaluationStore(client: db.client, logger: .test).event(
                        .retrainFinished, name: "demand", version: "\(asked.count + 2)",
                        detail: ["status": "rejected", "parent": "1", "reason": "not 1 % better"])
                    try await Task.sleep(for: .milliseconds(100))
                }
                try await db.store(try regressionRows(model, stream.rows(25, broken: true)), model: model, spacing: 0.0001)
                let evaluation = try #require(try await evaluator(db, Self.environment).run().models.first)
                if evaluation.action.kind == .retrainStarted {
                    asked.append(cycle)
                    #expect(evaluation.judgement?.reason.contains("its holdout's on 100 labels") == true, "\(evaluation)")
                } else {
                    #expect(evaluation.action.kind == .none, "\(evaluation)")
                }
            }
            // 100 labels (4 cycles of 25) after the first rejection, 200 after the second, 400 after the third.
            #expect(asked == [4, 12, 28], "challengers asked for at cycles \(asked)")
        }
    }

    /// The wait after turn-downs doubles (a window, two, four…) and, for a window however large, never wraps
    /// around to arm the test early.
    @Test func theWaitDoublesAndNeverWraps() {
        let armed = EvaluationWindows.holdoutTestArmed
        #expect(armed(0, 0, 100))
        #expect(!armed(1, 99, 100) && armed(1, 100, 100))
        #expect(!armed(2, 199, 100) && armed(2, 200, 100))
        #expect(!armed(3, 399, 100) && armed(3, 400, 100))
        #expect(!armed(60, 1_000_000_000_000_000_000, 1 << 40))
        #expect(!armed(2, 3_000_000_000_000_000_000, 1 << 62))
    }

    /// A discarded challenger (a rejected candidate) says a new model does no better on today's rows: the
    /// version's reference restarts after it, so the same evidence does not ask for the same retrain again
    /// and again (the old reference would, once a window of fresh labels had come); a further change does.
    @Test func afterADiscardTheReferenceRestarts() async throws {
        let model = try trainedModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            var stream = Stream(seed: 43)
            try await db.store(try regressionRows(model, stream.rows(100)), model: model, endingAgo: 2, spacing: 0.0001)
            try await db.store(try regressionRows(model, stream.rows(100, broken: true)), model: model, endingAgo: 1,
                               spacing: 0.0001)
            let breach = try #require(try await evaluator(db, Self.environment).run().models.first)
            #expect(breach.action.kind == .retrainStarted, "\(breach)")
            let store = EvaluationStore(client: db.client, logger: .test)
            try await store.event(.retrainFinished, name: "demand", version: "2",
                                  detail: ["status": "rejected", "parent": "1", "reason": "not 1 % better"])
            // The rows stored next are stamped from the clock back by their spacing: all after the discard.
            try await Task.sleep(for: .milliseconds(100))
            var kinds: [ModelEvaluation.Action.Kind] = []
            for _ in 0..<8 {
                try await db.store(try regressionRows(model, stream.rows(25, broken: true)), model: model, spacing: 0.0001)
                let evaluation = try #require(try await evaluator(db, Self.environment).run().models.first)
                kinds.append(evaluation.action.kind)
            }
            // 100 labels refill the reference, the next 100 are measured against it: the same world, no alarm.
            #expect(kinds == Array(repeating: .none, count: 8), "\(kinds)")
            var caughtAfter: Int?
            for cycle in 1...6 where caughtAfter == nil {
                try await db.store(try regressionRows(model, stream.rows(25, shift: 3, broken: true)), model: model,
                                   spacing: 0.0001)
                let evaluation = try #require(try await evaluator(db, Self.environment).run().models.first)
                if evaluation.action.kind == .retrainStarted { caughtAfter = cycle }
            }
            #expect((caughtAfter ?? 99) <= 4, "a further change caught after \(String(describing: caughtAfter)) cycles")
        }
    }

    /// A stationary stream raises no loss alarm, but once the labels since the model was trained number its
    /// 600 training rows (the data doubled), a challenger is asked for, saying why; after it is turned down,
    /// the next waits for as many labels again.
    @Test func theDataDoublingAsksForAChallenger() async throws {
        let model = try trainedModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(model, status: .live)
            var environment = Self.environment
            environment["RETRAIN_DATA_GROWTH"] = "2"
            var stream = Stream(seed: 44)
            try await Task.sleep(for: .milliseconds(20))
            var challenges: [Int] = []
            let store = EvaluationStore(client: db.client, logger: .test)
            for cycle in 1...60 {
                try await db.store(try regressionRows(model, stream.rows(25)), model: model, spacing: 0.0001)
                let evaluation = try #require(try await evaluator(db, environment).run().models.first)
                guard evaluation.judgement?.reason.contains("RETRAIN_DATA_GROWTH") == true else { continue }
                #expect(evaluation.judgement?.reason.hasPrefix("\(cycle * 25 - (challenges.isEmpty ? 0 : challenges[0] * 25)) labels since it was trained on 600 rows") == true,
                        "\(evaluation.judgement?.reason ?? "")")
                #expect(evaluation.action.kind == .retrainStarted, "\(evaluation.action)")
                challenges.append(cycle)
                // The challenger is turned down: the next challenge waits for 600 new labels.
                try await store.event(.retrainFinished, name: "demand", version: "2",
                                      detail: ["status": "rejected", "parent": "1", "reason": "not 1 % better"])
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(challenges == [24, 48], "\(challenges)")
        }
    }
}
