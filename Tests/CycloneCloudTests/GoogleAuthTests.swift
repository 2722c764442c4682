import CryptoExtras
import CycloneCloud
import CycloneModel
import CycloneTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

@Suite struct GoogleAuthTests {

    /// The metadata server's token is fetched once for any number of concurrent callers, reused, and
    /// refreshed once it is within five minutes of expiry.
    @Test func metadataTokensAreSharedCachedAndRefreshedBeforeExpiry() async throws {
        let fake = FakeGoogleAuth(publicKey: FakeGoogleAuth.testKey.publicKey)
        try await fake.application().test(.live) { client in
            let port = try #require(client.port)
            let clock = Mutex(Date())
            let credentials = try GoogleCredentials.fromEnvironment(["GCE_METADATA_HOST": "127.0.0.1:\(port)"])
            #expect(credentials.source is MetadataServer)
            let timed = GoogleCredentials(source: credentials.source, now: { clock.withLock { $0 } })
            let tokens = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<40 { group.addTask { try await timed.token() } }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(tokens == ["ya29.fake-1"])
            #expect(await timed.fetches == 1)
            clock.withLock { $0 += 3_000 }
            #expect(try await timed.token() == "ya29.fake-1", "still 599 s left")
            clock.withLock { $0 += 400 }
            #expect(try await timed.token() == "ya29.fake-2", "within five minutes of expiry")
            await timed.invalidate()
            #expect(try await timed.token() == "ya29.fake-3", "a token an API refused is not reused")
            #expect(fake.state.withLock { $0.refusedWithoutFlavor } == 0)
        }
    }

    /// A metadata server that answers without a token: the error says who answered what.
    @Test func anAnswerWithoutATokenIsOneLine() async throws {
        let router = Router()
        router.get("/computeMetadata/v1/instance/service-accounts/default/token") { _, _ in "no such account" as String }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let source = MetadataServer(host: "127.0.0.1:\(port)")
            await #expect { try await source.fetch() } throws: { error in
                "\(error)".hasPrefix("the metadata server at 127.0.0.1:\(port) answered without an access_token: no such account")
            }
        }
    }

    /// A service-account key signs an RS256 JWT with the claims Google checks, and the token endpoint's
    /// answer becomes the token; a key the endpoint does not know gets its OAuth error back, verbatim.
    @Test func aServiceAccountKeyIsExchangedForAToken() async throws {
        let fake = FakeGoogleAuth(publicKey: FakeGoogleAuth.testKey.publicKey)
        try await fake.application().test(.live) { client in
            let port = try #require(client.port)
            let file = TestFiles.folder.appendingPathComponent("key-\(UUID().uuidString).json").path
            try Self.keyFile(FakeGoogleAuth.testKey, tokenURI: "http://127.0.0.1:\(port)/token").write(toFile: file, atomically: true,
                                                                                        encoding: .utf8)
            let credentials = try GoogleCredentials.fromEnvironment(["GOOGLE_APPLICATION_CREDENTIALS": file,
                                                                     "K_SERVICE": "predict"])
            #expect(try await credentials.token() == "ya29.fake-1")
            let (header, claims) = try #require(fake.state.withLock { $0.assertions.first })
            #expect(header == ["alg": "RS256", "typ": "JWT", "kid": "key-1"])
            guard case .object(let c) = claims else { Issue.record("claims are not an object"); return }
            #expect(c["aud"] == .string("http://127.0.0.1:\(port)/token"))
            #expect(c["scope"] == .string(GoogleScopes.cloudPlatform))

            let stranger = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            let wrong = try ServiceAccountKey(json: Data(Self.keyFile(stranger, tokenURI: "http://127.0.0.1:\(port)/token").utf8))
            await #expect { try await wrong.fetch() } throws: { error in
                "\(error)" == "the token endpoint refused the service-account key of retrain@project.iam.gserviceaccount.com (400): invalid_grant: Invalid JWT Signature."
            }
        }
    }

    @Test func credentialsThatCannotWorkSayWhy() throws {
        let file = TestFiles.folder.appendingPathComponent("user-\(UUID().uuidString).json").path
        try #"{"type": "authorized_user", "client_id": "x"}"#.write(toFile: file, atomically: true, encoding: .utf8)
        #expect { try GoogleCredentials.fromEnvironment(["GOOGLE_APPLICATION_CREDENTIALS": file]) } throws: { error in
            "\(error)".contains("is not a service-account key (type 'authorized_user')")
        }
        #expect { try GoogleCredentials.fromEnvironment(["GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent.json"]) } throws: {
            "\($0)" == "GOOGLE_APPLICATION_CREDENTIALS names /nonexistent.json, which cannot be read"
        }
        #expect { try GoogleCredentials.fromEnvironment(["PATH": "/nonexistent"], productName: "/nonexistent") } throws: {
            "\($0)".hasPrefix("no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS")
        }
    }

    /// On Compute Engine (GKE nodes and Cloud Build workers too) the DMI product name says Google: the metadata
    /// server is used though no variable says so.
    @Test func computeEngineIsKnownByItsProductName() throws {
        let file = TestFiles.folder.appendingPathComponent("product-\(UUID().uuidString)").path
        try "Google Compute Engine\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(GoogleCredentials.onGoogleHardware(productName: file))
        #expect(throws: Never.self) { try GoogleCredentials.fromEnvironment(["PATH": "/nonexistent"], productName: file) }
        try "Standard PC (Q35 + ICH9, 2009)\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(!GoogleCredentials.onGoogleHardware(productName: file))
        #expect(!GoogleCredentials.onGoogleHardware(productName: "/nonexistent"))
    }

    /// An operator's shell: `gcloud auth print-access-token`, found on PATH; its failure is its last line.
    @Test func gcloudOnThePathGivesTheOperatorsToken() async throws {
        let folder = TestFiles.folder.appendingPathComponent("gcloud-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let script = "\(folder)/gcloud"
        try """
            #!/bin/sh
            [ "$1 $2" = "auth print-access-token" ] || exit 2
            [ -n "$GCLOUD_BROKEN" ] && { echo "ERROR: (gcloud.auth.print-access-token) You do not currently have an active account selected." >&2; exit 1; }
            echo ya29.operator
            """.write(toFile: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        let credentials = try GoogleCredentials.fromEnvironment(["PATH": "/nonexistent:\(folder)"], productName: "/nonexistent")
        #expect(try await credentials.token() == "ya29.operator")
        let broken = GcloudCLI(executable: script, environment: ["GCLOUD_BROKEN": "1"])
        await #expect { try await broken.fetch() } throws: {
            "\($0)" == "\(script) auth print-access-token failed (status 1): ERROR: (gcloud.auth.print-access-token) You do not currently have an active account selected."
        }
    }

    static func keyFile(_ key: _RSA.Signing.PrivateKey, tokenURI: String) -> String {
        JSONValue.object([
            "type": "service_account", "project_id": "project", "private_key_id": "key-1",
            "private_key": .string(key.pkcs8PEMRepresentation),
            "client_email": "retrain@project.iam.gserviceaccount.com", "client_id": "1234", "token_uri": .string(tokenURI),
        ]).jsonText
    }
}
