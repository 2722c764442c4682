import CycloneModel
import Foundation

// Tree-ensemble inference: one instance through TREES (500) trees of depth DEPTH (6) over 20 features, with
// a tenth of the values missing, alone and in batches; and the same through the request path (the JSON
// instance validated and encoded, then predicted). scripts/bench-trees runs it in release mode.

let environment = ProcessInfo.processInfo.environment
let trees = Int(environment["TREES"] ?? "") ?? 500
let depth = Int(environment["DEPTH"] ?? "") ?? 6
let width = 20
var random = SplitMix64(seed: 42)

// Full binary trees, split thresholds drawn from the features' N(0, 1), missing values sent either way.
var feature: [Int32] = [], threshold: [Double] = [], left: [Int32] = [], right: [Int32] = [], flags: [UInt8] = []
var roots: [Int32] = []
for _ in 0..<trees {
    let base = feature.count
    roots.append(Int32(base))
    let internalNodes = (1 << depth) - 1
    for node in 0..<((1 << (depth + 1)) - 1) {
        if node < internalNodes {
            feature.append(Int32(Int(random.uniform() * Double(width))))
            threshold.append(random.normal())
            left.append(Int32(base + 2 * node + 1))
            right.append(Int32(base + 2 * node + 2))
            flags.append(TreeEnsemble.Flag.nanMissing | (random.uniform() < 0.5 ? TreeEnsemble.Flag.defaultLeft : 0))
        } else {
            feature.append(-1)
            threshold.append(random.normal() * 0.1)
            left.append(-1)
            right.append(-1)
            flags.append(0)
        }
    }
}
let ensemble = TreeEnsemble(link: .identity, classes: nil, baseMargin: [0], roots: roots,
                            outputs: Array(repeating: 0, count: trees), feature: feature, threshold: threshold,
                            left: left, right: right, flags: flags, sets: [])
precondition(ensemble.problem(width: width) == nil)
let names = (0..<width).map { "x\($0)" }
let artifact = ModelArtifact(name: "bench", version: "1", task: .regression, target: "y",
                             features: names.map { Feature(name: $0, kind: .numeric, required: false) },
                             preprocessing: Preprocessing(columns: names.map { .raw(feature: $0) }),
                             predictor: .trees(ensemble))
try artifact.validate()

let rows = 10_000
var matrix = [Double](repeating: 0, count: rows * width)
for i in matrix.indices { matrix[i] = random.uniform() < 0.1 ? .nan : random.normal() }

func nanoseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) * 1e-9
}

// One instance at a time: the median over rows of the time for each (cache warm, as a server's is).
let clock = ContinuousClock()
var sink = 0.0
var singles: [Double] = []
matrix.withUnsafeBufferPointer { all in
    for _ in 0..<2 {  // the first pass warms up
        singles.removeAll(keepingCapacity: true)
        for row in 0..<rows {
            let x = UnsafeBufferPointer(rebasing: all[(row * width)..<((row + 1) * width)])
            let start = clock.now
            if case .value(let value) = ensemble.predict(x) { sink += value }
            singles.append(nanoseconds(clock.now - start))
        }
    }
}
singles.sort()

// A batch: every row in turn, timed as a whole.
let batchStart = clock.now
matrix.withUnsafeBufferPointer { all in
    for row in 0..<rows {
        if case .value(let value) = ensemble.predict(UnsafeBufferPointer(rebasing: all[(row * width)..<((row + 1) * width)])) {
            sink += value
        }
    }
}
let batch = nanoseconds(clock.now - batchStart)

// The request path: a JSON instance validated and encoded, then predicted.
let encoder = InstanceEncoder(features: artifact.features, preprocessing: artifact.preprocessing)
let instances: [JSONValue] = (0..<1_000).map { row in
    .object(Dictionary(uniqueKeysWithValues: names.enumerated().compactMap { j, name in
        let value = matrix[row * width + j]
        return value.isNaN ? nil : (name, .number(value))
    }))
}
var notes = InstanceEncoder.Notes()
let pathStart = clock.now
for (i, instance) in instances.enumerated() {
    let x = try encoder.encode(instance, path: "instances[\(i)]", notes: &notes)
    if case .value(let value) = artifact.predictor.predict(x) { sink += value }
}
let path = nanoseconds(clock.now - pathStart) / Double(instances.count)

print("\(trees) trees of depth \(depth), \(width) features, 10 % missing (\(feature.count) nodes)")
print(String(format: "one instance: median %.1f µs, p99 %.1f µs", singles[rows / 2] / 1e3, singles[rows * 99 / 100] / 1e3))
print(String(format: "batch of %d: %.0f instances/s (%.1f µs each)", rows, Double(rows) / (batch / 1e9), batch / Double(rows) / 1e3))
print(String(format: "request path (JSON instance validated, encoded, predicted): %.1f µs each", path / 1e3))
if sink.isNaN { print("") }
