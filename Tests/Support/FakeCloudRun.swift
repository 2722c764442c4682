import CycloneModel
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// The Cloud Run Admin API v2 as gcp-contracts.md §1 has it, for one project and region: services with
/// generation and revision bookkeeping (a new revision only when the template changes; an explicit
/// revision name reused for another template is a 409; traffic must sum to 100 and name existing
/// revisions), long-running operations that are not done at the first poll, an image containing `broken`
/// whose revision never becomes ready, jobs.run with its execution in the operation's metadata (run by the
/// `JobRunner` a test gives, as Cloud Run runs the job's container), and Google's error envelope. int64
/// fields are strings and default values are left out.
///
/// Every request first goes through `CloudRunSchema`, Google's published schema, as through Google's front
/// end: an unknown query parameter or field, a wrong type or an enum value the schema does not list is a 400
/// in Google's words, and output-only fields in a body or `updateMask` are ignored (AIP-203), never stored.
/// services.patch has no precondition: `etag` is output only, so a stale one in a body changes nothing, and a
/// client notices another writer only by reading the service back (`concurrentWrites` plays one).
public final class FakeCloudRun: Sendable {
    public struct Service: Sendable {
        public var object: [String: JSONValue]
        public var revisions: [String: JSONValue] = [:]  // name → template (without its name)
        var generation = 1
        var counter = 1
    }

    public struct Operation: Sendable {
        var polls = 0
        var result: JSONValue  // the final Service or Execution
        var error: JSONValue?
        /// The revision the simulated concurrent writer gives all the traffic to once this operation is done.
        var concurrentMove: String?
        /// Whether the simulated concurrent writer tags the top revision once this operation is done.
        var concurrentTag = false
    }

    public struct State: Sendable {
        public var services: [String: Service] = [:]
        public var operations: [String: Operation] = [:]
        public var executions: [String: [JSONValue]] = [:]  // job → newest first
        public var patches = 0
        /// When each PATCH arrived.
        public var patchedAt: [ContinuousClock.Instant] = []
        /// Each PATCH's `updateMask` as sent (nil: none).
        public var updateMasks: [String?] = []
        /// A simulated concurrent writer (someone with gcloud, say): once each of the next this many PATCHes'
        /// operations is done, another client gives all the traffic back to the revision that served most
        /// before that PATCH, with a traffic-only update of its own. Not a 409: services.patch takes no
        /// precondition, so the writer that finishes last wins and the other sees it only by reading back.
        public var concurrentWrites = 0
        /// Another simulated writer: once each of the next this many PATCHes' operations is done, it tags the
        /// revision with the most traffic `by-hand` (`gcloud run services update-traffic --update-tags`), which
        /// leaves that revision on top.
        public var concurrentTagWrites = 0
        /// Answers to inject before the next call succeeds (503, say).
        public var unavailable = 0
        /// A permission the caller lacks: every PATCH is refused with Google's 403 naming it.
        public var deniedPermission: String?
        public var runs: [JSONValue] = []
        var runner: JobRunner?
        var running: [Task<Void, Never>] = []
        /// Requests answered 401 for want of a Bearer token, when tokens are required.
        public var unauthenticated = 0
    }

    public let project = "project"
    public let region = "europe-west1"
    public let state = Mutex(State())
    /// The prefix a request's Bearer token must have, as the fake metadata server issues them; `nil` takes
    /// requests without one.
    public let tokenPrefix: String?
    /// What every request is checked against before the fake acts on it.
    public let schema: CloudRunSchema

    public init(tokenPrefix: String? = nil, schema: CloudRunSchema = .runV2) {
        self.tokenPrefix = tokenPrefix
        self.schema = schema
    }
    var location: String { "projects/\(project)/locations/\(region)" }

    /// A service serving `image` from its first revision.
    public func addService(_ name: String, image: String) {
        let revision = "\(name)-00001-abc"
        let template: JSONValue = ["containers": [["image": .string(image), "env": [["name": "MODEL_PATH", "value": "/srv/model/model.json"]]]],
                                   "serviceAccount": "predict@project.iam.gserviceaccount.com"]
        var service = Service(object: [
            "name": .string("\(location)/services/\(name)"), "template": template,
            "traffic": [["type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100]],
        ])
        service.revisions[revision] = template
        service.counter = 2
        settle(&service, ready: revision)
        state.withLock { $0.services[name] = service }
    }

    public func application(port: Int = 0) -> some ApplicationProtocol {
        let router = Router()
        let base = "/v2/projects/\(project)/locations/\(region)"
        router.get("\(base)/services/:service") { request, context in
            try await self.answer(request, "services.get") { _ in try self.readService(context.parameters.require("service")) }
        }
        router.get("\(base)/services/:service/revisions/:revision") { request, context in
            try await self.answer(request, "services.revisions.get") { _ in
                try self.readRevision(context.parameters.require("service"), context.parameters.require("revision"))
            }
        }
        router.patch("\(base)/services/:service") { request, context in
            let mask = request.uri.queryParameters.get("updateMask")
            return try await self.answer(request, "services.patch") { checked in
                try self.patch(context.parameters.require("service"), checked, sentMask: mask)
            }
        }
        router.get("\(base)/operations/:operation") { request, context in
            try await self.answer(request, "operations.get") { _ in try self.poll(context.parameters.require("operation")) }
        }
        router.post("\(base)/jobs/:job") { request, context in
            let job = try context.parameters.require("job")
            guard job.hasSuffix(":run") else { return Self.error(FakeError(404, "NOT_FOUND", "no such method")) }
            return try await self.answer(request, "jobs.run") { checked in self.run(String(job.dropLast(4)), checked.body ?? [:]) }
        }
        router.get("\(base)/jobs/:job/executions") { request, context in
            let job = try context.parameters.require("job")
            return try await self.answer(request, "jobs.executions.list") { _ in
                let executions = self.state.withLock { $0.executions[job] ?? [] }
                return executions.isEmpty ? [:] : ["executions": .array(executions)]
            }
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
    }

    /// An error as Google answers it: HTTP status, canonical code name, message, and `details`.
    struct FakeError: Error {
        var code: Int
        var status: String
        var message: String
        var details: [JSONValue]
        init(_ code: Int, _ status: String, _ message: String, details: [JSONValue] = []) {
            self.code = code
            self.status = status
            self.message = message
            self.details = details
        }
    }

    /// Answers a call of `method` (`services.patch`: run v2's `run.projects.locations.services.patch`) as Google
    /// does: 401 without a token (when tokens are required), an injected 503, 400 for a request the schema
    /// refuses; otherwise `act` on the request as the schema check passes it on.
    private func answer(_ request: Request, _ method: String,
                        _ act: (CloudRunSchema.Request) throws -> JSONValue) async throws -> Response {
        let bytes = try await request.body.collect(upTo: 1 << 20)
        if let tokenPrefix, request.headers[.authorization]?.hasPrefix("Bearer \(tokenPrefix)") != true {
            state.withLock { $0.unauthenticated += 1 }
            return Self.error(FakeError(401, "UNAUTHENTICATED", "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential."))
        }
        if state.withLock({ state in
            guard state.unavailable > 0 else { return false }
            state.unavailable -= 1
            return true
        }) {
            return Self.error(FakeError(503, "UNAVAILABLE", "The service is currently unavailable."))
        }
        do {
            let body: JSONValue?
            do {
                body = bytes.readableBytes == 0 ? nil : try JSONParser.parse(Array(bytes.readableBytesView))
            } catch {
                throw FakeError(400, "INVALID_ARGUMENT", "Invalid JSON payload received. \(error)")
            }
            let query = request.uri.queryParameters.map { (String($0.key), String($0.value)) }
            let checked = try schema.validate("run.projects.locations.\(method)", query: query, body: body)
            return Response(status: .ok, headers: [.contentType: "application/json; charset=UTF-8"],
                            body: .init(byteBuffer: ByteBuffer(string: try act(checked).jsonText)))
        } catch let error as CloudRunSchema.BadRequest {
            return Self.error(FakeError(400, "INVALID_ARGUMENT", error.description, details: [error.detail]))
        } catch let error as FakeError {
            return Self.error(error)
        }
    }

    private static func error(_ error: FakeError) -> Response {
        var body: [String: JSONValue] = ["code": .number(Double(error.code)), "message": .string(error.message),
                                         "status": .string(error.status)]
        if !error.details.isEmpty { body["details"] = .array(error.details) }
        return Response(status: HTTPResponse.Status(code: error.code), headers: [.contentType: "application/json; charset=UTF-8"],
                        body: .init(byteBuffer: ByteBuffer(string: JSONValue.object(["error": .object(body)]).jsonText)))
    }

    /// revisions.get: the Revision, its template's fields (`containers`, `scaling`…) at the top level.
    private func readRevision(_ serviceName: String, _ name: String) throws -> JSONValue {
        guard let template = state.withLock({ $0.services[serviceName]?.revisions[name] }) else {
            throw FakeError(404, "NOT_FOUND", "Resource '\(name)' of kind 'REVISION' in region '\(region)' in project '\(project)' does not exist.")
        }
        var revision = template.object ?? [:]
        revision["name"] = .string("projects/\(project)/locations/\(region)/services/\(serviceName)/revisions/\(name)")
        revision["service"] = .string(serviceName)
        return .object(revision)
    }

    private func readService(_ name: String) throws -> JSONValue {
        guard let service = state.withLock({ $0.services[name] }) else {
            throw FakeError(404, "NOT_FOUND", "Resource '\(name)' of kind 'SERVICE' in region '\(region)' in project '\(project)' does not exist.")
        }
        return .object(service.object)
    }

    /// services.patch with the request as the schema check passed it on (output-only fields gone from body and
    /// mask); `sentMask` is the `updateMask` as sent, for the record.
    private func patch(_ name: String, _ request: CloudRunSchema.Request, sentMask: String?) throws -> JSONValue {
        try state.withLock { state in
            guard var service = state.services[name] else {
                throw FakeError(404, "NOT_FOUND", "Resource '\(name)' of kind 'SERVICE' does not exist.")
            }
            if let denied = state.deniedPermission {
                throw FakeError(403, "PERMISSION_DENIED", "Permission '\(denied)' denied on resource '\(location)/services/\(name)' (or resource may not exist).")
            }
            state.patches += 1
            state.patchedAt.append(ContinuousClock.now)
            state.updateMasks.append(sentMask)
            let serving = Self.servingRevision(service.object)
            // Without a mask the body replaces every writable field (§1.5); with one, the listed paths only.
            // The name is the URL's.
            let body = request.body?.object ?? [:]
            var desired = service.object
            for path in request.updateMask ?? schema.writableFields(of: "GoogleCloudRunV2Service") {
                desired = Self.replacing(path.split(separator: ".")[...], in: desired, from: body)
            }
            desired["name"] = service.object["name"]
            let template = desired["template"] ?? .null
            let explicit = template["revision"].string
            func bare(_ template: JSONValue?) -> JSONValue {
                var object = template?.object ?? [:]
                object["revision"] = nil
                return .object(object)
            }
            let sent = bare(template)
            var newRevision: String?
            if let explicit, let existing = service.revisions[explicit], existing != sent {
                throw FakeError(409, "ALREADY_EXISTS", "Revision named '\(explicit)' with different configuration already exists.")
            }
            if sent != bare(service.object["template"]) || (explicit != nil && service.revisions[explicit!] == nil) {
                let revision = explicit ?? "\(name)-\(String(format: "%05d", service.counter))-xyz"
                guard revision.hasPrefix("\(name)-"), revision.count <= 63 else {
                    throw FakeError(400, "INVALID_ARGUMENT", "Revision name must be prefixed by the name of the enclosing Service and at most 63 characters.")
                }
                newRevision = revision
            }
            let known = Set(service.revisions.keys).union(newRevision.map { [$0] } ?? [])
            let traffic = desired["traffic"]?.array ?? []
            let total = traffic.reduce(0) { $0 + Int($1["percent"].number ?? 0) }
            guard traffic.isEmpty || total == 100 else {
                throw FakeError(400, "INVALID_ARGUMENT", "Traffic percentages must sum to 100, not \(total).")
            }
            for target in traffic where target["type"].string == "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION" {
                guard let revision = target["revision"].string, known.contains(revision) else {
                    throw FakeError(400, "INVALID_ARGUMENT", "Revision '\(target["revision"].string ?? "")' does not exist in service '\(name)'.")
                }
            }
            service.generation += 1
            service.object = desired
            let image = template["containers"].array.first?["image"].string ?? ""
            let broken = (image.contains("broken") || image.contains("unreadable")) && newRevision != nil
            var error: JSONValue?
            if let newRevision {
                service.revisions[newRevision] = sent
                service.counter += 1
                service.object["latestCreatedRevision"] = .string("\(location)/services/\(name)/revisions/\(newRevision)")
            }
            if broken, let newRevision {
                // The revision never becomes ready: traffic stays where it was (trafficStatuses, the latest
                // ready revision and the observed generation are left as they were), though asked otherwise.
                service.object["terminalCondition"] = ["type": "Ready", "state": "CONDITION_FAILED",
                                                       "revisionReason": "HEALTH_CHECK_CONTAINER_ERROR",
                                                       "message": .string("Revision '\(newRevision)' is not ready and cannot serve traffic.")]
                service.object["reconciling"] = nil
                error = image.contains("unreadable")
                    ? ["code": 9, "message": .string("Revision '\(newRevision)' is not ready and cannot serve traffic. Google Cloud Run Service Agent service-123456789@serverless-robot-prod.iam.gserviceaccount.com must have permission to read the image, \(image). Ensure that the provided container image URL is correct and that the above account has permission to access the image. If you just enabled the Cloud Run API, the permissions might take a few minutes to propagate. Note that the image is from project [other-project], which is not the same as this project [project]. Permission must be granted to the Google Cloud Run Service Agent service-123456789@serverless-robot-prod.iam.gserviceaccount.com from this project.")]
                    : ["code": 9, "message": .string("Revision '\(newRevision)' is not ready and cannot serve traffic. The user-provided container failed to start and listen on the port defined provided by the PORT=8080 environment variable.\n\nLogs URL: https://console.cloud.google.com/logs/viewer?project=project")]
            } else {
                settle(&service, ready: newRevision)
            }
            let final = service.object
            service.object["reconciling"] = true
            service.object["etag"] = .string("\"etag-\(service.generation)\"")
            state.services[name] = service
            var result = final
            result["@type"] = "type.googleapis.com/google.cloud.run.v2.Service"
            result["etag"] = .string("\"etag-\(service.generation)\"")
            let id = UUID().uuidString.lowercased()
            var operation = Operation(result: .object(result), error: error)
            if state.concurrentWrites > 0, error == nil, let serving {
                state.concurrentWrites -= 1
                operation.concurrentMove = serving
            } else if state.concurrentTagWrites > 0, error == nil {
                state.concurrentTagWrites -= 1
                operation.concurrentTag = true
            }
            state.operations[id] = operation
            var metadata = service.object
            metadata["@type"] = "type.googleapis.com/google.cloud.run.v2.Service"
            return ["name": .string("\(location)/operations/\(id)"), "metadata": .object(metadata)]
        }
    }

    /// `object` with the field at `path` (JSON names) as in `source`, or without it when `source` has none: one
    /// path of an update mask applied.
    static func replacing(_ path: ArraySlice<Substring>, in object: [String: JSONValue], from source: [String: JSONValue])
        -> [String: JSONValue]
    {
        guard let key = path.first.map(String.init) else { return object }
        var object = object
        if path.count == 1 {
            object[key] = source[key]
        } else {
            let inner = replacing(path.dropFirst(), in: object[key]?.object ?? [:], from: source[key]?.object ?? [:])
            object[key] = inner.isEmpty ? nil : .object(inner)
        }
        return object
    }

    /// The revision with the largest share of the service's traffic (the latest ready one for LATEST).
    static func servingRevision(_ service: [String: JSONValue]) -> String? {
        let top = (service["trafficStatuses"]?.array ?? []).max { ($0["percent"].number ?? 0) < ($1["percent"].number ?? 0) }
        return top?["revision"].string ?? service["latestReadyRevision"]?.string?.split(separator: "/").last.map(String.init)
    }

    /// The state of a reconciled service: generation observed, the new revision ready, traffic as desired.
    private func settle(_ service: inout Service, ready revision: String?) {
        service.object["generation"] = .string("\(service.generation)")
        service.object["observedGeneration"] = .string("\(service.generation)")
        service.object["etag"] = .string("\"etag-\(service.generation)\"")
        service.object["reconciling"] = nil
        service.object["terminalCondition"] = ["type": "Ready", "state": "CONDITION_SUCCEEDED"]
        if let revision {
            let full = JSONValue.string("\(location)/services/\(service.object["name"]?.string?.split(separator: "/").last ?? "")/revisions/\(revision)")
            service.object["latestCreatedRevision"] = full
            service.object["latestReadyRevision"] = full
        }
        service.object["trafficStatuses"] = .array((service.object["traffic"]?.array ?? []).map { target in
            var status = target.object ?? [:]
            if status["percent"] == .number(0) { status["percent"] = nil }
            return .object(status)
        })
    }

    private func poll(_ id: String) throws -> JSONValue {
        try state.withLock { state in
            guard var operation = state.operations[id] else {
                throw FakeError(404, "NOT_FOUND", "Operation '\(id)' not found.")
            }
            operation.polls += 1
            state.operations[id] = operation
            let name = JSONValue.string("\(location)/operations/\(id)")
            // Not done at the first poll: no `done` key at all.
            guard operation.polls > 1 else { return ["name": name, "metadata": operation.result] }
            if let serviceName = operation.result["name"].string?.split(separator: "/").last.map(String.init),
               var service = state.services[serviceName], operation.result["@type"].string?.hasSuffix("Service") == true {
                service.object["reconciling"] = nil
                if let revision = operation.concurrentMove {
                    // The other writer's traffic-only update lands once ours is done, and wins.
                    service.object["traffic"] = [["type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": .string(revision),
                                                  "percent": 100]]
                    service.generation += 1
                    settle(&service, ready: nil)
                    operation.concurrentMove = nil
                    state.operations[id] = operation
                } else if operation.concurrentTag, var traffic = service.object["traffic"]?.array,
                          let top = traffic.indices.max(by: { (traffic[$0]["percent"].number ?? 0) < (traffic[$1]["percent"].number ?? 0) }),
                          case .object(var target) = traffic[top] {
                    target["tag"] = "by-hand"
                    traffic[top] = .object(target)
                    service.object["traffic"] = .array(traffic)
                    service.generation += 1
                    settle(&service, ready: nil)
                    operation.concurrentTag = false
                    state.operations[id] = operation
                }
                state.services[serviceName] = service
            }
            if let error = operation.error { return ["name": name, "done": true, "error": error] }
            return ["name": name, "done": true, "response": operation.result]
        }
    }

    private func run(_ job: String, _ body: JSONValue) -> JSONValue {
        // Overrides replace the job's variables of the same name and add the others (§1.9).
        var environment: [String: String] = [:]
        for variable in Self.jobEnvironment + (body["overrides"]["containerOverrides"].array.first?["env"].array ?? []) {
            if let key = variable["name"].string { environment[key] = variable["value"].string ?? "" }
        }
        let now = ISO8601DateFormatter().string(from: Date())
        let (execution, runner) = state.withLock { state in
            let count = (state.executions[job]?.count ?? 0) + 1
            let name = "\(job)-\(String(format: "%05d", count))"
            let execution: JSONValue = [
                "@type": "type.googleapis.com/google.cloud.run.v2.Execution",
                "name": .string("\(location)/jobs/\(job)/executions/\(name)"),
                "job": .string(job), "taskCount": 1, "createTime": .string(now), "startTime": .string(now),
                "runningCount": 1,
                "template": ["containers": [["env": .array(environment.sorted { $0.key < $1.key }.map {
                    ["name": .string($0.key), "value": .string($0.value)]
                })]]],
            ]
            state.executions[job, default: []].insert(execution, at: 0)
            state.runs.append(body)
            return (execution, state.runner)
        }
        if let runner, let name = execution["name"].string {
            // What Cloud Run sets in a job's container (§1.10).
            let container = environment.merging([
                "CLOUD_RUN_JOB": job, "CLOUD_RUN_EXECUTION": String(name.split(separator: "/").last!),
                "CLOUD_RUN_TASK_INDEX": "0", "CLOUD_RUN_TASK_ATTEMPT": "0", "CLOUD_RUN_TASK_COUNT": "1",
            ]) { $1 }
            let task = Task { finishExecution(name, succeeded: await runner(job, container)) }
            state.withLock { $0.running.append(task) }
        }
        return ["name": .string("\(location)/operations/\(UUID().uuidString.lowercased())"), "metadata": execution]
    }

    /// Waits for every execution a runner started (a test's teardown, before its database goes).
    public func drain() async {
        for task in state.withLock({ $0.running }) { await task.value }
    }

    /// The retrain job's own environment, which overrides are merged into.
    static let jobEnvironment: [JSONValue] = [["name": "TRAINING_WINDOW_ROWS", "value": "100000"]]

    /// What runs an execution's container: given the job and the container's environment, it returns whether
    /// the task succeeded. Without one, executions run until `finishExecution`.
    public typealias JobRunner = @Sendable (_ job: String, _ environment: [String: String]) async -> Bool

    /// Runs each new execution with `runner`, marking it finished when that returns.
    public func executeJobs(with runner: @escaping JobRunner) {
        state.withLock { $0.runner = runner }
    }

    /// Marks the newest execution of `job` finished.
    public func finishExecution(of job: String) {
        guard let name = state.withLock({ $0.executions[job]?.first?["name"].string }) else { return }
        finishExecution(name, succeeded: true)
    }

    /// Marks the execution finished, as Cloud Run reports it: a completion time and the task's outcome.
    public func finishExecution(_ name: String, succeeded: Bool) {
        state.withLock { state in
            for (job, executions) in state.executions {
                guard let index = executions.firstIndex(where: { $0["name"].string == name }),
                      var execution = executions[index].object else { continue }
                execution["completionTime"] = .string(ISO8601DateFormatter().string(from: Date()))
                execution["runningCount"] = nil
                execution[succeeded ? "succeededCount" : "failedCount"] = 1
                state.executions[job]![index] = .object(execution)
            }
        }
    }
}
