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
