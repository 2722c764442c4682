import AsyncHTTPClient
import CycloneModel
import Foundation
import NIOCore
import NIOHTTP1

/// A Google API error as its envelope says it (gcp-contracts.md §0.2): `{"error": {"code", "message",
/// "status"}}`, or a failed operation's `{"code", "message"}` with a gRPC code.
public struct GoogleAPIError: Error, CustomStringConvertible, Equatable {
    /// The HTTP status (for a failed operation, the one its gRPC code maps to).
    public var code: Int
    /// `ABORTED`, `NOT_FOUND`, `ALREADY_EXISTS`, …
    public var status: String
    public var message: String
    /// What was being done.
    public var doing: String

    public init(code: Int, status: String, message: String, doing: String) {
        self.code = code
        self.status = status
        self.message = message
        self.doing = doing
    }

    /// One line: Google's messages may hold line breaks (a "Logs URL" after two of them). A refused permission
    /// ends with the role that grants it.
    public var description: String {
        let text = message.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return "\(doing) failed: \(text) (\(code)\(status.isEmpty ? "" : " \(status)"))" + (missingRole.map { ": \($0)" } ?? "")
    }

    /// For a refused permission (403, or a revision that failed because the service agent cannot pull its image),
    /// who needs which role: the predefined role infra/ grants for it.
    public var missingRole: String? {
        let lower = message.lowercased()
        // Cloud Run's words for an image its service agent may not read (a failed revision's condition).
        if lower.contains("permission to read the image") || lower.contains("must have permission to read") {
            return "the Cloud Run service agent (service-PROJECT_NUMBER@serverless-robot-prod.iam.gserviceaccount.com) needs roles/artifactregistry.reader on the image's repository"
        }
        guard code == 403 || status == "PERMISSION_DENIED" else { return nil }
        // "Permission 'iam.serviceaccounts.actAs' denied on service account …", "… lacks permission run.jobs.run …"
        guard let permission = Self.permission(in: message) else { return nil }
        let role: String
        let name = permission.lowercased(), verb = name.split(separator: ".").last ?? ""
        switch name {
        case "iam.serviceaccounts.actas":
            return "the caller needs roles/iam.serviceAccountUser on the service account the workload runs as (permission iam.serviceAccounts.actAs)"
        case let p where p.hasSuffix("iampolicy"):
            return "the caller's service account needs an admin role of the resource (permission \(permission))"
        case let p where p.hasPrefix("artifactregistry."):
            let reads = verb.hasPrefix("get") || verb.hasPrefix("list") || verb == "downloadartifacts" || verb == "read"
            role = reads ? "roles/artifactregistry.reader" : "roles/artifactregistry.writer"
        case let p where p.hasPrefix("run."): role = "roles/run.developer"
        case let p where p.hasPrefix("cloudsql."): role = "roles/cloudsql.client"
        case let p where p.hasPrefix("secretmanager."): role = "roles/secretmanager.secretAccessor"
        default: return "the caller's service account needs a role with permission \(permission)"
        }
        return "the caller's service account needs \(role) (permission \(permission))"
    }

    /// The permission a refusal names, next to the word: `Permission 'X' denied`, `lacks permission X`, `the X
    /// permission`. A permission is three or more dotted parts of letters (`run.services.update`).
    static func permission(in message: String) -> String? {
        let words = message.split(whereSeparator: { $0.isWhitespace || "'\"`,;:()[]".contains($0) })
            .map { $0.hasSuffix(".") ? $0.dropLast() : $0 }
        func isPermission(_ word: Substring) -> Bool {
            let parts = word.split(separator: ".", omittingEmptySubsequences: false)
            return parts.count >= 3 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isLetter) }
        }
        for (index, word) in words.enumerated() where word.lowercased().hasPrefix("permission") {
            for neighbour in [index + 1, index - 1] where words.indices.contains(neighbour) && isPermission(words[neighbour]) {
                return String(words[neighbour])
            }
        }
        return nil
    }

    static let grpc: [Int: (Int, String)] = [
        1: (499, "CANCELLED"), 2: (500, "UNKNOWN"), 3: (400, "INVALID_ARGUMENT"), 4: (504, "DEADLINE_EXCEEDED"),
        5: (404, "NOT_FOUND"), 6: (409, "ALREADY_EXISTS"), 7: (403, "PERMISSION_DENIED"), 8: (429, "RESOURCE_EXHAUSTED"),
        9: (400, "FAILED_PRECONDITION"), 10: (409, "ABORTED"), 11: (400, "OUT_OF_RANGE"), 12: (501, "UNIMPLEMENTED"),
        13: (500, "INTERNAL"), 14: (503, "UNAVAILABLE"), 16: (401, "UNAUTHENTICATED"),
    ]
}

/// The Cloud Run Admin API v2 (gcp-contracts.md §1): services read and patched, operations waited for,
/// jobs run and their executions listed. 429, 500, 503 and 504 are retried with backoff; every other error
/// surfaces with Google's message and status.
public struct CloudRun: Sendable {
    /// `https://run.googleapis.com`, or a fake's address.
    public var endpoint: String
    public var project: String
    public var region: String
    public var credentials: GoogleCredentials?
    /// The first wait between operation polls and retries; it doubles up to ten times as long.
    public var backoff: Duration
    public var attempts: Int
    /// How long an operation may run before waiting for it fails.
    public var operationTimeout: Duration = .seconds(900)
    let client: HTTPClient

    public init(endpoint: String = "https://run.googleapis.com", project: String, region: String,
                credentials: GoogleCredentials?, backoff: Duration = .seconds(1), attempts: Int = 5,
                client: HTTPClient = .shared) {
        self.endpoint = endpoint
        self.project = project
        self.region = region
        self.credentials = credentials
        self.backoff = backoff
        self.attempts = attempts
        self.client = client
    }

    var location: String { "projects/\(project)/locations/\(region)" }

    public func service(_ name: String) async throws -> JSONValue {
        try await call(.GET, "/v2/\(location)/services/\(name)", doing: "reading service \(name)")
    }

    /// revisions.get: a revision of `service`, with its `containers`.
    public func revision(_ name: String, of service: String) async throws -> JSONValue {
        try await call(.GET, "/v2/\(location)/services/\(service)/revisions/\(name)", doing: "reading revision \(name)")
    }

    /// PATCHes the service and returns the operation. With `updateMask` (comma-separated field paths,
    /// `template,traffic`) only those fields change, as the body has them; without, the body replaces the whole
    /// writable state, so it must be a whole service as read. Output-only fields in the body (`etag`,
    /// `generation`, …) are ignored: services.patch takes no precondition.
    public func patchService(_ name: String, _ service: JSONValue, updateMask: String? = nil) async throws -> JSONValue {
        try await call(.PATCH, "/v2/\(location)/services/\(name)" + (updateMask.map { "?updateMask=\($0)" } ?? ""),
                       body: service, doing: "updating service \(name)")
    }

    /// Polls the operation until it is done; returns its `response`, or throws its `error`.
    public func wait(_ operation: JSONValue, doing: String) async throws -> JSONValue {
        var operation = operation
        var delay = backoff
        guard let name = operation["name"].string else { throw CloudError("\(doing): the operation has no name") }
        let deadline = ContinuousClock.now + operationTimeout
        while operation["done"] != .bool(true) {
            guard ContinuousClock.now < deadline else {
                throw CloudError("\(doing): operation \(name) was not done after \(operationTimeout)")
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, backoff * 10)
            operation = try await call(.GET, "/v2/\(name)", doing: doing)
        }
        if operation["error"] != .null {
            let code = Int(operation["error"]["code"].number ?? 2)
            let (http, status) = GoogleAPIError.grpc[code] ?? (500, "UNKNOWN")
            throw GoogleAPIError(code: http, status: status, message: operation["error"]["message"].string ?? "", doing: doing)
        }
        return operation["response"]
    }

    /// Starts an execution of the job with `environment` merged into its container's; returns the
    /// execution's name (the operation's metadata is the execution).
    public func runJob(_ job: String, environment: [(String, String)]) async throws -> String {
        let overrides: JSONValue = ["overrides": ["containerOverrides": [[
            "env": .array(environment.map { ["name": .string($0.0), "value": .string($0.1)] }),
        ]]]]
        // Not retried on 500 or 504, which may have started an execution: the evaluator's next cycle sees it.
        let operation = try await call(.POST, "/v2/\(location)/jobs/\(job):run", body: overrides, doing: "running job \(job)",
                                       retrying: [429, 503])
        guard let execution = operation["metadata"]["name"].string else {
            throw CloudError("running job \(job): the operation names no execution")
        }
        return execution
    }

    /// The job's executions, newest first (one page: the newest are what matter here).
    /// The job's executions, newest first: the first `pages` pages of 100.
    public func executions(_ job: String, pages: Int = 5) async throws -> [JSONValue] {
        var executions: [JSONValue] = [], token: String?
        for _ in 0..<pages {
            let query = "pageSize=100" + (token.map { "&pageToken=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0)" } ?? "")
            let page = try await call(.GET, "/v2/\(location)/jobs/\(job)/executions?\(query)", doing: "listing executions of \(job)")
            executions += page["executions"].array
            guard let next = page["nextPageToken"].string, !next.isEmpty else { break }
            token = next
        }
        return executions
    }

    func call(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil, doing: String,
              retrying: Set<UInt> = [429, 500, 503, 504]) async throws -> JSONValue {
        var delay = backoff
        for attempt in 1...attempts {
            var request = HTTPClientRequest(url: endpoint + path)
            request.method = method
            var token: String?
            if let credentials {
                token = try await credentials.token()
                request.headers.add(name: "Authorization", value: "Bearer \(token!)")
            }
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: body.jsonText))
            }
            let (status, bytes) = try await GoogleHTTP.send(request, client: client, to: "Cloud Run (\(endpoint))")
            if status == 200 {
                do { return try JSONParser.parse(bytes) } catch {
                    throw CloudError("\(doing): Cloud Run answered JSON that does not parse: \(error)")
                }
            }
            if status == 401, attempt == 1, let credentials {
                await credentials.invalidate(token)
                continue
            }
            let envelope = (try? JSONParser.parse(bytes))?["error"] ?? .null
            let error = GoogleAPIError(code: Int(status), status: envelope["status"].string ?? "",
                                       message: envelope["message"].string ?? GoogleHTTP.excerpt(bytes), doing: doing)
            guard retrying.contains(status), attempt < attempts else { throw error }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, backoff * 10)
        }
        preconditionFailure("unreachable")
    }
}
