import CycloneTestSupport
import Foundation
import Testing

/// The package's layers as the README draws them: each target lists exactly the modules its files import,
/// and no layer imports one above it (a job links no HTTP server; the HTTP edge knows no store or cloud).
@Suite struct LayeringTests {
    /// The modules each target's files import, by target name, from `swift package dump-package`.
    struct Target {
        var name: String
        var path: String
        var dependencies: Set<String>
        var imports: Set<String>
    }

    /// Modules of the toolchain, not of a package.
    static let toolchain: Set<String> = ["Foundation", "FoundationNetworking", "FoundationEssentials", "Testing",
                                         "Glibc", "Darwin", "Dispatch", "Synchronization", "_Concurrency"]

    /// The package's targets, read once per test process.
    static let all = Task { try await targets() }

    static func targets() async throws -> [Target] {
        let scratch = TestFiles.folder.appendingPathComponent("dump-package-\(UUID().uuidString)").path
        let json = try await Repository.run("/usr/bin/env", ["swift", "package", "--package-path", Repository.root.path,
                                                             "--scratch-path", scratch, "dump-package"])
        let package = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let targets = try #require(package["targets"] as? [[String: Any]])
        return try targets.map { target in
            let name = try #require(target["name"] as? String)
            let type = target["type"] as? String
            let path = target["path"] as? String ?? (type == "test" ? "Tests/\(name)" : "Sources/\(name)")
            var dependencies: Set<String> = []
            for dependency in target["dependencies"] as? [[String: Any]] ?? [] {
                for kind in ["byName", "product", "target"] {
                    if let first = (dependency[kind] as? [Any])?.first as? String { dependencies.insert(first) }
                }
            }
            return Target(name: name, path: path, dependencies: dependencies, imports: try imports(under: path))
        }
    }

    static let accessLevels: Set<String> = ["public", "package", "internal", "fileprivate", "private"]
    static let declarationKinds: Set<String> = ["struct", "class", "enum", "protocol", "typealias", "func", "let", "var"]

    static func imports(under path: String) throws -> Set<String> {
        let folder = Repository.root.appendingPathComponent(path)
        var imports: Set<String> = []
        let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        for file in files where file.pathExtension == "swift" {
            for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n") {
                // `@testable import X`, `public import X`, `import struct X.Y // why`: the module is X.
                let code = line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false)[0]
                var words = code.split(separator: " ").filter { !$0.hasPrefix("@") }
                if let first = words.first, Self.accessLevels.contains(String(first)) { words.removeFirst() }
                guard words.first == "import", words.count >= 2 else { continue }
                let path = words.count == 3 && Self.declarationKinds.contains(String(words[1])) ? words[2] : words[1]
                guard words.count == 2 || Self.declarationKinds.contains(String(words[1])) else { continue }
                imports.insert(String(path.split(separator: ".")[0]))
            }
        }
        return imports.subtracting(toolchain)
    }

    @Test func everyTargetListsWhatItImportsAndNothingMore() async throws {
        let targets = try await Self.all.value
        #expect(targets.count > 20)
        for target in targets {
            #expect(target.imports == target.dependencies,
                    "\(target.name): imported, not listed: \(target.imports.subtracting(target.dependencies).sorted()); listed, not imported: \(target.dependencies.subtracting(target.imports).sorted())")
        }
    }

    /// What each layer must not import, directly or through another target.
    @Test func theLayersPointDown() async throws {
        let targets = Dictionary(uniqueKeysWithValues: try await Self.all.value.map { ($0.name, $0) })
        func reach(_ name: String) -> Set<String> {
            var seen: Set<String> = [], queue = [name]
            while let next = queue.popLast() {
                for dependency in targets[next]?.dependencies ?? [] where seen.insert(dependency).inserted {
                    queue.append(dependency)
                }
            }
            return seen
        }
        let http: Set<String> = ["CycloneHTTP", "Hummingbird", "Prometheus"]
        let above: [String: Set<String>] = [
            // Model is the bottom; Monitoring and Training sit on it alone.
            "CycloneModel": ["CycloneMonitoring", "CycloneTraining", "CycloneRuntime", "CycloneStore", "CycloneCloud"],
            "CycloneMonitoring": ["CycloneTraining", "CycloneRuntime", "CycloneStore", "CycloneCloud"],
            "CycloneTraining": ["CycloneRuntime", "CycloneStore", "CycloneCloud"],
            "CycloneRuntime": ["CycloneStore", "CycloneCloud"],
            "CycloneHTTP": ["CycloneStore", "CycloneCloud", "PostgresNIO"],
            // Store and Cloud never on each other.
            "CycloneStore": ["CycloneCloud"],
            "CycloneCloud": ["CycloneStore"],
            "CycloneServing": ["CycloneCloud", "CycloneEvaluation", "CycloneReplay"],
            "CycloneEvaluation": ["CycloneServing", "CycloneReplay"],
            // The jobs: a retrain or an operator's command starts no server.
            "Retrain": [], "CycloneCLI": [],
        ]
        // Nothing below the HTTP edge, and no job, reaches an HTTP server.
        let rules = above.map { (target: $0.key, never: $0.key == "CycloneHTTP" ? $0.value : $0.value.union(http)) }
        for (target, never) in rules {
            #expect(targets[target] != nil, "\(target) is a target")
            let reached = reach(target).intersection(never)
            #expect(reached.isEmpty, "\(target) reaches \(reached.sorted())")
        }
    }
}
