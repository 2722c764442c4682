import CycloneStore
import Foundation
import Testing

/// The one rule for which version serves, shared by the evaluator and the dashboard.
@Suite struct ServingVersionTests {
    let t0 = Date(timeIntervalSince1970: 1_700_000_000)

    @Test func theVersionSetLiveLastServesWhatEverPredictedLast() {
        let serving = ModelRegistry.servingVersion(
            live: [("3", t0.addingTimeInterval(10)), ("4", t0.addingTimeInterval(20))],
            predicted: [("3", t0.addingTimeInterval(99)), ("4", t0)])
        #expect(serving == "4")
    }

    @Test func withoutALiveVersionTheOneThatPredictedLastServes() {
        let predicted = [("1", t0.addingTimeInterval(5)), ("2", t0.addingTimeInterval(9)), ("3", t0)]
        #expect(ModelRegistry.servingVersion(live: [], predicted: predicted) == "2")
        #expect(ModelRegistry.servingVersion(live: [], predicted: []) == nil)
    }
}
