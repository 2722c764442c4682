@testable import CycloneStore
import CycloneTestSupport
import PostgresNIO
import Testing

@Suite struct RenewableClientTests {
    /// A renewal swaps in a fresh client and stops the old one; a second renewal of the same generation (another
    /// writer that saw the same failure) changes nothing.
    @Test func renewingSwapsInAFreshClientOnce() async throws {
        try await withTestDatabase { db in
            let connections = RenewableClient(configuration: try db.databaseURL.client, logger: .test)
            connections.start()
            let (first, generation) = await connections.current()
            try await first.ping(within: .seconds(30), logger: .test)
            connections.renew(generation: generation)
            connections.renew(generation: generation)
            let (second, next) = await connections.current()
            #expect(next == generation + 1)
            #expect(second !== first)
            try await second.ping(within: .seconds(30), logger: .test)
            // The old client stops (its run is cancelled): once it has, it takes no more queries.
            var oldAnswers = true
            for _ in 0..<100 where oldAnswers {
                do { try await first.ping(within: .seconds(5), logger: .test) } catch { oldAnswers = false }
                if oldAnswers { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(!oldAnswers)
            await connections.stop(within: .seconds(5))
            // Nothing is renewed once stopped.
            connections.renew(generation: next)
            #expect(await connections.current().generation == next)
        }
    }
}
