import AsyncHTTPClient
import CycloneCloud
import Foundation
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#endif

/// A server the tests start as a child process, on a free port of its own.
public enum ChildServer {
    /// Starts `executable` with `environment` and `PORT` set to a free port, logging to `log(port)`, and
    /// returns once `GET ready` answers 200 while it still runs: another test's server on the port could
    /// answer first. A server that exits because the port was taken between the moment it was found and its
    /// bind (other tests start servers and open connections meanwhile) is started again on another, up to
    /// five times.
    public static func start(_ executable: String, environment: [String: String], log: (Int) -> String,
                             ready: String = "/readyz") async throws -> (process: ChildProcess, port: Int)
    {
        for _ in 0..<5 {
            let port = freePort()
            var environment = environment
            environment["PORT"] = "\(port)"
            let process = try ChildProcess(executable, environment: environment, logPath: log(port))
            var up = false
            for _ in 0..<300 where !up && !process.hasExited {
                if let response = try? await HTTPClient.shared.execute(
                    HTTPClientRequest(url: "http://127.0.0.1:\(port)\(ready)"), timeout: .seconds(1)),
                    response.status == .ok
                {
                    up = true
                } else {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            if up { try await Task.sleep(for: .milliseconds(200)) }
            if up && !process.hasExited { return (process, port) }
            if !process.hasExited { process.signal(SIGTERM) }
            _ = await process.wait()
            guard process.log.contains("is already in use") else {
                throw TestDatabaseError(description: "\(executable) did not become ready: \(process.log.suffix(800))")
            }
        }
        throw TestDatabaseError(description: "\(executable) found no free port in five tries")
    }
}
