import AsyncHTTPClient
import Crypto
import CryptoExtras
import CycloneModel
import Foundation
import NIOCore
import NIOHTTP1

/// An OAuth 2 access token for Google APIs, and when it expires.
public struct AccessToken: Sendable, Equatable {
    public var value: String
    public var expires: Date

    public init(value: String, expires: Date) {
        self.value = value
        self.expires = expires
    }
}

/// Where access tokens come from: the metadata server, a service-account key, or the operator's gcloud.
public protocol AccessTokenSource: Sendable, CustomStringConvertible {
    func fetch() async throws -> AccessToken
}

/// Why a cloud operation (a token, a registry call, an API call) could not be done, in one sentence.
public struct CloudError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Google access tokens for a process: fetched when first needed, cached, and refreshed `refreshMargin`
/// before they expire (or half-way through a shorter life). Concurrent callers during a refresh wait for
/// that one refresh rather than starting their own.
public actor GoogleCredentials {
    public nonisolated let source: any AccessTokenSource
    private let margin: TimeInterval
    private let now: @Sendable () -> Date
    private var cached: (token: AccessToken, refreshAt: Date)?
    private var refreshing: Task<AccessToken, any Error>?
    /// How many tokens were fetched (for tests and logs).
    public private(set) var fetches = 0

    public init(source: any AccessTokenSource, refreshMargin: Duration = .seconds(300),
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.source = source
        margin = refreshMargin.seconds
        self.now = now
    }

    /// A token valid for a while yet.
    public func token() async throws -> String {
        if let cached, now() < cached.refreshAt { return cached.token.value }
        if let refreshing { return try await refreshing.value.value }
        let fetchedAt = now()
        let task = Task { [source] in try await source.fetch() }
        refreshing = task
        defer { refreshing = nil }
        let token = try await task.value
        fetches += 1
        let life = token.expires.timeIntervalSince(fetchedAt)
        cached = (token, fetchedAt.addingTimeInterval(max(life / 2, life - margin)))
        return token.value
    }

    /// Forgets the cached token after an API refused it (401), unless a newer one has replaced it meanwhile:
    /// the next call fetches a new one.
    public func invalidate(_ refused: String? = nil) {
        if refused == nil || cached?.token.value == refused { cached = nil }
    }

    /// Application default credentials, in Google's order: the key file `GOOGLE_APPLICATION_CREDENTIALS`
    /// names; the metadata server on Cloud Run (`K_SERVICE` or `CLOUD_RUN_JOB` set; `GCE_METADATA_HOST`
    /// points elsewhere, a fake in tests); `gcloud auth print-access-token` from an operator's shell; else
    /// the metadata server on Compute Engine, GKE and Cloud Build, whose DMI product name starts "Google".
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                                       scopes: [String] = [GoogleScopes.cloudPlatform],
                                       productName: String = "/sys/class/dmi/id/product_name",
                                       client: HTTPClient = .shared) throws -> GoogleCredentials {
        if let path = environment["GOOGLE_APPLICATION_CREDENTIALS"], !path.isEmpty {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CloudError("GOOGLE_APPLICATION_CREDENTIALS names \(path), which cannot be read")
            }
            return GoogleCredentials(source: try ServiceAccountKey(json: data, scopes: scopes, client: client))
        }
        let host = [environment["GCE_METADATA_HOST"], environment["GCE_METADATA_ROOT"]].compactMap { $0 }.first { !$0.isEmpty }
        let metadata = GoogleCredentials(source: MetadataServer(host: host ?? MetadataServer.defaultHost, scopes: scopes,
                                                                client: client))
        if host != nil || environment["K_SERVICE"] != nil || environment["CLOUD_RUN_JOB"] != nil { return metadata }
        // An operator's own identity before the machine's: gcloud on a VM speaks for whoever logged in.
        let path = (environment["PATH"] ?? "").split(separator: ":").map { "\($0)/gcloud" }
        if let gcloud = path.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            return GoogleCredentials(source: GcloudCLI(executable: gcloud, environment: environment))
        }
        if onGoogleHardware(productName: productName) { return metadata }
        throw CloudError("no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, run on Google Cloud (metadata server), or install gcloud and run `gcloud auth login`")
    }
}

extension GoogleCredentials {
    /// A Compute Engine machine (GCE, GKE nodes, Cloud Build workers) says so in its DMI product name, as
    /// Google's own auth libraries check before they use the metadata server.
    public static func onGoogleHardware(productName path: String) -> Bool {
        (try? String(contentsOfFile: path, encoding: .utf8))?.hasPrefix("Google") == true
    }
}

public enum GoogleScopes {
    public static let cloudPlatform = "https://www.googleapis.com/auth/cloud-platform"
}

/// The metadata server of Cloud Run (and every Google Cloud runtime): tokens of the service's own account.
public struct MetadataServer: AccessTokenSource {
    public static let defaultHost = "metadata.google.internal"
    /// `host[:port]` without a scheme, as `GCE_METADATA_HOST` gives it.
    public var host: String
    public var scopes: [String]
    public var client: HTTPClient

    public init(host: String = defaultHost, scopes: [String] = [GoogleScopes.cloudPlatform], client: HTTPClient = .shared) {
        self.host = host
        self.scopes = scopes
        self.client = client
    }

    public var description: String { "the metadata server at \(host)" }

    public func fetch() async throws -> AccessToken {
        let scopeList = scopes.joined(separator: ",").addingPercentEncoding(withAllowedCharacters: .urlQueryValue) ?? ""
        var request = HTTPClientRequest(
            url: "http://\(host)/computeMetadata/v1/instance/service-accounts/default/token?scopes=\(scopeList)")
        request.headers.add(name: "Metadata-Flavor", value: "Google")
        let (status, body) = try await GoogleHTTP.send(request, client: client, to: description)
        guard status == 200 else {
            throw CloudError("\(description) answered \(status): \(GoogleHTTP.excerpt(body))")
        }
        return try GoogleHTTP.accessToken(body, from: description)
    }
}

/// A service-account key file: a JWT signed with its private key (RS256) is exchanged at its token URI for an
/// access token (the JWT bearer grant).
public struct ServiceAccountKey: AccessTokenSource {
    public var clientEmail: String
    public var keyID: String
    public var tokenURI: String
    public var scopes: [String]
    public var client: HTTPClient
    let privateKey: _RSA.Signing.PrivateKey

    public init(json: Data, scopes: [String] = [GoogleScopes.cloudPlatform], client: HTTPClient = .shared) throws {
        guard case .object(let key)? = try? JSONParser.parse(json) else {
            throw CloudError("the credentials file is not JSON")
        }
        func field(_ name: String) throws -> String {
            guard case .string(let value)? = key[name], !value.isEmpty else {
                throw CloudError("the service-account key has no \(name)")
            }
            return value
        }
        guard case .string(let type)? = key["type"], type == "service_account" else {
            throw CloudError("the credentials file is not a service-account key (type '\(key["type"].flatMap { if case .string(let t) = $0 { t } else { nil } } ?? "none")'); use a key file or the metadata server")
        }
        clientEmail = try field("client_email")
        keyID = try field("private_key_id")
        if case .string(let uri)? = key["token_uri"], !uri.isEmpty { tokenURI = uri } else { tokenURI = "https://oauth2.googleapis.com/token" }
        do {
            privateKey = try _RSA.Signing.PrivateKey(pemRepresentation: try field("private_key"))
        } catch let error as CloudError {
            throw error
        } catch {
            throw CloudError("the private_key of \(clientEmail) is not an RSA key in PEM: \(error)")
        }
        self.scopes = scopes
        self.client = client
    }

    public var description: String { "the service-account key of \(clientEmail)" }

    /// The signed assertion: header and claims as Google's libraries write them, valid for an hour.
    func assertion(at now: Date) throws -> String {
        let issued = Int(now.timeIntervalSince1970)
        let header: JSONValue = ["alg": "RS256", "typ": "JWT", "kid": .string(keyID)]
        let claims: JSONValue = [
            "iss": .string(clientEmail), "scope": .string(scopes.joined(separator: " ")), "aud": .string(tokenURI),
            "iat": .number(Double(issued)), "exp": .number(Double(issued + 3_600)),
        ]
        let signingInput = Base64URL.encode(Data(header.jsonText.utf8)) + "." + Base64URL.encode(Data(claims.jsonText.utf8))
        let signature = try privateKey.signature(for: Data(signingInput.utf8), padding: .insecurePKCS1v1_5)
        return signingInput + "." + Base64URL.encode(signature.rawRepresentation)
    }

    public func fetch() async throws -> AccessToken {
        var request = HTTPClientRequest(url: tokenURI)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        let form = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=\(try assertion(at: Date()))"
        request.body = .bytes(ByteBuffer(string: form))
        let (status, body) = try await GoogleHTTP.send(request, client: client, to: "the token endpoint \(tokenURI)")
        guard status == 200 else {
            // OAuth errors: {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            if case .object(let error)? = try? JSONParser.parse(body), case .string(let code)? = error["error"] {
                let text = error["error_description"].flatMap { if case .string(let d) = $0 { d } else { nil } }
                throw CloudError("the token endpoint refused \(description) (\(status)): \(code)\(text.map { ": \($0)" } ?? "")")
            }
            throw CloudError("the token endpoint \(tokenURI) answered \(status): \(GoogleHTTP.excerpt(body))")
        }
        return try GoogleHTTP.accessToken(body, from: "the token endpoint \(tokenURI)")
    }
}

/// An operator's gcloud: `gcloud auth print-access-token`. gcloud keeps its own cache and hands out a token
/// that may be minutes from expiry, so it is asked again after five minutes.
public struct GcloudCLI: AccessTokenSource {
    public var executable: String
    public var environment: [String: String]

    public init(executable: String, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.executable = executable
        self.environment = environment
    }

    public var description: String { "\(executable) auth print-access-token" }

    public func fetch() async throws -> AccessToken {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cyclone-gcloud-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (out, err) = (folder.appendingPathComponent("out").path, folder.appendingPathComponent("err").path)
        let process = try ChildProcess(executable, arguments: ["auth", "print-access-token"], environment: environment,
                                       stdout: out, stderr: err)
        let status = await process.wait()
        let token = (try? String(contentsOfFile: out, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard status == 0, !token.isEmpty, !token.contains(where: \.isWhitespace) else {
            let reason = (try? String(contentsOfFile: err, encoding: .utf8))?.split(separator: "\n").last.map(String.init)
            throw CloudError("\(description) failed (status \(status)): \(reason ?? "no output")")
        }
        return AccessToken(value: token, expires: Date().addingTimeInterval(600))
    }
}

/// What the Google clients share: one request with its body read, the token response, base64url.
enum GoogleHTTP {
    static func send(_ request: HTTPClientRequest, client: HTTPClient, to what: String) async throws -> (UInt, [UInt8]) {
        do {
            let response = try await client.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 16 << 20)
            return (response.status.code, Array(body.readableBytesView))
        } catch {
            throw CloudError("cannot reach \(what): \(error)")
        }
    }

    /// `{"access_token": "…", "expires_in": 3599, "token_type": "Bearer"}`.
    static func accessToken(_ body: [UInt8], from what: String, now: Date = Date()) throws -> AccessToken {
        guard case .object(let object)? = try? JSONParser.parse(body), case .string(let token)? = object["access_token"],
              !token.isEmpty
        else {
            throw CloudError("\(what) answered without an access_token: \(excerpt(body))")
        }
        let life: Double = if case .number(let seconds)? = object["expires_in"], seconds > 0 { seconds } else { 3_600 }
        return AccessToken(value: token, expires: now.addingTimeInterval(life))
    }

    static func excerpt(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(300), as: UTF8.self).split(whereSeparator: \.isNewline).joined(separator: " ")
        return text.isEmpty ? "(empty body)" : text
    }
}

/// Unpadded base64url (RFC 4648 §5), as JWTs use.
public enum Base64URL {
    public static func encode(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func decode(_ text: some StringProtocol) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}

extension CharacterSet {
    /// What may stand unescaped in a query value.
    static let urlQueryValue = CharacterSet.urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+/:"))
}
