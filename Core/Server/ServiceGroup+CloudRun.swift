import Logging
import ServiceLifecycle
import UnixSignals  // `.sigterm` is declared here; MemberImportVisibility wants the import spelled out

extension ServiceGroup {
    /// Drains on SIGTERM/SIGINT; escalates to cancellation after 8 s, before Cloud Run's SIGKILL at 10 s.
    public static func cloudRun(_ services: [ServiceGroupConfiguration.ServiceConfiguration], logger: Logger)
        -> ServiceGroup
    {
        var configuration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(8)
        return ServiceGroup(configuration: configuration)
    }
}
