import AsyncHTTPClient
import CycloneCloud
import CycloneModel
import CycloneGRPC
import CycloneRuntime
import CycloneStore
import CycloneTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ShutdownTests {
    /// The real `predict` process in async mode (answers before its rows are committed) gets SIGTERM while
    /// requests are in flight: it exits 0 and every prediction it answered is in PostgreSQL.
    @Test func sigtermWithRequestsInFlightCommitsEveryAcknowledgedRow() async throws {
        let binary = try Repository.product("predict")
        let model = try TestModels.file(TestModels.regression())
        try await withTestDatabase { db in
            let client = HTTPClient.shared
            let (process, port) = try await ChildServer.start(
                binary.path, environment: ["MODEL_PATH": model, "DATABASE_URL": db.url, "STORE_MODE": "async", "LOG_LEVEL": "warning"],
                log: { TestFiles.folder.appendingPathComponent("predict-\($0).log").path }, ready: "/healthz")
            let base = "http://127.0.0.1:\(port)"

            let acknowledged = Acknowledged()
            let body = #"{"instances": [\#(TestModels.bikeInstance.jsonText), \#(TestModels.bikeInstance.jsonText)]}"#
            await withTaskGroup(of: Void.self) { group in
                for n in 0..<400 {
                    group.addTask {
                        var request = HTTPClientRequest(url: base + "/predict")
                        request.method = .POST
                        request.body = .bytes(ByteBuffer(string: body))
                        guard let response = try? await client.execute(request, timeout: .seconds(3)),
                            response.status == .ok,
                            let bytes = try? await response.body.collect(upTo: 1 << 20),
                            let answer = try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any],
                            let predictions = answer["predictions"] as? [[String: Any]]
                        else { return }  // refused after shutdown began: not acknowledged
                        let ids = predictions.compactMap { $0["id"] as? String }
                        acknowledged.add(ids)
                    }
                    if n == 150 {
                        // Mid-stream: some answered (waiting for the first, however loaded the machine), many in
                        // flight or queued.
                        for _ in 0..<500 where acknowledged.ids.count < 2 { try? await Task.sleep(for: .milliseconds(10)) }
                        process.signal(SIGTERM)
                    }
                }
            }
            let status = await process.wait()
            #expect(status == 0, "predict exited \(status): \(process.log)")
            let ids = acknowledged.ids
            #expect(ids.count >= 2)
            let stored = Set(try await db.predictions().map { $0.id.uuidString.lowercased() })
            let missing = ids.filter { !stored.contains($0) }
            #expect(missing.isEmpty, "\(missing.count) acknowledged predictions were not stored")
        }
    }
}

/// Prediction ids the server answered with, from many tasks.
final class Acknowledged: Sendable {
    private let state = Mutex<[String]>([])
    func add(_ ids: [String]) { state.withLock { $0 += ids } }
    var ids: [String] { state.withLock { $0 } }
}

extension ShutdownTests {
    /// Every function started on a port something else holds exits 1 at once, with one line naming the port and
    /// the variable that set it (predict once logged `model loaded` and then hung, deaf to SIGTERM): the ports
    /// are tried before any service starts.
    @Test func everyFunctionOnATakenPortExitsAtOnceSayingSo() async throws {
        let model = try TestModels.file(TestModels.regression())
        try await withTestDatabase { db in
            // Hold a port the way another server would.
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = INADDR_ANY
            var bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            try #require(bound == 0 && listen(fd, 1) == 0)
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            let port = Int(UInt16(bigEndian: address.sin_port))
            // At debug level a connection attempt would be logged.
            let base = ["MODEL_PATH": model, "DATABASE_URL": db.url, "LOG_LEVEL": "debug"]
            let starts: [(name: String, environment: [String: String], variable: String)] = [
                ("predict", ["PORT": "\(port)"], "PORT"),
                ("predict", ["PORT": "\(freePort())", "REST_PORT": "\(port)"], "REST_PORT"),
                ("predict", ["PORT": "\(freePort())", "GRPC_PORT": "\(port)"], "GRPC_PORT"),
                ("label-ingest", ["PORT": "\(port)"], "PORT"),
                ("evaluate", ["PORT": "\(port)"], "PORT"),
            ]
            for (index, start) in starts.enumerated() {
                let log = TestFiles.folder.appendingPathComponent("\(start.name)-taken-\(port)-\(index).log").path
                defer { try? FileManager.default.removeItem(atPath: log) }
                let process = try ChildProcess(try Repository.product(start.name).path,
                                               environment: base.merging(start.environment) { _, new in new }, logPath: log)
                // Exits by itself: one that hangs is killed after a minute (however loaded the machine) and fails here.
                let status = try? await withTimeout(.seconds(60)) { await process.wait() }
                if status == nil { process.signal(SIGKILL) }
                #expect(status == 1, "\(start.name) \(start.variable): \(process.log)")
                let lines = process.log.split(separator: "\n")
                let critical = lines.filter { $0.contains("CRITICAL") }
                #expect(critical.count == 1 && critical[0].contains("port \(port) is already in use (\(start.variable))"),
                        "\(start.name) \(start.variable): \(process.log)")
                // Said before anything started: no connection to the database was attempted.
                #expect(!lines.contains { $0.contains("Connection") || $0.contains("registered") },
                        "\(start.name) \(start.variable): \(process.log)")
            }
        }
    }
}

extension ShutdownTests {
    /// Connections that never answer the shutdown's PING (raw sockets that sent HTTP/2's preface and nothing
    /// more, as a stalled client would) do not hold predict's exit until its deadline, with the writer's flush
    /// behind them: once no call is under way they are closed. A well-behaved client stays connected through the
    /// signal; the process exits 0 and the prediction answered over gRPC is stored.
    @Test func stalledGRPCConnectionsAreClosedAtShutdown() async throws {
        let binary = try Repository.product("predict")
        let model = try TestModels.file(TestModels.regression())
        try await withTestDatabase { db in
            let grpcPort = freePort()
            let (process, _) = try await ChildServer.start(
                binary.path, environment: ["MODEL_PATH": model, "DATABASE_URL": db.url, "STORE_MODE": "async",
                                           "GRPC_PORT": "\(grpcPort)", "LOG_LEVEL": "warning"],
                log: { TestFiles.folder.appendingPathComponent("predict-grpc-\($0).log").path })
            var stalled: [Int32] = []
            defer { stalled.forEach { _ = close($0) } }
            let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]  // and an empty SETTINGS
            for _ in 0..<20 {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(grpcPort).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                try #require(connected == 0 && write(fd, preface, preface.count) == preface.count)
                stalled.append(fd)
            }
            try await withGRPCClient(transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: grpcPort),
                                                                   transportSecurity: .plaintext)) { client in
                let inference = Inference_GRPCInferenceService.Client(wrapping: client)
                let response = try await inference.modelInfer(InferenceGRPCTests.typed([InferenceGRPCTests.bike]))
                // BYTES: each element a little-endian UInt32 length and its bytes.
                let id = try #require(response.rawOutputContents.last.map { String(decoding: $0.dropFirst(4), as: UTF8.self) })
                process.signal(SIGTERM)
                let status = await process.wait()
                #expect(status == 0, "predict exited \(status): \(process.log)")
                #expect(process.log.contains("gRPC connections still open after the calls under way ended; closing them"),
                        "\(process.log)")
                let stored = try await db.predictions().map { $0.id.uuidString.lowercased() }
                #expect(stored == [id])
            }
        }
    }
}
