import CycloneRuntime
import CycloneStore
import Testing

@Suite struct TimeoutTests {
    @Test func aSlowOperationTimesOutAndIsCancelled() async throws {
        await #expect(throws: TimeoutError(timeout: .milliseconds(50))) {
            try await withTimeout(.milliseconds(50)) {
                // Never finishes unless cancelled.
                try await Task.sleep(for: .seconds(3600))
            }
        }
    }

    @Test func aQuickOperationReturnsItsValue() async throws {
        let value = try await withTimeout(.seconds(10)) { 42 }
        #expect(value == 42)
    }

    @Test func itsOwnErrorsPassThrough() async throws {
        struct Boom: Error, Equatable {}
        await #expect(throws: Boom()) { try await withTimeout(.seconds(10)) { throw Boom() } }
    }

    /// Many calls at once each get their own deadline.
    @Test func concurrentCallsTimeOutIndependently() async throws {
        let results = await withTaskGroup(of: Bool.self) { group in
            for n in 0..<100 {
                group.addTask {
                    do {
                        try await withTimeout(.milliseconds(n.isMultiple(of: 2) ? 30 : 5000)) {
                            if n.isMultiple(of: 2) { try await Task.sleep(for: .seconds(3600)) }
                        }
                        return !n.isMultiple(of: 2)
                    } catch {
                        return n.isMultiple(of: 2) && error is TimeoutError
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0 })
    }
}

extension TimeoutTests {
    /// A driver call that ignores cancellation (as a query on a connection whose server died can) must not hold
    /// its caller past the deadline.
    @Test func theDeadlineHoldsWhenTheOperationIgnoresCancellation() async throws {
        let started = ContinuousClock.now
        await #expect(throws: TimeoutError(timeout: .milliseconds(50))) {
            try await withTimeout(.milliseconds(50)) {
                // Sleeps its full time whatever cancellation says.
                await Task.detached { try? await Task.sleep(for: .seconds(120)) }.value
            }
        }
        // Well under the operation's 120 s (however loaded the machine): answered at the deadline, not at its end.
        #expect(ContinuousClock.now - started < .seconds(60))
    }

    /// Cancelling the caller answers it at once, whatever the operation does.
    @Test func cancellingTheCallerAnswersAtOnce() async throws {
        let caller = Task {
            try await withTimeout(.seconds(600)) {
                await Task.detached { try? await Task.sleep(for: .seconds(120)) }.value
            }
        }
        try await Task.sleep(for: .milliseconds(20))
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
    }
}
