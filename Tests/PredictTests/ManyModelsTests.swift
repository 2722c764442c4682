import CycloneCloud
import CycloneModel
import CycloneStore
import CycloneTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Predict

/// One predict serving a model folder (`MODEL_DIR`) as the local platform deploys into it: each model by its
/// name in the path, through every protocol, stored under its own name.
@Suite struct ManyModelsTests {
    /// A model folder with `bikes` (regression) and `churn` (binary) deployed by the local platform.
    private func folder() async throws -> String {
        let folder = TestFiles.folder.appendingPathComponent("cyclone-many-\(UUID().uuidString)").path
        let platform = LocalPlatform(modelDirectory: folder)
        _ = try await platform.deploy(try TestModels.regression(), as: .live)
        _ = try await platform.deploy(try TestModels.binary(), as: .live)
        return folder
    }

    private func withFolder(_ folder: String, environment extra: [String: String] = [:],
                            _ test: @escaping @Sendable (any TestClientProtocol, TestDatabase) async throws -> Void) async throws {
        try await withTestDatabase { db in
            var environment = ["MODEL_DIR": folder, "DATABASE_URL": db.url, "STORE_TIMEOUT": "60s",
                               "MODEL_RELOAD_INTERVAL": "10ms"]
            environment.merge(extra) { _, new in new }
            let app = try await buildApplication(try settings(environment), logger: .test)
            try await app.test(.router) { client in try await test(client, db) }
        }
    }

    private static let bikes = #"{"instances": [\#(TestModels.bikeInstance.jsonText)]}"#

    private static func churn() throws -> String {
        let instances = try LinearCase.all().first { $0.name == "logistic_binary" }!.testInstances()
        return #"{"instances": [\#(instances[0].jsonText), \#(instances[1].jsonText)]}"#
    }

    @Test func eachModelIsServedByNameAndStoredUnderIt() async throws {
        let churn = try Self.churn()
        try await withFolder(try await folder()) { client, db in
            // Without a name, /predict asks for one, naming the models.
            try await client.execute(uri: "/predict", method: .post, body: body(Self.bikes)) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("2 models are served here (bikes, churn): name one, as in /predict/bikes"))
            }
            try await client.execute(uri: "/predict/bikes", method: .post, body: body(Self.bikes)) { response in
                #expect(response.status == .ok)
                let answer = try json(response.body)
                #expect((answer["model"] as? [String: String])?["name"] == "bikes")
            }
            try await client.execute(uri: "/v1/models/churn:predict", method: .post, body: body(churn)) { response in
                #expect(response.status == .ok)
                let answer = try json(response.body)
                #expect((answer["predictions"] as? [[String: Any]])?.first?["class"] != nil)
            }
            // The other protocol's view of the same folder.
            try await client.execute(uri: "/v2/models/churn", method: .get) { response in
                #expect(response.status == .ok)
                let metadata = try json(response.body)
                #expect(metadata["name"] as? String == "churn")
            }
            try await client.execute(uri: "/v2/models/trains/ready", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body) == #"{"error":"model 'trains' is not served here (models: bikes, churn)"}"#)
            }
            try await client.execute(uri: "/predict/trains", method: .post, body: body(Self.bikes)) { response in
                #expect(response.status == .notFound)
            }
            // A model's instances sent to another model are that model's bad input, counted against it.
            try await client.execute(uri: "/predict/churn", method: .post, body: body(Self.bikes)) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/model/churn", method: .get) { response in
                #expect(String(buffer: response.body) == #"{"name":"churn","version":"2"}"#)
            }
            try await client.execute(uri: "/model", method: .get) { response in #expect(response.status == .badRequest) }
            try await client.execute(uri: "/openapi.json?model=churn", method: .get) { response in
                #expect(String(buffer: response.body).contains("Cyclone predict: churn"))
            }

            let stored = try await db.predictions(awaiting: 3)
            #expect(stored.map(\.modelName).sorted() == ["bikes", "churn", "churn"])
            // Each model is registered as it is first loaded.
            let registry = ModelRegistry(client: db.client, logger: .test)
            var waited = 0
            while try await registry.artifact(name: "churn", version: "2") == nil, waited < 500 {
                waited += 1
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(try await registry.artifact(name: "bikes", version: "7") != nil)
            #expect(try await registry.artifact(name: "churn", version: "2") != nil)
        }
    }

    /// A model deployed into the folder while predict runs is served at once; with room for one model loaded,
    /// requests that alternate between two load each again, and are answered all the same.
    @Test func aNewModelIsServedAtOnceAndTheCacheIsBounded() async throws {
        let folder = try await folder()
        let churn = try Self.churn()
        try await withFolder(folder, environment: ["MODEL_CACHE_SIZE": "1"]) { client, db in
            var taxis = try TestModels.regression(name: "taxis", version: "1")
            taxis.target = "fare"
            _ = try await LocalPlatform(modelDirectory: folder).deploy(taxis, as: .live)
            try await client.execute(uri: "/predict/taxis", method: .post, body: body(Self.bikes)) { response in
                #expect(response.status == .ok)
                let answer = try json(response.body)
                #expect((answer["model"] as? [String: String])?["name"] == "taxis")
            }
            for _ in 0..<3 {
                try await client.execute(uri: "/predict/bikes", method: .post, body: body(Self.bikes)) { #expect($0.status == .ok) }
                try await client.execute(uri: "/predict/churn", method: .post, body: body(churn)) { #expect($0.status == .ok) }
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                let evictions = text.split(separator: "\n").first { $0.hasPrefix("cyclone_model_evictions_total") }
                #expect(evictions.flatMap { Double($0.split(separator: " ").last ?? "") }.map { $0 >= 6 } == true, "\(text.prefix(300))")
            }
            #expect(try await db.predictions(awaiting: 1 + 3 + 6).count == 1 + 3 + 6)
        }
    }

    @Test func aFolderThatCannotBeReadStopsTheStart() async throws {
        let missing = TestFiles.folder.appendingPathComponent("no-such-folder-\(UUID().uuidString)").path
        await #expect { try await buildApplication(try settings(["MODEL_DIR": missing, "DATABASE_URL": "postgres://u@h/d"]), logger: .test) } throws: {
            "\($0)".hasPrefix("MODEL_DIR \(missing) cannot be read")
        }
        // A challenger's own path is MODEL_PATH's; a folder's are its links.
        #expect(throws: (any Error).self) { try settings(["MODEL_DIR": missing, "CANARY_MODEL_PATH": "/x", "DATABASE_URL": "postgres://u@h/d"]) }
    }
}
