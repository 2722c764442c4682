import CycloneModel
import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals  // `.sigterm` is declared here; MemberImportVisibility wants the import spelled out

extension ServiceGroup {
    /// Drains on SIGTERM/SIGINT; escalates to cancellation after 8 s, and exits the process at 9.5 s whatever
    /// is still running, before Cloud Run's SIGKILL at 10 s.
    public static func cloudRun(_ services: [ServiceGroupConfiguration.ServiceConfiguration], logger: Logger)
        -> ServiceGroup
    {
        // Last in the list, so it hears of the shutdown first.
        var configuration = ServiceGroupConfiguration(
            services: services + [.init(service: ShutdownDeadline(limit: .milliseconds(9_500), logger: logger),
                                        successTerminationBehavior: .ignore)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(8)
        return ServiceGroup(configuration: configuration)
    }
}

/// Ends the process `limit` after its shutdown began if it has not ended by then, with one log line (for a
/// process's main service group only: it exits the process):
/// a service that ignores cancellation (a driver call that never returns) must not keep a revision past
/// Cloud Run's SIGKILL, which would lose the log lines of rows not stored.
public struct ShutdownDeadline: Service {
    public let limit: Duration
    public let logger: Logger

    public init(limit: Duration, logger: Logger) {
        self.limit = limit
        self.logger = logger
    }

    public func run() async throws {
        // Returns when the shutdown begins, or throws when the group is cancelled instead: either way it stops.
        try? await gracefulShutdown()
        let (limit, logger) = (limit, logger)
        DispatchQueue.global().asyncAfter(deadline: .now() + limit.seconds) {
            logger.critical("shutdown did not finish within \(limit.seconds) s; exiting")
            exit(1)
        }
    }
}
