import Logging
import PostgresNIO

extension PostgresClient {
    /// Runs `body` on one connection inside a transaction, and returns once PostgreSQL has committed it.
    ///
    /// A statement alone does not say that: PostgresNIO answers at the statement's CommandComplete, and
    /// PostgreSQL commits a lone statement of the extended protocol only at the Sync after it, so a crash in
    /// between loses what the caller was told is stored. The `COMMIT` here answers after the commit. Errors are
    /// PostgreSQL's own (the statement's, or the commit's), not PostgresNIO's transaction wrapper, so
    /// `StoreProblem` reads them as ever.
    public func committing<Result: Sendable>(
        logger: Logger, _ body: @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        do {
            return try await withTransaction(logger: logger) { try await body($0) }
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error.commitError ?? error.beginError ?? error
        }
    }
}
