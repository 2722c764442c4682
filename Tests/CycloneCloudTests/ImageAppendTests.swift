import CryptoExtras
import CycloneCloud
import CycloneModel
import CycloneTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `cyclone image append` against a real registry: Debian's docker-registry on loopback (scripts/setup
/// installs it and skopeo), checked with skopeo, which reads images the way container runtimes do.
@Suite(.serialized) struct ImageAppendTests {
    @Test(arguments: [true, false])
    func appendKeepsTheBaseAndAddsTheModel(oci: Bool) async throws {
        let local = try await LocalRegistry()
        do {
            let registry = Registry(host: local.host, insecure: true)
            _ = try await LocalRegistry.pushBase(registry, repository: "cyclone/base", tag: "v1", oci: oci)
            let artifact = try TestModels.regression()
            let model = try TestModels.file(artifact)
            let cyclone = try Repository.product("cyclone")
            let target = "\(local.host)/cyclone/predict:v2"
            let first = try await Repository.run(cyclone.path, ["image", "append", "--base", "\(local.host)/cyclone/base:v1",
                                                                "--model", model, "--to", target, "--insecure"])
            let digest = try #require(first.split(separator: "\n").last.map(String.init))
            #expect(digest.hasPrefix("\(local.host)/cyclone/predict@sha256:"), "\(first)")
            #expect(first.contains("blobs: 2 uploaded, 1 mounted, 0 already there"), "\(first)")

            // skopeo reads it as a runtime would: the base layer, then the model's; entrypoint, env and labels.
            let inspect = try JSONParser.parse(Array(try await Repository.run(
                "/usr/bin/skopeo", ["inspect", "--tls-verify=false", "docker://\(target)"]).utf8))
            #expect(inspect["Layers"].array.count == 2)
            #expect(inspect["Env"].array.compactMap(\.string).contains("MODEL_VERSION=\(artifact.version)"))
            #expect(inspect["Labels"]["org.opencontainers.image.title"].string == "cyclone predict")
            #expect(inspect["Labels"]["dev.cyclone.model.name"].string == artifact.name)
            #expect("\(local.host)/cyclone/predict@\(inspect["Digest"].string ?? "")" == digest)
            let config = try JSONParser.parse(Array(try await Repository.run(
                "/usr/bin/skopeo", ["inspect", "--config", "--tls-verify=false", "docker://\(target)"]).utf8))
            #expect(config["config"]["Entrypoint"] == ["/app/serve"])
            #expect(config["config"]["Env"].array.compactMap(\.string).contains("MODEL_PATH=\(ImageAppend.defaultModelPath)"))
            #expect(config["rootfs"]["diff_ids"].array.count == 2 && config["history"].array.count == 2)

            // The layer holds the artifact's exact bytes at MODEL_PATH.
            let copy = local.folder + "/copy"
            try await Repository.run("/usr/bin/skopeo", ["copy", "--src-tls-verify=false", "docker://\(target)", "dir:\(copy)"])
            let layerFile = "\(copy)/" + String(try #require(inspect["Layers"].array.last?.string).dropFirst(7))
            try FileManager.default.createDirectory(atPath: copy + "/root", withIntermediateDirectories: true)
            try await Repository.run("/usr/bin/tar", ["-xzf", layerFile, "-C", copy + "/root"])
            #expect(FileManager.default.contents(atPath: copy + "/root" + ImageAppend.defaultModelPath)
                    == FileManager.default.contents(atPath: model))

            // Again: the same digest, and nothing uploaded.
            let second = try await Repository.run(cyclone.path, ["image", "append", "--base", "\(local.host)/cyclone/base:v1",
                                                                 "--model", model, "--to", target, "--insecure"])
            #expect(second.split(separator: "\n").last.map(String.init) == digest)
            #expect(second.contains("blobs: 0 uploaded, 0 mounted, 3 already there"), "\(second)")
            await local.stop()
        } catch {
            await local.stop()
            throw error
        }
    }

    /// An index resolves to its linux/amd64 image; the arm64 one is left alone.
    @Test func anIndexResolvesToLinuxAmd64() async throws {
        let local = try await LocalRegistry()
        do {
            let registry = Registry(host: local.host, insecure: true)
            let amd64 = try await LocalRegistry.pushBase(registry, repository: "cyclone/base", tag: "amd64", oci: true)
            let arm64 = try await LocalRegistry.pushBase(registry, repository: "cyclone/base", tag: "arm64", oci: true,
                                                 architecture: "arm64")
            let index = JSONValue.object([
                "schemaVersion": 2, "mediaType": .string(MediaType.ociIndex),
                "manifests": [
                    ["mediaType": .string(MediaType.ociManifest), "digest": .string(Digest.sha256(arm64)),
                     "size": .number(Double(arm64.count)), "platform": ["os": "linux", "architecture": "arm64"]],
                    ["mediaType": .string(MediaType.ociManifest), "digest": .string(Digest.sha256(arm64)),
                     "size": .number(Double(arm64.count)), "platform": ["os": "unknown", "architecture": "unknown"]],
                    ["mediaType": .string(MediaType.ociManifest), "digest": .string(Digest.sha256(amd64)),
                     "size": .number(Double(amd64.count)), "platform": ["os": "linux", "architecture": "amd64"]],
                ],
            ])
            _ = try await registry.putManifest("cyclone/base", "multi", Array(index.jsonText.utf8), mediaType: MediaType.ociIndex)
            let model = try TestModels.regression()
            let pushed = try await ImageAppend(
                base: try ImageReference("\(local.host)/cyclone/base:multi"), target: try ImageReference("\(local.host)/cyclone/base:m"),
                baseRegistry: registry, targetRegistry: registry
            ).push(model: model, bytes: Array(try model.encoded()))
            let manifest = try await registry.manifest("cyclone/base", try #require(pushed.image.digest))
            #expect(manifest.mediaType == MediaType.ociManifest)
            let layers = try JSONParser.parse(manifest.bytes)["layers"].array
            #expect(layers.count == 2)
            // The amd64 base's layer, not the arm64 one's.
            let (amd64Layer, arm64Layer) = (try JSONParser.parse(amd64)["layers"].array.first,
                                            try JSONParser.parse(arm64)["layers"].array.first)
            #expect(layers.first == amd64Layer && layers.first != arm64Layer)
            await local.stop()
        } catch {
            await local.stop()
            throw error
        }
    }

    @Test(arguments: [
        ("predict:v1", "names no registry host"),
        ("europe-west1-docker.pkg.dev/p/r/Predict:v1", "repository name that is not lowercase"),
        ("europe-west1-docker.pkg.dev/p/r/predict@sha256:abc", "digest that is not sha256: and 64 lowercase hex"),
    ])
    func badReferencesSayWhat(_ text: String, _ expected: String) {
        #expect { try ImageReference(text) } throws: { "\($0)".contains(expected) }
    }

    @Test func referencesParse() throws {
        let reference = try ImageReference("europe-west1-docker.pkg.dev/project/cyclone/predict:v3")
        #expect(reference.registry == "europe-west1-docker.pkg.dev")
        #expect(reference.repository == "project/cyclone/predict" && reference.tag == "v3")
        let local = try ImageReference("127.0.0.1:5000/cyclone/predict")
        #expect(local.registry == "127.0.0.1:5000" && local.repository == "cyclone/predict" && local.reference == "latest")
    }
}

/// Artifact Registry's way: a Bearer challenge answered at the realm with Basic `oauth2accesstoken` and a
/// Google token from the metadata server, a refused mount continued as an upload in the session it opened,
/// and relative upload Locations that carry a query already.
@Suite struct RegistryAuthTests {
    @Test func aChallengedPushWithARefusedMount() async throws {
        let auth = FakeGoogleAuth(publicKey: FakeGoogleAuth.testKey.publicKey)
        try await auth.application().test(.live) { authClient in
            let credentials = GoogleCredentials(source: MetadataServer(host: "127.0.0.1:\(try #require(authClient.port))"))
            let fake = FakeRegistry(googleToken: "ya29.fake-1")
            let port = Mutex(0)
            try await fake.application(port: { port.withLock { $0 } }).test(.live) { client in
                let registryPort = try #require(client.port)
                port.withLock { $0 = registryPort }
                let host = "127.0.0.1:\(registryPort)"
                let registry = Registry(host: host, insecure: true, credentials: credentials)
                _ = try await LocalRegistry.pushBase(registry, repository: "project/cyclone/serve", tag: "base", oci: false)
                let model = try TestModels.regression()
                let pushed = try await ImageAppend(
                    base: try ImageReference("\(host)/project/cyclone/serve:base"),
                    target: try ImageReference("\(host)/project/cyclone/predict:bikes-7"),
                    baseRegistry: registry, targetRegistry: registry
                ).push(model: model, bytes: Array(try model.encoded()))
                #expect(pushed.mounted.isEmpty && pushed.uploaded.count == 3, "the refused mount became an upload: \(pushed)")
                let stored = try await registry.manifest("project/cyclone/predict", "bikes-7")
                #expect("\(host)/project/cyclone/predict@\(stored.digest)" == pushed.image.description)
                #expect(stored.mediaType == MediaType.dockerManifest)
                let grants = fake.state.withLock { $0.grants }
                #expect(grants.contains(["repository:project/cyclone/predict:pull,push", "repository:project/cyclone/serve:pull"]),
                        "\(grants)")
                #expect(fake.state.withLock { $0.challenged } > 0)
                #expect(await credentials.fetches == 1, "one Google token for every exchange")
            }
        }
    }
}
