import Logging
import PostgresNIO

extension PostgresClient {
    /// Runs `body` on one connection inside a transaction, and returns once PostgreSQL has committed it.
    ///
    /// A statement alone does not say that: PostgresNIO answers at the statement's CommandComplete, and
    /// PostgreSQL commits a lone statement of the extended protocol only at the Sync after it, so a crash in
    /// between loses what the caller was told is stored. The `COMMIT` here answers after the commit.
    /// `onLease` runs once the pool has given a connection. Errors are PostgreSQL's own (the statement's, or the
    /// commit's), not PostgresNIO's transaction wrapper, so `StoreProblem` reads them as ever.
    public func committing<Result: Sendable>(
        logger: Logger, onLease: (@Sendable () -> Void)? = nil,
        _ body: @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        do {
            return try await withConnection { connection in
                onLease?()
                return try await connection.withTransaction(logger: logger) { try await body($0) }
            }
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error.commitError ?? error.beginError ?? error
        }
    }
}
