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
}
