// libFuzzer target: the instance encoder (Core/Model/InstanceEncoder.swift) on whatever JSON the bytes make,
// against a schema of every kind of feature and column. No crash; an instance it accepts has a design vector
// of the encoder's width with no infinity, and only storable values.

let features = [
    Feature(name: "temp", kind: .numeric, required: true, range: .init(min: -10, max: 40)),
    Feature(name: "wind", kind: .numeric, required: false),
    Feature(name: "holiday", kind: .boolean, required: false),
    Feature(name: "season", kind: .categorical, required: true, categories: ["summer", "winter"]),
    Feature(name: "weather", kind: .categorical, required: false, categories: ["clear", "rain"]),
]
let preprocessing = Preprocessing(columns: [
    .standardize(feature: "temp", impute: 15, mean: 15, scale: 8),
    .raw(feature: "wind"),
    .boolean(feature: "holiday", impute: 0),
    .oneHot(feature: "season", impute: "summer", categories: ["summer", "winter"]),
    .code(feature: "weather", categories: ["clear", "rain"]),
])
let encoders = [InstanceEncoder(features: features, preprocessing: preprocessing),
                InstanceEncoder(features: features, preprocessing: preprocessing, strictCategories: true)]

func fuzzInstance(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let value = try? JSONParser.parse(UnsafeBufferPointer(start: data, count: size)) else { return 0 }
    let instances: [JSONValue]
    if case .array(let items) = value { instances = items } else { instances = [value] }
    for instance in instances {
        for encoder in encoders {
            var notes = InstanceEncoder.Notes()
            guard let x = try? encoder.encode(instance, path: "instances[0]", notes: &notes) else { continue }
            guard x.count == encoder.width, !x.contains(where: \.isInfinite) else { fatalError("a bad design vector") }
            if case .object(let members) = instance, case .string(let season)? = members["season"], !Storable.accepts(season) {
                fatalError("a category the store cannot hold was accepted")
            }
        }
    }
    return 0
}
