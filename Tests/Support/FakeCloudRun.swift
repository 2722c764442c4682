import CycloneModel
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// The Cloud Run Admin API v2 as gcp-contracts.md §1 has it, for one project and region: services with
/// generation, etag and revision bookkeeping (a new revision only when the template changes; an explicit
/// revision name reused for another template is a 409; traffic must sum to 100 and name existing
/// revisions), long-running operations that are not done at the first poll, an image containing `broken`
/// whose revision never becomes ready, jobs.run with its execution in the operation's metadata (run by the
/// `JobRunner` a test gives, as Cloud Run runs the job's container), and Google's error envelope. int64
/// fields are strings and default values are left out.
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
    }

    public struct State: Sendable {
        public var services: [String: Service] = [:]
        public var operations: [String: Operation] = [:]
        public var executions: [String: [JSONValue]] = [:]  // job → newest first
        public var patches = 0
        /// When each PATCH arrived.
        public var patchedAt: [ContinuousClock.Instant] = []
        /// Conflicting writes to inject: the next PATCHes answer 409 ABORTED as if someone else had written.
        public var conflicts = 0
        /// Answers to inject before the next call succeeds (503, say).
        public var unavailable = 0
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

    public init(tokenPrefix: String? = nil) {
        self.tokenPrefix = tokenPrefix
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
            try self.answer(request) { try self.readService(context.parameters.require("service")) }
        }
        router.get("\(base)/services/:service/revisions/:revision") { request, context in
            try self.answer(request) {
                try self.readRevision(context.parameters.require("service"), context.parameters.require("revision"))
            }
        }
        router.patch("\(base)/services/:service") { request, context in
            let body = try JSONParser.parse(Array(try await request.body.collect(upTo: 1 << 20).readableBytesView))
            let mask = request.uri.queryParameters.get("updateMask")
            return try self.answer(request) { try self.patch(context.parameters.require("service"), body, mask: mask) }
        }
        router.get("\(base)/operations/:operation") { request, context in
            try self.answer(request) { try self.poll(context.parameters.require("operation")) }
        }
        router.post("\(base)/jobs/:job") { request, context in
            let job = try context.parameters.require("job")
            let body = try JSONParser.parse(Array(try await request.body.collect(upTo: 1 << 20).readableBytesView))
            return try self.answer(request) {
                guard job.hasSuffix(":run") else { throw FakeError(404, "NOT_FOUND", "no such method") }
                return self.run(String(job.dropLast(4)), body)
            }
        }
        router.get("\(base)/jobs/:job/executions") { request, context in
            let job = try context.parameters.require("job")
            return try self.answer(request) {
                let executions = self.state.withLock { $0.executions[job] ?? [] }
                return executions.isEmpty ? [:] : ["executions": .array(executions)]
            }
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
    }

    struct FakeError: Error {
        var code: Int
        var status: String
        var message: String
        init(_ code: Int, _ status: String, _ message: String) {
            self.code = code
            self.status = status
            self.message = message
        }
    }

    private func answer(_ request: Request, _ body: () throws -> JSONValue) throws -> Response {
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
            return Response(status: .ok, headers: [.contentType: "application/json; charset=UTF-8"],
                            body: .init(byteBuffer: ByteBuffer(string: try body().jsonText)))
        } catch let error as FakeError {
            return Self.error(error)
        }
    }

    private static func error(_ error: FakeError) -> Response {
        let envelope: JSONValue = ["error": ["code": .number(Double(error.code)), "message": .string(error.message),
                                             "status": .string(error.status)]]
        return Response(status: HTTPResponse.Status(code: error.code), headers: [.contentType: "application/json; charset=UTF-8"],
                        body: .init(byteBuffer: ByteBuffer(string: envelope.jsonText)))
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

    private func patch(_ name: String, _ body: JSONValue, mask: String?) throws -> JSONValue {
        try state.withLock { state in
            guard var service = state.services[name] else {
                throw FakeError(404, "NOT_FOUND", "Resource '\(name)' of kind 'SERVICE' does not exist.")
            }
            state.patches += 1
            state.patchedAt.append(ContinuousClock.now)
            if state.conflicts > 0 {
                state.conflicts -= 1
                service.generation += 1
                service.object["etag"] = .string("\"etag-\(service.generation)-other\"")
                state.services[name] = service
            }
            if let etag = body["etag"].string, etag != service.object["etag"]?.string {
                throw FakeError(409, "ABORTED", "Precondition failed: etag mismatch.")
            }
            // Without a mask the body replaces every writable field (§1.3); with one, the listed paths only.
            let writable = ["description", "labels", "annotations", "client", "clientVersion", "ingress", "launchStage",
                            "template", "traffic", "scaling", "invokerIamDisabled", "defaultUriDisabled",
                            "customAudiences", "binaryAuthorization"]
            let fields = mask.map { $0.split(separator: ",").map(String.init) } ?? writable
            var desired = service.object
            for field in fields { desired[field] = body[field] == .null ? nil : body[field] }
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
            let broken = template["containers"].array.first?["image"].string?.contains("broken") == true && newRevision != nil
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
                error = ["code": 9, "message": .string("Revision '\(newRevision)' is not ready and cannot serve traffic. The user-provided container failed to start and listen on the port defined provided by the PORT=8080 environment variable.\n\nLogs URL: https://console.cloud.google.com/logs/viewer?project=project")]
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
            state.operations[id] = Operation(result: .object(result), error: error)
            var metadata = service.object
            metadata["@type"] = "type.googleapis.com/google.cloud.run.v2.Service"
            return ["name": .string("\(location)/operations/\(id)"), "metadata": .object(metadata)]
        }
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
