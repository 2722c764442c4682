import AsyncHTTPClient
import CryptoExtras
import CycloneCloud
import CycloneModel
import CycloneStore
import CycloneTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import PostgresNIO
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The loop as it runs in a Google Cloud project, on one machine: the real `evaluate` service answers the
/// scheduler's POST, starts the retrain job with `jobs.run` on the fake Admin API, which runs the real
/// `retrain` binary as the job's container; retrain pushes the model image to Debian's registry and patches
/// the predict service; the next cycles judge the canary from what its revision served and move traffic.
/// Tokens come from the fake metadata server throughout: the Admin API refuses calls without one.
@Suite(.serialized) struct CloudLoopTests {
    /// A better candidate: canary revision at 10 %, then all the traffic once its labels show it better.
    /// evaluate's training windows reach the job as overrides of the job's own.
    @Test func aBetterCandidateIsDeployedAsACanaryAndPromoted() async throws {
        try await withCloud(evaluate: ["TRAINING_WINDOW_ROWS": "250", "TRAINING_WINDOWS": "1"]) { cloud in
            let candidate = try await cloud.retrainFromBreach()
            #expect(cloud.traffic().map(\.percent) == [90, 10])
            let overrides = cloud.fake.state.withLock { $0.runs.first?["overrides"]["containerOverrides"].array.first?["env"] }
            #expect(overrides?.array.contains(["name": "TRAINING_WINDOW_ROWS", "value": "250"]) == true)
            #expect(overrides?.array.contains(["name": "TRAINING_WINDOWS", "value": "1"]) == true)
            var trained = 0
            for try await rows in try await cloud.db.client.query("SELECT training_rows::int FROM model WHERE version = '2'",
                                                                  logger: .test).decode(Int.self) { trained = rows }
            #expect(trained == 300, "one window of 250 rows before the holdout (a fifth of it, 50), refitted with it")
            #expect(cloud.auth.state.withLock { $0.issued } == 2, "evaluate's token, and the retrain job's")

            // Its revision serves the changed world well, as live keeps serving it badly.
            try await storeServed(cloud.db, candidate, n: 120, seed: 21, a: -3, b: 2, spacing: 0.001)
            try await storeServed(cloud.db, cloud.live, n: 120, seed: 22, a: -3, b: 2, spacing: 0.001)
            try await cloud.cycle()
            let traffic = cloud.traffic()
            #expect(traffic.count == 1 && traffic[0].revision?.hasPrefix("predict-demand-v2-") == true && traffic[0].percent == 100,
                    "\(traffic)")
            #expect(try await modelRows(cloud.db).map(\.status) == ["retired", "live"])
            #expect(try await cloud.events() == ["retrain_requested", "retrain_started", "retrain_finished",
                                                 "canary_started", "promoted"])
        }
    }

    /// A canary that serves worse than live is rolled back: the revision that served before gets everything.
    /// (Live's window still holds the change: the cooldown keeps that cycle from asking again.)
    @Test func anUnderperformingCanaryIsRolledBack() async throws {
        try await withCloud(evaluate: ["RETRAIN_COOLDOWN": "1h"]) { cloud in
            let candidate = try await cloud.retrainFromBreach()
            // The world goes back to what version 1 learned: the canary, trained on the change, is now worse.
            try await storeServed(cloud.db, candidate, n: 120, seed: 23, a: 3, b: -2, spacing: 0.001)
            try await storeServed(cloud.db, cloud.live, n: 120, seed: 24, a: 3, b: -2, spacing: 0.001)
            try await cloud.cycle()
            #expect(cloud.traffic().map { "\($0.revision ?? "latest") \($0.percent)" } == ["predict-00001-abc 100"])
            let models = try await modelRows(cloud.db)
            #expect(models.map(\.status) == ["live", "rejected"])
            #expect(models[1].reason?.hasPrefix("rolled back") == true, "\(models[1].reason ?? "")")
            let events = try await cloud.events()
            #expect(events == ["retrain_requested", "retrain_started", "retrain_finished", "canary_started", "rolled_back"],
                    "\(events)")
        }
    }

    /// A threshold no model can meet (RMSE under the noise) asks for a retrain, but the candidate is not better
    /// than live by `MIN_IMPROVEMENT`: it is registered as rejected, no image is pushed, nothing is patched.
    @Test func aRejectedCandidateDeploysNothing() async throws {
        try await withCloud(evaluate: ["RETRAIN_METRIC": "rmse", "RETRAIN_THRESHOLD": "0.1"],
                            job: ["MIN_IMPROVEMENT": "0.05"]) { cloud in
            try await storeServed(cloud.db, cloud.live, n: 300, seed: 6, a: 3, b: -2)
            try await cloud.cycle()
            #expect(try await cloud.finishedExecution()["succeededCount"] == .number(1))
            #expect(cloud.fake.state.withLock { $0.patches } == 0)
            #expect(cloud.traffic().map(\.revision) == [nil])
            let tags = try JSONParser.parse(Array(try await Repository.run(
                "/usr/bin/curl", ["-sf", "http://\(cloud.registry)/v2/project/cyclone/serve/tags/list"]).utf8))
            #expect(tags["tags"] == ["abc123"], "no model image was pushed")
            let models = try await modelRows(cloud.db)
            #expect(models.map(\.status) == ["live", "rejected"])
            #expect(models[1].reason?.contains("not 5 % closer to 1") == true, "\(models[1].reason ?? "")")
        }
    }
}

/// One Google Cloud project on this machine: the registry, the metadata server and the Admin API, a
/// database with version 1 of `demand` live, and the evaluate service.
struct Cloud: Sendable {
    var db: TestDatabase
    var fake: FakeCloudRun
    var auth: FakeGoogleAuth
    var live: ModelArtifact
    var evaluate: String
    var registry: String

    /// The scheduler's POST /evaluate; evaluate answers 200 with its report.
    func cycle() async throws {
        var request = HTTPClientRequest(url: evaluate + "/evaluate")
        request.method = .POST
        var lastError: (any Error)?
        for _ in 0..<100 {
            let response: HTTPClientResponse
            do { response = try await HTTPClient.shared.execute(request, timeout: .seconds(60)) } catch {
                lastError = error  // not listening yet
                try await Task.sleep(for: .milliseconds(100))
                continue
            }
            let body = try await response.body.collect(upTo: 1 << 22)
            #expect(response.status == .ok, "\(String(buffer: body))")
            return
        }
        throw lastError!
    }

    /// The breach: live serves a changed world; one cycle starts the job, whose execution runs retrain to an
    /// accepted candidate, deployed as a canary. Returns the candidate as registered.
    func retrainFromBreach() async throws -> ModelArtifact {
        try await storeServed(db, live, n: 300, seed: 6, a: -3, b: 2)
        try await cycle()
        let runs = fake.state.withLock { $0.runs }
        #expect(runs.count == 1)
        let overrides = runs.first?["overrides"]["containerOverrides"].array.first?["env"].array ?? []
        #expect(overrides.contains(["name": "RETRAIN_MODEL_NAME", "value": "demand"]), "\(overrides)")
        let started = try await db.client.query("SELECT detail->>'execution' FROM event WHERE kind = 'retrain_started'",
                                                logger: .test)
        var execution = ""
        for try await name in started.decode(String.self) { execution = name }
        #expect(execution == "projects/project/locations/europe-west1/jobs/retrain/executions/retrain-00001")
        #expect(try await finishedExecution()["succeededCount"] == .number(1))
        let candidate = try await ModelRegistry(client: db.client, logger: .test).artifact(name: "demand", version: "2")
        #expect(try await modelRows(db).map(\.status) == ["live", "canary"])
        return try #require(candidate)
    }

    /// The job's execution once Cloud Run reports it complete.
    func finishedExecution() async throws -> JSONValue {
        for _ in 0..<1_200 {
            if let newest = fake.state.withLock({ $0.executions["retrain"]?.first }), newest["completionTime"] != .null {
                return newest
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestDatabaseError(description: "the retrain execution did not finish in two minutes")
    }

    /// predict's traffic as Cloud Run reports it.
    func traffic() -> [(revision: String?, percent: Int)] {
        fake.state.withLock { state in
            (state.services["predict"]?.object["trafficStatuses"]?.array ?? []).map {
                ($0["revision"].string, Int($0["percent"].number ?? 0))
            }
        }
    }

    func events() async throws -> [String] {
        var kinds: [String] = []
        for try await kind in try await db.client.query("SELECT kind FROM event ORDER BY id", logger: .test).decode(String.self) {
            kinds.append(kind)
        }
        return kinds
    }
}

/// Runs `body` in a fresh `Cloud`; `evaluate` and `job` are added to the evaluate service's environment and
/// the retrain job's.
func withCloud(evaluate settings: [String: String] = [:], job: [String: String] = [:], _ body: @Sendable (Cloud) async throws -> Void) async throws {
    let (evaluate, retrain) = (try Repository.product("evaluate"), try Repository.product("retrain"))
    let local = try await LocalRegistry()
    do {
        _ = try await LocalRegistry.pushBase(Registry(host: local.host, insecure: true), repository: "project/cyclone/serve",
                                             tag: "abc123", oci: true)
        let auth = FakeGoogleAuth(publicKey: FakeGoogleAuth.testKey.publicKey)
        let fake = FakeCloudRun(tokenPrefix: "ya29.fake-")
        fake.addService("predict", image: "\(local.host)/project/cyclone/serve@sha256:\(String(repeating: "0", count: 64))")
        try await auth.application().test(.live) { authClient in
            try await fake.application().test(.live) { runClient in
                let live = try liveModel()
                try await withTestDatabase { db in
                    _ = try await ModelRegistry(client: db.client, logger: .test).register(live, status: .live)
                    // What evaluate and the retrain job share in the project (infra/ sets the same).
                    let project = [
                        "DATABASE_URL": db.url, "LOG_LEVEL": "error", "PLATFORM": "cloudrun",
                        "GOOGLE_CLOUD_PROJECT": fake.project, "GOOGLE_CLOUD_REGION": fake.region,
                        "SERVE_IMAGE": "\(local.host)/project/cyclone/serve:abc123",
                        "CLOUD_RUN_ENDPOINT": "http://127.0.0.1:\(try #require(runClient.port))",
                        "GCE_METADATA_HOST": "127.0.0.1:\(try #require(authClient.port))", "ROLLOUT": "canary", "CANARY_PERCENT": "10",
                    ]
                    let executions = Mutex(0)
                    fake.executeJobs { _, environment in
                        let number = executions.withLock { $0 += 1; return $0 }
                        let process: ChildProcess
                        do {
                            process = try ChildProcess(retrain.path, environment: project.merging(job) { $1 }.merging(environment) { $1 },
                                                       logPath: "\(local.folder)/retrain-\(number).log")
                        } catch {
                            print("retrain did not start: \(error)")
                            return false
                        }
                        let status = await process.wait()
                        if status != 0 { print("retrain exited \(status): \(process.log)") }
                        return status == 0
                    }
                    let (server, port) = try await ChildServer.start(evaluate.path, environment: project.merging([
                        "RETRAIN_COOLDOWN": "0s", "CANARY_MIN_LABELS": "50", "RETRAIN_TRIGGER": "threshold",
                    ].merging(settings) { $1 }) { $1 }, log: { _ in "\(local.folder)/evaluate.log" })
                    // Nothing outlives the test's database: evaluate stops, and every retrain started finishes.
                    func stop() async {
                        server.signal(SIGTERM)
                        _ = await server.wait()
                        await fake.drain()
                    }
                    do {
                        try await body(Cloud(db: db, fake: fake, auth: auth, live: live, evaluate: "http://127.0.0.1:\(port)",
                                             registry: local.host))
                    } catch {
                        await stop()
                        throw error
                    }
                    await stop()
                    #expect(fake.state.withLock { $0.unauthenticated } == 0, "every Admin API call carried a token")
                }
            }
        }
        await local.stop()
    } catch {
        await local.stop()
        throw error
    }
}
