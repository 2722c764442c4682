import Configuration
import CycloneRuntime
import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// The main of every HTTP function: builds its service from the environment and runs it until SIGTERM; or logs
/// one line saying why it cannot, and exits 1 at once.
public enum FunctionMain {
    public static func run(_ name: String, reader: ConfigReader, logger: Logger,
                           build: @Sendable (ConfigReader) async throws -> (service: any Service, port: Int)) async -> Never
    {
        var port: Int?
        do {
            let (service, listening) = try await build(reader)
            port = listening
            try await ServiceGroup.cloudRun([.init(service: service)], logger: logger).run()
            exit(0)
        } catch {
            logger.critical("\(name) stopped: \(reason(error, port: port))", metadata: ["error": "\(String(reflecting: error))"])
            exit(1)
        }
    }

    /// Why a function stopped, in words an operator acts on.
    public static func reason(_ error: any Error, port: Int?) -> String {
        if let port, let problem = portProblem(error, port: port, variable: "PORT") { return problem }
        return "\(error)"
    }

    /// What is wrong with listening on `port` (set by `variable`) when `error` says it is taken or forbidden.
    public static func portProblem(_ error: any Error, port: Int, variable: String) -> String? {
        guard let error = error as? IOError else { return nil }
        switch error.errnoCode {
        case EADDRINUSE: return "port \(port) is already in use (\(variable)): stop what holds it or choose another"
        case EACCES: return "port \(port) needs privileges this process lacks (\(variable)): choose one above 1023"
        default: return nil
        }
    }
}
