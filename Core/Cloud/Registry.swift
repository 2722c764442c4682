import AsyncHTTPClient
import Crypto
import CycloneModel
import Foundation
import NIOCore
import NIOHTTP1

/// A client of one container registry's distribution API (OCI distribution spec, gcp-contracts.md §3):
/// manifests and blobs read and written, with Docker's token authentication when the registry challenges.
public struct Registry: Sendable {
    /// `host[:port]`.
    public let host: String
    /// `https`, or `http` for a registry on loopback (`--insecure`).
    public let scheme: String
    /// Google credentials for Artifact Registry (Basic `oauth2accesstoken` at the token realm); `nil` is
    /// anonymous.
    public let credentials: GoogleCredentials?
    let client: HTTPClient
    let tokens = RegistryTokens()

    public init(host: String, insecure: Bool = false, credentials: GoogleCredentials? = nil, client: HTTPClient = .shared) {
        self.host = host
        scheme = insecure ? "http" : "https"
        self.credentials = credentials
        self.client = client
    }

    public static let manifestTypes = [
        MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList,
    ]

    /// A manifest as stored: its exact bytes, media type and digest.
    public struct Manifest: Sendable {
        public var bytes: [UInt8]
        public var mediaType: String
        public var digest: String
    }

    public func manifest(_ repository: String, _ reference: String) async throws -> Manifest {
        let response = try await send(.GET, "/v2/\(repository)/manifests/\(reference)", repository: repository,
                                      headers: [("Accept", Self.manifestTypes.joined(separator: ", "))])
        try response.expect(200, "reading manifest \(repository):\(reference) from \(host)")
        let declared = response.headers.first(name: "Content-Type")?.split(separator: ";").first.map(String.init)
        let parsed = try? JSONParser.parse(response.body)
        let mediaType = parsed?["mediaType"].string ?? declared ?? MediaType.dockerManifest
        let digest = Digest.sha256(response.body)
        // Asked by digest, the bytes must be those; the registry's own header must agree too.
        if reference.hasPrefix("sha256:"), digest != reference {
            throw CloudError("\(host) answered manifest \(repository)@\(reference) with bytes of \(digest)")
        }
        if let declared = response.headers.first(name: "Docker-Content-Digest"), declared != digest {
            throw CloudError("\(host) says manifest \(repository):\(reference) is \(declared), but its bytes are \(digest)")
        }
        return Manifest(bytes: response.body, mediaType: mediaType, digest: digest)
    }

    public func blob(_ repository: String, _ digest: String) async throws -> [UInt8] {
        let response = try await send(.GET, "/v2/\(repository)/blobs/\(digest)", repository: repository)
        try response.expect(200, "reading blob \(digest) of \(repository) from \(host)")
        guard Digest.sha256(response.body) == digest else {
            throw CloudError("\(host) answered blob \(digest) of \(repository) with bytes of another digest")
        }
        return response.body
    }

    public func hasBlob(_ repository: String, _ digest: String) async throws -> Bool {
        let response = try await send(.HEAD, "/v2/\(repository)/blobs/\(digest)", repository: repository, push: true)
        if response.status == 404 { return false }
        try response.expect(200, "checking blob \(digest) in \(repository) on \(host)")
        return true
    }

    /// Mounts a blob from another repository of this registry. `nil` when mounted; otherwise the registry
    /// refused and opened an upload session instead, whose location is returned.
    public func mount(_ repository: String, _ digest: String, from source: String) async throws -> String? {
        let response = try await send(.POST, "/v2/\(repository)/blobs/uploads/?mount=\(digest)&from=\(source)",
                                      repository: repository, push: true, also: source, body: [])
        if response.status == 201 { return nil }
        try response.expect(202, "mounting blob \(digest) into \(repository) on \(host)")
        return try response.location("mount of \(digest)")
    }

    /// Uploads a blob in one PUT, in a new session or the one `session` names.
    public func upload(_ repository: String, _ bytes: [UInt8], digest: String, session: String? = nil) async throws {
        var location = session
        if location == nil {
            let started = try await send(.POST, "/v2/\(repository)/blobs/uploads/", repository: repository, push: true,
                                         body: [])
            try started.expect(202, "starting an upload to \(repository) on \(host)")
            location = try started.location("upload session")
        }
        // The location is opaque: relative or absolute, perhaps with a query already.
        let url = location! + (location!.contains("?") ? "&" : "?") + "digest=\(digest)"
        let response = try await send(.PUT, url, repository: repository, push: true,
                                      headers: [("Content-Type", "application/octet-stream")], body: bytes)
        try response.expect(201, "uploading blob \(digest) (\(bytes.count) bytes) to \(repository) on \(host)")
    }

    /// Stores a manifest under a tag or digest; returns the digest the registry gives it.
    public func putManifest(_ repository: String, _ reference: String, _ bytes: [UInt8], mediaType: String) async throws
        -> String
    {
        let response = try await send(.PUT, "/v2/\(repository)/manifests/\(reference)", repository: repository,
                                      push: true, headers: [("Content-Type", mediaType)], body: bytes)
        try response.expect(201, "storing manifest \(repository):\(reference) on \(host)")
        let digest = Digest.sha256(bytes)
        if let declared = response.headers.first(name: "Docker-Content-Digest"), declared != digest {
            throw CloudError("\(host) stored manifest \(repository):\(reference) as \(declared), not \(digest)")
        }
        return digest
    }

    // MARK: Requests and authentication

    struct Response {
        var status: UInt
        var headers: HTTPHeaders
        var body: [UInt8]
        var url: String

        /// Throws the registry's error (`{"errors": [{"code", "message"}]}`) unless the status is `expected`.
        func expect(_ expected: UInt, _ doing: String) throws {
            guard status != expected else { return }
            var reason = "\(status)"
            if let parsed = try? JSONParser.parse(body), case .array(let errors) = parsed["errors"], let first = errors.first {
                reason += " \(first["code"].string ?? "")" + (first["message"].string.map { ": \($0)" } ?? "")
            } else if !body.isEmpty {
                reason += ": " + GoogleHTTP.excerpt(body)
            }
            throw CloudError("\(doing) failed (\(reason))")
        }

        /// The `Location` header, made absolute against the request's URL (it may be relative).
        func location(_ what: String) throws -> String {
            guard let location = headers.first(name: "Location"), !location.isEmpty else {
                throw CloudError("the registry answered the \(what) without a Location")
            }
            return URL(string: location, relativeTo: URL(string: url))?.absoluteString ?? location
        }
    }

    /// One request; a Bearer challenge is answered at its realm and the request sent again.
    func send(_ method: HTTPMethod, _ path: String, repository: String, push: Bool = false, also source: String? = nil,
              headers: [(String, String)] = [], body: [UInt8]? = nil) async throws -> Response {
        let url = absolute(path)
        var scopes = ["repository:\(repository):\(push ? "pull,push" : "pull")"]
        if let source { scopes.append("repository:\(source):pull") }
        var authorization = await tokens.token(for: scopes)
        for attempt in 0..<2 {
            var request = HTTPClientRequest(url: url)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            // Credentials go to this registry only, not to an upload Location on another host.
            if let authorization, URL(string: url)?.host == URL(string: "\(scheme)://\(host)")?.host {
                request.headers.add(name: "Authorization", value: authorization)
            }
            if let body {
                request.headers.add(name: "Content-Length", value: "\(body.count)")
                request.body = .bytes(ByteBuffer(bytes: body))
            }
            let response: HTTPClientResponse
            let bytes: ByteBuffer
            do {
                response = try await client.execute(request, timeout: .seconds(300))
                bytes = try await response.body.collect(upTo: 2 << 30)
            } catch {
                throw CloudError("cannot reach the registry \(host): \(error)")
            }
            let answer = Response(status: response.status.code, headers: response.headers,
                                  body: Array(bytes.readableBytesView), url: url)
            guard answer.status == 401, attempt == 0,
                  let challenge = response.headers.first(name: "WWW-Authenticate").map(Challenge.init)
            else { return answer }
            authorization = try await authenticate(challenge, scopes: scopes)
        }
        preconditionFailure("unreachable")
    }

    /// A path on this registry, or an absolute URL as it is.
    private func absolute(_ path: String) -> String {
        if path.hasPrefix("http://") || path.hasPrefix("https://") { return path }
        return "\(scheme)://\(host)\(path.hasPrefix("/") ? "" : "/")\(path)"
    }

    /// The Authorization for a challenge: Basic with Google's token, or a Bearer token from the realm.
    private func authenticate(_ challenge: Challenge, scopes: [String]) async throws -> String {
        var basic: String?
        if let credentials {
            basic = "Basic " + Data("oauth2accesstoken:\(try await credentials.token())".utf8).base64EncodedString()
        }
        guard challenge.scheme.lowercased() == "bearer", let realm = challenge.parameters["realm"] else {
            guard let basic else { throw CloudError("the registry \(host) asks for credentials (\(challenge.scheme)) and none are configured") }
            return basic
        }
        var query = [String]()
        if let service = challenge.parameters["service"] { query.append("service=\(Self.escape(service))") }
        for scope in scopes { query.append("scope=\(Self.escape(scope))") }
        var request = HTTPClientRequest(url: realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&"))
        if let basic { request.headers.add(name: "Authorization", value: basic) }
        let (status, body) = try await GoogleHTTP.send(request, client: client, to: "the registry's token realm \(realm)")
        guard status == 200, let parsed = try? JSONParser.parse(body),
              let token = parsed["token"].string ?? parsed["access_token"].string
        else {
            throw CloudError("the registry's token realm \(realm) answered \(status): \(GoogleHTTP.excerpt(body))")
        }
        let life = parsed["expires_in"].number ?? 60
        let value = "Bearer \(token)"
        await tokens.store(value, for: scopes, until: Date().addingTimeInterval(life * 0.9))
        return value
    }

    private static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlQueryValue) ?? text
    }
}

/// A `WWW-Authenticate` challenge: `Bearer realm="…",service="…",scope="…"` (quoted values, any order).
struct Challenge {
    var scheme: String
    var parameters: [String: String] = [:]

    init(_ header: String) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        let space = trimmed.firstIndex(of: " ") ?? trimmed.endIndex
        scheme = String(trimmed[..<space])
        var rest = trimmed[space...].drop { $0 == " " }
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: " ,")).lowercased()
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let character = rest.first, character != "\"" {
                    if character == "\\" { rest = rest.dropFirst() }
                    if let next = rest.first { value.append(next) }
                    rest = rest.dropFirst()
                }
                rest = rest.dropFirst()
            } else {
                value = String(rest.prefix { $0 != "," })
                rest = rest.drop { $0 != "," }
            }
            parameters[key] = value
            rest = rest.drop { $0 == "," || $0 == " " }
        }
    }
}

/// Bearer tokens per scope set, until they expire.
actor RegistryTokens {
    private var tokens: [[String]: (value: String, until: Date)] = [:]

    func token(for scopes: [String]) -> String? {
        guard let entry = tokens[scopes], entry.until > Date() else { return nil }
        return entry.value
    }

    func store(_ value: String, for scopes: [String], until: Date) { tokens[scopes] = (value, until) }
}

public enum MediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
}

public enum Digest {
    /// `sha256:` and the lowercase hex of the bytes' SHA-256.
    public static func sha256(_ bytes: some DataProtocol) -> String {
        "sha256:" + SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
