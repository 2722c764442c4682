import Synchronization

/// Set once start-up has finished (the services are running when the server's prelude runs); readiness reads it.
public final class StartupFlag: Sendable {
    private let state = Mutex(false)
    public init() {}
    public var isSet: Bool { state.withLock { $0 } }
    public func set() { state.withLock { $0 = true } }
}
