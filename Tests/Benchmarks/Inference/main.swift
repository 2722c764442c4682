import AsyncHTTPClient
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NIOCore
import NIOHTTP1

/// The load generator of scripts/bench-inference: one request, sent again and again by CONCURRENCY tasks for
/// DURATION seconds, over HTTP/1.1 (keep-alive connections, one per task) or gRPC (CONNECTIONS HTTP/2
/// connections, default 4, the tasks spread over them, a stream per call), so REST and gRPC are measured by
/// the same client. Prints one JSON line: requests
/// answered OK, errors, requests per second, p50 and p99 in milliseconds.
///
///   inference-load http URL BODY_FILE [HEADER=VALUE…]
///   inference-load grpc HOST:PORT SERVICE/METHOD MESSAGE_FILE      (a serialized protobuf request)
///
/// DURATION (10) and CONCURRENCY (50) come from the environment.
struct Bytes: MessageSerializer, MessageDeserializer {
    func serialize<Output: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Output { Output(message) }
    func deserialize<Input: GRPCContiguousBytes>(_ bytes: Input) throws -> [UInt8] {
        bytes.withUnsafeBytes { Array($0) }
    }
}

actor Tally {
    var latencies: [Double] = []
    var errors = 0
    var firstError: String?
    func add(_ seconds: Double) { latencies.append(seconds) }
    func fail(_ error: String) {
        errors += 1
        if firstError == nil { firstError = error }
    }
}

let arguments = CommandLine.arguments
let environment = ProcessInfo.processInfo.environment
let duration = Double(environment["DURATION"] ?? "") ?? 10
let concurrency = Int(environment["CONCURRENCY"] ?? "") ?? 50
guard arguments.count >= 4 else {
    FileHandle.standardError.write(Data("usage: inference-load http URL BODY_FILE [H=V…] | grpc HOST:PORT SERVICE/METHOD FILE\n".utf8))
    exit(2)
}
let tally = Tally()
let clock = ContinuousClock()
let end = clock.now + .milliseconds(Int(duration * 1_000))

func run(_ call: @escaping @Sendable (_ worker: Int) async throws -> Void) async {
    await withTaskGroup(of: Void.self) { group in
        for worker in 0..<concurrency {
            group.addTask {
                while clock.now < end {
                    let start = clock.now
                    do {
                        try await call(worker)
                        let elapsed = clock.now - start
                        await tally.add(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                    } catch {
                        await tally.fail("\(error)")
                    }
                }
            }
        }
    }
}

let started = clock.now
if arguments[1] == "http" {
    let url = arguments[2]
    let body = try Data(contentsOf: URL(fileURLWithPath: arguments[3]))
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = concurrency
    let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    var headers: [(String, String)] = [("Content-Type", "application/json")]
    for header in arguments.dropFirst(4) {
        let parts = header.split(separator: "=", maxSplits: 1).map(String.init)
        if parts.count == 2 { headers.append((parts[0], parts[1])) }
    }
    let sent = headers
    await run { _ in
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in sent { request.headers.replaceOrAdd(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 64 << 20)
        guard response.status == .ok else { throw HTTPClientError.invalidURL }
    }
    try await client.shutdown().get()
} else {
    let address = arguments[2].split(separator: ":")
    let method = arguments[3].split(separator: "/").map(String.init)
    let message = Array(try Data(contentsOf: URL(fileURLWithPath: arguments[4])))
    let descriptor = MethodDescriptor(fullyQualifiedService: method[0], method: method[1])
    let connections = Int(environment["CONNECTIONS"] ?? "") ?? 4
    var clients: [GRPCClient<HTTP2ClientTransport.Posix>] = []
    for _ in 0..<connections {
        clients.append(GRPCClient(transport: try .http2NIOPosix(
            target: .ipv4(address: String(address[0]), port: Int(address[1]) ?? 0), transportSecurity: .plaintext)))
    }
    let all = clients
    try await withThrowingDiscardingTaskGroup { group in
        for client in all { group.addTask { try await client.runConnections() } }
        await run { worker in
            _ = try await all[worker % all.count].unary(
                request: ClientRequest(message: message), descriptor: descriptor, serializer: Bytes(),
                deserializer: Bytes(), options: .defaults) { try $0.message }
        }
        for client in all { client.beginGracefulShutdown() }
    }
}
let elapsed = clock.now - started
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
let latencies = await tally.latencies.sorted()
let errors = await tally.errors
func percentile(_ p: Double) -> Double {
    latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] * 1_000
}
print(String(format: #"{"requests": %d, "errors": %d, "rps": %.1f, "p50_ms": %.2f, "p99_ms": %.2f}"#,
             latencies.count, errors, Double(latencies.count) / seconds, percentile(0.5), percentile(0.99)))
if let first = await tally.firstError { FileHandle.standardError.write(Data("first error: \(first)\n".utf8)) }
