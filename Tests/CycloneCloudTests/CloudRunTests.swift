import CycloneCloud
import CycloneModel
import CycloneTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// The Cloud Run platform against the fake Admin API: canary, promotion, rollback, a revision that never
/// becomes ready, another writer's traffic move, retried 503s, Google's errors, and the retrain job.
@Suite struct CloudRunTests {
    static let repository = "europe-west1-docker.pkg.dev/project/cyclone/predict"

    func withPlatform(mirrors: [String] = [], models: [String: CloudRunPlatform.Services] = [:],
                      _ body: @Sendable (FakeCloudRun, CloudRunPlatform) async throws -> Void) async throws
    {
        let fake = FakeCloudRun()
        for service in ["predict"] + mirrors + models.values.flatMap({ [$0.service] + $0.mirrors }) {
            fake.addService(service, image: "\(Self.repository)@sha256:\(String(repeating: "0", count: 64))")
        }
        try await fake.application().test(.live) { client in
            let port = try #require(client.port)
            let cloudRun = CloudRun(endpoint: "http://127.0.0.1:\(port)", project: fake.project, region: fake.region,
                                    credentials: nil, backoff: .milliseconds(5), attempts: 4)
            let platform = CloudRunPlatform(cloudRun: cloudRun, service: "predict", job: "retrain", canaryPercent: 10,
                                            mirrors: mirrors, models: models) { model, live in
                // An image per model version (and per live version it shadows), as ImageAppend would push it.
                let digest = Digest.sha256(Array("\(model.name)@\(model.version)\(live.map { " beside \($0.version)" } ?? "")".utf8))
                let repository = model.version == "99" ? Self.repository + "-broken"
                    : model.version == "98" ? Self.repository + "-unreadable" : Self.repository
                return try ImageReference("\(repository)@\(digest)")
            }
            try await body(fake, platform)
        }
    }

    func traffic(_ fake: FakeCloudRun, of service: String = "predict") -> [String: Int] {
        let statuses = fake.state.withLock { $0.services[service]!.object["trafficStatuses"]?.array ?? [] }
        return Dictionary(uniqueKeysWithValues: statuses.compactMap { status in
            status["revision"].string.map { ($0, Int(status["percent"].number ?? 0)) }
        })
    }

    @Test func aCanaryIsPromotedAndALaterOneRolledBack() async throws {
        try await withPlatform { fake, platform in
            let v2 = try TestModels.regression(version: "2")
            let deployed = try await platform.deploy(v2, as: .canary)
            let revision2 = platform.revisionName(v2, image: try ImageReference(try #require(deployed?.location)))
            #expect(traffic(fake) == ["predict-00001-abc": 90, revision2: 10])
            #expect(deployed?.detail == "revision \(revision2) serves 10 % of predict")
            let tags = fake.state.withLock { $0.services["predict"]!.object["traffic"]?.array.compactMap { $0["tag"].string } }
            #expect(tags == ["canary"])

            let revisions = fake.state.withLock { $0.services["predict"]!.revisions.count }
            _ = try await platform.promote(v2, from: .canary)
            #expect(traffic(fake) == [revision2: 100])
            #expect(fake.state.withLock { $0.services["predict"]!.revisions.count } == revisions, "traffic moves create no revision")

            // Version 2.0 is not version 2, nor is 2 version 2.0.
            await #expect { try await platform.promote(try TestModels.regression(version: "2.0"), from: .canary) } throws: {
                "\($0)".contains("no revision of bikes@2.0 serves")
            }
            let v3 = try TestModels.regression(version: "3")
            _ = try await platform.deploy(v3, as: .canary)
            #expect(traffic(fake).values.sorted() == [10, 90])
            let back = try await platform.rollback(v3, from: .canary)
            #expect(back?.location == revision2)
            #expect(traffic(fake) == [revision2: 100])
        }
    }

    /// A shadow rides in a revision of its own image (the serve image, the live model and the challenger), so
    /// traffic never splits, with the live revision listed at 0 % under the tag `live`; discarding gives the
    /// live revision its traffic back, and promoting deploys the challenger's own image, which the shadow's
    /// revision names.
    @Test func aShadowRidesWithTheLiveVersionAndIsDiscardedOrPromoted() async throws {
        try await withPlatform { fake, platform in
            let (v1, v2) = (try TestModels.regression(version: "1"), try TestModels.regression(version: "2"))
            let image = { (text: String) in try ImageReference("\(Self.repository)@\(Digest.sha256(Array(text.utf8)))") }
            await #expect { try await platform.deploy(v2, as: .shadow) } throws: { "\($0)".contains("needs the live model") }
            let deployed = try await platform.deploy(v2, as: .shadow, beside: v1)
            let shadowImage = try image("bikes@2 beside 1")
            #expect(deployed?.location == shadowImage.description)
            let shadowRevision = platform.revisionName(v2, image: shadowImage)
            #expect(traffic(fake) == [shadowRevision: 100, "predict-00001-abc": 0])
            let tags = fake.state.withLock { $0.services["predict"]!.object["traffic"]?.array.compactMap { $0["tag"].string } }
            #expect(tags == ["live"])
            let revision = try await platform.cloudRun.revision(shadowRevision, of: "predict")
            #expect(revision["containers"].array.first?["image"].string == shadowImage.description)
            #expect(revision["annotations"]["cyclone.dev/challenger-image"].string == (try image("bikes@2")).description)

            let back = try await platform.rollback(v2, from: .shadow)
            #expect(back?.location == "predict-00001-abc")
            #expect(traffic(fake) == ["predict-00001-abc": 100])

            let v3 = try TestModels.regression(version: "3")
            _ = try await platform.deploy(v3, as: .shadow, beside: v1)
            let promoted = try await platform.promote(v3, from: .shadow)
            let ownImage = try image("bikes@3")
            #expect(promoted?.location == ownImage.description)
            #expect(traffic(fake) == [platform.revisionName(v3, image: ownImage): 100])
            // The promoted revision carries no challenger annotation on to later ones.
            let template = fake.state.withLock { $0.services["predict"]!.object["template"] }
            #expect(template?["annotations"]["cyclone.dev/challenger-image"] == .null)
        }
    }

    /// The gRPC predict (a mirror) gets every deploy, promotion and rollback after predict, with revisions of
    /// its own: both serve the same versions at the same shares.
    @Test func aMirrorFollowsEveryChange() async throws {
        try await withPlatform(mirrors: ["predict-grpc"]) { fake, platform in
            func shares(_ service: String) -> [Int] { traffic(fake, of: service).values.sorted() }
            let (v1, v2) = (try TestModels.regression(version: "1"), try TestModels.regression(version: "2"))
            _ = try await platform.deploy(v2, as: .canary)
            #expect(shares("predict") == [10, 90] && shares("predict-grpc") == [10, 90])
            #expect(traffic(fake, of: "predict-grpc").keys.contains { $0.hasPrefix("predict-grpc-bikes-v2-") })
            _ = try await platform.rollback(v2, from: .canary)
            #expect(shares("predict") == [100] && shares("predict-grpc") == [100])
            _ = try await platform.deploy(v2, as: .shadow, beside: v1)
            _ = try await platform.promote(v2, from: .shadow)
            for service in ["predict", "predict-grpc"] {
                let serving = traffic(fake, of: service).filter { $0.value == 100 }.keys
                #expect(serving.count == 1 && serving.allSatisfy { $0.hasPrefix("\(service)-bikes-v2-") }, "\(service): \(serving)")
            }
        }
    }

    /// With a service per model (`PREDICT_SERVICES`), a model's deploys, promotions and rollbacks reach its own
    /// services and never another model's; a model with no service of its own is refused, not deployed onto
    /// another's.
    @Test func eachModelIsDeployedOnItsOwnServicesOnly() async throws {
        let models = ["bikes": CloudRunPlatform.Services(service: "predict-bikes", mirrors: ["predict-bikes-grpc"]),
                      "taxis": CloudRunPlatform.Services(service: "predict-taxis", mirrors: ["predict-taxis-grpc"])]
        try await withPlatform(models: models) { fake, platform in
            func snapshot(_ services: [String]) -> [JSONValue] {
                fake.state.withLock { state in services.map { JSONValue.object(state.services[$0]!.object) } }
            }
            let bikes = ["predict-bikes", "predict-bikes-grpc", "predict"]
            let before = snapshot(bikes)
            let (t1, t2, t3) = (try TestModels.regression(name: "taxis", version: "1"),
                                try TestModels.regression(name: "taxis", version: "2"),
                                try TestModels.regression(name: "taxis", version: "3"))
            _ = try await platform.deploy(t2, as: .canary)
            _ = try await platform.promote(t2, from: .canary)
            _ = try await platform.deploy(t3, as: .shadow, beside: t1)
            _ = try await platform.rollback(t3, from: .shadow)
            _ = try await platform.deploy(t3, as: .live)
            #expect(snapshot(bikes) == before, "bikes' services are untouched by taxis' rollout")
            for service in ["predict-taxis", "predict-taxis-grpc"] {
                let serving = traffic(fake, of: service).filter { $0.value == 100 }.keys
                #expect(serving.count == 1 && serving.allSatisfy { $0.hasPrefix("\(service)-taxis-v3-") }, "\(service): \(serving)")
            }
            _ = try await platform.deploy(try TestModels.regression(name: "bikes", version: "8"), as: .live)
            #expect(traffic(fake, of: "predict-bikes").filter { $0.value == 100 }.keys.allSatisfy { $0.hasPrefix("predict-bikes-bikes-v8-") })
            await #expect { try await platform.deploy(try TestModels.regression(name: "trains", version: "1"), as: .live) } throws: {
                "\($0)".contains("no predict service serves model 'trains' (PREDICT_SERVICES names bikes, taxis)")
            }
            #expect(snapshot(["predict"]) == [before[2]], "the default service serves no model when each has its own")
        }
    }

    /// A mirror that fails leaves nothing stranded: a failed deploy is undone on predict (the registry records
    /// none), and a rollback or shadow promotion made on predict but not on the mirror is finished by the
    /// evaluator's next try.
    @Test func aFailedMirrorStepIsUndoneOrFinishedOnTheNextTry() async throws {
        try await withPlatform(mirrors: ["predict-grpc"]) { fake, platform in
            func shares(_ service: String) -> [Int] { traffic(fake, of: service).values.sorted() }
            func withoutMirror(_ body: () async throws -> Void) async throws {
                let saved = fake.state.withLock { $0.services.removeValue(forKey: "predict-grpc") }
                defer { fake.state.withLock { $0.services["predict-grpc"] = saved } }
                try await body()
            }
            let (v1, v2, v3) = (try TestModels.regression(version: "1"), try TestModels.regression(version: "2"),
                                try TestModels.regression(version: "3"))
            try await withoutMirror {
                await #expect { try await platform.deploy(v2, as: .canary) } throws: {
                    "\($0)".contains("on the mirror predict-grpc failed") && "\($0)".contains("rolled back on predict")
                }
                #expect(shares("predict") == [0, 100] || shares("predict") == [100])
            }
            _ = try await platform.deploy(v2, as: .canary)
            try await withoutMirror {
                await #expect { try await platform.rollback(v2, from: .canary) } throws: { "\($0)".contains("mirror predict-grpc") }
            }
            #expect(shares("predict").last == 100 && shares("predict-grpc") == [10, 90])
            _ = try await platform.rollback(v2, from: .canary)
            #expect(shares("predict").last == 100 && shares("predict-grpc").last == 100)

            _ = try await platform.deploy(v3, as: .shadow, beside: v1)
            try await withoutMirror {
                await #expect { try await platform.promote(v3, from: .shadow) } throws: { "\($0)".contains("mirror predict-grpc") }
            }
            _ = try await platform.promote(v3, from: .shadow)
            for service in ["predict", "predict-grpc"] {
                let serving = traffic(fake, of: service).filter { $0.value == 100 }.keys
                #expect(serving.count == 1 && serving.allSatisfy { $0.hasPrefix("\(service)-bikes-v3-") }, "\(service): \(serving)")
            }
        }
    }

    /// A revision that never becomes ready fails the deployment with Google's message; traffic stays.
    @Test func aRevisionThatNeverBecomesReadyFailsAndTrafficStays() async throws {
        try await withPlatform { fake, platform in
            let before = traffic(fake)
            await #expect { try await platform.deploy(try TestModels.regression(version: "99"), as: .canary) } throws: { error in
                guard let error = error as? GoogleAPIError else { return false }
                return error.status == "FAILED_PRECONDITION" && error.message.contains("is not ready and cannot serve traffic")
                    && !"\(error)".contains("\n") && "\(error)".contains("variable. Logs URL:")
            }
            #expect(traffic(fake) == before)
        }
    }

    /// services.patch takes no precondition (a service's etag is output only, ignored in a body), so another
    /// writer that moves the traffic after our PATCH wins: the platform notices by reading the service back,
    /// makes its change again from a fresh read (no second revision), and reports a service that keeps changing.
    /// Deploys name what they change in `updateMask`. A 503 is retried.
    @Test func anotherWritersTrafficMoveIsNoticedAndRedoneAndUnavailabilityIsRetried() async throws {
        try await withPlatform { fake, platform in
            fake.state.withLock {
                $0.concurrentWrites = 1
                $0.unavailable = 2
            }
            let v2 = try TestModels.regression(version: "2")
            let deployed = try await platform.deploy(v2, as: .live)
            let revision2 = platform.revisionName(v2, image: try ImageReference(try #require(deployed?.location)))
            #expect(fake.state.withLock { $0.updateMasks } == ["template,traffic", "template,traffic"])
            #expect(traffic(fake) == [revision2: 100])
            #expect(fake.state.withLock { $0.services["predict"]!.revisions.count } == 2)

            fake.state.withLock { $0.concurrentWrites = 5 }
            await #expect { try await platform.deploy(try TestModels.regression(version: "3"), as: .live) } throws: {
                "\($0)".contains("the service kept changing under us")
            }
            #expect(fake.state.withLock { $0.patches } == 7)
            #expect(traffic(fake) == [revision2: 100], "the other writer's, last")
            #expect(fake.state.withLock { $0.services["predict"]!.revisions.count } == 3)
        }
    }

    /// A refused permission reaches the operator as one line that ends with who needs which role: the caller
    /// refused a PATCH, the caller unable to act as the runtime service account, the Cloud Run service agent
    /// unable to read an image in another project's repository.
    @Test func aRefusedPermissionNamesTheRoleThatGrantsIt() async throws {
        try await withPlatform { fake, platform in
            let before = traffic(fake)
            fake.state.withLock { $0.deniedPermission = "run.services.update" }
            await #expect { try await platform.deploy(try TestModels.regression(version: "2"), as: .live) } throws: {
                let line = "\($0)"
                return ($0 as? GoogleAPIError)?.code == 403 && !line.contains("\n")
                    && line.hasSuffix("(403 PERMISSION_DENIED): the caller's service account needs roles/run.developer (permission run.services.update)")
            }
            fake.state.withLock { $0.deniedPermission = "iam.serviceaccounts.actAs" }
            await #expect { try await platform.deploy(try TestModels.regression(version: "2"), as: .live) } throws: {
                "\($0)".hasSuffix("the caller needs roles/iam.serviceAccountUser on the service account the workload runs as (permission iam.serviceAccounts.actAs)")
            }
            fake.state.withLock { $0.deniedPermission = nil }
            await #expect { try await platform.deploy(try TestModels.regression(version: "98"), as: .live) } throws: {
                "\($0)".hasSuffix("needs roles/artifactregistry.reader on the image's repository")
            }
            #expect(traffic(fake) == before)
            // A refusal of something else names its permission; an error that is not a refusal adds nothing.
            #expect(GoogleAPIError(code: 403, status: "PERMISSION_DENIED", message: "Permission 'storage.objects.get' denied on resource.",
                                   doing: "reading").missingRole == "the caller's service account needs a role with permission storage.objects.get")
            #expect(GoogleAPIError(code: 404, status: "NOT_FOUND", message: "Permission 'run.services.get' on nothing", doing: "x").missingRole == nil)
            // Only a word beside "permission" is one: not a domain elsewhere in the message, nor its last full stop.
            func role(_ message: String) -> String? {
                GoogleAPIError(code: 403, status: "PERMISSION_DENIED", message: message, doing: "x").missingRole
            }
            #expect(role("Cloud Run Admin API (run.googleapis.com) refused the caller; see cloud.google.com.") == nil)
            #expect(role("The caller lacks permission run.jobs.runWithOverrides.")
                == "the caller's service account needs roles/run.developer (permission run.jobs.runWithOverrides)")
            #expect(role("The caller does not have the artifactregistry.tags.create permission")
                == "the caller's service account needs roles/artifactregistry.writer (permission artifactregistry.tags.create)")
        }
    }

    /// A redo reads the service with our own revision on top: the live revision it keeps is the one chosen on
    /// the first read, not the one serving most by then (which would drop live from the service).
    @Test func aRedoKeepsTheLiveRevisionChosenFirst() async throws {
        try await withPlatform { fake, platform in
            let live = "predict-00001-abc"
            fake.state.withLock { $0.concurrentTagWrites = 1 }
            let shadow = try TestModels.regression(version: "2")
            _ = try await platform.deploy(shadow, as: .shadow, beside: try TestModels.regression(version: "1"))
            #expect(fake.state.withLock { $0.patches } == 2, "the tag noticed and the change made again")
            let targets = fake.state.withLock { $0.services["predict"]!.object["traffic"]?.array ?? [] }
            #expect(targets.contains { $0["revision"].string == live && $0["tag"].string == "live" }, "\(targets)")
            fake.state.withLock { $0.concurrentTagWrites = 1 }
            _ = try await platform.rollback(shadow, from: .shadow)
            #expect(traffic(fake) == [live: 100])
            #expect(fake.state.withLock { $0.updateMasks.last } == "traffic")
        }
    }

    @Test func googleErrorsSurfaceWithTheirMessageAndStatus() async throws {
        try await withPlatform { fake, platform in
            await #expect { try await platform.cloudRun.service("nope") } throws: {
                "\($0)" == "reading service nope failed: Resource 'nope' of kind 'SERVICE' in region 'europe-west1' in project 'project' does not exist. (404 NOT_FOUND)"
            }
            // An explicit revision name reused for another template.
            var service = try await platform.cloudRun.service("predict").object ?? [:]
            var template = service["template"]?.object ?? [:]
            template["revision"] = .string("predict-00001-abc")
            template["containers"] = [["image": .string("\(Self.repository)@sha256:\(String(repeating: "1", count: 64))")]]
            service["template"] = .object(template)
            await #expect { try await platform.cloudRun.patchService("predict", .object(service)) } throws: {
                ($0 as? GoogleAPIError)?.status == "ALREADY_EXISTS"
            }
        }
    }

    /// A retrain is an execution of the job with the request in its environment; while one runs, no second.
    @Test func retrainsRunTheJobOnceAtATime() async throws {
        try await withPlatform { fake, platform in
            let request = RetrainRequest(modelName: "bikes", modelVersion: "7", reason: "r2 0.3 < 0.4", eventID: 42)
            let first = try await platform.startRetrain(request)
            #expect(first.id.hasSuffix("/jobs/retrain/executions/retrain-00001"))
            let env = fake.state.withLock { $0.runs.first?["overrides"]["containerOverrides"].array.first?["env"].array ?? [] }
            #expect(env.contains(["name": "RETRAIN_EVENT_ID", "value": "42"]))
            #expect(env.contains(["name": "RETRAIN_PARENT_VERSION", "value": "7"]))
            let second = try await platform.startRetrain(request)
            #expect(second.id == first.id && second.detail.contains("still running"))
            #expect(fake.state.withLock { $0.runs.count } == 1)
            // Another model's retrain runs beside it: the rule is one at a time per model.
            var other = request
            other.modelName = "taxis"
            let beside = try await platform.startRetrain(other)
            #expect(beside.id.hasSuffix("retrain-00002"), "\(beside.detail)")
            fake.finishExecution(first.id, succeeded: true)
            let third = try await platform.startRetrain(request)
            #expect(third.id.hasSuffix("retrain-00003"))
        }
    }
}
