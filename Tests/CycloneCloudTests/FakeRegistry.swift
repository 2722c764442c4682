import CycloneCloud
import CycloneModel
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// Artifact Registry's side of gcp-contracts.md §3 that Debian's registry does not show: every request
/// without a Bearer token is challenged (`WWW-Authenticate: Bearer realm=…,service=…,scope=…`), the realm
/// wants Basic `oauth2accesstoken:<Google token>` and grants the scopes asked, cross-repository mounts are
/// refused with an upload session (202), and upload Locations are relative with a query string already.
final class FakeRegistry: Sendable {
    struct State {
        var blobs: [String: [UInt8]] = [:]  // "repository@digest"
        var manifests: [String: (bytes: [UInt8], type: String)] = [:]  // "repository:reference"
        var grants: [[String]] = []  // scopes asked at the realm
        var challenged = 0
        var uploads = 0
    }

    let state = Mutex(State())
    let googleToken: String

    init(googleToken: String) { self.googleToken = googleToken }

    func application(port: @escaping @Sendable () -> Int) -> some ApplicationProtocol {
        let router = Router()
        router.get("/token") { request, _ -> Response in
            let basic = "Basic " + Data("oauth2accesstoken:\(self.googleToken)".utf8).base64EncodedString()
            guard request.headers[.authorization] == basic else { return Self.error(.unauthorized, "UNAUTHORIZED", "bad credentials") }
            let scopes = request.uri.queryParameters.getAll("scope").map { String($0) }
            self.state.withLock { $0.grants.append(scopes) }
            return Self.json(.ok, #"{"token":"registry-token","expires_in":300,"issued_at":"2026-11-29T06:00:00Z"}"#)
        }
        router.on("/v2/**", method: .head) { request, context in try self.serve(request, context, port: port()) }
        router.on("/v2/**", method: .get) { request, context in try self.serve(request, context, port: port()) }
        router.on("/v2/**", method: .post) { request, context in try await self.serve(request, context, port: port()) }
        router.on("/v2/**", method: .put) { request, context in try await self.serve(request, context, port: port()) }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    private func serve(_ request: Request, _ context: BasicRequestContext, port: Int) async throws -> Response {
        let body = Array(try await request.body.collect(upTo: 64 << 20).readableBytesView)
        return serve(request, body: body, port: port)
    }

    private func serve(_ request: Request, _ context: BasicRequestContext, port: Int) throws -> Response {
        serve(request, body: [], port: port)
    }

    private func serve(_ request: Request, body: [UInt8], port: Int) -> Response {
        let path = request.uri.path
        guard request.headers[.authorization] == "Bearer registry-token" else {
            state.withLock { $0.challenged += 1 }
            var response = Self.error(.unauthorized, "UNAUTHORIZED", "authentication required")
            response.headers[HTTPField.Name("WWW-Authenticate")!] =
                #"Bearer realm="http://127.0.0.1:\#(port)/token",service="127.0.0.1:\#(port)",scope="repository:x:pull""#
            return response
        }
        let parts = path.dropFirst(4).components(separatedBy: "/")  // after /v2/
        if let blobs = parts.firstIndex(of: "blobs") {
            let repository = parts[..<blobs].joined(separator: "/")
            if parts.count > blobs + 1, parts[blobs + 1] == "uploads" {
                if request.method == .post {
                    // Mounts are refused: a session is opened instead (202), as registries may.
                    state.withLock { $0.uploads += 1 }
                    return Self.created(.accepted, location: "\(UUID().uuidString.lowercased())?_state=opaque")
                }
                guard request.method == .put, let digest = request.uri.queryParameters.get("digest"),
                      request.uri.queryParameters.get("_state") == "opaque"
                else { return Self.error(.badRequest, "BLOB_UPLOAD_INVALID", "blob upload invalid") }
                guard Digest.sha256(body) == digest else { return Self.error(.badRequest, "DIGEST_INVALID", "provided digest did not match uploaded content") }
                state.withLock { $0.blobs["\(repository)@\(digest)"] = body }
                return Self.created(.created, location: "/v2/\(repository)/blobs/\(digest)")
            }
            let digest = parts.last ?? ""
            guard let blob = state.withLock({ $0.blobs["\(repository)@\(digest)"] }) else {
                return Self.error(.notFound, "BLOB_UNKNOWN", "blob unknown to registry")
            }
            var response = Response(status: .ok, headers: [HTTPField.Name("Docker-Content-Digest")!: digest],
                                    body: .init(byteBuffer: ByteBuffer(bytes: request.method == .head ? [] : blob)))
            response.headers[.contentLength] = "\(blob.count)"
            return response
        }
        guard let manifests = parts.firstIndex(of: "manifests"), parts.count == manifests + 2 else {
            return Self.error(.notFound, "NAME_UNKNOWN", "repository name not known to registry")
        }
        let repository = parts[..<manifests].joined(separator: "/"), reference = parts[manifests + 1]
        if request.method == .put {
            let object = (try? JSONParser.parse(body)) ?? .null
            for digest in [object["config"]["digest"].string].compactMap({ $0 }) + object["layers"].array.compactMap({ $0["digest"].string })
            where state.withLock({ $0.blobs["\(repository)@\(digest)"] }) == nil {
                return Self.error(.badRequest, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry: \(digest)")
            }
            let type = request.headers[.contentType] ?? ""
            let digest = Digest.sha256(body)
            state.withLock {
                $0.manifests["\(repository):\(reference)"] = (body, type)
                $0.manifests["\(repository):\(digest)"] = (body, type)
            }
            var response = Self.created(.created, location: "/v2/\(repository)/manifests/\(digest)")
            response.headers[HTTPField.Name("Docker-Content-Digest")!] = digest
            return response
        }
        guard let manifest = state.withLock({ $0.manifests["\(repository):\(reference)"] }) else {
            return Self.error(.notFound, "MANIFEST_UNKNOWN", "manifest unknown")
        }
        return Response(status: .ok, headers: [.contentType: manifest.type,
                                               HTTPField.Name("Docker-Content-Digest")!: Digest.sha256(manifest.bytes)],
                        body: .init(byteBuffer: ByteBuffer(bytes: manifest.bytes)))
    }

    private static func created(_ status: HTTPResponse.Status, location: String) -> Response {
        Response(status: status, headers: [.location: location, .contentLength: "0"])
    }

    private static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private static func error(_ status: HTTPResponse.Status, _ code: String, _ message: String) -> Response {
        json(status, #"{"errors":[{"code":"\#(code)","message":"\#(message)","detail":null}]}"#)
    }
}
