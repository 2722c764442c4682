import CycloneModel
import Testing

@Suite struct InstanceEncoderTests {
    static let features = [
        Feature(name: "temp", kind: .numeric, range: .init(min: -5, max: 40)),
        Feature(name: "holiday", kind: .boolean, required: false),
        Feature(name: "season", kind: .categorical, categories: ["spring", "summer"]),
    ]
    static let preprocessing = Preprocessing(columns: [
        .standardize(feature: "temp", impute: 10, mean: 10, scale: 5),
        .boolean(feature: "holiday", impute: 1),
        .oneHot(feature: "season", impute: "summer", categories: ["spring", "summer"]),
    ])
    let encoder = InstanceEncoder(features: features, preprocessing: preprocessing)

    func encode(_ instance: JSONValue, strict: Bool = false) throws(InputError) -> [Double] {
        var encoder = self.encoder
        encoder.strictCategories = strict
        var notes = InstanceEncoder.Notes()
        return try encoder.encode(instance, path: "instances[2]", notes: &notes)
    }

    @Test func encodesEveryKind() throws {
        #expect(try encode(["temp": 20, "holiday": false, "season": "spring"]) == [2, 0, 1, 0])
        // Optional feature absent or null: imputed.
        #expect(try encode(["temp": 0, "season": "summer"]) == [-2, 1, 0, 1])
        #expect(try encode(["temp": 0, "holiday": nil, "season": "summer"]) == [-2, 1, 0, 1])
    }

    @Test func unknownCategoryIsServedAsAllZerosAndCounted() throws {
        var notes = InstanceEncoder.Notes()
        let x = try encoder.encode(["temp": 10, "season": "monsoon"], path: "instances[0]", notes: &notes)
        #expect(x == [0, 1, 0, 0])
        #expect(notes.unknownCategories == 1)
    }

    static let badInstances: [(JSONValue, InputError)] = [
        (JSONValue.string("x"), InputError.notAnObject(found: "string", path: "instances[2]")),
        (["season": "spring"], .missingFeature("temp", path: "instances[2]")),
        (["temp": nil, "season": "spring"], .nullFeature("temp", path: "instances[2].temp")),
        (["temp": "hot", "season": "spring"], .wrongType("temp", expected: .numeric, found: "string", path: "instances[2].temp")),
        (["temp": 1, "season": true], .wrongType("season", expected: .categorical, found: "boolean", path: "instances[2].season")),
        (["temp": 1, "season": "spring", "holiday": "yes"], .wrongType("holiday", expected: .boolean, found: "string", path: "instances[2].holiday")),
        (["temp": 1, "season": "spring", "zeta": 1, "alpha": 2], .unknownFeature("alpha", expected: ["temp", "holiday", "season"], path: "instances[2].alpha")),
        (["temp": .number(.infinity), "season": "spring"], .nonFinite("temp", path: "instances[2].temp")),
    ]

    @Test(arguments: badInstances)
    func badInstancesAreRejectedWithTheirPath(_ instance: JSONValue, _ expected: InputError) {
        #expect(throws: expected) { try encode(instance) }
    }

    @Test func strictModeRejectsUnseenCategories() {
        #expect(throws: InputError.unknownCategory("season", value: "monsoon", allowed: ["spring", "summer"], path: "instances[2].season")) {
            try encode(["temp": 1, "season": "monsoon"], strict: true)
        }
    }

    @Test func integerCategoriesAreReadAsText() throws {
        let encoder = InstanceEncoder(
            features: [Feature(name: "hour", kind: .categorical, categories: ["1", "2"])],
            preprocessing: Preprocessing(columns: [.oneHot(feature: "hour", impute: "1", categories: ["1", "2"])]))
        var notes = InstanceEncoder.Notes()
        #expect(try encoder.encode(["hour": 2], path: "", notes: &notes) == [0, 1])
    }
}
