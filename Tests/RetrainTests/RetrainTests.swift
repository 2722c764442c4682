import Configuration
import CycloneCloud
import CycloneModel
import CycloneRuntime
import CycloneStore
import CycloneTestSupport
import CycloneTraining
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import Retrain

func job(_ db: TestDatabase, _ environment: [String: String] = [:], platform: (any Platform)? = nil) throws -> RetrainJob {
    var env = ["RETRAIN_MODEL_NAME": "demand", "RETRAIN_PARENT_VERSION": "1", "DATABASE_URL": db.url]
    env.merge(environment) { _, new in new }
    return try RetrainJob(settings: try RetrainSettings(reader: ConfigReader.cyclone(environment: env)), client: db.client,
                          platform: platform, logger: .test)
}

/// The local platform, noting the registry's statuses while each deployment runs (as a job killed mid-way
/// would leave them), and failing its deployments when asked.
final class Seen: Sendable {
    let statuses = Mutex<[[String]]>([])
}

struct WatchedPlatform: Platform {
    let local: LocalPlatform
    let client: PostgresClient
    let seen = Seen()
    var fails = false

    var deploys: Bool { true }
    func startRetrain(_ request: RetrainRequest) async throws -> RetrainExecution { try await local.startRetrain(request) }
    func deploy(_ model: ModelArtifact, as role: Role, beside live: ModelArtifact?) async throws -> Deployment? {
        var statuses: [String] = []
        let rows = try await client.query("SELECT version, status FROM model ORDER BY version", logger: .test)
        for try await (version, status) in rows.decode((String, String).self) { statuses.append("\(version): \(status)") }
        seen.statuses.withLock { [statuses] in $0.append(statuses) }
        if fails { throw RetrainError("the platform is down") }
        return try await local.deploy(model, as: role, beside: live)
    }
    func promote(_ model: ModelArtifact, from role: Role) async throws -> Deployment? {
        try await local.promote(model, from: role)
    }
    func rollback(_ model: ModelArtifact, from role: Role) async throws -> Deployment? {
        try await local.rollback(model, from: role)
    }
}

@Suite struct RetrainTests {
    /// The relationship changed: the candidate, trained on the window's older rows, beats what the live model
    /// served on the newest, is refitted with them, and is registered as a candidate with its parent, window
    /// and both sides' metrics.
    @Test func aBetterCandidateIsRegisteredAsCandidate() async throws {
        let live = try liveModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(live, status: .live)
            try await storeServed(db, live, n: 500, seed: 2, a: -3, b: 2)
            let report = try await job(db).run()
            #expect(report.accepted && report.version == "2" && report.rows == 500, "\(report)")
            // The artifact registered carries its number, not the placeholder it was trained under.
            let registered = try await ModelRegistry(client: db.client, logger: .test).artifact(name: "demand", version: "2")
            #expect(registered?.version == "2")
            let models = try await modelRows(db)
            #expect(models.count == 2)
            #expect(models[1].version == "2" && models[1].status == "candidate" && models[1].parent == "1")
            let detail = try await db.client.query("""
                SELECT (holdout_metrics->'candidate'->>'r2')::float8, (holdout_metrics->'live'->>'r2')::float8,
                       (holdout_metrics->>'rows')::int, training_rows::int, NOT isempty(training_window)
                FROM model WHERE version = '2'
                """, logger: .test)
            for try await (candidate, liveR2, compared, trained, window) in detail.decode((Double, Double, Int, Int, Bool).self) {
                #expect(candidate > 0.9 && liveR2 < 0, "candidate \(candidate), live \(liveR2)")
                #expect(compared == 100 && trained == 500 && window)
            }
            let artifact = try #require(try await ModelRegistry(client: db.client, logger: .test).artifact(name: "demand", version: "2"))
            #expect(artifact.training?.parentVersion == "1" && artifact.profile?.rows == 500)
            #expect(artifact.features.map(\.name) == live.features.map(\.name))
            let events = try await db.client.query("SELECT kind, detail->>'status' FROM event", logger: .test)
            var kinds: [String] = []
            for try await (kind, status) in events.decode((String, String?).self) { kinds.append("\(kind):\(status ?? "")") }
            #expect(kinds == ["retrain_finished:candidate"])
        }
    }

    /// A tree model is retrained as trees with its own settings (`TRAINING_FAMILIES=live`): the candidate keeps
    /// the live model's learning rate and leaves, and learns the changed world. By default ridge competes too,
    /// and on this linear world it wins: the event names each candidate's family and the one chosen.
    @Test func aTreeModelIsRetrainedAsTrees() async throws {
        let (table, y) = rows(400, seed: 1, a: 3, b: -2)
        var options = TrainingOptions(family: .gbdt)
        options.boosting.learningRate = 0.2
        options.boosting.maxLeaves = 8
        let live = try Trainer(options: options).train(name: "demand", version: "1", features: table,
                                                       target: .init(name: "y", values: .numeric(y)))
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(live, status: .live)
            try await storeServed(db, live, n: 500, seed: 8, a: -3, b: 2)
            let report = try await job(db, ["TRAINING_FAMILIES": "live"]).run()
            #expect(report.accepted, "\(report)")
            let registry = ModelRegistry(client: db.client, logger: .test)
            let candidate = try #require(try await registry.artifact(name: "demand", version: "2"))
            guard case .trees = candidate.predictor else { Issue.record("the candidate is not trees"); return }
            #expect(candidate.training?.family == "gbdt")
            #expect(candidate.training?.parameters["learning_rate"] == 0.2 && candidate.training?.parameters["num_leaves"] == 8)

            #expect(try await job(db).run().accepted)
            let ridge = try #require(try await registry.artifact(name: "demand", version: "3"))
            #expect(ridge.training?.family == "ridge")
            let events = try await db.client.query("""
                SELECT detail->>'chosen_family', jsonb_path_query_array(detail, '$.windows[*].family')::text
                FROM event WHERE kind = 'retrain_finished' ORDER BY id
                """, logger: .test)
            var seen: [String] = []
            for try await (chosen, families) in events.decode((String, String).self) { seen.append("\(chosen) \(families)") }
            #expect(seen == [#"gbdt ["gbdt"]"#, #"ridge ["gbdt", "ridge"]"#], "\(seen)")
        }
    }

    /// With a model folder (the local platform) and no canary, an accepted candidate is deployed: its file
    /// written, the serving link re-pointed to it, the candidate marked live and the parent retired, a
    /// `deployed` event.
    @Test func anAcceptedCandidateIsDeployed() async throws {
        let live = try liveModel()
        let folder = TestFiles.folder.appendingPathComponent("cyclone-models-\(UUID().uuidString)").path
        _ = try await LocalPlatform(modelDirectory: folder).deploy(live, as: .live)
        let link = LocalPlatform.servingPath(name: "demand", in: folder)
        #expect(try ModelArtifact.load(contentsOf: URL(fileURLWithPath: link)).version == "1")
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(live, status: .live)
            try await storeServed(db, live, n: 500, seed: 7, a: -3, b: 2)
            let report = try await job(db, ["MODEL_DIR": folder, "ROLLOUT": "direct"]).run()
            #expect(report.accepted && report.deployment != nil, "\(report)")
            #expect(try ModelArtifact.load(contentsOf: URL(fileURLWithPath: link)).version == "2")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "versions/demand-2.json")
            #expect(FileManager.default.fileExists(atPath: "\(folder)/versions/demand-1.json"), "the old version stays for a rollback")
            #expect(try await modelRows(db).map(\.status) == ["retired", "live"])
            let kinds = try await db.client.query("SELECT kind FROM event ORDER BY id", logger: .test)
            var seen: [String] = []
            for try await kind in kinds.decode(String.self) { seen.append(kind) }
            #expect(seen == ["retrain_finished", "deployed"])
        }
    }

    /// By default an accepted candidate goes to shadow: the shadow link points to it, the live link stays, and
    /// it is registered as `shadow` with a `shadow_started` event.
    @Test func anAcceptedCandidateGoesToShadowByDefault() async throws {
        let live = try liveModel()
        let folder = TestFiles.folder.appendingPathComponent("cyclone-models-\(UUID().uuidString)").path
        _ = try await LocalPlatform(modelDirectory: folder).deploy(live, as: .live)
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(live, status: .live)
            try await storeServed(db, live, n: 500, seed: 8, a: -3, b: 2)
            let report = try await job(db, ["MODEL_DIR": folder]).run()
            #expect(report.deployment?.hasPrefix("as the live version's shadow") == true, "\(report)")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: LocalPlatform.servingPath(name: "demand", in: folder)) == "versions/demand-1.json")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: LocalPlatform.path(name: "demand", .shadow, in: folder)) == "versions/demand-2.json")
            #expect(!FileManager.default.fileExists(atPath: LocalPlatform.path(name: "demand", .canary, in: folder)))
            #expect(try await modelRows(db).map(\.status) == ["live", "shadow"])
            let kinds = try await db.client.query("SELECT kind FROM event ORDER BY id", logger: .test)
            var seen: [String] = []
            for try await kind in kinds.decode(String.self) { seen.append(kind) }
            #expect(seen == ["retrain_finished", "shadow_started"])
        }
    }

    /// With `ROLLOUT=canary` an accepted candidate starts as a canary: the canary link points to it, the live
    /// link stays, and it is registered as `canary` with a `canary_started` event.
    @Test func anAcceptedCandidateStartsAsACanary() async throws {
        let live = try liveModel()
        let folder = TestFiles.folder.appendingPathComponent("cyclone-models-\(UUID().uuidString)").path
        _ = try await LocalPlatform(modelDirectory: folder).deploy(live, as: .live)
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(live, status: .live)
            try await storeServed(db, live, n: 500, seed: 8, a: -3, b: 2)
            let report = try await job(db, ["MODEL_DIR": folder, "ROLLOUT": "canary"]).run()
            #expect(report.deployment?.hasPrefix("as a canary for 10 % of requests") == true, "\(report)")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: LocalPlatform.servingPath(name: "demand", in: folder)) == "versions/demand-1.json")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: LocalPlatform.path(name: "demand", .canary, in: folder)) == "versions/demand-2.json")
            #expect(try await modelRows(db).map(\.status) == ["live", "canary"])
        }
    }

    /// Nothing changed: the candidate is no better than the live model by the margin, so it is registered as
    /// rejected with the reason, and the live model stays live.
    @Test func aCandidateThatIsNotBetterIsRejected() async throws {
        let live = try liveModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(live, status: .live)
            try await storeServed(db, live, n: 500, seed: 3, a: 3, b: -2)
            let report = try await job(db, ["MIN_IMPROVEMENT": "0.05"]).run()
            #expect(!report.accepted)
            #expect(report.reason.contains("not 5 % closer to 1"), "\(report.reason)")
            let models = try await modelRows(db)
            #expect(models.map(\.status) == ["live", "rejected"])
            #expect(models[1].reason == report.reason)
        }
    }

    /// Too few labels is an error that names the setting; a run cancelled (SIGTERM) registers nothing.
    @Test func tooFewRowsAndCancellationRegisterNothing() async throws {
        let live = try liveModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(live, status: .live)
            try await storeServed(db, live, n: 60, seed: 4, a: -3, b: 2)
            let error = await #expect(throws: RetrainError.self) { try await job(db).run() }
            #expect(error?.description.contains("MIN_TRAINING_ROWS") == true)

            try await storeServed(db, live, n: 400, seed: 5, a: -3, b: 2)
            let cancelled = Task { [job = try job(db)] in
                withUnsafeCurrentTask { $0?.cancel() }
                return try await job.run()
            }
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            #expect(try await modelRows(db).count == 1)
        }
    }

    /// The real binary: one line on success, one line and a non-zero status on a missing setting.
    @Test func theJobPrintsOneLine() async throws {
        let binary = try Repository.product("retrain")
        let live = try liveModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(live, status: .live)
            try await storeServed(db, live, n: 300, seed: 6, a: -3, b: 2)
            let log = TestFiles.folder.appendingPathComponent("retrain-\(UUID()).log").path
            let run = try ChildProcess(binary.path, environment: [
                "RETRAIN_MODEL_NAME": "demand", "RETRAIN_PARENT_VERSION": "1", "DATABASE_URL": db.url,
                "LOG_LEVEL": "error",
            ], logPath: log)
            #expect(await run.wait() == 0, "\(run.log)")
            #expect(run.log.contains("accepted candidate 2 trained on 300 rows: r2 "), "\(run.log)")

            let bad = try ChildProcess(binary.path, environment: ["DATABASE_URL": db.url], logPath: log + ".bad")
            #expect(await bad.wait() == 2)
            #expect(bad.log.trimmingCharacters(in: .whitespacesAndNewlines) == "retrain: RETRAIN_MODEL_NAME is not set", "\(bad.log)")
        }
    }
}

extension RetrainTests {
    /// SIGTERM (Cloud Run's cancellation and task timeout) while the job waits on PostgreSQL: exit 143 with one
    /// line, and `retrain_failed` recorded so the loop need not wait for `RETRAIN_TIMEOUT`.
    @Test func sigtermEndsTheJobWith143AndRecordsTheFailure() async throws {
        let binary = try Repository.product("retrain")
        let live = try liveModel()
        try await withTestDatabase { db in
            _ = try await ModelRegistry(client: db.client, logger: .test).register(live, status: .live)
            try await db.client.withConnection { locker in
                // The job's first query (the live model) waits behind this lock until the signal.
                try await locker.query("BEGIN", logger: .test)
                try await locker.query("LOCK TABLE model IN ACCESS EXCLUSIVE MODE", logger: .test)
                let log = TestFiles.folder.appendingPathComponent("retrain-\(UUID()).log").path
                let run = try ChildProcess(binary.path, environment: [
                    "RETRAIN_MODEL_NAME": "demand", "RETRAIN_PARENT_VERSION": "1", "DATABASE_URL": db.url,
                    "LOG_LEVEL": "error",
                ], logPath: log)
                var waiting = false
                for _ in 0..<400 where !waiting {
                    try await Task.sleep(for: .milliseconds(50))
                    let rows = try await db.client.query(
                        "SELECT count(*)::int FROM pg_locks WHERE NOT granted AND relation = 'model'::regclass", logger: .test)
                    for try await count in rows.decode(Int.self) { waiting = count > 0 }
                }
                #expect(waiting, "the job never reached the locked table: \(run.log)")
                run.signal(SIGTERM)
                #expect(await run.wait() == 143, "\(run.log)")
                #expect(run.log.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("retrain: cancelled by SIGTERM"), "\(run.log)")
                try await locker.query("ROLLBACK", logger: .test)
            }
            let events = try await db.client.query("SELECT kind, detail->>'reason' FROM event", logger: .test)
            var seen: [String] = []
            for try await (kind, reason) in events.decode((String, String?).self) { seen.append("\(kind): \(reason ?? "")") }
            #expect(seen == ["retrain_failed: cancelled (SIGTERM)"])
        }
    }

    /// The platform deploys before the registry records: while the deployment runs (where a job killed
    /// mid-way stops) the registry still names the old version live and the new one a candidate; a deployment
    /// that fails leaves exactly that.
    @Test func theRegistryNamesOnlyWhatServes() async throws {
        let live = try liveModel()
        for rollout in ["direct", "canary", "shadow"] {
            for fails in [false, true] {
                let folder = TestFiles.folder.appendingPathComponent("cyclone-models-\(UUID().uuidString)").path
                _ = try await LocalPlatform(modelDirectory: folder).deploy(live, as: .live)
                try await withTestDatabase { db in
                    let registry = ModelRegistry(client: db.client, logger: .test)
                    _ = try await registry.register(live, status: .live)
                    try await storeServed(db, live, n: 500, seed: 7, a: -3, b: 2)
                    var platform = WatchedPlatform(local: LocalPlatform(modelDirectory: folder), client: db.client)
                    platform.fails = fails
                    let run = try job(db, ["MODEL_DIR": folder, "ROLLOUT": rollout], platform: platform)
                    if fails {
                        await #expect(throws: RetrainError.self) { try await run.run() }
                    } else {
                        _ = try await run.run()
                    }
                    #expect(platform.seen.statuses.withLock { $0 } == [["1: live", "2: candidate"]])
                    let statuses = try await modelRows(db).map(\.status)
                    let deployed = ["direct": ["retired", "live"], "canary": ["live", "canary"], "shadow": ["live", "shadow"]]
                    #expect(statuses == (fails ? ["live", "candidate"] : deployed[rollout]), "\(rollout), fails \(fails)")
                }
            }
        }
    }

}
