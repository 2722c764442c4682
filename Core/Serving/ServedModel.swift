import CycloneModel
import CycloneMonitoring
import Foundation

/// A loaded model, ready to score: the artifact, its instance encoder, and the JSON fragments every response
/// repeats, written once.
public struct ServedModel: Sendable {
    public let artifact: ModelArtifact
    public let encoder: InstanceEncoder
    /// `"name":"…","version":"…"` for the response's `model` object.
    public let modelJSON: [UInt8]
    /// How its predictions are written.
    public let prediction: PredictionJSON
    /// Where each served instance falls against the reference profile (stored with it for drift windows).
    public let layout: DriftLayout?

    public init(artifact: ModelArtifact, strictCategories: Bool) {
        self.artifact = artifact
        encoder = InstanceEncoder(features: artifact.features, preprocessing: artifact.preprocessing,
                                  strictCategories: strictCategories)
        var writer = JSONWriter()
        writer.raw("{\"name\":")
        writer.string(artifact.name)
        writer.raw(",\"version\":")
        writer.string(artifact.version)
        writer.raw("}")
        modelJSON = writer.bytes
        layout = DriftLayout(artifact)
        prediction = PredictionJSON(classes: artifact.classes)
    }

    public static func load(path: String, strictCategories: Bool) throws -> ServedModel {
        ServedModel(artifact: try ModelArtifact.load(contentsOf: URL(fileURLWithPath: path)),
                    strictCategories: strictCategories)
    }

    /// Why `challenger` cannot be scored beside this model on the same requests (another name, task, classes,
    /// or features by name, type and whether required), or `nil` when it can.
    public func challengeProblem(_ challenger: ModelArtifact) -> String? {
        let live = artifact
        if challenger.name != live.name { return "it holds model '\(challenger.name)', not '\(live.name)'" }
        if challenger.task != live.task { return "its task is \(challenger.task.rawValue), live's \(live.task.rawValue)" }
        if challenger.classes != live.classes { return "its classes differ from live's" }
        let schema = { (model: ModelArtifact) in model.features.map { "\($0.name):\($0.kind.rawValue):\($0.required)" } }
        if schema(challenger) != schema(live) {
            let differing = zip(schema(challenger), schema(live)).first { $0 != $1 }.map { " (\($0.0) against \($0.1))" }
            return "its features differ from live's\(differing ?? " in number")"
        }
        return nil
    }

    /// The drift cells of a served instance, when the model has a reference profile.
    public func driftCells(_ instance: JSONValue, _ output: Output) -> DriftCells? {
        guard let layout, case .object(let values) = instance else { return nil }
        return layout.cells(instance: values, output: output, classes: artifact.classes)
    }

    /// The instance as stored JSON, its members in schema order. Validation has already refused members that
    /// are not features, so nothing is left out; no sorting needed.
    public func inputJSON(_ instance: JSONValue) -> String {
        guard case .object(let values) = instance else { return instance.jsonText }
        var writer = JSONWriter(capacity: 32 * values.count)
        writer.raw(UInt8(ascii: "{"))
        var first = true
        for feature in artifact.features {
            guard let value = values[feature.name] else { continue }
            if !first { writer.raw(UInt8(ascii: ",")) }
            first = false
            writer.string(feature.name)
            writer.raw(UInt8(ascii: ":"))
            writer.value(value)
        }
        writer.raw(UInt8(ascii: "}"))
        return writer.string
    }

    /// One prediction as stored: `{"value":…}` or `{"class":…,"probabilities":{…}}`.
    public func storedJSON(_ output: Output) -> String {
        var stored = JSONWriter(capacity: 64)
        stored.raw(UInt8(ascii: "{"))
        write(output, into: &stored)
        stored.raw(UInt8(ascii: "}"))
        return stored.string
    }

    /// Writes one prediction's fields (without braces): `"value":…` or `"class":…,"probabilities":{…}`.
    public func write(_ output: Output, into writer: inout JSONWriter) {
        prediction.write(output, into: &writer)
    }
}
