import Configuration
import CycloneRuntime
import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// The main of every HTTP function: builds its service from the environment and runs it until SIGTERM; or logs
/// one line saying why it cannot, and exits 1 at once.
public enum FunctionMain {
    /// A port a function listens on, and the variable that sets it.
    public struct Port: Sendable {
        public var number: Int
        public var variable: String
        public init(_ number: Int, variable: String) {
            self.number = number
            self.variable = variable
        }
    }

    /// Runs the service `build` makes, once each of its ports is free.
    ///
    /// The ports are tried before any service starts: a port that is taken or forbidden stops the start with one
    /// line, before the database pool or the writer are running. Were it found by the server's own bind, the
    /// other services would be cancelled midway through their start, and a start that fails must not wait on
    /// them (predict once logged `model loaded` and then hung, rarely, under load). The server's bind still
    /// says the same should the port be taken in between.
    public static func run(_ name: String, reader: ConfigReader, logger: Logger,
                           build: @Sendable (ConfigReader) async throws -> (service: any Service, ports: [Port]))
        async -> Never
    {
        var ports: [Port] = []
        do {
            let (service, listening) = try await build(reader)
            ports = listening
            for port in ports { try checkFree(port) }
            try await ServiceGroup.cloudRun([.init(service: service)], logger: logger).run()
            exit(0)
        } catch {
            logger.critical("\(name) stopped: \(reason(error, ports: ports))", metadata: ["error": "\(String(reflecting: error))"])
            exit(1)
        }
    }

    /// Why a function stopped, in words an operator acts on.
    public static func reason(_ error: any Error, ports: [Port]) -> String {
        for port in ports {
            if let problem = portProblem(error, port: port.number, variable: port.variable) { return problem }
        }
        return "\(error)"
    }

    /// Throws `PortProblem` when `port` cannot be bound as the servers bind it (any address, `SO_REUSEADDR`).
    /// Port 0 (any free port) always can.
    static func checkFree(_ port: Port) throws {
        guard port.number != 0 else { return }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }  // no socket to try with: the server's bind will say what is wrong
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port.number).bigEndian)
        address.sin_addr.s_addr = INADDR_ANY
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound != 0, let problem = portProblem(IOError(errnoCode: errno, reason: "bind"), port: port.number,
                                                     variable: port.variable)
        else { return }
        throw PortProblem(description: problem)
    }

    /// A port a function cannot listen on.
    struct PortProblem: Error, CustomStringConvertible {
        var description: String
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
