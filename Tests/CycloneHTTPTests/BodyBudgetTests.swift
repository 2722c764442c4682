import CycloneHTTP
import CycloneRuntime
import Synchronization
import Testing

final class Held: Sendable {
    let state = Mutex((now: 0, most: 0))
}

@Suite struct BodyBudgetTests {
    /// Bodies beyond the budget wait for room, in order; one larger than the budget runs alone.
    @Test func theBudgetBoundsWhatIsHeldAtOnce() async throws {
        let budget = BodyBudget(bytes: 25)
        let held = Held()
        await withTaskGroup(of: Void.self) { group in
            for n in 0..<20 {
                let bytes = n == 7 ? 40 : 10
                group.addTask {
                    await budget.withBudget(bytes) {
                        held.state.withLock { $0.now += bytes; $0.most = max($0.most, $0.now) }
                        try? await Task.sleep(for: .milliseconds(5))
                        held.state.withLock { $0.now -= bytes }
                    }
                }
            }
        }
        let (now, most) = held.state.withLock { $0 }
        #expect(now == 0)
        #expect(most <= 40, "at most the large one alone, or two small ones")
        #expect(most >= 20, "two small ones fit at once")
    }
}
