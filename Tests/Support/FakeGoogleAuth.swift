import CryptoExtras
import CycloneCloud
import CycloneModel
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// Google's metadata server and OAuth token endpoint, as their contracts say (gcp-contracts.md §2): the
/// metadata server answers only requests that carry `Metadata-Flavor: Google` and says so in its answer;
/// the token endpoint takes the JWT bearer grant, checks the RS256 signature against the account's public
/// key and the claims, and answers OAuth-style errors otherwise.
public final class FakeGoogleAuth: Sendable {
    public struct State: Sendable {
        public var issued = 0
        public var refusedWithoutFlavor = 0
        public var assertions: [(header: JSONValue, claims: JSONValue)] = []
    }

    /// A service account key for tests (2048-bit RSA, made once per process): sign with it, give the fake its
    /// public half.
    public static let testKey = try! _RSA.Signing.PrivateKey(keySize: .bits2048)

    public let state = Mutex(State())
    public let publicKey: _RSA.Signing.PublicKey
    public let clientEmail: String
    public let lifetime: Int

    public init(publicKey: _RSA.Signing.PublicKey, clientEmail: String = "retrain@project.iam.gserviceaccount.com",
         lifetime: Int = 3599) {
        self.publicKey = publicKey
        self.clientEmail = clientEmail
        self.lifetime = lifetime
    }

    public func application(port: Int = 0) -> some ApplicationProtocol {
        let router = Router()
        router.get("/computeMetadata/v1/instance/service-accounts/default/token") { request, _ -> Response in
            guard request.headers[HTTPField.Name("Metadata-Flavor")!] == "Google" else {
                self.state.withLock { $0.refusedWithoutFlavor += 1 }
                return Self.text(.forbidden, "Missing Metadata-Flavor:Google header.")
            }
            if let scopes = request.uri.queryParameters.get("scopes"), !scopes.contains("cloud-platform") {
                return Self.text(.badRequest, "this fake grants the cloud-platform scope only")
            }
            return self.token()
        }
        router.post("/token") { request, _ -> Response in
            let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
            var form: [String: String] = [:]
            for pair in body.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? "" }
                if parts.count == 2 { form[parts[0]] = parts[1] }
            }
            guard form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer", let jwt = form["assertion"] else {
                return Self.oauthError("unsupported_grant_type", "Invalid grant_type")
            }
            let parts = jwt.split(separator: ".")
            guard parts.count == 3, let headerData = Base64URL.decode(parts[0]), let claimsData = Base64URL.decode(parts[1]),
                  let signature = Base64URL.decode(parts[2]),
                  let header = try? JSONParser.parse(headerData), let claims = try? JSONParser.parse(claimsData)
            else { return Self.oauthError("invalid_request", "Malformed JWT") }
            guard self.publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature),
                                                  for: Data("\(parts[0]).\(parts[1])".utf8), padding: .insecurePKCS1v1_5)
            else { return Self.oauthError("invalid_grant", "Invalid JWT Signature.") }
            self.state.withLock { $0.assertions.append((header, claims)) }
            let now = Date().timeIntervalSince1970
            guard case .object(let c) = claims, case .string(self.clientEmail)? = c["iss"],
                  case .number(let iat)? = c["iat"], case .number(let exp)? = c["exp"],
                  abs(iat - now) < 300, exp > iat, exp - iat <= 3600
            else { return Self.oauthError("invalid_grant", "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe.") }
            guard case .string(let scope)? = c["scope"], scope.contains("cloud-platform") else {
                return Self.oauthError("invalid_scope", "Empty or missing scope not allowed.")
            }
            return self.token()
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
    }

    private func token() -> Response {
        let n = state.withLock { $0.issued += 1; return $0.issued }
        var response = Self.text(.ok, #"{"access_token":"ya29.fake-\#(n)","expires_in":\#(lifetime),"token_type":"Bearer"}"#)
        response.headers[.contentType] = "application/json"
        response.headers[HTTPField.Name("Metadata-Flavor")!] = "Google"
        return response
    }

    private static func text(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private static func oauthError(_ code: String, _ description: String) -> Response {
        Response(status: .badRequest, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: #"{"error":"\#(code)","error_description":"\#(description)"}"#)))
    }
}
