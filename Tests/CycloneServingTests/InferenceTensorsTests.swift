import CycloneModel
import CycloneServing
import CycloneTestSupport
import Foundation
import Testing

@Suite struct InferenceTensorsTests {
    static func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    }

    static func decode(_ bytes: [UInt8], _ datatype: TensorDatatype, _ count: Int) throws(InferenceError) -> [JSONValue] {
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        defer { raw.deallocate() }
        raw.copyBytes(from: bytes)
        return try InferenceTensors.elements(binary: UnsafeRawBufferPointer(raw), datatype: datatype, count: count)
    }

    /// Every fixed-width datatype read little-endian at its width; NaN is a missing value; BYTES length-prefixed.
    @Test func binaryElementsOfEveryDatatype() throws {
        #expect(try Self.decode(Self.le([UInt8(0), 255]), .uint8, 2) == [0, 255])
        #expect(try Self.decode(Self.le([Int8(-128), 127]), .int8, 2) == [-128, 127])
        #expect(try Self.decode(Self.le([UInt16(65_535)]), .uint16, 1) == [65_535])
        #expect(try Self.decode(Self.le([Int16(-300)]), .int16, 1) == [-300])
        #expect(try Self.decode(Self.le([UInt32.max]), .uint32, 1) == [.number(Double(UInt32.max))])
        #expect(try Self.decode(Self.le([Int32(-7), 9]), .int32, 2) == [-7, 9])
        #expect(try Self.decode(Self.le([Int64(-1) << 40]), .int64, 1) == [.number(-1_099_511_627_776)])
        #expect(try Self.decode(Self.le([UInt64(1) << 52]), .uint64, 1) == [.number(4_503_599_627_370_496)])
        #expect(try Self.decode(Self.le([Float(0.1).bitPattern, Float.nan.bitPattern]), .fp32, 2) == [.number(Double(Float(0.1))), .null])
        #expect(try Self.decode(Self.le([Double(0.1).bitPattern, Double.nan.bitPattern]), .fp64, 2) == [0.1, .null])
        #expect(try Self.decode([1, 0], .bool, 2) == [true, false])
        let text = Self.le([UInt32(3)]) + Array("sun".utf8) + Self.le([UInt32(0)]) + Self.le([UInt32("ñu".utf8.count)]) + Array("ñu".utf8)
        #expect(try Self.decode(text, .bytes, 3) == ["sun", "", "ñu"])
    }

    @Test(arguments: [
        (Self.le([Int32(1)]), TensorDatatype.int32, 2, "its binary data is 4 bytes; 2 elements of INT32 take 8"),
        ([2], .bool, 1, "element 0 is the byte 2; BOOL takes 0 or 1"),
        ([0, 0], .fp16, 1, "FP16 is not accepted"),
        (Self.le([UInt32(9)]) + [0x61], .bytes, 1, "element 0 is 9 bytes long, more than the binary data left"),
        (Self.le([UInt32(1)]) + [0x61, 0x62], .bytes, 1, "holds 1 bytes after its 1 elements"),
        (Self.le([UInt32(1)]) + [0xff], .bytes, 1, "element 0 is not UTF-8 text"),
        ([0, 0], .bytes, 1, "ends before element 0's length"),
    ])
    func binaryDataThatDoesNotFitIsNamed(bytes: [UInt8], datatype: TensorDatatype, count: Int, says: String) {
        #expect(throws: InferenceError.self) { try Self.decode(bytes, datatype, count) }
        do {
            _ = try Self.decode(bytes, datatype, count)
        } catch {
            #expect(error.message.contains(says), "\(error.message)")
        }
    }

    @Test func jsonElementsAreCheckedAgainstTheirDatatype() {
        #expect(InferenceTensors.element(300, datatype: .int16) == 300)
        #expect(InferenceTensors.element(300, datatype: .int8) == nil)
        #expect(InferenceTensors.element(-1, datatype: .uint32) == nil)
        #expect(InferenceTensors.element(1.5, datatype: .int64) == nil)
        #expect(InferenceTensors.element(0.1, datatype: .fp32) == .number(Double(Float(0.1))))
        #expect(InferenceTensors.element(0.1, datatype: .fp64) == 0.1)
        #expect(InferenceTensors.element(.null, datatype: .bool) == .null)
        #expect(InferenceTensors.element("x", datatype: .fp64) == nil)
        #expect(InferenceTensors.element(true, datatype: .bytes) == nil)
    }

    /// Tensors become the instances /predict would get: a feature per tensor, `key` as the callers' keys.
    @Test func tensorsBecomeInstances() throws {
        let model = try TestModels.binary()
        let names = model.features.map(\.name)
        let first: [Feature.Kind: JSONValue] = [.numeric: 1, .boolean: true, .categorical: "x"]
        let inputs = model.features.map { feature in
            InputTensor(name: feature.name, datatype: TensorDatatype(feature.kind), shape: [2, 1],
                        elements: [first[feature.kind]!, .null])
        }
            + [InputTensor(name: "key", datatype: .bytes, shape: [2], elements: ["a", .null])]
        let decoded = try InferenceTensors.instances(inputs, model: model, maxInstances: 10)
        #expect(decoded.keys == ["a", nil])
        #expect(decoded.instances.count == 2)
        #expect(decoded.instances[0] == .object(Dictionary(uniqueKeysWithValues: model.features.map { ($0.name, first[$0.kind]!) })))
        #expect(decoded.instances[1] == .object(Dictionary(uniqueKeysWithValues: names.map { ($0, JSONValue.null) })))
        #expect(InferenceTensors.inputPath("instances[3].temp") == "input 'temp', instance 3")
        #expect(InferenceTensors.inputPath("instances[0]") == "instance 0")
        #expect(InferenceTensors.outputNames(model) == ["predict", "predict_proba", "prediction_id"])
    }
}
