import CycloneCloud
import CycloneModel
import CycloneTestSupport
import Foundation
import Testing

@Suite struct LocalPlatformTests {
    /// Every entry of the folder that belongs to `name` (its links and version files), with what each holds.
    private func entries(of name: String, in folder: String) throws -> [String: String] {
        var found: [String: String] = [:]
        for entry in try FileManager.default.subpathsOfDirectory(atPath: folder)
        where entry.hasPrefix("\(name).") || entry.hasPrefix("\(ModelFolder.versions)/\(name)-") {
            let path = "\(folder)/\(entry)"
            let link = try? FileManager.default.destinationOfSymbolicLink(atPath: path)
            let contents = try String(contentsOfFile: path, encoding: .utf8)
            found[entry] = (link.map { "-> \($0) " } ?? "") + contents
        }
        return found
    }

    /// A model's deploy, canary, shadow, promotion and rollback change its own entries of the model folder and
    /// never another model's.
    @Test func aModelsRolloutNeverTouchesAnothersFiles() async throws {
        let folder = TestFiles.folder.appendingPathComponent("cyclone-local-\(UUID().uuidString)").path
        let platform = LocalPlatform(modelDirectory: folder)
        let a = try TestModels.regression(name: "a", version: "1")
        _ = try await platform.deploy(a, as: .live)
        _ = try await platform.deploy(try TestModels.regression(name: "a", version: "2"), as: .canary)
        let before = try entries(of: "a", in: folder)
        #expect(before.keys.sorted() == ["a.canary.json", "a.json", "versions/a-1.json", "versions/a-2.json"])

        let b = (1...4).map { try! TestModels.regression(name: "b", version: "\($0)") }
        _ = try await platform.deploy(b[0], as: .live)
        _ = try await platform.deploy(b[1], as: .canary)
        _ = try await platform.promote(b[1], from: .canary)
        _ = try await platform.deploy(b[2], as: .shadow, beside: b[1])
        _ = try await platform.rollback(b[2], from: .shadow)
        _ = try await platform.deploy(b[3], as: .shadow, beside: b[1])
        _ = try await platform.promote(b[3], from: .shadow)
        #expect(try entries(of: "a", in: folder) == before)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(folder)/b.json") == "versions/b-4.json")
        #expect(try ModelFolder(folder).names() == ["a", "b"])
        await #expect { try await platform.deploy(try TestModels.regression(name: "x/y"), as: .live) } throws: {
            "\($0)".contains("cannot name a file in a model folder")
        }
    }

    /// A challenger promoted is the registry's copy, read back from jsonb, which drops a zero's sign: the same
    /// model as the file the retrain wrote, so the promotion goes ahead; another model under the version does not.
    @Test func aVersionIsTheSameModelWhateverItsZerosSign() async throws {
        let folder = TestFiles.folder.appendingPathComponent("cyclone-local-\(UUID().uuidString)").path
        let platform = LocalPlatform(modelDirectory: folder)
        _ = try await platform.deploy(try TestModels.regression(name: "m", version: "1"), as: .live)
        var written = try TestModels.regression(name: "m", version: "2")
        guard case .linear(var linear) = written.predictor else { Issue.record("not linear"); return }
        linear.coefficients[0] = -0.0
        written.predictor = .linear(linear)
        _ = try await platform.deploy(written, as: .shadow)
        let registered = try ModelArtifact.decode(Data(String(decoding: try written.encoded(), as: UTF8.self)
            .replacingOccurrences(of: "-0,", with: "0,").utf8))
        #expect(try registered.encoded() != written.encoded())
        _ = try await platform.promote(registered, from: .shadow)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(folder)/m.json") == "versions/m-2.json")

        linear.coefficients[0] = 1
        var other = written
        other.predictor = .linear(linear)
        await #expect { try await platform.deploy(other, as: .live) } throws: { "\($0)".contains("holds another model under the same version") }
    }
}
