import CryptoExtras
import CycloneCloud
import CycloneModel
import CycloneStore
import CycloneTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Synchronization
import Testing

/// The retrain job with `PLATFORM=cloudrun`, end to end on one machine: its token from a fake metadata
/// server, the model image pushed to a real registry on top of the serve image, and the candidate deployed
/// as a canary revision through the fake Admin API.
@Suite(.serialized) struct CloudRetrainTests {
    @Test func anAcceptedCandidateBecomesACanaryRevision() async throws {
        let retrain = try Repository.product("retrain")
        let local = try await LocalRegistry()
        do {
            let registry = Registry(host: local.host, insecure: true)
            _ = try await LocalRegistry.pushBase(registry, repository: "project/cyclone/serve", tag: "abc123", oci: true)
            let auth = FakeGoogleAuth(publicKey: FakeGoogleAuth.testKey.publicKey)
            let cloudRun = FakeCloudRun()
            cloudRun.addService("predict", image: "\(local.host)/project/cyclone/serve@sha256:\(String(repeating: "0", count: 64))")
            try await auth.application().test(.live) { authClient in
                try await cloudRun.application().test(.live) { runClient in
                    let live = try liveModel()
                    try await withTestDatabase { db in
                        _ = try await ModelRegistry(client: db.client, logger: .test).register(live, status: .live)
                        try await storeServed(db, live, n: 300, seed: 6, a: -3, b: 2)
                        let job = try ChildProcess(retrain.path, environment: [
                            "RETRAIN_MODEL_NAME": "demand", "RETRAIN_PARENT_VERSION": "1", "DATABASE_URL": db.url,
                            "LOG_LEVEL": "error", "PLATFORM": "cloudrun", "GOOGLE_CLOUD_PROJECT": cloudRun.project,
                            "GOOGLE_CLOUD_REGION": cloudRun.region, "SERVE_IMAGE": "\(local.host)/project/cyclone/serve:abc123",
                            "CLOUD_RUN_ENDPOINT": "http://127.0.0.1:\(try #require(runClient.port))",
                            "GCE_METADATA_HOST": "127.0.0.1:\(try #require(authClient.port))", "ROLLOUT": "canary", "CANARY_PERCENT": "10",
                        ], logPath: local.folder + "/retrain.log")
                        #expect(await job.wait() == 0, "\(job.log)")
                        #expect(job.log.contains("accepted candidate 2"), "\(job.log)")
                        #expect(job.log.contains("as a canary for 10 % of requests, revision predict-demand-v2-"), "\(job.log)")

                        // Cloud Run: the canary revision at 10 %, deployed by digest from the registry.
                        let service = cloudRun.state.withLock { $0.services["predict"]!.object }
                        #expect(service["traffic"]?.array.map { Int($0["percent"].number ?? 0) } == [90, 10])
                        let image = try #require(service["template"]?["containers"].array.first?["image"].string)
                        #expect(image.hasPrefix("\(local.host)/project/cyclone/serve@sha256:"), "\(image)")
                        // The registry: the serve image's layer, then the model's; tagged by model version.
                        let config = try JSONParser.parse(Array(try await Repository.run(
                            "/usr/bin/skopeo", ["inspect", "--config", "--tls-verify=false",
                                                "docker://\(local.host)/project/cyclone/serve:demand-2"]).utf8))
                        #expect(config["config"]["Env"].array.compactMap(\.string).contains("MODEL_VERSION=2"))
                        #expect(config["config"]["Labels"]["dev.cyclone.model.parent"].string == "1")
                        #expect(auth.state.withLock { $0.issued } == 1)
                        // The registry of models names the image the version serves from, by its digest.
                        var status = "", digest: String?
                        for try await (value, recorded) in try await db.client.query(
                            "SELECT status, image_digest FROM model WHERE version = '2'", logger: .test).decode((String, String?).self) {
                            (status, digest) = (value, recorded)
                        }
                        #expect(status == "canary")
                        #expect(digest.map { image.hasSuffix("@" + $0) } == true, "\(digest ?? "nil") against \(image)")
                    }
                }
            }
            await local.stop()
        } catch {
            await local.stop()
            throw error
        }
    }

    /// By default the candidate rides as a shadow with the live version: its revision's image is the serve
    /// image, the live model and its own layer at SHADOW_MODEL_PATH, and takes all the traffic, the live one
    /// kept at 0 % under the tag `live`; its own image (for a promotion) is pushed too and named there.
    @Test func anAcceptedCandidateRidesAsAShadowInTheLiveRevision() async throws {
        let retrain = try Repository.product("retrain")
        let local = try await LocalRegistry()
        do {
            let registry = Registry(host: local.host, insecure: true)
            _ = try await LocalRegistry.pushBase(registry, repository: "project/cyclone/serve", tag: "abc123", oci: true)
            let live = try liveModel()
            let serve = try ImageReference("\(local.host)/project/cyclone/serve:abc123")
            var liveTag = serve
            liveTag.tag = "demand-1"
            let liveImage = try await ImageAppend(base: serve, target: liveTag, baseRegistry: registry, targetRegistry: registry)
                .push(model: live, bytes: Array(try live.encoded())).image
            let auth = FakeGoogleAuth(publicKey: FakeGoogleAuth.testKey.publicKey)
            let cloudRun = FakeCloudRun()
            cloudRun.addService("predict", image: liveImage.description)
            try await auth.application().test(.live) { authClient in
                try await cloudRun.application().test(.live) { runClient in
                    try await withTestDatabase { db in
                        _ = try await ModelRegistry(client: db.client, logger: .test).register(live, status: .live)
                        try await storeServed(db, live, n: 300, seed: 6, a: -3, b: 2)
                        let job = try ChildProcess(retrain.path, environment: [
                            "RETRAIN_MODEL_NAME": "demand", "RETRAIN_PARENT_VERSION": "1", "DATABASE_URL": db.url,
                            "LOG_LEVEL": "error", "PLATFORM": "cloudrun", "GOOGLE_CLOUD_PROJECT": cloudRun.project,
                            "GOOGLE_CLOUD_REGION": cloudRun.region, "SERVE_IMAGE": serve.description,
                            "CLOUD_RUN_ENDPOINT": "http://127.0.0.1:\(try #require(runClient.port))",
                            "GCE_METADATA_HOST": "127.0.0.1:\(try #require(authClient.port))",
                        ], logPath: local.folder + "/retrain.log")
                        #expect(await job.wait() == 0, "\(job.log)")
                        #expect(job.log.contains("as the live version's shadow, revision predict-demand-v2-"), "\(job.log)")

                        let service = cloudRun.state.withLock { $0.services["predict"]!.object }
                        let traffic = service["traffic"]?.array ?? []
                        #expect(traffic.map { Int($0["percent"].number ?? 0) } == [100, 0])
                        #expect(traffic.last?["revision"].string == "predict-00001-abc" && traffic.last?["tag"].string == "live")
                        let image = try #require(service["template"]?["containers"].array.first?["image"].string)
                        // The shadow image: the live image's layers and configuration, plus the challenger.
                        let config = try JSONParser.parse(Array(try await Repository.run(
                            "/usr/bin/skopeo", ["inspect", "--config", "--tls-verify=false", "docker://\(image)"]).utf8))
                        let environment = config["config"]["Env"].array.compactMap(\.string)
                        #expect(environment.contains("MODEL_VERSION=1") && environment.contains("SHADOW_MODEL_VERSION=2"),
                                "\(environment)")
                        #expect(environment.contains("SHADOW_MODEL_PATH=/srv/model/shadow.json"), "\(environment)")
                        #expect(config["rootfs"]["diff_ids"].array.count == 3)
                        #expect(config["config"]["Labels"]["dev.cyclone.shadow.version"].string == "2")
                        let own = try #require(service["template"]?["annotations"]["cyclone.dev/challenger-image"].string)
                        let ownConfig = try JSONParser.parse(Array(try await Repository.run(
                            "/usr/bin/skopeo", ["inspect", "--config", "--tls-verify=false", "docker://\(own)"]).utf8))
                        let ownEnvironment = ownConfig["config"]["Env"].array.compactMap(\.string)
                        #expect(ownEnvironment.contains("MODEL_VERSION=2") && !ownEnvironment.contains { $0.hasPrefix("SHADOW_") },
                                "\(ownEnvironment)")
                        // The registry names the version's own image (what serves it once promoted), not the shared one.
                        var status = "", digest: String?
                        for try await (value, recorded) in try await db.client.query(
                            "SELECT status, image_digest FROM model WHERE version = '2'", logger: .test).decode((String, String?).self) {
                            (status, digest) = (value, recorded)
                        }
                        #expect(status == "shadow")
                        #expect(digest.map { own.hasSuffix("@" + $0) } == true, "\(digest ?? "nil") against \(own)")
                    }
                }
            }
            await local.stop()
        } catch {
            await local.stop()
            throw error
        }
    }
}
