import CycloneRuntime
import DequeModule
import Foundation
import Logging
import Metrics
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Stores served predictions with group commit: rows from concurrent requests are gathered and written by
/// one multi-row INSERT, so the cost of a commit is shared by everything that arrived while the previous one
/// ran. The same statement stores the batch's drift rollup (`DriftRollups`): the rows counted into their
/// model version's reference cells, and the requests refused since the last write (`reject`).
///
/// `append` returns how far the rows got:
/// - `.committed`: in PostgreSQL (durable mode waits for this);
/// - `.buffered`: accepted and held in memory, to be written when the database answers (async mode always;
///   durable mode when the database failed or `durableTimeout` passed, and at once while the last write failed);
/// - `.dropped`: the buffer stayed full for `durableTimeout`, or PostgreSQL refused one of the request's rows
///   as data (the others were stored); the rows were logged at error level and counted, never silently lost.
///
/// A full buffer applies backpressure: an append waits for room (up to `durableTimeout`) instead of failing at
/// once, so a burst above what PostgreSQL can take slows answers down rather than losing rows.
///
/// The writer has a connection pool of its own (at most `concurrentFlushes` + 1 connections, none kept open while
/// idle). After a write found the database out of reach, it probes with single connections, a tenth of a second
/// apart, until one answers, and then writes at once, through a fresh pool (`RenewableClient`) when the old one
/// never got a connection: PostgresNIO's pool would wait ever longer between its own attempts. So it stores again
/// within moments of the server's return. A server that answers with a refusal (a wrong password, too many
/// connections) is probed on a doubling backoff instead, and a write that fails while the database
/// answers (a statement refused, a slow statement) is retried with backoff. On graceful shutdown the writer stops
/// taking rows only after the server has stopped (it is a service added before the server), flushes what it
/// holds and, if the database still refuses, logs each unwritten row so it can be recovered from the logs.
public final class PredictionWriter: Service, Sendable {
    public struct Configuration: Sendable {
        /// Most rows in one INSERT.
        public var maxBatchRows = 1_000
        /// Most rows held in memory waiting for the database; more are dropped (logged and counted).
        public var maxBufferedRows = 100_000
        /// How long a durable `append` waits for its commit before answering `.buffered`.
        public var durableTimeout: Duration = .seconds(1)
        /// How many INSERTs may run at once.
        public var concurrentFlushes = 2
        /// Retry delays after a write failed while the database answered: doubling from `retryInitial` up to
        /// `retryMax`. `retryInitial` also spaces probes of an unreachable database that fail at once.
        public var retryInitial: Duration = .milliseconds(100)
        public var retryMax: Duration = .seconds(5)
        /// How long one INSERT may take before it counts as failed and is retried. PostgresNIO would otherwise
        /// hold a query for about a minute while it cannot connect.
        public var writeTimeout: Duration = .seconds(5)
        /// How long shutdown keeps retrying before logging what is left.
        public var shutdownFlushTimeout: Duration = .seconds(5)
        /// How often drift rollups of settled batches are merged into blocks (and refused requests stored
        /// when no predictions carry them); `nil` leaves it to other writers.
        public var rollupMaintenance: Duration? = .seconds(30)

        public init() {}
    }

    public enum Outcome: String, Sendable {
        case committed, buffered, dropped
    }

    private struct Pending: Sendable {
        var ticket: UInt64
        var rows: [PredictionRow]
        /// Set on a batch that failed: retried exactly as it was, with the refusals it carried, never merged
        /// with newer rows. Its statement committed whole or not at all, so its rollup is counted once.
        var retryRejected: [DriftRollups.Version: Int]? = nil
    }

    private struct Waiter {
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<Outcome, Never>
    }

    /// An append waiting for room in a full buffer.
    private struct SpaceWaiter {
        var rows: [PredictionRow]
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<Outcome, Never>
        /// Keep waiting for the commit once admitted.
        var durable: Bool
    }

    private struct State: ~Copyable {
        var queue = Deque<Pending>()
        var spaceWaiters = Deque<SpaceWaiter>()
        var bufferedRows = 0
        var nextTicket: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        var idleFlushers: [CheckedContinuation<Void, Never>] = []
        var inFlight = 0
        var shuttingDown = false
        /// When shutdown gives up on rows it cannot write.
        var shutdownDeadline: ContinuousClock.Instant?
        var healthy = true
        var statistics = Statistics()
        /// Refused requests not yet stored, per model version.
        var rejected: [DriftRollups.Version: Int] = [:]
    }

    /// Totals since start, for tests and benchmarks.
    public struct Statistics: Sendable, Equatable {
        public var rowsWritten = 0
        public var batchesWritten = 0
        public var failedWrites = 0
        /// Rows PostgreSQL refused as data (logged in full and dropped; everything else was stored).
        public var refusedRows = 0
        /// Probes of a database that a write found out of reach, and those that failed.
        public var probes = 0, failedProbes = 0
    }

    private let connections: RenewableClient
    /// A single connection's settings, for probes (or why they cannot be made, which each probe then reports).
    private let probeConfiguration: Result<PostgresConnection.Configuration, any Error>
    /// How long a probe may take: one connection attempt (`connect_timeout`) and a `SELECT 1`.
    private let probeTimeout: Duration
    private let logger: Logger
    public let configuration: Configuration
    private let state = Mutex(State())
    private let clock = ContinuousClock()

    private let rowsWritten = Counter(label: "cyclone_prediction_rows_written_total")
    private let rowsDropped = Counter(label: "cyclone_prediction_rows_dropped_total")
    private let rowsRefused = Counter(label: "cyclone_prediction_rows_refused_total")
    private let writeFailures = Counter(label: "cyclone_prediction_write_failures_total")
    private let bufferedGauge = Gauge(label: "cyclone_prediction_rows_buffered")
    private let batchRows = Recorder(label: "cyclone_prediction_batch_rows")
    private let batchTimer = Metrics.Timer(label: "cyclone_prediction_batch_seconds")

    /// A writer with a pool of its own to `database` (its connection counts are set here).
    public init(database: DatabaseURL, logger: Logger, configuration: Configuration = .init()) {
        var pool = database.client
        pool.options.maximumConnections = configuration.concurrentFlushes + 1  // and the maintenance
        // None kept open: an idle pool would otherwise keep reconnecting through an outage, on its growing
        // backoff, and the first write after it would wait on that. (Also below the maximum, as PostgresNIO
        // 1.33.2 needs: see `DatabaseSettings`.)
        pool.options.minimumConnections = 0
        pool.options.keepAliveBehavior = nil
        connections = RenewableClient(configuration: pool, logger: logger)
        probeConfiguration = Result { try database.connection() }
        probeTimeout = database.connectTimeout + .seconds(1)
        self.logger = logger
        self.configuration = configuration
    }

    /// Rows accepted but not yet committed.
    public var bufferedRows: Int { state.withLock { $0.bufferedRows } }

    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// Whether the last write succeeded (for readiness and headers).
    public var isHealthy: Bool { state.withLock { $0.healthy } }

    /// Hands rows to the writer. With `waitForCommit`, returns once they are committed, or `.buffered` after a
    /// failed write or `durableTimeout`; otherwise returns at once.
    public func append(_ rows: [PredictionRow], waitForCommit: Bool) async -> Outcome {
        guard !rows.isEmpty else { return .committed }
        let deadline = clock.now.advanced(by: configuration.durableTimeout)
        return await withCheckedContinuation { continuation in
            let (resumeNow, wake) = state.withLock { state -> (Outcome?, CheckedContinuation<Void, Never>?) in
                // Join the line when others already wait for room, so admission stays in order.
                guard state.spaceWaiters.isEmpty, state.bufferedRows + rows.count <= configuration.maxBufferedRows
                    || state.bufferedRows == 0
                else {
                    state.spaceWaiters.append(SpaceWaiter(rows: rows, deadline: deadline, continuation: continuation,
                                                          durable: waitForCommit))
                    return (nil, nil)
                }
                let ticket = enqueue(rows, into: &state)
                // While the last write failed, a durable append cannot commit before its timeout: it is answered
                // `.buffered` at once rather than holding every request for `durableTimeout` during an outage.
                if waitForCommit && state.healthy {
                    state.waiters[ticket] = Waiter(deadline: deadline, continuation: continuation)
                    return (nil, state.idleFlushers.popLast())
                }
                return (.buffered, state.idleFlushers.popLast())
            }
            wake?.resume()
            if let resumeNow { continuation.resume(returning: resumeNow) }
        }
    }

    /// Adds rows to the queue; returns their ticket.
    private func enqueue(_ rows: [PredictionRow], into state: inout State) -> UInt64 {
        let ticket = state.nextTicket
        state.queue.append(Pending(ticket: ticket, rows: rows))
        state.nextTicket += 1
        state.bufferedRows += rows.count
        bufferedGauge.record(state.bufferedRows)
        return ticket
    }

    /// Moves waiting appends into the queue while they fit; returns the async ones to answer `.buffered`.
    private func admitWaiting(_ state: inout State) -> [CheckedContinuation<Outcome, Never>] {
        var admitted: [CheckedContinuation<Outcome, Never>] = []
        while let next = state.spaceWaiters.first,
            state.bufferedRows + next.rows.count <= configuration.maxBufferedRows || state.bufferedRows == 0
        {
            state.spaceWaiters.removeFirst()
            let ticket = enqueue(next.rows, into: &state)
            if next.durable && state.healthy {
                state.waiters[ticket] = Waiter(deadline: next.deadline, continuation: next.continuation)
            } else {
                admitted.append(next.continuation)
            }
        }
        return admitted
    }

    private func drop(_ rows: [PredictionRow], reason: String) {
        rowsDropped.increment(by: rows.count)
        for row in rows { logUnstored(row, reason: reason) }
    }

    private func logUnstored(_ row: PredictionRow, reason: String) {
        var metadata: Logger.Metadata = [
            "reason": "\(reason)", "id": "\(row.id.uuidString.lowercased())", "model": "\(row.modelName)",
            "model_version": "\(row.modelVersion)", "input": "\(row.input)", "prediction": "\(row.prediction)",
            "key": "\(row.key ?? "")", "created_at": "\(row.createdAt.timeIntervalSince1970)",
        ]
        // The shadow's output too, so the row's pair can be rebuilt from the log.
        if let shadow = row.shadow {
            metadata["shadow_version"] = "\(shadow.version)"
            metadata["shadow_prediction"] = "\(shadow.prediction)"
        }
        logger.error("prediction not stored", metadata: metadata)
    }

    public func run() async throws {
        // Cancellation (the group stopping because another service failed, such as a server that could not
        // bind its port) drains as a graceful shutdown does; the flushers would otherwise wait for rows forever.
        connections.start()
        await withTaskCancellationOrGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<configuration.concurrentFlushes {
                    group.addTask { await self.flushLoop() }
                }
                group.addTask { await self.sweepLoop() }
                if let interval = configuration.rollupMaintenance {
                    group.addTask { await self.maintenanceLoop(every: interval) }
                }
                // The flushers end after shutdown has drained the queue; then stop the sweeper.
                for _ in 0..<configuration.concurrentFlushes { await group.next() }
                group.cancelAll()
            }
        } onCancelOrGracefulShutdown: {
            let deadline = self.clock.now.advanced(by: self.configuration.shutdownFlushTimeout)
            let sleepers = self.state.withLock { state in
                state.shuttingDown = true
                // Cancellation after a graceful shutdown calls this again: the first deadline stands.
                if state.shutdownDeadline == nil { state.shutdownDeadline = deadline }
                defer { state.idleFlushers.removeAll() }
                return state.idleFlushers
            }
            for sleeper in sleepers { sleeper.resume() }
        }
        // Refusals no batch carried: one last try within shutdown's deadline, then the log.
        let deadline = state.withLock { $0.shutdownDeadline } ?? clock.now
        if clock.now < deadline { await storeRejected(timeout: min(configuration.writeTimeout, deadline - clock.now)) }
        for (version, count) in state.withLock({ Self.takeRejected(&$0) }) {
            logger.error("refused requests not stored", metadata: [
                "model": "\(version.name)", "model_version": "\(version.version)", "count": "\(count)"])
        }
        let left = state.withLock { state in
            defer { state.queue.removeAll(); state.bufferedRows = 0 }
            return Array(state.queue)
        }
        for pending in left {
            rowsDropped.increment(by: pending.rows.count)
            for row in pending.rows { logUnstored(row, reason: "database unavailable at shutdown") }
        }
        resumeWaiters(left.map(\.ticket), with: .dropped)
        let waiting = state.withLock { state in
            defer { state.spaceWaiters.removeAll() }
            return Array(state.spaceWaiters)
        }
        for waiter in waiting {
            drop(waiter.rows, reason: "database unavailable at shutdown")
            waiter.continuation.resume(returning: .dropped)
        }
        await connections.stop(within: max(.milliseconds(100), min(.seconds(1), deadline - clock.now)))
    }

    /// Takes batches off the queue and writes them until shutdown leaves nothing to write.
    private func flushLoop() async {
        var backoff = configuration.retryInitial
        while true {
            let batch: [Pending]? = await nextBatch()
            guard let batch else { return }
            let start = clock.now
            var timeout = configuration.writeTimeout
            let shutdownDeadline = state.withLock { $0.shutdownDeadline }
            if let shutdownDeadline { timeout = max(.milliseconds(1), min(timeout, shutdownDeadline - start)) }
            let rows = batch.flatMap(\.rows)
            let rejected = batch[0].retryRejected ?? state.withLock { Self.takeRejected(&$0) }
            let (client, generation) = await connections.current()
            do {
                let refused = try await insertIsolating(rows, rejected: rejected, client: client, timeout: timeout)
                let refusedIDs = Set(refused.map(\.row.id))
                record(refused: refused)
                let stored = rows.count - refused.count
                batchTimer.record(duration: clock.now - start)
                batchRows.record(stored)
                rowsWritten.increment(by: stored)
                let admitted = state.withLock { state in
                    state.inFlight -= 1
                    state.bufferedRows -= rows.count
                    state.healthy = true
                    state.statistics.rowsWritten += stored
                    state.statistics.batchesWritten += 1
                    state.statistics.refusedRows += refused.count
                    bufferedGauge.record(state.bufferedRows)
                    return admitWaiting(&state)
                }
                if refusedIDs.isEmpty {
                    resumeWaiters(batch.map(\.ticket), with: .committed)
                } else {
                    let cut = batch.filter { $0.rows.contains { refusedIDs.contains($0.id) } }.map(\.ticket)
                    resumeWaiters(batch.map(\.ticket).filter { !cut.contains($0) }, with: .committed)
                    resumeWaiters(cut, with: .dropped)
                }
                for continuation in admitted { continuation.resume(returning: .buffered) }
                backoff = configuration.retryInitial
            } catch {
                writeFailures.increment()
                let partial = error as? PartialWrite
                // Each slice not yet stored is retried exactly as it was written (a slice that timed out may yet
                // commit, and a retry mixing it with other rows would count it again in their drift rollup).
                let slices = partial?.remaining ?? [rows]
                let remaining = slices.flatMap { $0 }
                let rejectedLeft = partial?.rejected ?? rejected
                let refused = partial?.refused ?? []
                record(refused: refused)
                let stored = rows.count - remaining.count - refused.count
                if stored > 0 { rowsWritten.increment(by: stored) }
                let admitted = state.withLock { state in
                    state.inFlight -= 1
                    state.healthy = false
                    state.statistics.failedWrites += 1
                    state.statistics.rowsWritten += stored
                    state.statistics.refusedRows += refused.count
                    state.bufferedRows -= rows.count - remaining.count
                    bufferedGauge.record(state.bufferedRows)
                    // Put what is left in front, each slice whole, to be retried as it was written.
                    for (index, slice) in slices.enumerated().reversed() {
                        state.queue.prepend(Pending(ticket: batch[0].ticket, rows: slice,
                                                    retryRejected: index == 0 ? rejectedLeft : [:]))
                    }
                    return admitWaiting(&state)
                }
                let refusedIDs = Set(refused.map(\.row.id))
                let cut = batch.filter { $0.rows.contains { refusedIDs.contains($0.id) } }.map(\.ticket)
                resumeWaiters(cut, with: .dropped)
                resumeWaiters(batch.map(\.ticket).filter { !cut.contains($0) }, with: .buffered)
                for continuation in admitted { continuation.resume(returning: .buffered) }
                // Cancelled (shutdown escalated): no statement can run any more; what is left is logged by run().
                if Task.isCancelled { return }
                let failure = partial?.error ?? error
                let problem = StoreProblem(failure)
                logger.warning("storing predictions failed; will retry", metadata: [
                    "rows": "\(remaining.count)", "error": "\(problem == .unavailable ? "\(failure)" : problem.explanation)",
                ])
                // Unavailable: wait until a probe reaches the database. If a probe failed first, the database was
                // out of reach and the pool, whose own attempts failed meanwhile, may next try seconds from now:
                // it is renewed and the write goes again at once. If the first probe answered, the database is up
                // but slow or the pool is busy: the pool and its connections are kept, and the write waits its
                // backoff (renewing would cut the slow statements and add connections to a loaded server).
                var atOnce = false
                if problem == .unavailable {
                    guard let waited = await reachDatabase() else { return }
                    if waited { connections.renew(generation: generation) }
                    atOnce = waited
                }
                if atOnce {
                    backoff = configuration.retryInitial
                } else {
                    guard await pause(backoff) else { return }
                    backoff = min(backoff * 2, configuration.retryMax)
                }
            }
        }
    }

    /// Probes the database with single connections until one answers, and says whether a probe failed first;
    /// `nil` at shutdown's deadline or on cancellation. Out of reach (no answer, or the connection refused), the
    /// next probe follows `retryInitial` after the last began (`isOutOfReach`, a server starting up too); a
    /// server that refuses (a wrong password, too many connections, TLS) is probed on a backoff doubling up to
    /// `retryMax`, so that it is not hammered. A change of problem is logged once, and so is the return.
    private func reachDatabase() async -> Bool? {
        let began = clock.now
        var waited = false
        var refusalBackoff = configuration.retryInitial
        var lastProblem: String?
        while !Task.isCancelled {
            let deadline = state.withLock { $0.shutdownDeadline }
            if let deadline, clock.now >= deadline { return nil }
            let start = clock.now
            var timeout = probeTimeout
            if let deadline { timeout = max(.milliseconds(1), min(timeout, deadline - start)) }
            state.withLock { $0.statistics.probes += 1 }
            do {
                try await probe(within: timeout)
                if waited {
                    logger.info("PostgreSQL answers again; storing predictions", metadata: ["after": "\(clock.now - began)"])
                }
                return waited
            } catch {
                waited = true
                state.withLock { $0.statistics.failedProbes += 1 }
                let refusal = !Self.isOutOfReach(error)
                let problem = refusal ? "PostgreSQL refuses: \(String(reflecting: error))" : "PostgreSQL is out of reach"
                if problem != lastProblem {
                    logger.warning("probing PostgreSQL before storing predictions again", metadata: ["problem": "\(problem)"])
                    lastProblem = problem
                }
                var sleep = configuration.retryInitial - (clock.now - start)
                if refusal {
                    sleep = refusalBackoff
                    refusalBackoff = min(refusalBackoff * 2, configuration.retryMax)
                } else {
                    refusalBackoff = configuration.retryInitial
                }
                guard await pause(sleep) else { return nil }
            }
        }
        return nil
    }

    /// Sleeps `duration`, but not past shutdown's deadline; `false` once that deadline has passed.
    private func pause(_ duration: Duration) async -> Bool {
        var duration = duration
        if let deadline = state.withLock({ $0.shutdownDeadline }) {
            if clock.now >= deadline { return false }
            duration = min(duration, deadline - clock.now)
        }
        if duration > .zero { try? await Task.sleep(for: duration) }
        return true
    }

    /// Whether a probe's failure says the database is out of reach for now, which clears by itself: nothing
    /// answered in time, the connection was refused or closed, or the server is starting up or shutting down
    /// (SQLSTATE class 57; a connection exception, 08). Probing those on a backoff would find a restarted server
    /// ready only seconds later. Anything else (a wrong password or database, too many connections, TLS refused)
    /// holds until someone acts, and is probed on a backoff.
    static func isOutOfReach(_ error: any Error) -> Bool {
        if error is TimeoutError || error is IOError || error is ChannelError
            || String(reflecting: type(of: error)).contains("NIOConnectionError")
        {
            return true
        }
        guard let error = error as? PSQLError else { return false }
        if let state = error.serverInfo?[.sqlState] { return state.hasPrefix("57") || state.hasPrefix("08") }
        switch error.code {
        case .connectionError: return error.underlying.map(isOutOfReach) ?? true
        case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown: return true
        default: return false
        }
    }

    /// One connection of its own, `SELECT 1`, closed: the server's own answer, not the pool's.
    private func probe(within timeout: Duration) async throws {
        let configuration = try probeConfiguration.get()
        let logger = logger
        try await withTimeout(timeout) {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            do {
                // Abandoned at the deadline (a server that accepts but never answers), it closes its connection.
                try await withTaskCancellationHandler {
                    for try await _ in try await connection.query("SELECT 1", logger: logger) {}
                } onCancel: {
                    let _: EventLoopFuture<Void> = connection.close()
                }
            } catch {
                try? await connection.close()
                throw error
            }
            try? await connection.close()
        }
    }

    /// A row PostgreSQL refused, with its words.
    private typealias Refused = (row: PredictionRow, reason: String)

    /// A write that failed for a reason other than the data after part of its batch was stored.
    private struct PartialWrite: Error {
        var error: any Error
        /// The slices not yet stored (nor refused), in order, each to retry as it was written.
        var remaining: [[PredictionRow]]
        /// Refusals not yet stored.
        var rejected: [DriftRollups.Version: Int]
        /// Rows refused as data before the failure.
        var refused: [Refused]
    }

    /// Writes `rows` in one statement; when PostgreSQL refuses the batch's data (SQLSTATE class 22, a data
    /// exception, or 54, a program limit such as an index entry too large), writes it in halves until the rows
    /// it refuses stand alone, so that one bad row never holds the others back. Returns the refused rows.
    /// Any other failure throws (a `PartialWrite` once part of the batch was stored, so that no drift rollup is
    /// counted twice by a retry).
    private func insertIsolating(_ rows: [PredictionRow], rejected: [DriftRollups.Version: Int],
                                 client: PostgresClient, timeout: Duration) async throws -> [Refused]
    {
        // Slices still to write, the next one last.
        var pending: [ArraySlice<PredictionRow>] = [rows[...]]
        var rejected = rejected
        var refused: [Refused] = []
        while let slice = pending.popLast() {
            do {
                try await insert(Array(slice), rejected: rejected, client: client, timeout: timeout)
                rejected = [:]
            } catch where Self.isDataError(error) {
                if slice.count > 1 {
                    let middle = slice.startIndex + slice.count / 2
                    pending.append(slice[middle...])
                    pending.append(slice[..<middle])
                } else {
                    refused += slice.map { ($0, Self.serverMessage(error)) }
                }
            } catch {
                guard slice.count < rows.count else { throw error }
                throw PartialWrite(error: error, remaining: [Array(slice)] + pending.reversed().map(Array.init),
                                   rejected: rejected, refused: refused)
            }
        }
        // Every row of a batch refused is the statement's fault (a schema the code does not match), not the
        // rows': keep them and retry, rather than drop a whole batch.
        if refused.count == rows.count, rows.count > 1, let first = refused.first {
            throw StatementRefused(reason: first.reason)
        }
        // Every row was refused: the refusals the batch carried go on without them.
        if !rejected.isEmpty { state.withLock { $0.rejected.merge(rejected, uniquingKeysWith: +) } }
        return refused
    }

    /// PostgreSQL refused every row of a batch alike.
    private struct StatementRefused: Error, CustomStringConvertible {
        var reason: String
        var description: String { "every row of the batch was \(reason)" }
    }

    /// Whether PostgreSQL refused a statement for what it held rather than for being unavailable.
    static func isDataError(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, let state = error.serverInfo?[.sqlState] else { return false }
        return state.hasPrefix("22") || state.hasPrefix("54")
    }

    /// PostgreSQL's own words for a refusal.
    private static func serverMessage(_ error: any Error) -> String {
        guard let error = error as? PSQLError, let message = error.serverInfo?[.message] else { return "\(error)" }
        return "refused by PostgreSQL: \(message)"
    }

    /// Logs and counts rows PostgreSQL refused; they are not retried.
    private func record(refused: [Refused]) {
        guard !refused.isEmpty else { return }
        rowsRefused.increment(by: refused.count)
        for (row, reason) in refused { logUnstored(row, reason: reason) }
    }

    /// Waits for rows and takes up to `maxBatchRows` of them (at least one request's worth), or returns `nil`
    /// when shutting down with nothing left.
    private func nextBatch() async -> [Pending]? {
        while true {
            enum Step { case batch([Pending]), done, wait }
            let step: Step = state.withLock { state in
                if state.queue.isEmpty { return state.shuttingDown ? .done : .wait }
                var batch: [Pending] = []
                var rows = 0
                if let first = state.queue.first, first.retryRejected != nil {
                    state.inFlight += 1
                    return .batch([state.queue.removeFirst()])
                }
                while let next = state.queue.first, next.retryRejected == nil,
                      batch.isEmpty || rows + next.rows.count <= configuration.maxBatchRows
                {
                    batch.append(state.queue.removeFirst())
                    rows += next.rows.count
                }
                state.inFlight += 1
                return .batch(batch)
            }
            switch step {
            case .batch(let batch): return batch
            case .done: return nil
            case .wait:
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let ready = state.withLock { state in
                        if !state.queue.isEmpty || state.shuttingDown { return true }
                        state.idleFlushers.append(continuation)
                        return false
                    }
                    if ready { continuation.resume() }
                }
            }
        }
    }

    /// Answers durable waiters whose deadline passed with `.buffered`; their rows stay queued.
    private func sweepLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
            let now = clock.now
            let (expired, refused) = state.withLock { state in
                var expired: [CheckedContinuation<Outcome, Never>] = []
                for (ticket, waiter) in state.waiters where waiter.deadline <= now {
                    expired.append(waiter.continuation)
                    state.waiters[ticket] = nil
                }
                var refused: [SpaceWaiter] = []
                while let first = state.spaceWaiters.first, first.deadline <= now {
                    refused.append(state.spaceWaiters.removeFirst())
                }
                return (expired, refused)
            }
            for continuation in expired { continuation.resume(returning: .buffered) }
            for waiter in refused {
                drop(waiter.rows, reason: "buffer full")
                waiter.continuation.resume(returning: .dropped)
            }
        }
    }

    /// Counts a request refused before anything was predicted, against the model version that would have
    /// served it; it is stored with the next batch (or the next maintenance) for the data-quality report.
    public func reject(model: String, version: String, count: Int = 1) {
        state.withLock { $0.rejected[DriftRollups.Version(name: model, version: version), default: 0] += count }
    }

    /// Stores refused requests that no batch carried, and merges the drift rollups of settled batches.
    private func maintenanceLoop(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard !Task.isCancelled else { return }
            let (client, generation) = await connections.current()
            var unavailable = await storeRejected(timeout: configuration.writeTimeout)
            let rollups = DriftRollups(client: client, logger: logger)
            do {
                _ = try await withTimeout(configuration.writeTimeout * 6) {
                    try await rollups.compact(settledBefore: Date().addingTimeInterval(-60))
                }
            } catch {
                unavailable = unavailable || StoreProblem(error) == .unavailable
                logger.debug("merging drift rollups failed; next time", metadata: ["error": "\(String(reflecting: error))"])
            }
            // The pool tried to connect for these and failed? Then, if the database is out of reach, a fresh pool
            // spares the next write the old one's grown backoff (as after a failed write).
            if unavailable, (try? await probe(within: probeTimeout)) == nil { connections.renew(generation: generation) }
        }
    }

    /// Takes the refusals not yet stored.
    private static func takeRejected(_ state: inout State) -> [DriftRollups.Version: Int] {
        defer { state.rejected.removeAll() }
        return state.rejected
    }

    /// Stores the refusals no batch carried. A failed write puts them back; one that timed out after its
    /// commit may count them twice, the only way a refusal is over-counted. Returns whether it failed for want
    /// of the database.
    @discardableResult
    private func storeRejected(timeout: Duration) async -> Bool {
        let rejected = state.withLock { Self.takeRejected(&$0) }
        guard !rejected.isEmpty else { return false }
        do {
            try await insert([], rejected: rejected, client: await connections.current().client, timeout: timeout)
            return false
        } catch {
            state.withLock { $0.rejected.merge(rejected, uniquingKeysWith: +) }
            return StoreProblem(error) == .unavailable
        }
    }

    private func resumeWaiters(_ tickets: [UInt64], with outcome: Outcome) {
        let continuations = state.withLock { state in tickets.compactMap { state.waiters.removeValue(forKey: $0)?.continuation } }
        for continuation in continuations { continuation.resume(returning: outcome) }
    }

    /// Runs the INSERT, giving up (and cancelling it) after `timeout`. A write that timed out may still have
    /// committed; the retry is harmless because the INSERT skips ids already stored.
    private func insert(_ rows: [PredictionRow], rejected: [DriftRollups.Version: Int], client: PostgresClient,
                        timeout: Duration) async throws
    {
        let logger = logger
        try await withTimeout(timeout) {
            try await Self.insert(rows, rejected: rejected, client: client, logger: logger)
        }
    }

    /// Stores rows and their drift rollup in one statement, as a batch of the writer does (for loaders and
    /// tests that need no buffering), and returns once they are committed. Ids already stored are skipped.
    public static func insert(_ rows: [PredictionRow], rejected: [DriftRollups.Version: Int] = [:],
                              client: PostgresClient, logger: Logger) async throws
    {
        let statement = Self.statement(rows, rejected: rejected)
        _ = try await client.committing(logger: logger) { connection in
            try await connection.query(statement, logger: logger)
        }
    }
}
