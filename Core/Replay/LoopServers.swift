import AsyncHTTPClient
import CycloneCloud
import CycloneModel
import Foundation
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// predict, label-ingest and evaluate as child processes on free loopback ports, each logging to a file in
/// the demo's folder, and the HTTP calls the demo makes to them.
public struct LoopServers: Sendable {
    public struct Server: Sendable {
        public var name: String
        var process: ChildProcess
        /// `http://127.0.0.1:PORT`.
        public var base: String
    }

    public let predict: Server
    public let labels: Server
    public let evaluate: Server
    var all: [Server] { [predict, labels, evaluate] }

    /// Starts the three from `binaries` with `environment` (each gets its own `PORT`; evaluate's is
    /// `evaluatePort` when given), one at a time, each ready (`/readyz`) before the next starts. A free port
    /// can be taken between the moment it is found and the child's bind: a child that exits saying so is
    /// started again on another port.
    static func start(binaries: String, folder: String, environment: [String: String], evaluatePort: Int? = nil)
        async throws -> LoopServers
    {
        var started: [Server] = []
        var used: Set<Int> = []
        do {
            for name in ["predict", "label-ingest", "evaluate"] {
                for attempt in 1... {
                    var port = name == "evaluate" ? evaluatePort ?? freePort() : freePort()
                    while used.contains(port) && (name != "evaluate" || evaluatePort == nil) { port = freePort() }
                    used.insert(port)
                    var environment = environment
                    environment["PORT"] = "\(port)"
                    let process = try ChildProcess("\(binaries)/\(name)", environment: environment,
                                                   stdout: "\(folder)/\(name).log")
                    let server = Server(name: name, process: process, base: "http://127.0.0.1:\(port)")
                    do {
                        try await waitUntilReady(server)
                        started.append(server)
                        break
                    } catch {
                        if !process.hasExited { process.signal(SIGTERM) }
                        _ = await process.wait()
                        let taken = process.log.contains("port \(port) is already in use")
                        guard taken, attempt < 5, name != "evaluate" || evaluatePort == nil else { throw error }
                    }
                }
            }
        } catch {
            for server in started { server.process.signal(SIGTERM) }
            for server in started { _ = await server.process.wait() }
            throw error
        }
        return LoopServers(predict: started[0], labels: started[1], evaluate: started[2])
    }

    private static func waitUntilReady(_ server: Server) async throws {
        for _ in 0..<300 {
            if server.process.hasExited { break }
            if let (status, _) = try? await call(.GET, server.base + "/readyz", body: nil), status == 200,
                !server.process.hasExited
            {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let tail = server.process.log.split(separator: "\n").suffix(3).joined(separator: " | ")
        throw ReplayError("\(server.name) did not become ready: \(tail.isEmpty ? "no output" : tail)")
    }

    /// SIGTERM to each (all three by default), then waits for them to exit (they drain what they hold first).
    public func stop(_ servers: [Server]? = nil) async {
        for server in servers ?? all { server.process.signal(SIGTERM) }
        for server in servers ?? all { _ = await server.process.wait() }
    }

    /// GETs a JSON document; throws unless the answer is 200.
    func get(_ server: Server, _ path: String) async throws -> JSONValue {
        try await request(.GET, server, path, body: nil)
    }

    /// POSTs a JSON body; throws unless the answer is 200, with the server's error message.
    func post(_ server: Server, _ path: String, _ body: String) async throws -> JSONValue {
        try await request(.POST, server, path, body: body)
    }

    private func request(_ method: HTTPMethod, _ server: Server, _ path: String, body: String?) async throws -> JSONValue {
        let (status, answer) = try await Self.call(method, server.base + path, body: body)
        guard status == 200 else {
            throw ReplayError("\(server.name) answered \(path) with \(status): \(String(decoding: answer, as: UTF8.self))")
        }
        do { return try JSONParser.parse(answer) } catch {
            throw ReplayError("\(server.name) answered \(path) with JSON that does not parse: \(error)")
        }
    }

    private static func call(_ method: HTTPMethod, _ url: String, body: String?) async throws -> (UInt, [UInt8]) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return (response.status.code, Array(bytes.readableBytesView))
    }
}
