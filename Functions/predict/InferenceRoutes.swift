import CycloneHTTP
import CycloneModel
import CycloneServing
import CycloneStore
import Foundation
import HTTPTypes
import Hummingbird

/// The Open Inference Protocol v2 over REST (KServe v2, as Triton, MLServer and KServe serve it) and KServe's v1
/// paths, beside `/predict`, on the same models, scorer and store: an instance sent through `/v2/…/infer` is
/// scored, shadowed, stored and refused exactly as the same instance through `/predict`.
///
/// - `GET /v2/health/live`, `GET /v2/health/ready`, `GET /v2` (server metadata);
/// - `GET /v2/models/{name}[/versions/{v}]` (metadata), `…/ready`, `POST …/infer`;
/// - `GET /v1/models/{name}` (`{"name", "ready"}`), `POST /v1/models/{name}:predict` (the `/predict` body and
///   answer), and `GET /` (`{"status": "alive"}`, KServe v1's liveness).
///
/// Errors are `{"error": "…"}` (the protocol's shape): 400 for a bad request, 404 for a model or version not
/// served, 413 for too many instances or too large a body, 503 when not ready. Tensors may come as JSON `data`
/// or in the binary data extension (`Inference-Header-Content-Length`, `binary_data_size`), and outputs go back
/// as either (`binary_data_output`, or an output's `binary_data`).
struct InferenceRoutes: Sendable {
    let inference: Inference

    static let headerLength = HTTPField.Name("Inference-Header-Content-Length")!
    /// The paths whose errors are the protocol's `{"error": "…"}`.
    static let prefixes = ["/v1/", "/v2"]

    func register(on router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in jsonResponse(#"{"status":"alive"}"#) }
        let v2 = router.group("v2")
        v2.get("") { _, _ in
            let metadata: JSONValue = ["name": .string(Inference.serverName), "version": .string(Inference.serverVersion),
                                       "extensions": ["binary_tensor_data"]]
            return jsonResponse(metadata.jsonText)
        }
        v2.get("health/live") { _, _ in jsonResponse(#"{"live":true}"#) }
        v2.get("health/ready") { _, _ in
            await inference.isReady ? jsonResponse(#"{"ready":true}"#)
                                    : jsonResponse(#"{"ready":false}"#, status: .serviceUnavailable)
        }
        v2.get("models/:name") { _, context in try await metadata(context, version: nil) }
        v2.get("models/:name/versions/:version") { _, context in
            try await metadata(context, version: context.parameters.require("version"))
        }
        v2.get("models/:name/ready") { _, context in try await ready(context, version: nil) }
        v2.get("models/:name/versions/:version/ready") { _, context in
            try await ready(context, version: context.parameters.require("version"))
        }
        v2.post("models/:name/infer") { request, context in
            try await infer(request, name: context.parameters.path("name"), version: nil)
        }
        v2.post("models/:name/versions/:version/infer") { request, context in
            try await infer(request, name: context.parameters.path("name"),
                            version: context.parameters.require("version"))
        }

        let v1 = router.group("v1")
        v1.get("models/:model") { _, context in
            let name = try context.parameters.path("model")
            _ = try await inference.served(name, version: nil)
            return await modelReady(name)
        }
        v1.post("models/:model") { request, context in
            // `{name}:predict` is one path segment.
            let segment = try context.parameters.path("model")
            guard let colon = segment.lastIndex(of: ":"), segment[colon...] == ":predict" else {
                throw APIError(.notFound, "POST /v1/models/{name}:predict is served here; '\(segment)' names no verb it serves")
            }
            return try await inference.predict.predict(request, name: String(segment[..<colon]), context: context)
        }
    }

    private func metadata(_ context: BasicRequestContext, version: String?) async throws -> Response {
        let metadata = try await inference.metadata(try context.parameters.path("name"), version: version)
        return jsonResponse(InferenceTensors.metadata(metadata.model, versions: metadata.versions).jsonText)
    }

    private func ready(_ context: BasicRequestContext, version: String?) async throws -> Response {
        let name = try context.parameters.path("name")
        _ = try await inference.served(name, version: version)
        return await modelReady(name)
    }

    /// `{"name", "ready"}`: 200 when predict can serve, else 503.
    private func modelReady(_ name: String) async -> Response {
        var writer = JSONWriter()
        writer.raw("{\"name\":")
        writer.string(name)
        guard await inference.isReady else {
            writer.raw(",\"ready\":false}")
            return jsonResponse(writer.bytes, status: .serviceUnavailable)
        }
        writer.raw(",\"ready\":true}")
        return jsonResponse(writer.bytes)
    }

    func infer(_ request: Request, name: String, version: String?) async throws -> Response {
        let serving = try await inference.served(name, version: version)
        let headerLength = request.headers[Self.headerLength]
        let started = Inference.Start()
        let predict = inference.predict
        return try await predict.countingRefusals(serving, firstID: started.firstID) {
            if let encoding = request.headers[.contentEncoding], encoding.lowercased() != "identity" {
                throw APIError(.unsupportedMediaType, "Content-Encoding \(encoding) is not accepted; send the body uncompressed")
            }
            return try await request.withBody(limit: predict.settings.server.maxBodyBytes, anyType: headerLength != nil,
                                       budget: predict.budget) { buffer in
                let body = try InferenceRequestBody(buffer, headerLength: headerLength,
                                                    maxInstances: predict.settings.maxInstances)
                let result = try await inference.infer(serving, version: version, inputs: body.inputs,
                                                       requested: body.outputs?.map(\.name), started: started)
                var response = body.response(result.outputs, model: result.model)
                response.headers[PredictRoutes.storedHeader] = result.stored.rawValue
                return response
            }
        }
    }
}

extension InferenceError.Kind {
    var status: HTTPResponse.Status {
        switch self {
        case .invalid: .badRequest
        case .notFound: .notFound
        case .tooLarge: .contentTooLarge
        }
    }
}

/// An inference request's body: JSON, or JSON followed by binary tensor data (its first
/// `Inference-Header-Content-Length` bytes are the JSON).
struct InferenceRequestBody {
    struct RequestedOutput {
        var name: String
        var binary: Bool?
    }

    var id: String?
    var inputs: [InputTensor] = []
    var outputs: [RequestedOutput]?
    /// `parameters.binary_data_output`: every output in binary form unless it says otherwise.
    var binaryOutput = false

    /// Reads the body; a tensor holding more than `maxInstances` instances is refused before its data is read.
    init(_ buffer: ByteBuffer, headerLength: String?, maxInstances: Int) throws {
        var jsonPart = buffer
        var binary = ByteBuffer()
        if let headerLength {
            guard let length = Int(headerLength), length > 0, length <= buffer.readableBytes else {
                throw APIError(.badRequest, "Inference-Header-Content-Length is '\(headerLength)'; it must be the JSON part's length in bytes, at most the body's \(buffer.readableBytes)")
            }
            jsonPart = buffer.getSlice(at: buffer.readerIndex, length: length)!
            binary = buffer.getSlice(at: buffer.readerIndex + length, length: buffer.readableBytes - length)!
        }
        guard case .object(let top) = try Request.parseJSON(jsonPart) else {
            throw APIError(.badRequest, "the body must be a JSON object {\"inputs\": [...]}")
        }
        switch top["id"] {
        case nil, .null?: break
        case .string(let id)?: self.id = id
        case let other?: throw APIError(.badRequest, "must be a string, found \(other.typeName)", path: "id")
        }
        if case .object(let parameters)? = top["parameters"] {
            binaryOutput = try Self.flag(parameters["binary_data_output"], path: "parameters.binary_data_output") ?? false
        }
        guard case .array(let inputs)? = top["inputs"] else {
            throw APIError(.badRequest, "'inputs' is required: an array of tensors {\"name\", \"datatype\", \"shape\", \"data\"}",
                           path: "inputs")
        }
        var binaryOffset = 0
        for (index, input) in inputs.enumerated() {
            self.inputs.append(try Self.tensor(input, path: "inputs[\(index)]", binary: binary, offset: &binaryOffset,
                                               maxInstances: maxInstances))
        }
        guard binaryOffset == binary.readableBytes else {
            throw APIError(.badRequest, "the body holds \(binary.readableBytes - binaryOffset) bytes of binary data no input's binary_data_size claims")
        }
        switch top["outputs"] {
        case nil, .null?: break
        case .array(let outputs)? where outputs.isEmpty: break
        case .array(let outputs)?:
            self.outputs = try outputs.enumerated().map { index, output in
                guard case .object(let members) = output, case .string(let name)? = members["name"] else {
                    throw APIError(.badRequest, "a requested output must be an object with a 'name'", path: "outputs[\(index)]")
                }
                var binary: Bool?
                if case .object(let parameters)? = members["parameters"] {
                    binary = try Self.flag(parameters["binary_data"], path: "outputs[\(index)].parameters.binary_data")
                }
                return RequestedOutput(name: name, binary: binary)
            }
        case let other?: throw APIError(.badRequest, "must be an array, found \(other.typeName)", path: "outputs")
        }
    }

    private static func flag(_ value: JSONValue?, path: String) throws -> Bool? {
        switch value {
        case nil, .null?: nil
        case .bool(let flag)?: flag
        case let other?: throw APIError(.badRequest, "must be true or false, found \(other.typeName)", path: path)
        }
    }

    private static func tensor(_ value: JSONValue, path: String, binary: ByteBuffer, offset: inout Int, maxInstances: Int)
        throws -> InputTensor
    {
        guard case .object(let members) = value else {
            throw APIError(.badRequest, "an input must be an object {\"name\", \"datatype\", \"shape\", \"data\"}, found \(value.typeName)",
                           path: path)
        }
        guard case .string(let name)? = members["name"] else {
            throw APIError(.badRequest, "'name' is required, a string", path: "\(path).name")
        }
        guard case .string(let typeName)? = members["datatype"] else {
            throw APIError(.badRequest, "'datatype' is required, a string", path: "\(path).datatype")
        }
        let datatype: TensorDatatype
        do { datatype = try TensorDatatype.named(typeName) } catch {
            throw APIError(.badRequest, error.message, path: "\(path).datatype")
        }
        guard case .array(let dimensions)? = members["shape"] else {
            throw APIError(.badRequest, "'shape' is required, an array of dimensions", path: "\(path).shape")
        }
        var shape: [Int] = []
        for (index, dimension) in dimensions.enumerated() {
            guard case .number(let size) = dimension, size >= 0, size == size.rounded(), size < 2_147_483_648 else {
                throw APIError(.badRequest, "a dimension must be a non-negative integer", path: "\(path).shape[\(index)]")
            }
            shape.append(Int(size))
        }
        let count: Int
        do {
            count = try InferenceTensors.instanceCount(shape: shape, name: name, maxInstances: maxInstances)
        } catch {
            throw APIError(error.kind.status, error.message, path: path)
        }
        var binarySize: Int?
        if case .object(let parameters)? = members["parameters"], let size = parameters["binary_data_size"], size != .null {
            guard case .number(let bytes) = size, bytes >= 0, bytes == bytes.rounded(), bytes <= Double(binary.readableBytes - offset)
            else {
                throw APIError(.badRequest, "binary_data_size must be a byte count within the body's \(binary.readableBytes - offset) binary bytes left",
                               path: "\(path).parameters.binary_data_size")
            }
            binarySize = Int(bytes)
        }
        var elements: [JSONValue] = []
        if let binarySize {
            guard members["data"] == nil || members["data"] == .null else {
                throw APIError(.badRequest, "give 'data' or parameters.binary_data_size, not both", path: path)
            }
            do {
                elements = try binary.withUnsafeReadableBytes { bytes throws(InferenceError) in
                    try InferenceTensors.elements(binary: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + binarySize]),
                                                  datatype: datatype, count: count)
                }
            } catch {
                throw APIError(.badRequest, "input '\(name)': \(error.message)", path: path)
            }
            offset += binarySize
        } else {
            guard let data = members["data"], data != .null else {
                throw APIError(.badRequest, "'data' is required (or parameters.binary_data_size with binary data)", path: "\(path).data")
            }
            if datatype == .fp16 { throw APIError(.badRequest, "FP16 is not accepted; send FP32 or FP64", path: "\(path).datatype") }
            try flatten(data, datatype: datatype, into: &elements, path: "\(path).data")
            guard elements.count == count else {
                throw APIError(.badRequest, "'data' holds \(elements.count) elements; shape \(shape) holds \(count)",
                               path: "\(path).data")
            }
        }
        return InputTensor(name: name, datatype: datatype, shape: shape, elements: elements)
    }

    /// The tensor's elements in row-major order (`data` may be flat or nested), each checked against `datatype`.
    private static func flatten(_ data: JSONValue, datatype: TensorDatatype, into elements: inout [JSONValue],
                                path: String) throws
    {
        guard case .array(let items) = data else {
            guard let element = InferenceTensors.element(data, datatype: datatype) else {
                throw APIError(.badRequest, "each element of a tensor of \(datatype.rawValue) must be \(InferenceTensors.expected(datatype)), found \(data.typeName)",
                               path: path)
            }
            return elements.append(element)
        }
        for (index, item) in items.enumerated() {
            try flatten(item, datatype: datatype, into: &elements, path: "\(path)[\(index)]")
        }
    }

    /// The answer: `{"model_name", "model_version", "id", "outputs": […]}`, each output as JSON `data` or, when
    /// asked for, as binary data after the JSON (`Inference-Header-Content-Length` then says where it starts).
    func response(_ outputs: [OutputTensor], model: ModelArtifact) -> Response {
        var json = JSONWriter(capacity: 128 + outputs.count * 64)
        var binary: [UInt8] = []
        json.raw("{\"model_name\":")
        json.string(model.name)
        json.raw(",\"model_version\":")
        json.string(model.version)
        if let id {
            json.raw(",\"id\":")
            json.string(id)
        }
        json.raw(",\"outputs\":[")
        for (index, output) in outputs.enumerated() {
            if index > 0 { json.raw(UInt8(ascii: ",")) }
            json.raw("{\"name\":")
            json.string(output.name)
            json.raw(",\"datatype\":")
            json.string(output.datatype.rawValue)
            json.raw(",\"shape\":[")
            for (axis, size) in output.shape.enumerated() {
                if axis > 0 { json.raw(UInt8(ascii: ",")) }
                json.number(Double(size))
            }
            json.raw(UInt8(ascii: "]"))
            if self.outputs?.first(where: { $0.name == output.name })?.binary ?? binaryOutput {
                let bytes = InferenceTensors.binary(output.data)
                json.raw(",\"parameters\":{\"binary_data_size\":")
                json.number(Double(bytes.count))
                json.raw("}}")
                binary.append(contentsOf: bytes)
                continue
            }
            json.raw(",\"data\":[")
            switch output.data {
            case .fp64(let values):
                for (index, value) in values.enumerated() {
                    if index > 0 { json.raw(UInt8(ascii: ",")) }
                    json.number(value)
                }
            case .bytes(let values):
                for (index, value) in values.enumerated() {
                    if index > 0 { json.raw(UInt8(ascii: ",")) }
                    json.string(value)
                }
            }
            json.raw("]}")
        }
        json.raw("]}")
        guard !binary.isEmpty else { return jsonResponse(json.bytes) }
        var body = ByteBuffer(bytes: json.bytes)
        body.writeBytes(binary)
        return Response(status: .ok,
                        headers: [.contentType: "application/octet-stream",
                                  InferenceRoutes.headerLength: String(json.bytes.count)],
                        body: .init(byteBuffer: body))
    }
}
