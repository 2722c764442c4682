import CycloneModel
import CycloneTraining
import Foundation
import Logging
import PostgresNIO

// A small world for retrain tests: rows of a linear relation, the live model trained on one, and its
// served predictions stored with labels (the world may have changed since).

/// Rows of y = a·x1 + b·x2 + colour effect + noise.
public func rows(_ n: Int, seed: UInt64, a: Double, b: Double) -> (table: FeatureTable, y: [Double]) {
    var generator = SplitMix64(seed: seed)
    var x1: [Double] = [], x2: [Double] = [], colour: [String?] = [], y: [Double] = []
    for _ in 0..<n {
        let u = generator.normal(), v = generator.normal()
        let c = ["red", "green", "blue"][Int(generator.uniform() * 3)]
        x1.append(u)
        x2.append(v)
        colour.append(c)
        y.append(a * u + b * v + (c == "red" ? 1 : 0) + 0.3 * generator.normal())
    }
    return (FeatureTable(columns: [.init(name: "x1", values: .numeric(x1)), .init(name: "x2", values: .numeric(x2)),
                                   .init(name: "colour", values: .categorical(colour))]), y)
}

/// The live model: ridge on 400 rows of y = 3·x1 − 2·x2 + …
public func liveModel() throws -> ModelArtifact {
    let (table, y) = rows(400, seed: 1, a: 3, b: -2)
    return try Trainer(options: .init(family: .ridge)).train(name: "demand", version: "1", features: table,
                                                             target: .init(name: "y", values: .numeric(y)))
}

/// Stores `n` labelled rows as `model` served them, `spacing` seconds apart up to now.
public func storeServed(_ db: TestDatabase, _ model: ModelArtifact, n: Int, seed: UInt64, a: Double, b: Double,
                        spacing: TimeInterval = 0.5) async throws {
    let (table, y) = rows(n, seed: seed, a: a, b: b)
    let outputs = model.outputs(for: table)
    guard case .numeric(let x1) = table.columns[0].values, case .numeric(let x2) = table.columns[1].values,
          case .categorical(let colour) = table.columns[2].values
    else { return }
    let served = (0..<n).map { i in
        ServedInstance(input: ["x1": .number(x1[i]), "x2": .number(x2[i]), "colour": .string(colour[i]!)],
                       output: outputs[i], label: .number(y[i]))
    }
    try await db.store(served, model: model, spacing: spacing)
}

/// The registry's rows, by version.
public func modelRows(_ db: TestDatabase) async throws -> [(version: String, status: String, parent: String?, reason: String?)] {
    var result: [(String, String, String?, String?)] = []
    let rows = try await db.client.query("SELECT version, status, parent_version, reason FROM model ORDER BY version",
                                         logger: .test)
    for try await row in rows.decode((String, String, String?, String?).self) { result.append(row) }
    return result
}
