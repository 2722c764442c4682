import CycloneCloud
import CycloneGRPC
import CycloneModel
import CycloneServing
import CycloneStore
import CycloneTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SwiftProtobuf
import Testing

@testable import Predict

/// The Open Inference Protocol over gRPC (`GRPC_PORT`), through the stubs generated from its .proto: the same
/// answers and rows as `/predict`, typed and raw contents, and the protocol's status codes. (scripts/oip-clients
/// drives the same service with tritonclient and the kserve SDK.)
@Suite struct InferenceGRPCTests {
    typealias Request = Inference_ModelInferRequest

    /// Runs `test` with predict serving REST and gRPC, and a gRPC client of the inference service.
    func withGRPC(environment: [String: String] = [:], model: ModelArtifact? = nil,
                  _ test: @escaping @Sendable (Inference_GRPCInferenceService.Client<HTTP2ClientTransport.Posix>,
                                               any TestClientProtocol, TestDatabase) async throws -> Void) async throws
    {
        let port = freePort()
        let path = try TestModels.file(model ?? TestModels.regressionWithProfile())
        try await withTestDatabase { db in
            let settings = try settings(["MODEL_PATH": path, "DATABASE_URL": db.url, "STORE_TIMEOUT": "60s", "PORT": "0",
                                         "GRPC_PORT": String(port)].merging(environment) { _, new in new })
            let app = try await buildApplication(settings, logger: .test)
            try await app.test(.live) { rest in
                try await withGRPCClient(transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port),
                                                                       transportSecurity: .plaintext)) { client in
                    // predict opens its gRPC port once it is ready.
                    let inference = Inference_GRPCInferenceService.Client(wrapping: client)
                    var options = CallOptions.defaults
                    options.waitForReady = true
                    options.timeout = .seconds(10)
                    _ = try await inference.serverLive(.init(), options: options)
                    try await test(inference, rest, db)
                }
            }
        }
    }

    static var bike: [String: JSONValue] {
        guard case .object(let fields) = TestModels.bikeInstance else { return [:] }
        return fields
    }

    /// `instances` as typed contents, one tensor per feature of the test regression.
    static func typed(_ instances: [[String: JSONValue]]) -> Request {
        let kinds = Dictionary(uniqueKeysWithValues: (try? TestModels.regression().features.map { ($0.name, $0.kind) }) ?? [])
        return Request.with { request in
            request.modelName = "bikes"
            for (name, kind) in kinds.sorted(by: { $0.key < $1.key }) {
                request.inputs.append(.with { tensor in
                    tensor.name = name
                    tensor.shape = [Int64(instances.count)]
                    let values = instances.map { $0[name] ?? .null }
                    switch kind {
                    case .numeric:
                        tensor.datatype = "FP64"
                        tensor.contents.fp64Contents = values.map { if case .number(let x) = $0 { x } else { .nan } }
                    case .boolean:
                        tensor.datatype = "BOOL"
                        tensor.contents.boolContents = values.map { $0 == .bool(true) }
                    case .categorical:
                        tensor.datatype = "BYTES"
                        tensor.contents.bytesContents = values.map { if case .string(let s) = $0 { Data(s.utf8) } else { Data() } }
                    }
                })
            }
        }
    }

    @Test func inferOverGRPCAnswersAsPredictAndStoresOnce() async throws {
        var second = Self.bike
        second["temp"] = 3.25
        second["season"] = "winter"
        let instances = [Self.bike, second]
        try await withGRPC { inference, rest, db in
            #expect(try await inference.serverLive(.init()).live)
            #expect(try await inference.serverReady(.init()).ready)
            #expect(try await inference.modelReady(.with { $0.name = "bikes" }).ready)
            let metadata = try await inference.modelMetadata(.with { $0.name = "bikes" })
            #expect(metadata.versions == ["7"] && metadata.platform == "cyclone")
            #expect(metadata.inputs.map(\.name) == (try TestModels.regression()).features.map(\.name))
            #expect(metadata.outputs.map(\.name) == ["predict", "prediction_id"])

            let viaPredict = try await rest.execute(
                uri: "/predict", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"instances": \#(JSONValue.array(instances.map(JSONValue.object)).jsonText)}"#)
            ) { try json($0.body) }
            let expected = (viaPredict["predictions"] as! [[String: Any]]).map { $0["value"] as! Double }

            var request = Self.typed(instances)
            request.id = "g-1"
            request.inputs.append(.with {
                $0.name = "key"
                $0.datatype = "BYTES"
                $0.shape = [2]
                $0.contents.bytesContents = [Data("order-9".utf8), Data()]
            })
            let response = try await inference.modelInfer(request)
            #expect(response.id == "g-1" && response.modelName == "bikes" && response.modelVersion == "7")
            #expect(response.outputs.map(\.name) == ["predict", "prediction_id"])
            #expect(response.outputs[0].datatype == "FP64" && response.outputs[0].shape == [2])
            let values = response.rawOutputContents[0].withUnsafeBytes { raw in
                (0..<2).map { Double(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self).littleEndian) }
            }
            #expect(values.map(\.bitPattern) == expected.map(\.bitPattern))

            // The same instances as raw contents: the same answer.
            var raw = Self.typed(instances)
            for index in raw.inputs.indices {
                let contents = raw.inputs[index].contents
                var bytes: [UInt8] = []
                switch raw.inputs[index].datatype {
                case "FP64": bytes = InferenceTensors.binary(.fp64(contents.fp64Contents))
                case "BOOL": bytes = contents.boolContents.map { $0 ? 1 : 0 }
                default: bytes = InferenceTensors.binary(.bytes(contents.bytesContents.map { String(decoding: $0, as: UTF8.self) }))
                }
                raw.rawInputContents.append(Data(bytes))
                raw.inputs[index].clearContents()
            }
            let rawResponse = try await inference.modelInfer(raw)
            #expect(rawResponse.rawOutputContents[0] == response.rawOutputContents[0])

            let stored = try await db.predictions(awaiting: 6)
            #expect(stored.count == 6, "two through /predict, two typed, two raw")
            #expect(stored.filter { $0.key == "order-9" }.count == 1)
            #expect(Set(stored.map(\.input)).count == 2, "each instance stored with the same input whatever carried it")
        }
    }

    @Test func refusalsAreTheProtocolsStatusCodes() async throws {
        try await withGRPC(environment: ["MAX_INSTANCES": "2"]) { inference, _, db in
            func refusal(_ request: Request) async throws -> RPCError? {
                do {
                    _ = try await inference.modelInfer(request)
                    return nil
                } catch let error as RPCError {
                    return error
                }
            }
            var unknownModel = Self.typed([Self.bike])
            unknownModel.modelName = "taxis"
            #expect(try await refusal(unknownModel)?.code == .notFound)
            var unknownVersion = Self.typed([Self.bike])
            unknownVersion.modelVersion = "6"
            #expect(try await refusal(unknownVersion)?.code == .notFound)

            var missing = Self.typed([Self.bike])
            missing.inputs.removeAll { $0.name == "temp" }
            let error = try await refusal(missing)
            #expect(error?.code == .invalidArgument)
            #expect(error?.message == "instance 0: required feature 'temp' is missing")

            var nan = Self.typed([Self.bike])
            for index in nan.inputs.indices where nan.inputs[index].name == "temp" { nan.inputs[index].contents.fp64Contents = [.nan] }
            #expect(try await refusal(nan)?.message == "input 'temp', instance 0: required feature 'temp' is null; it needs a value")

            let tooMany = Self.typed([Self.bike, Self.bike, Self.bike])
            #expect(try await refusal(tooMany)?.code == .resourceExhausted)

            var mismatched = Self.typed([Self.bike])
            mismatched.rawInputContents = [Data([0])]
            #expect(try await refusal(mismatched)?.message.contains("raw_input_contents holds 1 tensors for 6 inputs") == true)

            var short = Self.typed([Self.bike])
            short.inputs[0].shape = [2]
            #expect(try await refusal(short)?.message.contains("hold 1 elements; the shape holds 2") == true)

            // Contents in a field the datatype does not read are refused before anything is built.
            var elsewhere = Self.typed([Self.bike])
            for index in elsewhere.inputs.indices where elsewhere.inputs[index].name == "temp" {
                elsewhere.inputs[index].contents.int64Contents = Array(repeating: 1, count: 100_000)
            }
            #expect(try await refusal(elsewhere)?.message
                .contains("a tensor of FP64 is read from fp64_contents, not int64_contents") == true)

            var fp16 = Self.typed([Self.bike])
            fp16.inputs[0].datatype = "FP16"
            #expect(try await refusal(fp16)?.message.contains("FP16 is not accepted") == true)

            // Refusals are stored with the next batch of rows: 7 counted (not the two 404s).
            _ = try await inference.modelInfer(Self.typed([Self.bike]))
            let window = try await EvaluationWindows(client: db.client, logger: .test)
                .drift(of: try TestModels.regressionWithProfile(), bounds: WindowBounds(rows: 100, maxAge: .seconds(3_600)))
            #expect(window.rows == 1 && window.rejected == 7)
        }
    }

    /// A message over the limit (`MAX_BODY_BYTES` here, 4 MiB at most) is RESOURCE_EXHAUSTED saying so, not a
    /// stream reset with no status; nothing is stored and the next call is served.
    @Test func anOversizeMessageIsRefusedWithItsSize() async throws {
        try await withGRPC(environment: ["MAX_BODY_BYTES": "4096"]) { inference, _, db in
            var big = Self.typed([Self.bike])
            big.id = String(repeating: "x", count: 4_500)
            do {
                _ = try await inference.modelInfer(big)
                Issue.record("a 4,700-byte message was accepted under a 4,096-byte limit")
            } catch let error as RPCError {
                #expect(error.code == .resourceExhausted)
                #expect(error.message.contains("bytes; at most 4096 are accepted"), "\(error.message)")
            }
            #expect(try await inference.modelInfer(Self.typed([Self.bike])).outputs.count == 2)
            #expect(try await db.predictions(awaiting: 1).count == 1)
        }
    }

    /// A model folder over gRPC: each model by its name in the request, stored under it; a name not served is
    /// NOT_FOUND naming those that are.
    @Test func eachModelOfAFolderIsServedByName() async throws {
        let folder = TestFiles.folder.appendingPathComponent("cyclone-grpc-many-\(UUID().uuidString)").path
        let platform = LocalPlatform(modelDirectory: folder)
        _ = try await platform.deploy(try TestModels.regression(), as: .live)
        _ = try await platform.deploy(try TestModels.regression(name: "taxis", version: "3"), as: .live)
        try await withGRPC(environment: ["MODEL_PATH": "", "MODEL_DIR": folder]) { inference, _, db in
            for name in ["bikes", "taxis"] {
                var request = Self.typed([Self.bike])
                request.modelName = name
                let response = try await inference.modelInfer(request)
                #expect(response.modelName == name)
            }
            var unknown = Self.typed([Self.bike])
            unknown.modelName = "trains"
            do {
                _ = try await inference.modelInfer(unknown)
                Issue.record("an unknown model was answered")
            } catch let error as RPCError {
                #expect(error.code == .notFound && error.message.contains("models: bikes, taxis"), "\(error)")
            }
            let metadata = try await inference.modelMetadata(.with { $0.name = "taxis" })
            #expect(metadata.versions == ["3"])
            #expect(try await db.predictions(awaiting: 2).map(\.modelName).sorted() == ["bikes", "taxis"])
        }
    }
}
