import CycloneGRPC
import CycloneHTTP
import CycloneModel
import CycloneServing
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCProtobuf
import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// The Open Inference Protocol's `inference.GRPCInferenceService` (ServerLive, ServerReady, ModelReady,
/// ServerMetadata, ModelMetadata, ModelInfer) on `GRPC_PORT`, over HTTP/2 cleartext as Cloud Run carries it:
/// the same inference as REST's (`Inference`), so the same models, canary and shadow, storage, limits and
/// refusals. Inputs come as typed `contents` or as `raw_input_contents` (little-endian, BYTES length-prefixed);
/// outputs go back as `raw_output_contents`, as Triton answers. Errors are gRPC statuses with the REST message:
/// INVALID_ARGUMENT (400), NOT_FOUND (404), RESOURCE_EXHAUSTED (413), UNAVAILABLE (503).
struct InferenceService: Inference_GRPCInferenceService.SimpleServiceProtocol {
    let inference: Inference

    func serverLive(request: Inference_ServerLiveRequest, context: ServerContext) async throws -> Inference_ServerLiveResponse {
        .with { $0.live = true }
    }

    func serverReady(request: Inference_ServerReadyRequest, context: ServerContext) async throws
        -> Inference_ServerReadyResponse
    {
        let ready = await inference.isReady
        return .with { $0.ready = ready }
    }

    func modelReady(request: Inference_ModelReadyRequest, context: ServerContext) async throws -> Inference_ModelReadyResponse {
        _ = try await Self.mapped { try await inference.served(request.name, version: request.version.nonEmpty) }
        let ready = await inference.isReady
        return .with { $0.ready = ready }
    }

    func serverMetadata(request: Inference_ServerMetadataRequest, context: ServerContext) async throws
        -> Inference_ServerMetadataResponse
    {
        .with {
            $0.name = Inference.serverName
            $0.version = Inference.serverVersion
        }
    }

    func modelMetadata(request: Inference_ModelMetadataRequest, context: ServerContext) async throws
        -> Inference_ModelMetadataResponse
    {
        let metadata = try await Self.mapped { try await inference.metadata(request.name, version: request.version.nonEmpty) }
        let tensor = { (tensor: InferenceTensors.TensorMetadata) in
            Inference_ModelMetadataResponse.TensorMetadata.with {
                $0.name = tensor.name
                $0.datatype = tensor.datatype.rawValue
                $0.shape = tensor.shape.map(Int64.init)
            }
        }
        return .with {
            $0.name = metadata.model.name
            $0.versions = metadata.versions
            $0.platform = InferenceTensors.platform
            $0.inputs = InferenceTensors.inputs(metadata.model).map(tensor)
            $0.outputs = InferenceTensors.outputs(metadata.model).map(tensor)
        }
    }

    func modelInfer(request: Inference_ModelInferRequest, context: ServerContext) async throws -> Inference_ModelInferResponse {
        let version = request.modelVersion.nonEmpty
        let serving = try await Self.mapped { try await inference.served(request.modelName, version: version) }
        let started = Inference.Start()
        // The message is read already (at most MAX_BODY_BYTES); its instances are built within the same budget
        // of bytes in flight as REST bodies.
        var size = request.rawInputContents.reduce(0) { $0 + $1.count }
        for input in request.inputs {
            let contents = input.contents
            let numbers: [Int] = [contents.fp64Contents.count, contents.fp32Contents.count, contents.int64Contents.count,
                                  contents.intContents.count, contents.uintContents.count, contents.uint64Contents.count,
                                  contents.boolContents.count]
            size += 8 * numbers.reduce(0, +) + contents.bytesContents.reduce(0) { $0 + $1.count + 8 }
        }
        return try await Self.mapped {
            try await inference.predict.budget.withBudget(size) {
                try await inference.predict.countingRefusals(serving, firstID: started.firstID) {
                    let features = serving.live.artifact.features.count
                    let inputs = try Self.tensors(request, maxInstances: inference.predict.settings.maxInstances,
                                                  maxInputs: features + 1)
                    let requested = request.outputs.isEmpty ? nil : request.outputs.map(\.name)
                    let result = try await inference.infer(serving, version: version, inputs: inputs,
                                                           requested: requested, started: started)
                    return Inference_ModelInferResponse.with { response in
                        response.modelName = result.model.name
                        response.modelVersion = result.model.version
                        response.id = request.id
                        for output in result.outputs {
                            response.outputs.append(.with {
                                $0.name = output.name
                                $0.datatype = output.datatype.rawValue
                                $0.shape = output.shape.map(Int64.init)
                            })
                            response.rawOutputContents.append(Data(InferenceTensors.binary(output.data)))
                        }
                        if let classes = InferenceTensors.classesParameter(result.model) {
                            response.parameters["classes"] = .with { $0.stringParam = classes }
                        }
                    }
                }
            }
        }
    }

    /// The request's input tensors: typed `contents`, or `raw_input_contents` (one per input, in order); one
    /// holding more than `maxInstances` instances is refused before its data is read.
    static func tensors(_ request: Inference_ModelInferRequest, maxInstances: Int, maxInputs: Int) throws -> [InputTensor] {
        let raw = request.rawInputContents
        guard request.inputs.count <= maxInputs else {
            throw APIError(.badRequest, "\(request.inputs.count) inputs is more than the model has (\(maxInputs - 1) features and '\(InferenceTensors.keyInput)')",
                           path: "inputs")
        }
        guard raw.isEmpty || raw.count == request.inputs.count else {
            throw APIError(.badRequest, "raw_input_contents holds \(raw.count) tensors for \(request.inputs.count) inputs; give one per input, in order")
        }
        return try request.inputs.enumerated().map { index, input in
            let path = "inputs[\(index)]"
            let datatype: TensorDatatype
            do { datatype = try TensorDatatype.named(input.datatype) } catch let error as InferenceError {
                throw APIError(.badRequest, error.message, path: "\(path).datatype")
            }
            for (axis, size) in input.shape.enumerated() where size < 0 || size >= 2_147_483_648 {
                throw APIError(.badRequest, "a dimension must be a non-negative integer", path: "\(path).shape[\(axis)]")
            }
            let count: Int
            do {
                count = try InferenceTensors.instanceCount(shape: input.shape.map { Int($0) }, name: input.name,
                                                           maxInstances: maxInstances)
            } catch let error as InferenceError {
                throw APIError(error.kind.status, error.message, path: path)
            }
            let elements: [JSONValue]
            if !raw.isEmpty {
                guard !input.hasContents else {
                    throw APIError(.badRequest, "give contents or raw_input_contents, not both", path: "\(path).contents")
                }
                do {
                    elements = try raw[index].withUnsafeBytes { bytes throws(InferenceError) in
                        try InferenceTensors.elements(binary: bytes, datatype: datatype, count: count)
                    }
                } catch let error as InferenceError {
                    throw APIError(.badRequest, "input '\(input.name)': \(error.message)", path: "raw_input_contents[\(index)]")
                }
            } else {
                elements = try Self.elements(input.contents, datatype: datatype, count: count, path: "\(path).contents")
            }
            // No element of a gRPC tensor can be null: an empty caller key is none.
            let keys = input.name == InferenceTensors.keyInput && datatype == .bytes
            return InputTensor(name: input.name, datatype: datatype, shape: input.shape.map { Int($0) },
                               elements: keys ? elements.map { $0 == .string("") ? .null : $0 } : elements)
        }
    }

    /// The typed contents of a `datatype` tensor as instance values; NaN is a missing value. The field the
    /// datatype reads must hold `count` elements and every other field none, checked before anything is built.
    private static func elements(_ contents: Inference_InferTensorContents, datatype: TensorDatatype, count: Int,
                                 path: String) throws -> [JSONValue]
    {
        let fields: [(name: String, count: Int, reads: Bool)] = [
            ("bool_contents", contents.boolContents.count, datatype == .bool),
            ("int_contents", contents.intContents.count, [.int8, .int16, .int32].contains(datatype)),
            ("int64_contents", contents.int64Contents.count, datatype == .int64),
            ("uint_contents", contents.uintContents.count, [.uint8, .uint16, .uint32].contains(datatype)),
            ("uint64_contents", contents.uint64Contents.count, datatype == .uint64),
            ("fp32_contents", contents.fp32Contents.count, datatype == .fp32),
            ("fp64_contents", contents.fp64Contents.count, datatype == .fp64),
            ("bytes_contents", contents.bytesContents.count, datatype == .bytes),
        ]
        if datatype == .fp16 { throw APIError(.badRequest, "FP16 is not accepted; send FP32 or FP64", path: path) }
        for field in fields where field.count != (field.reads ? count : 0) {
            throw APIError(.badRequest, field.reads
                ? "its \(field.name) hold \(field.count) elements; the shape holds \(count)"
                : "a tensor of \(datatype.rawValue) is read from \(fields.first { $0.reads }?.name ?? "?"), not \(field.name)",
                path: path)
        }
        func numbers<T: BinaryInteger>(_ values: [T]) throws -> [JSONValue] {
            try values.enumerated().map { index, value in
                guard let element = InferenceTensors.element(.number(Double(value)), datatype: datatype) else {
                    throw APIError(.badRequest, "\(value) is outside \(datatype.rawValue)'s range", path: "\(path)[\(index)]")
                }
                return element
            }
        }
        switch datatype {
        case .bool: return contents.boolContents.map(JSONValue.bool)
        case .int8, .int16, .int32: return try numbers(contents.intContents)
        case .int64: return contents.int64Contents.map { .number(Double($0)) }
        case .uint8, .uint16, .uint32: return try numbers(contents.uintContents)
        case .uint64: return contents.uint64Contents.map { .number(Double($0)) }
        case .fp32: return contents.fp32Contents.map { $0.isNaN ? .null : .number(Double($0)) }
        case .fp64, .fp16: return contents.fp64Contents.map { $0.isNaN ? .null : .number($0) }
        case .bytes:
            return try contents.bytesContents.enumerated().map { index, bytes in
                guard let text = String(data: bytes, encoding: .utf8) else {
                    throw APIError(.badRequest, "element \(index) is not UTF-8 text", path: "\(path)[\(index)]")
                }
                return .string(text)
            }
        }
    }

    /// Runs `body`, answering an `APIError` as the gRPC status its HTTP status stands for, with its message.
    static func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as APIError {
            throw RPCError(code: error.status.rpcCode, message: error.flatMessage)
        }
    }
}

extension HTTPResponse.Status {
    /// The gRPC status code an HTTP status stands for.
    var rpcCode: RPCError.Code {
        switch code {
        case 404: .notFound
        case 413: .resourceExhausted
        case 503: .unavailable
        case 400..<500: .invalidArgument
        default: .internalError
        }
    }
}

extension String {
    /// `nil` for the empty string (proto3's unset).
    var nonEmpty: String? { isEmpty ? nil : self }
}

/// The inference service with ModelInfer's messages held to `maxMessageBytes`, refused as RESOURCE_EXHAUSTED
/// with the sizes (the transport reads a quarter more, and resets a stream beyond that with a bare CANCELLED,
/// so a message a little over the limit gets a status that says why).
struct LimitedInferenceService: RegistrableRPCService {
    let service: InferenceService
    let maxMessageBytes: Int

    /// ProtobufDeserializer after a size check.
    struct Deserializer<Message: SwiftProtobuf.Message>: MessageDeserializer {
        let limit: Int

        func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> Message {
            guard bytes.count <= limit else {
                throw RPCError(code: .resourceExhausted,
                               message: "the message is \(bytes.count) bytes; at most \(limit) are accepted")
            }
            return try ProtobufDeserializer<Message>().deserialize(bytes)
        }
    }

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        service.registerMethods(with: &router)
        router.registerHandler(
            forMethod: Inference_GRPCInferenceService.Method.ModelInfer.descriptor,
            deserializer: Deserializer<Inference_ModelInferRequest>(limit: maxMessageBytes),
            serializer: ProtobufSerializer<Inference_ModelInferResponse>()
        ) { [service] request, context in
            let message = try await ServerRequest(stream: request)
            return StreamingServerResponse(single: try await service.modelInfer(request: message, context: context))
        }
    }
}

/// Counts the calls under way, every method's, each until its response is written (the producer the
/// handler returns runs after it), and the calls ever started, so a call that came and went between two
/// looks still counts as activity.
struct CallCount: ServerInterceptor {
    private let counts = Counts()

    final class Counts: Sendable {
        let current = Atomic<Int>(0), started = Atomic<Int>(0)
    }

    var current: Int { counts.current.load(ordering: .relaxed) }
    var started: Int { counts.started.load(ordering: .relaxed) }

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let counts = counts
        counts.started.add(1, ordering: .relaxed)
        counts.current.add(1, ordering: .relaxed)
        let response: StreamingServerResponse<Output>
        do { response = try await next(request, context) } catch {
            counts.current.subtract(1, ordering: .relaxed)
            throw error
        }
        guard case .success(var contents) = response.accepted else {
            counts.current.subtract(1, ordering: .relaxed)
            return response
        }
        let producer = contents.producer
        contents.producer = { writer in
            defer { counts.current.subtract(1, ordering: .relaxed) }
            return try await producer(writer)
        }
        return StreamingServerResponse(accepted: .success(contents))
    }
}

/// predict's gRPC server as a service of its lifecycle: it opens its port once predict is ready (so a TCP
/// startup probe waits for the model, the writer and the schema), and serves until the graceful shutdown,
/// which lets the RPCs under way finish. A connection carries at most `maxStreams` calls at once (advertised,
/// so clients queue), each message at most `maxMessageBytes`.
///
/// The shutdown sends each connection a GOAWAY and a PING, and the transport closes a connection once its
/// client has answered the PING and its calls have ended. A client that never answers (a stalled or half-open
/// connection) would hold the shutdown until the process's deadline, and the writer's flush behind it: once
/// no call has been under way or started for `settle` (or `grace` after the gRPC server's shutdown began),
/// every connection still open is closed.
struct GRPCServerService: Service {
    let server: GRPCServer<HTTP2ServerTransport.Custom<PlaintextListener>>
    let port: Int
    let inference: Inference
    let calls = CallCount()
    let logger: Logger
    static let maxStreams = 32
    static let grace = Duration.seconds(5)
    static let settle = Duration.milliseconds(250)

    /// Why the gRPC server could not start, in one line.
    struct StartFailure: Error, CustomStringConvertible {
        var description: String
    }

    init(port: Int, maxMessageBytes: Int, inference: Inference, logger: Logger) {
        self.port = port
        self.inference = inference
        self.logger = logger
        var config = HTTP2ServerTransport.Custom<PlaintextListener>.Config.defaults
        // The transport resets a stream whose message is over its limit with no status; up to a quarter over
        // the limit the service reads it and refuses it with one.
        let (read, overflow) = maxMessageBytes.addingReportingOverflow(maxMessageBytes / 4)
        config.rpc.maxRequestPayloadSize = overflow ? Int.max : read
        config.http2.maxConcurrentStreams = Self.maxStreams
        let transport = HTTP2ServerTransport.Custom(listenerFactory: PlaintextListener(host: "0.0.0.0", port: port),
                                                    config: config)
        server = GRPCServer(transport: transport, services: [
            LimitedInferenceService(service: InferenceService(inference: inference), maxMessageBytes: maxMessageBytes),
        ], interceptors: [calls])
    }

    /// Listens in plaintext (h2c: TLS ends at Cloud Run's front end or the local machine's edge). The Posix
    /// transport's own listener would look for a TLS peer certificate on every RPC, TLS or not: a hop to the
    /// event loop and an error thrown and caught per call.
    struct PlaintextListener: HTTP2ServerTransport.ListenerFactory {
        var host: String
        var port: Int
        var eventLoopGroup: any EventLoopGroup { MultiThreadedEventLoopGroup.singleton }

        func makeListeningChannel(listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
                                  connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator)
            async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never>
        {
            try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelInitializer { listenerConfigurator.configure(channel: $0) }
                .bind(host: host, port: port) { connectionConfigurator.configure(channel: $0, tls: .none) }
        }
    }

    func run() async throws {
        // Not before predict can serve: until then the port stays closed.
        while await !inference.isReady {
            try? await Task.sleep(for: .milliseconds(20))
            if Task.isCancelled || Task.isShuttingDownGracefully { return }
        }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await server.serve() }
                group.addTask { [server, calls, logger] in
                    try await gracefulShutdown()
                    server.beginGracefulShutdown()
                    let clock = ContinuousClock()
                    let deadline = clock.now + Self.grace
                    var idleSince: ContinuousClock.Instant?, seen = calls.started
                    while clock.now < deadline {
                        try await Task.sleep(for: .milliseconds(20))
                        if calls.current > 0 || calls.started != seen {
                            (idleSince, seen) = (nil, calls.started)
                            continue
                        }
                        let since = idleSince ?? clock.now
                        idleSince = since
                        if clock.now - since >= Self.settle { break }
                    }
                    let open = calls.current
                    logger.warning(open == 0 ? "gRPC connections still open after the calls under way ended; closing them"
                                             : "gRPC calls still under way \(Self.grace) after the shutdown began (\(open)); closing their connections")
                }
                // Whichever ends first: the server, its shutdown done (the other stops waiting), or the wait
                // (the server stops at once, closing what is left). Once the shutdown has begun, an error of
                // the server's (or the wait cancelled by the process's deadline) is logged, not thrown: thrown,
                // it would cancel the services still to stop, the writer's flush among them.
                do {
                    try await group.next()
                } catch where Task.isShuttingDownGracefully {
                    logger.error("the gRPC server ended its shutdown with an error", metadata: ["error": "\(error)"])
                }
                group.cancelAll()
            }
        } catch let error as RuntimeError {
            if let cause = error.cause, let problem = FunctionMain.portProblem(cause, port: port, variable: "GRPC_PORT") {
                throw StartFailure(description: problem)
            }
            throw error
        }
    }
}
