import CycloneModel
import CycloneServing
import CycloneStore
import CycloneTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Testing

@testable import Predict

/// The Open Inference Protocol v2 over REST and KServe's v1 paths, on the predict app: the same instances as
/// `/predict`, the same answers, the same rows, and the protocol's errors. (scripts/oip-clients drives the
/// same routes with tritonclient and the kserve SDK.)
@Suite struct InferenceTests {
    static let jsonHeaders: HTTPFields = [.contentType: "application/json"]

    /// The inputs of `instances` (of the test regression's features), one tensor per feature, as JSON.
    static func inputs(_ instances: [[String: JSONValue]], integerWind: Bool = false) -> String {
        let features: [(String, String)] = [("temp", "FP64"), ("humidity", "FP32"), ("wind", integerWind ? "INT32" : "FP64"),
                                            ("holiday", "BOOL"), ("season", "BYTES"), ("weather", "BYTES")]
        let tensors = features.map { name, type in
            let data = JSONValue.array(instances.map { $0[name] ?? .null }).jsonText
            return #"{"name":"\#(name)","datatype":"\#(type)","shape":[\#(instances.count)],"data":\#(data)}"#
        }
        return tensors.joined(separator: ",")
    }

    static var bike: [String: JSONValue] {
        guard case .object(let fields) = TestModels.bikeInstance else { return [:] }
        return fields
    }

    @Test func inferAnswersAsPredictAndStoresTheSameRows() async throws {
        var second = Self.bike
        second["temp"] = 3.25
        second["season"] = "winter"
        // FP32 is the client's precision: /predict gets the value that a float holds.
        let instances = [Self.bike, second].map { instance -> [String: JSONValue] in
            var instance = instance
            if case .number(let h) = instance["humidity"] { instance["humidity"] = .number(Double(Float(h))) }
            return instance
        }
        try await withPredict { client, db in
            let viaPredict = try await client.execute(
                uri: "/predict", method: .post, headers: Self.jsonHeaders,
                body: body(#"{"instances": \#(JSONValue.array(instances.map(JSONValue.object)).jsonText)}"#)
            ) { try json($0.body) }
            let expected = (viaPredict["predictions"] as! [[String: Any]]).map { $0["value"] as! Double }
            let keys = #"{"name":"key","datatype":"BYTES","shape":[2],"data":["order-1",null]}"#
            let request = #"{"id":"req-7","inputs":[\#(Self.inputs(instances)),\#(keys)]}"#
            try await client.execute(uri: "/v2/models/bikes/infer", method: .post, headers: Self.jsonHeaders, body: body(request)) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.init("Cyclone-Stored")!] == "committed")
                let answer = try json(response.body)
                #expect(answer["model_name"] as? String == "bikes" && answer["model_version"] as? String == "7")
                #expect(answer["id"] as? String == "req-7")
                let outputs = answer["outputs"] as! [[String: Any]]
                #expect(outputs.map { $0["name"] as! String } == ["predict", "prediction_id"])
                #expect(outputs[0]["datatype"] as? String == "FP64" && outputs[0]["shape"] as? [Int] == [2])
                let values = outputs[0]["data"] as! [Double]
                #expect(values.map(\.bitPattern) == expected.map(\.bitPattern))
                let ids = outputs[1]["data"] as! [String]
                // Each instance stored once, with /predict's stored input for the same instance, and its key.
                let stored = try await db.predictions(awaiting: 4)
                #expect(stored.count == 4)
                let byID = Dictionary(uniqueKeysWithValues: stored.map { ($0.id.uuidString.lowercased(), $0) })
                let predictIDs = (viaPredict["predictions"] as! [[String: Any]]).map { $0["id"] as! String }
                for (index, id) in ids.enumerated() {
                    #expect(byID[id]?.input == byID[predictIDs[index]]?.input)
                    #expect(byID[id]?.prediction == byID[predictIDs[index]]?.prediction)
                }
                #expect(byID[ids[0]]?.key == "order-1" && byID[ids[1]]?.key == nil)
            }
            // Integers for a numeric feature are numbers; only the outputs asked for come back.
            let integral = instances.map { var instance = $0; instance["wind"] = 2; return instance }
            let onlyIDs = #"{"inputs":[\#(Self.inputs(integral, integerWind: true))],"outputs":[{"name":"prediction_id"}]}"#
            try await client.execute(uri: "/v2/models/bikes/versions/7/infer", method: .post, headers: Self.jsonHeaders,
                                     body: body(onlyIDs)) { response in
                #expect(response.status == .ok)
                let outputs = try json(response.body)["outputs"] as! [[String: Any]]
                #expect(outputs.map { $0["name"] as! String } == ["prediction_id"])
            }
            // An empty list of outputs asks for all of them, as none does.
            let none = #"{"inputs":[\#(Self.inputs(instances))],"outputs":[]}"#
            try await client.execute(uri: "/v2/models/bikes/infer", method: .post, headers: Self.jsonHeaders,
                                     body: body(none)) { response in
                let outputs = try json(response.body)["outputs"] as! [[String: Any]]
                #expect(outputs.map { $0["name"] as! String } == ["predict", "prediction_id"])
            }
        }
    }

    /// Triton's binary data extension both ways: FP64, FP32, BOOL and length-prefixed BYTES in the request,
    /// NaN as a missing value, binary outputs read back to the same bits as JSON ones.
    @Test func binaryTensorsBothWays() async throws {
        var model = try TestModels.regression()
        // humidity optional: NaN is a missing value, imputed.
        model.features = model.features.map { var feature = $0; feature.required = feature.name != "humidity"; return feature }
        try await withPredict(model: model) { client, db in
            func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
            func bytes(_ texts: [String]) -> [UInt8] { texts.flatMap { le(UInt32($0.utf8.count)) + Array($0.utf8) } }
            let binary: [(String, String, [UInt8])] = [
                ("temp", "FP64", le(21.5.bitPattern) + le(3.25.bitPattern)),
                ("humidity", "FP32", le(Float(0.5).bitPattern) + le(Float.nan.bitPattern)),
                ("wind", "FP64", le(2.0.bitPattern) + le(2.0.bitPattern)),
                ("holiday", "BOOL", [0, 1]),
                ("season", "BYTES", bytes(["summer", "winter"])),
                ("weather", "BYTES", bytes(["clear", "clear"])),
            ]
            let header = "{\"inputs\":[" + binary.map { name, type, data in
                #"{"name":"\#(name)","datatype":"\#(type)","shape":[2,1],"parameters":{"binary_data_size":\#(data.count)}}"#
            }.joined(separator: ",") + #"],"parameters":{"binary_data_output":true},"outputs":[{"name":"predict"},{"name":"prediction_id","parameters":{"binary_data":false}}]}"#
            var request = ByteBuffer(string: header)
            for (_, _, data) in binary { request.writeBytes(data) }
            let headers: HTTPFields = [.contentType: "application/octet-stream",
                                       .init("Inference-Header-Content-Length")!: String(header.utf8.count)]
            let values = try await client.execute(uri: "/v2/models/bikes/infer", method: .post, headers: headers,
                                                  body: request) { response -> [Double] in
                #expect(response.status == .ok)
                let length = Int(response.headers[.init("Inference-Header-Content-Length")!] ?? "") ?? 0
                var body = response.body
                let answer = try JSONSerialization.jsonObject(with: Data(body.readBytes(length: length) ?? [])) as! [String: Any]
                let outputs = answer["outputs"] as! [[String: Any]]
                #expect((outputs[0]["parameters"] as? [String: Int])?["binary_data_size"] == 16)
                #expect((outputs[1]["data"] as? [String])?.count == 2)
                #expect(body.readableBytes == 16)
                return (0..<2).map { _ in Double(bitPattern: body.readInteger(endianness: .little, as: UInt64.self) ?? 0) }
            }
            // The same instances as JSON through /predict: the same bits; the NaN stored as the missing value.
            var second = Self.bike
            second["temp"] = 3.25
            second["season"] = "winter"
            second["holiday"] = true
            second["humidity"] = .null
            var first = Self.bike
            first["humidity"] = 0.5
            let viaPredict = try await client.execute(
                uri: "/predict", method: .post, headers: Self.jsonHeaders,
                body: body(#"{"instances": \#(JSONValue.array([first, second].map(JSONValue.object)).jsonText)}"#)
            ) { try json($0.body) }
            let expected = (viaPredict["predictions"] as! [[String: Any]]).map { $0["value"] as! Double }
            #expect(values.map(\.bitPattern) == expected.map(\.bitPattern))
            let inputs = Set(try await db.predictions(awaiting: 4).map(\.input))
            #expect(inputs.count == 2, "the binary and JSON requests stored the same inputs: \(inputs)")
        }
    }

    static let refusals: [(request: String, status: HTTPResponse.Status, says: String)] = [
        (#"{"inputs":[{"name":"temp","datatype":"FP16","shape":[1],"data":[1]}]}"#, .badRequest, "inputs[0].datatype: FP16 is not accepted"),
        (#"{"inputs":[{"name":"temp","datatype":"FLOAT","shape":[1],"data":[1]}]}"#, .badRequest, "'FLOAT' is not a datatype"),
        (#"{"inputs":[{"name":"temp","datatype":"FP64","shape":[2],"data":[1]}]}"#, .badRequest, "inputs[0].data: 'data' holds 1 elements; shape [2] holds 2"),
        (#"{"inputs":[{"name":"temp","datatype":"FP64","shape":[1,2],"data":[1,2]}]}"#, .badRequest, "give [N] or [N, 1]"),
        (#"{"inputs":[{"name":"temp","datatype":"FP64","shape":[1],"data":[1]},{"name":"wind","datatype":"FP64","shape":[2],"data":[1,2]}]}"#,
         .badRequest, "inputs[1]: input 'wind' holds 2 instances, the inputs before it 1"),
        (#"{"inputs":[{"name":"temp","datatype":"FP64","shape":[1],"data":[1]},{"name":"temp","datatype":"FP64","shape":[1],"data":[1]}]}"#,
         .badRequest, "input 'temp' is given twice"),
        (#"{"inputs":[{"name":"tmp","datatype":"FP64","shape":[1],"data":[1]}]}"#, .badRequest, "'tmp' is not an input of model 'bikes'"),
        (#"{"inputs":[{"name":"temp","datatype":"BYTES","shape":[1],"data":["hot"]}]}"#, .badRequest, "input 'temp' is BYTES; the model reads it as FP64"),
        (#"{"inputs":[{"name":"temp","datatype":"FP64","shape":[1],"data":["hot"]}]}"#, .badRequest, "inputs[0].data[0]: each element of a tensor of FP64 must be a number"),
        (#"{"inputs":[{"name":"wind","datatype":"INT8","shape":[1],"data":[300]}]}"#, .badRequest, "within INT8's range"),
        (#"{"inputs":[{"name":"temp","datatype":"FP64","shape":[1],"data":[1]}]}"#, .badRequest, "instance 0: required feature 'humidity' is missing"),
        (#"{"inputs":[{"name":"key","datatype":"INT64","shape":[1],"data":[1]}]}"#, .badRequest, "input 'key' carries caller keys and must be BYTES"),
        (#"{"inputs":[]}"#, .badRequest, "inputs: the inputs hold no instances"),
        (#"{"instances":[]}"#, .badRequest, "inputs: 'inputs' is required"),
        (#"{"inputs":[{"name":"temp","datatype":"FP64","shape":[1],"data":[1]}],"outputs":[{"name":"proba"}]}"#, .badRequest,
         "outputs[0]: 'proba' is not an output of model 'bikes' (outputs: predict, prediction_id)"),
        (#"{"inputs":[{"name":"temp","datatype":"FP64","shape":[3],"data":[1,2,3]}]}"#, .contentTooLarge, "inputs[0]: input 'temp' holds 3 instances, more than the 2 allowed"),
        (#"{"inputs":[{"name":"temp","datatype":"FP64","shape":[1],"data":[1]}],"outputs":[{"name":"predict"},{"name":"predict"}]}"#,
         .badRequest, "outputs[1]: output 'predict' is asked for twice"),
        (#"{"inputs":"#, .badRequest, "the body is not valid JSON"),
    ]

    /// Every refusal is the protocol's `{"error": "…"}`, saying what is wrong and where, and is counted.
    @Test func refusalsSayWhatAndWhere() async throws {
        let model = try TestModels.regressionWithProfile()
        try await withPredict(model: model, environment: ["MAX_INSTANCES": "2"]) { client, db in
            for refusal in Self.refusals {
                try await client.execute(uri: "/v2/models/bikes/infer", method: .post, headers: Self.jsonHeaders,
                                         body: body(refusal.request)) { response in
                    #expect(response.status == refusal.status, "\(refusal.request)")
                    let error = (try? json(response.body))?["error"] as? String ?? String(buffer: response.body)
                    #expect(error.contains(refusal.says), "\(refusal.request): \(error)")
                }
            }
            // Binary data that does not add up.
            let header = #"{"inputs":[{"name":"temp","datatype":"FP64","shape":[1],"parameters":{"binary_data_size":8}}]}"#
            // A shape far beyond MAX_INSTANCES is refused before its data is read (not a 20 GB allocation).
            let huge = #"{"inputs":[{"name":"temp","datatype":"FP64","shape":[2147483647],"parameters":{"binary_data_size":8}}]}"#
            for (header, extra, length, says) in [
                (header, 4, String(header.utf8.count), "no input's binary_data_size claims"),
                (header, -4, String(header.utf8.count), "binary_data_size must be a byte count"),
                (header, 0, "-1", "Inference-Header-Content-Length is '-1'"),
                (huge, 0, String(huge.utf8.count), "holds 2147483647 instances, more than the 2 allowed"),
            ] {
                var request = ByteBuffer(string: header)
                request.writeBytes([UInt8](repeating: 0, count: 8 + extra))
                try await client.execute(uri: "/v2/models/bikes/infer", method: .post,
                                         headers: [.init("Inference-Header-Content-Length")!: length], body: request) { response in
                    #expect(response.status == (header == huge ? .contentTooLarge : .badRequest))
                    #expect(((try? json(response.body))?["error"] as? String)?.contains(says) == true, "\(String(buffer: response.body))")
                }
            }
            // The router's own errors under /v2 are the protocol's shape too.
            try await client.execute(uri: "/v2/models/bikes/explain", method: .get) { response in
                #expect(response.status == .notFound)
                #expect((try? json(response.body))?["error"] is String)
            }
            try await client.execute(uri: "/v2/models/taxis/infer", method: .post, headers: Self.jsonHeaders, body: body("{}")) { response in
                #expect(response.status == .notFound)
                #expect((try? json(response.body))?["error"] as? String == "model 'taxis' is not served here (models: bikes)")
            }
            try await client.execute(uri: "/v2/models/bikes/versions/6/infer", method: .post, headers: Self.jsonHeaders,
                                     body: body("{}")) { response in
                #expect(response.status == .notFound)
                #expect(((try? json(response.body))?["error"] as? String)?.contains("no version '6'") == true)
            }
            try await client.execute(uri: "/v2/models/bikes/infer", method: .post,
                                     headers: [.contentType: "application/json", .contentEncoding: "gzip"], body: body("{}")) { response in
                #expect(response.status == .unsupportedMediaType)
            }
            #expect(try await db.predictions().isEmpty)
            // Refusals are stored with the next batch of rows.
            try await client.execute(uri: "/v2/models/bikes/infer", method: .post, headers: Self.jsonHeaders,
                                     body: body(#"{"inputs":[\#(Self.inputs([Self.bike]))]}"#)) { #expect($0.status == .ok) }
            let window = try await EvaluationWindows(client: db.client, logger: .test)
                .drift(of: model, bounds: WindowBounds(rows: 100, maxAge: .seconds(3_600)))
            #expect(window.rows == 1)
            // Every refused inference request is counted (a compressed one too), by the instances its inputs'
            // shapes claim once they were read: the one of inputs of 1 and 2 instances counts 2.
            #expect(window.rejected == Self.refusals.count + 4 + 1 + 1)
        }
    }

    @Test func metadataHealthAndKServeV1() async throws {
        try await withPredict(model: try TestModels.binary()) { client, db in
            func get(_ uri: String) async throws -> (HTTPResponse.Status, [String: Any]) {
                try await client.execute(uri: uri, method: .get) { ($0.status, (try? json($0.body)) ?? [:]) }
            }
            #expect(try await get("/v2/health/live").1["live"] as? Bool == true)
            #expect(try await get("/v2/health/ready").1["ready"] as? Bool == true)
            #expect(try await get("/v2").1["extensions"] as? [String] == ["binary_tensor_data"])
            #expect(try await get("/").1["status"] as? String == "alive")
            let (status, metadata) = try await get("/v2/models/churn")
            #expect(status == .ok)
            #expect(metadata["versions"] as? [String] == ["2"] && metadata["platform"] as? String == "cyclone")
            let model = try TestModels.binary()
            let inputs = metadata["inputs"] as! [[String: Any]]
            #expect(inputs.map { $0["name"] as! String } == model.features.map(\.name))
            #expect(inputs.map { $0["datatype"] as! String } == model.features.map { TensorDatatype($0.kind).rawValue })
            let outputs = metadata["outputs"] as! [[String: Any]]
            #expect(outputs.map { $0["name"] as! String } == ["predict", "predict_proba", "prediction_id"])
            #expect(outputs[1]["shape"] as? [Int] == [-1, 2])
            #expect((metadata["parameters"] as? [String: String])?["classes"] == #"["no","yes"]"#)
            #expect(try await get("/v2/models/churn/versions/2").0 == .ok)
            #expect(try await get("/v2/models/churn/ready").1["ready"] as? Bool == true)
            #expect(try await get("/v2/models/churn/versions/3/ready").0 == .notFound)
            #expect(try await get("/v1/models/churn").1["ready"] as? Bool == true)
            #expect(try await get("/v1/models/bikes").0 == .notFound)

            // A classifier over v2: the class as BYTES, the probabilities [N, classes] in the metadata's order.
            let instance = try LinearCase.all().first { $0.name == "logistic_binary" }!.testInstances()[0]
            let viaPredict = try await client.execute(uri: "/v1/models/churn:predict", method: .post, headers: Self.jsonHeaders,
                                                      body: body(#"{"instances": [\#(instance.jsonText)]}"#)) { response in
                #expect(response.status == .ok)
                return (try json(response.body)["predictions"] as! [[String: Any]])[0]
            }
            guard case .object(let fields) = instance else { return }
            let tensors = model.features.map { feature in
                let type = TensorDatatype(feature.kind).rawValue
                return #"{"name":"\#(feature.name)","datatype":"\#(type)","shape":[1],"data":[\#((fields[feature.name] ?? .null).jsonText)]}"#
            }
            let answer = try await client.execute(uri: "/v2/models/churn/infer", method: .post, headers: Self.jsonHeaders,
                                                  body: body(#"{"inputs":[\#(tensors.joined(separator: ","))]}"#)) { try json($0.body) }
            let outputs2 = answer["outputs"] as! [[String: Any]]
            #expect(outputs2[0]["data"] as? [String] == [viaPredict["class"] as! String])
            let probabilities = viaPredict["probabilities"] as! [String: Double]
            #expect(outputs2[1]["data"] as? [Double] == [probabilities["no"]!, probabilities["yes"]!])
            #expect(outputs2[1]["shape"] as? [Int] == [1, 2])
            #expect(try await db.predictions(awaiting: 2).count == 2)

            try await client.execute(uri: "/v1/models/churn:explain", method: .post, headers: Self.jsonHeaders, body: body("{}")) { response in
                #expect(response.status == .notFound)
                #expect(((try? json(response.body))?["error"] as? String)?.contains(":predict") == true)
            }
        }
    }

    /// A version in the path picks it: the canary's, or live's with its shadow scored beside it; without one,
    /// the canary takes its share as through `/predict`.
    @Test func versionsInThePathPickCanaryOrLiveWithItsShadow() async throws {
        let folder = try twoVersions(eightPredictsMoreBy: 5)
        let canary = folder.appendingPathComponent("bikes.canary.json").path
        try FileManager.default.createSymbolicLink(atPath: canary, withDestinationPath: "bikes-8.json")
        let request = #"{"inputs":[\#(Self.inputs([Self.bike]))]}"#
        try await withPredict(modelPath: folder.appendingPathComponent("bikes.json").path, environment: [
            "MODEL_RELOAD_INTERVAL": "10ms", "CANARY_MODEL_PATH": canary, "CANARY_PERCENT": "50",
        ]) { client, _ in
            try await waitForModelStatus(client, containing: "canary")
            let metadata = try await client.execute(uri: "/v2/models/bikes", method: .get) { try json($0.body) }
            #expect(metadata["versions"] as? [String] == ["7", "8"])
            func version(_ uri: String) async throws -> String? {
                try await client.execute(uri: uri, method: .post, headers: Self.jsonHeaders, body: body(request)) {
                    try json($0.body)["model_version"] as? String
                }
            }
            for _ in 0..<5 {
                #expect(try await version("/v2/models/bikes/versions/8/infer") == "8")
                #expect(try await version("/v2/models/bikes/versions/7/infer") == "7")
            }
            var seen = Set<String>()
            for _ in 0..<60 { seen.insert(try await version("/v2/models/bikes/infer") ?? "") }
            #expect(seen == ["7", "8"])
        }

        let shadow = folder.appendingPathComponent("bikes.shadow.json").path
        try FileManager.default.removeItem(atPath: canary)
        try FileManager.default.createSymbolicLink(atPath: shadow, withDestinationPath: "bikes-8.json")
        try await withPredict(modelPath: folder.appendingPathComponent("bikes.json").path, environment: [
            "MODEL_RELOAD_INTERVAL": "10ms", "SHADOW_MODEL_PATH": shadow,
        ]) { client, db in
            try await waitForModelStatus(client, containing: "shadow")
            try await client.execute(uri: "/v2/models/bikes/versions/8/infer", method: .post, headers: Self.jsonHeaders,
                                     body: body(request)) { #expect($0.status == .notFound, "a shadow answers no request") }
            try await client.execute(uri: "/v2/models/bikes/infer", method: .post, headers: Self.jsonHeaders, body: body(request)) {
                #expect($0.status == .ok)
            }
            let rows = try await db.client.query("SELECT model_version, shadow_version FROM prediction", logger: .test)
            var stored: [(String, String?)] = []
            for try await row in rows.decode((String, String?).self) { stored.append(row) }
            #expect(stored.count == 1 && stored.first?.0 == "7" && stored.first?.1 == "8")
        }
    }
}
