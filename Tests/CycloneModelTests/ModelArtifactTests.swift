import CycloneModel
import CycloneTestSupport
import Foundation
import Testing

@Suite struct ModelArtifactTests {
    /// Applies `edit` to the JSON of a valid artifact and returns the load error.
    func loadError(_ edit: (inout [String: Any]) -> Void) throws -> ArtifactError? {
        let valid = try LinearCase.all().first { $0.family == "logistic" && $0.task == "binary" }!.artifact()
        var object = try JSONSerialization.jsonObject(with: valid.encoded()) as! [String: Any]
        edit(&object)
        let data = try JSONSerialization.data(withJSONObject: object)
        do {
            _ = try ModelArtifact.decode(data)
            return nil
        } catch {
            return error
        }
    }

    @Test func missingFieldIsNamed() throws {
        let error = try loadError { $0["predictor"] = ["type": "logistic", "classes": ["no", "yes"], "intercepts": [0]] }
        #expect(error?.path == "predictor.coefficients")
    }

    @Test func wrongCoefficientCountIsNamed() throws {
        let error = try loadError { object in
            var predictor = object["predictor"] as! [String: Any]
            var rows = predictor["coefficients"] as! [[Double]]
            rows[0].removeLast()
            predictor["coefficients"] = rows
            object["predictor"] = predictor
        }
        #expect(error?.path == "predictor.coefficients[0]")
        #expect(error?.message.contains("preprocessing makes") == true)
    }

    @Test func wrongTypeIsNamedWithIndex() throws {
        let error = try loadError { object in
            var features = object["features"] as! [[String: Any]]
            features[1]["type"] = "text"
            object["features"] = features
        }
        #expect(error?.path == "features[1].type")
    }

    @Test func newerFormatIsRefusedAsSuch() throws {
        let error = try loadError { $0["format"] = 99 }
        #expect(error?.path == "format")
        #expect(error?.message.contains("newer Cyclone") == true)
        // A newer file that does not decode here (a field it renamed) says the same, not what it lacks.
        let renamed = try loadError { $0["format"] = 99; $0["features"] = nil }
        #expect(renamed?.path == "format" && renamed?.message.contains("newer Cyclone") == true, "\(String(describing: renamed))")
    }

    /// The holdout's losses are the loss trigger's second reference: figures that cannot be losses, or whose
    /// count does not match their batches, are refused at load rather than tested against.
    @Test(arguments: [
        (#"{"rows": 0, "mean": 1, "values": [], "batches": 0}"#, "rows must be 1 or more"),
        (#"{"rows": 3, "mean": -1, "values": [1, 1, 1], "batches": 0}"#, "mean must be a finite loss"),
        (#"{"rows": 3, "mean": 1, "values": [1, 1], "batches": 0}"#, "values must hold 3 losses, found 2"),
        (#"{"rows": 20, "mean": 1, "values": [1, 1, 1], "batches": 8}"#, "values must hold 8 batch means, found 3"),
        (#"{"rows": 10, "mean": 1, "values": [1, 1, 1, 1, 1, 1, 1, 1], "batches": 8}"#, "batches must be between 0 and half the 10 rows"),
        (#"{"rows": 3, "mean": 1, "values": [1, -2, 1], "batches": 0}"#, "values[1] must be a finite loss"),
        (#"{"rows": 3, "mean": 1, "values": [1, 0, 2], "batches": 0}"#, ""),
    ])
    func impossibleHoldoutLossIsRefused(loss: String, message: String) throws {
        let error = try loadError {
            $0["training"] = ["family": "logistic", "parameters": ["C": 1.0], "rows": 100,
                              "holdoutLoss": try! JSONSerialization.jsonObject(with: Data(loss.utf8))]
        }
        if message.isEmpty {
            #expect(error == nil, "\(String(describing: error))")
        } else {
            #expect(error?.path == "training.holdoutLoss" && error?.message.hasPrefix(message) == true,
                    "\(String(describing: error))")
        }
    }

    @Test func unknownFieldsAreIgnored() throws {
        #expect(try loadError { $0["addedByALaterVersion"] = ["x": 1] } == nil)
    }

    @Test func notJSONSaysSo() {
        #expect(throws: ArtifactError.self) { try ModelArtifact.decode(Data("{oops".utf8)) }
    }

    @Test func untransformedFeatureIsNamed() throws {
        let error = try loadError { object in
            var features = object["features"] as! [[String: Any]]
            features.append(["name": "extra", "type": "numeric", "required": true])
            object["features"] = features
        }
        #expect(error?.path == "preprocessing.columns")
        #expect(error?.message.contains("extra") == true)
    }
}
