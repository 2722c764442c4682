import CycloneModel
import Foundation

/// The Open Inference Protocol's ("KServe v2") view of a model, whatever carries it (REST, gRPC): one input
/// tensor per feature, outputs named as MLServer's scikit-learn runtime names them. An edge decodes its wire
/// form into `InputTensor`s; `InferenceTensors` turns them into the instances `/predict` would have received
/// (so the scorer, the stored rows and every refusal are the same), and a request's scored instances into
/// output tensors.
///
/// Missing values: a `null` element (JSON) or NaN (a floating-point tensor, binary or gRPC) is a missing value,
/// imputed as an absent feature in `/predict` is (and refused for a required feature).
public enum TensorDatatype: String, Sendable, CaseIterable {
    case bool = "BOOL"
    case uint8 = "UINT8", uint16 = "UINT16", uint32 = "UINT32", uint64 = "UINT64"
    case int8 = "INT8", int16 = "INT16", int32 = "INT32", int64 = "INT64"
    case fp16 = "FP16", fp32 = "FP32", fp64 = "FP64"
    case bytes = "BYTES"

    /// Bytes an element takes in the binary form (`nil` for BYTES, each element length-prefixed).
    public var width: Int? {
        switch self {
        case .bool, .uint8, .int8: 1
        case .uint16, .int16, .fp16: 2
        case .uint32, .int32, .fp32: 4
        case .uint64, .int64, .fp64: 8
        case .bytes: nil
        }
    }

    public var isInteger: Bool {
        switch self {
        case .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64: true
        default: false
        }
    }

    public var isFloatingPoint: Bool { self == .fp16 || self == .fp32 || self == .fp64 }

    /// The datatype a request names, or why the name is none.
    public static func named(_ text: String) throws(InferenceError) -> TensorDatatype {
        guard let datatype = TensorDatatype(rawValue: text) else {
            throw InferenceError("'\(text)' is not a datatype (\(allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return datatype
    }

    /// The datatype a feature of `kind` is described with in the model's metadata.
    public init(_ kind: Feature.Kind) {
        switch kind {
        case .numeric: self = .fp64
        case .categorical: self = .bytes
        case .boolean: self = .bool
        }
    }

    /// Whether a feature of `kind` takes tensors of this datatype: numbers for a numeric feature, strings (or
    /// integers, read as their decimal text) for a categorical one, booleans (or the integers 0 and 1) for a
    /// boolean one, as `/predict` reads JSON values.
    func fits(_ kind: Feature.Kind) -> Bool {
        switch kind {
        case .numeric: isInteger || isFloatingPoint
        case .categorical: self == .bytes || isInteger
        case .boolean: self == .bool || isInteger
        }
    }
}

/// One input tensor as an edge decoded it: elements in row-major order, each `.number`, `.bool`, `.string` or
/// `.null` (missing), already checked against the datatype.
public struct InputTensor: Sendable {
    public var name: String
    public var datatype: TensorDatatype
    public var shape: [Int]
    public var elements: [JSONValue]

    public init(name: String, datatype: TensorDatatype, shape: [Int], elements: [JSONValue]) {
        self.name = name
        self.datatype = datatype
        self.shape = shape
        self.elements = elements
    }
}

/// One output tensor, row-major.
public struct OutputTensor: Sendable {
    public enum Data: Sendable {
        case fp64([Double])
        case bytes([String])
    }
    public var name: String
    public var shape: [Int]
    public var data: Data
    public var datatype: TensorDatatype {
        switch data {
        case .fp64: .fp64
        case .bytes: .bytes
        }
    }
}

/// Why an inference request was refused, by kind (an edge maps it to its status: 400, 404 and 413 over REST;
/// INVALID_ARGUMENT, NOT_FOUND and RESOURCE_EXHAUSTED over gRPC), and where.
public struct InferenceError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case invalid, notFound, tooLarge }
    public var kind: Kind
    public var message: String
    /// Where in the request, e.g. `inputs[2]` or `input 'temp', instance 3`.
    public var path: String?

    public init(_ kind: Kind, _ message: String, path: String? = nil) {
        self.kind = kind
        self.message = message
        self.path = path
    }

    /// An invalid request.
    public init(_ message: String, path: String? = nil) { self.init(.invalid, message, path: path) }

    public var description: String { path.map { "\($0): \(message)" } ?? message }
}

/// The protocol's names and shapes for a served model, and the mapping between tensors and instances.
public enum InferenceTensors {
    /// The optional BYTES input carrying the caller's key for each instance (as `keys` does in `/predict`),
    /// unless the model has a feature of that name.
    public static let keyInput = "key"
    public static let predictOutput = "predict"
    public static let probabilitiesOutput = "predict_proba"
    public static let predictionIDOutput = "prediction_id"

    /// The outputs a model answers with, in order.
    public static func outputNames(_ model: ModelArtifact) -> [String] {
        model.classes == nil ? [predictOutput, predictionIDOutput]
                             : [predictOutput, probabilitiesOutput, predictionIDOutput]
    }

    /// A tensor as a model's metadata describes it; -1 is a dimension of any size.
    public struct TensorMetadata: Sendable, Equatable {
        public var name: String
        public var datatype: TensorDatatype
        public var shape: [Int]
    }

    /// The model's inputs, one per feature, each `[-1]`.
    public static func inputs(_ model: ModelArtifact) -> [TensorMetadata] {
        model.features.map { TensorMetadata(name: $0.name, datatype: TensorDatatype($0.kind), shape: [-1]) }
    }

    /// The model's outputs, in `outputNames` order.
    public static func outputs(_ model: ModelArtifact) -> [TensorMetadata] {
        var outputs: [TensorMetadata] = []
        if let classes = model.classes {
            outputs.append(TensorMetadata(name: predictOutput, datatype: .bytes, shape: [-1]))
            outputs.append(TensorMetadata(name: probabilitiesOutput, datatype: .fp64, shape: [-1, classes.count]))
        } else {
            outputs.append(TensorMetadata(name: predictOutput, datatype: .fp64, shape: [-1]))
        }
        outputs.append(TensorMetadata(name: predictionIDOutput, datatype: .bytes, shape: [-1]))
        return outputs
    }

    /// A classifier's classes in `predict_proba`'s column order as JSON text (a protocol parameter is a scalar).
    public static func classesParameter(_ model: ModelArtifact) -> String? {
        model.classes.map { JSONValue.array($0.map(JSONValue.string)).jsonText }
    }

    /// The model's metadata as REST answers it (`GET /v2/models/{name}`): `versions` those that answer
    /// requests (live, and a canary's), `inputs`, `outputs`, and for a classifier `parameters.classes`.
    public static func metadata(_ model: ModelArtifact, versions: [String]) -> JSONValue {
        let tensor = { (tensor: TensorMetadata) -> JSONValue in
            ["name": .string(tensor.name), "datatype": .string(tensor.datatype.rawValue),
             "shape": .array(tensor.shape.map { .number(Double($0)) })]
        }
        var metadata: [String: JSONValue] = [
            "name": .string(model.name),
            "versions": .array(versions.map(JSONValue.string)),
            "platform": .string(platform),
            "inputs": .array(inputs(model).map(tensor)),
            "outputs": .array(outputs(model).map(tensor)),
        ]
        if let classes = classesParameter(model) { metadata["parameters"] = ["classes": .string(classes)] }
        return .object(metadata)
    }

    /// The `platform` a model's metadata names.
    public static let platform = "cyclone"

    /// The instances a tensor of `shape` holds, N of [N] or [N, 1], at most `maxInstances`: an edge checks
    /// this before it reads the tensor's data.
    public static func instanceCount(shape: [Int], name: String, maxInstances: Int) throws(InferenceError) -> Int {
        guard shape.count == 1 || (shape.count == 2 && shape[1] == 1) else {
            throw InferenceError("input '\(name)' has shape \(shape); give [N] or [N, 1], one element per instance")
        }
        guard shape[0] <= maxInstances else {
            throw InferenceError(.tooLarge, "input '\(name)' holds \(shape[0]) instances, more than the \(maxInstances) allowed per request (MAX_INSTANCES)")
        }
        return shape[0]
    }

    /// The instances (and caller keys) `inputs` describe for `model`: instance *i* holds element *i* of each
    /// feature's tensor. Each tensor has shape [N] or [N, 1], the same N for all (at least 1, at most
    /// `maxInstances`), a datatype its feature takes, and no name twice; a feature without a tensor is absent
    /// from every instance (imputed when optional, refused by the scorer when required).
    public static func instances(_ inputs: [InputTensor], model: ModelArtifact, maxInstances: Int)
        throws(InferenceError) -> (instances: [JSONValue], keys: [String?]?)
    {
        let features = Dictionary(model.features.map { ($0.name, $0) }) { first, _ in first }
        var count: Int?
        var columns: [(name: String, elements: [JSONValue])] = []
        var keys: [String?]?
        var seen = Set<String>()
        for (index, input) in inputs.enumerated() {
            let path = "inputs[\(index)]"
            guard seen.insert(input.name).inserted else {
                throw InferenceError("input '\(input.name)' is given twice", path: path)
            }
            let n: Int
            do {
                n = try instanceCount(shape: input.shape, name: input.name, maxInstances: maxInstances)
            } catch {
                throw InferenceError(error.kind, error.message, path: path)
            }
            if let count, n != count {
                throw InferenceError("input '\(input.name)' holds \(n) instances, the inputs before it \(count); give every input the same N",
                                     path: path)
            }
            count = n
            if let feature = features[input.name] {
                guard input.datatype.fits(feature.kind) else {
                    throw InferenceError("input '\(input.name)' is \(input.datatype.rawValue); the model reads it as \(TensorDatatype(feature.kind).rawValue) (a \(feature.kind.rawValue) feature)",
                                         path: path)
                }
                columns.append((input.name, input.elements))
            } else if input.name == keyInput {
                guard input.datatype == .bytes else {
                    throw InferenceError("input '\(keyInput)' carries caller keys and must be BYTES, not \(input.datatype.rawValue)", path: path)
                }
                keys = try input.elements.enumerated().map { element, value throws(InferenceError) in
                    switch value {
                    case .string(let key):
                        if let problem = Storable.keyProblem(key) {
                            throw InferenceError(problem, path: "input '\(keyInput)', instance \(element)")
                        }
                        return key
                    default: return nil
                    }
                }
            } else {
                throw InferenceError(.invalid,
                                     "'\(input.name)' is not an input of model '\(model.name)' (inputs: \(model.features.map(\.name).joined(separator: ", ")); optional: \(keyInput))",
                                     path: path)
            }
        }
        guard let count, count > 0 else { throw InferenceError("the inputs hold no instances; give at least one", path: "inputs") }
        guard count <= maxInstances else {
            throw InferenceError(.tooLarge, "\(count) instances is more than the \(maxInstances) allowed per request (MAX_INSTANCES)",
                                 path: "inputs")
        }
        var instances: [JSONValue] = []
        instances.reserveCapacity(count)
        for row in 0..<count {
            var values: [String: JSONValue] = [:]
            values.reserveCapacity(columns.count)
            for column in columns { values[column.name] = column.elements[row] }
            instances.append(.object(values))
        }
        return (instances, keys)
    }

    /// The scorer's paths (`instances[3].temp`) as the tensors name them (`input 'temp', instance 3`).
    public static func inputPath(_ path: String) -> String {
        guard path.hasPrefix("instances["), let close = path.firstIndex(of: "]") else { return path }
        let row = path[path.index(path.startIndex, offsetBy: 10)..<close]
        let rest = path[path.index(after: close)...]
        return rest.hasPrefix(".") ? "input '\(rest.dropFirst())', instance \(row)" : "instance \(row)"
    }

    /// Refuses an output name `model` does not answer with, or one asked for twice.
    public static func checkOutputs(_ requested: [String]?, model: ModelArtifact) throws(InferenceError) {
        let available = outputNames(model)
        var seen = Set<String>()
        for (index, name) in (requested ?? []).enumerated() {
            guard available.contains(name) else {
                throw InferenceError("'\(name)' is not an output of model '\(model.name)' (outputs: \(available.joined(separator: ", ")))",
                                     path: "outputs[\(index)]")
            }
            guard seen.insert(name).inserted else { throw InferenceError("output '\(name)' is asked for twice", path: "outputs[\(index)]") }
        }
    }

    /// The output tensors of a request's scored instances: `requested` names them (all, in `outputNames`
    /// order, when `nil`; names `checkOutputs` refuses are left out).
    public static func outputs(_ predictions: [Scorer.Prediction], model: ModelArtifact, requested: [String]?)
        -> [OutputTensor]
    {
        let available = outputNames(model)
        var outputs: [OutputTensor] = []
        for name in requested ?? available where available.contains(name) {
            let n = predictions.count
            switch name {
            case predictionIDOutput:
                outputs.append(OutputTensor(name: name, shape: [n], data: .bytes(predictions.map { $0.id.uuidString.lowercased() })))
            case probabilitiesOutput:
                var values: [Double] = []
                values.reserveCapacity(n * (model.classes?.count ?? 0))
                for prediction in predictions {
                    if case .classification(_, let probabilities) = prediction.output { values.append(contentsOf: probabilities) }
                }
                outputs.append(OutputTensor(name: name, shape: [n, model.classes?.count ?? 0], data: .fp64(values)))
            default:
                if let classes = model.classes {
                    outputs.append(OutputTensor(name: name, shape: [n], data: .bytes(predictions.map { prediction in
                        if case .classification(let index, _) = prediction.output { return classes[index] }
                        return ""
                    })))
                } else {
                    outputs.append(OutputTensor(name: name, shape: [n], data: .fp64(predictions.map { prediction in
                        if case .value(let value) = prediction.output { return value }
                        return .nan
                    })))
                }
            }
        }
        return outputs
    }
}

extension InferenceTensors {
    /// A JSON element of a `datatype` tensor as an instance's value, or `nil` when it does not fit the datatype:
    /// `null` is missing in any tensor; BOOL takes `true`/`false`, BYTES strings; integer types integral numbers
    /// in their range; FP32 numbers rounded to single precision, FP64 numbers as they are.
    public static func element(_ value: JSONValue, datatype: TensorDatatype) -> JSONValue? {
        switch (datatype, value) {
        case (_, .null): return .null
        case (.bool, .bool), (.bytes, .string), (.fp64, .number): return value
        case (.fp32, .number(let x)): return .number(Double(Float(x)))
        case (let type, .number(let x)) where type.isInteger:
            guard x == x.rounded(), let range = integerRange(type), range.contains(x) else { return nil }
            return value
        default: return nil
        }
    }

    private static func integerRange(_ type: TensorDatatype) -> ClosedRange<Double>? {
        switch type {
        case .uint8: 0...Double(UInt8.max)
        case .uint16: 0...Double(UInt16.max)
        case .uint32: 0...Double(UInt32.max)
        case .uint64: 0...18_446_744_073_709_549_568  // the largest double below 2^64
        case .int8: Double(Int8.min)...Double(Int8.max)
        case .int16: Double(Int16.min)...Double(Int16.max)
        case .int32: Double(Int32.min)...Double(Int32.max)
        case .int64: Double(Int64.min)...9_223_372_036_854_774_784  // the largest double below 2^63
        default: nil
        }
    }

    /// What a JSON element of `datatype` must be, for an error.
    public static func expected(_ datatype: TensorDatatype) -> String {
        switch datatype {
        case .bool: "true, false or null"
        case .bytes: "a string or null"
        case .fp16, .fp32, .fp64: "a number or null"
        default: "an integer within \(datatype.rawValue)'s range, or null"
        }
    }

    /// `count` elements of `datatype` read from the protocol's binary form (REST's binary data extension, gRPC's
    /// `raw_input_contents`): little-endian, BOOL one byte each, BYTES each a 4-byte little-endian length and
    /// that many bytes of UTF-8. NaN in a floating-point tensor is a missing value.
    public static func elements(binary bytes: UnsafeRawBufferPointer, datatype: TensorDatatype, count: Int)
        throws(InferenceError) -> [JSONValue]
    {
        var elements: [JSONValue] = []
        elements.reserveCapacity(min(count, bytes.count))
        if datatype == .bytes {
            var offset = 0
            for index in 0..<count {
                guard offset + 4 <= bytes.count else {
                    throw InferenceError("its binary data ends before element \(index)'s length")
                }
                let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
                offset += 4
                guard offset + length <= bytes.count else {
                    throw InferenceError("element \(index) is \(length) bytes long, more than the binary data left")
                }
                guard let text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length]),
                                        as: UTF8.self)
                else { throw InferenceError("element \(index) is not UTF-8 text") }
                elements.append(.string(text))
                offset += length
            }
            guard offset == bytes.count else {
                throw InferenceError("its binary data holds \(bytes.count - offset) bytes after its \(count) elements")
            }
            return elements
        }
        guard let width = datatype.width, datatype != .fp16 else {
            throw InferenceError("FP16 is not accepted; send FP32 or FP64")
        }
        guard case (let size, false) = count.multipliedReportingOverflow(by: width), bytes.count == size else {
            throw InferenceError("its binary data is \(bytes.count) bytes; \(count) elements of \(datatype.rawValue) take \(count * width)")
        }
        for index in 0..<count {
            let offset = index * width
            func load<T: FixedWidthInteger>(_: T.Type) -> T { bytes.loadUnaligned(fromByteOffset: offset, as: T.self).littleEndian }
            let number: Double
            switch datatype {
            case .bool:
                let byte = load(UInt8.self)
                guard byte <= 1 else { throw InferenceError("element \(index) is the byte \(byte); BOOL takes 0 or 1") }
                elements.append(.bool(byte == 1))
                continue
            case .uint8: number = Double(load(UInt8.self))
            case .uint16: number = Double(load(UInt16.self))
            case .uint32: number = Double(load(UInt32.self))
            case .uint64: number = Double(load(UInt64.self))
            case .int8: number = Double(load(Int8.self))
            case .int16: number = Double(load(Int16.self))
            case .int32: number = Double(load(Int32.self))
            case .int64: number = Double(load(Int64.self))
            case .fp32: number = Double(Float(bitPattern: load(UInt32.self)))
            default: number = Double(bitPattern: load(UInt64.self))
            }
            elements.append(number.isNaN ? .null : .number(number))
        }
        return elements
    }

    /// An output tensor's elements in the binary form `elements(binary:datatype:count:)` reads.
    public static func binary(_ data: OutputTensor.Data) -> [UInt8] {
        var bytes: [UInt8] = []
        switch data {
        case .fp64(let values):
            bytes.reserveCapacity(values.count * 8)
            for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        case .bytes(let values):
            for value in values {
                withUnsafeBytes(of: UInt32(value.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
                bytes.append(contentsOf: value.utf8)
            }
        }
        return bytes
    }
}
