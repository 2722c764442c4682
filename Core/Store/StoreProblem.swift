import CycloneRuntime
import Logging
import PostgresNIO

/// What a failed statement says about the store, so that an answer blames the right thing: PostgreSQL out of
/// reach (retry later), a database the migrations have not reached (run them), or a statement PostgreSQL
/// refused for what it held (a fault of the data or the code, which retrying does not mend).
public enum StoreProblem: Equatable, Sendable {
    case unavailable
    case notMigrated(String)
    case refused(String)
    /// Not PostgreSQL's doing (a decoding error, a platform's failure).
    case other(String)

    public init(_ error: any Error) {
        if error is TimeoutError || error is CancellationError {
            self = .unavailable
            return
        }
        guard let error = error as? PSQLError else {
            // The pool's own errors (its circuit breaker, a shut pool) are not public types.
            self = String(reflecting: type(of: error)).contains("ConnectionPoolError") ? .unavailable : .other("\(error)")
            return
        }
        guard let state = error.serverInfo?[.sqlState] else {
            self = .unavailable  // no answer from the server: the connection failed or closed
            return
        }
        let message = error.serverInfo?[.message] ?? "SQLSTATE \(state)"
        switch state.prefix(2) {
        // Connection exceptions, insufficient resources, operator intervention (shutdown, starting up).
        case "08", "53", "57": self = .unavailable
        // An undefined table, column or function: the schema is older than the code.
        case "42" where ["42P01", "42703", "42883"].contains(state), "3F": self = .notMigrated(message)
        default: self = .refused(message)
        }
    }

    /// Whether PostgreSQL refused what a statement held (SQLSTATE classes 22, 23 and 54: data exceptions,
    /// integrity constraints, program limits), which no retry mends, rather than being out of reach, busy
    /// or behind on its schema.
    public static func refusesData(_ error: any Error) -> Bool {
        guard let state = (error as? PSQLError)?.serverInfo?[.sqlState] else { return false }
        return ["22", "23", "54"].contains(state.prefix(2))
    }

    /// One sentence for an operator.
    public var explanation: String {
        switch self {
        case .unavailable: "PostgreSQL is unavailable"
        case .notMigrated(let message): "the database is not migrated (\(message)): run `cyclone migrate` (or the migrate job)"
        case .refused(let message): "PostgreSQL refused the statement: \(message)"
        case .other(let message): message
        }
    }
}

extension PostgresClient {
    /// Asks PostgreSQL for one row, within `timeout`: whether the store answers now, before work that would
    /// otherwise wait about a minute for a connection the pool cannot make.
    public func ping(within timeout: Duration, logger: Logger) async throws {
        _ = try await withTimeout(timeout) { try await self.query("SELECT 1", logger: logger) }
    }
}
