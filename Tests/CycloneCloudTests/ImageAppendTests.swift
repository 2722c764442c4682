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
    /// A registry of its own in a temporary folder, on a free loopback port.
    final class LocalRegistry: Sendable {
        let process: ChildProcess
        let host: String
        let folder: String

        init() async throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("registry-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            host = "127.0.0.1:\(freePort())"
            try """
                version: 0.1
                log:
                  level: error
                storage:
                  filesystem:
                    rootdirectory: \(folder)/data
                http:
                  addr: \(host)
                """.write(toFile: "\(folder)/config.yml", atomically: true, encoding: .utf8)
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/docker-registry") else {
                throw TestDatabaseError(description: "docker-registry is not installed: run scripts/setup as root (apt-get install docker-registry skopeo)")
            }
            process = try ChildProcess("/usr/bin/docker-registry", arguments: ["serve", "\(folder)/config.yml"],
                                       environment: [:], stdout: "\(folder)/registry.log")
            for _ in 0..<100 {
                if (try? await Repository.run("/usr/bin/curl", ["-sf", "http://\(host)/v2/"])) != nil { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw TestDatabaseError(description: "docker-registry did not start: \(process.log)")
        }

        func stop() async {
            process.signal(SIGTERM)
            _ = await process.wait()
            try? FileManager.default.removeItem(atPath: folder)
        }
    }

    /// A small base image: one layer with an executable, a config with an entrypoint, env and a label.
    static func pushBase(_ registry: Registry, repository: String, tag: String, oci: Bool,
                         architecture: String = "amd64") async throws -> [UInt8] {
        let tar = try await Self.tarball(["app/serve": "#!/bin/sh\necho serving on \(architecture)\n"])
        let layer = try await Self.gzip(tar)
        try await registry.upload(repository, layer, digest: Digest.sha256(layer))
        let config = JSONValue.object([
            "architecture": .string(architecture), "os": "linux",
            "config": ["Entrypoint": ["/app/serve"], "Env": ["PATH=/usr/bin:/bin", "PORT=8080"],
                       "Labels": ["org.opencontainers.image.title": "cyclone predict"]],
            "rootfs": ["type": "layers", "diff_ids": [.string(Digest.sha256(tar))]],
            "history": [["created_by": "base layer"]],
        ])
        let configBytes = Array(config.jsonText.utf8)
        try await registry.upload(repository, configBytes, digest: Digest.sha256(configBytes))
        let manifest = JSONValue.object([
            "schemaVersion": 2, "mediaType": .string(oci ? MediaType.ociManifest : MediaType.dockerManifest),
            "config": ["mediaType": .string(oci ? MediaType.ociConfig : MediaType.dockerConfig),
                       "digest": .string(Digest.sha256(configBytes)), "size": .number(Double(configBytes.count))],
            "layers": [["mediaType": .string(oci ? MediaType.ociLayerGzip : MediaType.dockerLayerGzip),
                        "digest": .string(Digest.sha256(layer)), "size": .number(Double(layer.count))]],
        ])
        let bytes = Array(manifest.jsonText.utf8)
        _ = try await registry.putManifest(repository, tag, bytes, mediaType: oci ? MediaType.ociManifest : MediaType.dockerManifest)
        return bytes
    }

    @Test(arguments: [true, false])
    func appendKeepsTheBaseAndAddsTheModel(oci: Bool) async throws {
        let local = try await LocalRegistry()
        do {
            let registry = Registry(host: local.host, insecure: true)
            _ = try await Self.pushBase(registry, repository: "cyclone/base", tag: "v1", oci: oci)
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
            let amd64 = try await Self.pushBase(registry, repository: "cyclone/base", tag: "amd64", oci: true)
            let arm64 = try await Self.pushBase(registry, repository: "cyclone/base", tag: "arm64", oci: true,
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

    static func tarball(_ files: [String: String]) async throws -> [UInt8] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tar-\(UUID().uuidString)").path
        for (path, text) in files {
            let url = URL(fileURLWithPath: "\(folder)/root/\(path)")
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        }
        try await Repository.run("/usr/bin/tar", ["--numeric-owner", "--owner=0", "--group=0", "--mtime=@0", "-cf",
                                                  "\(folder)/layer.tar", "-C", "\(folder)/root", "."])
        return Array(try Data(contentsOf: URL(fileURLWithPath: "\(folder)/layer.tar")))
    }

    static func gzip(_ bytes: [UInt8]) async throws -> [UInt8] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("gz-\(UUID().uuidString)").path
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        try await Repository.run("/usr/bin/gzip", ["-n", file])
        return Array(try Data(contentsOf: URL(fileURLWithPath: file + ".gz")))
    }
}

/// Artifact Registry's way: a Bearer challenge answered at the realm with Basic `oauth2accesstoken` and a
/// Google token from the metadata server, a refused mount continued as an upload in the session it opened,
/// and relative upload Locations that carry a query already.
@Suite struct RegistryAuthTests {
    @Test func aChallengedPushWithARefusedMount() async throws {
        let auth = FakeGoogleAuth(publicKey: GoogleAuthTests.key.publicKey)
        try await auth.application().test(.live) { authClient in
            let credentials = GoogleCredentials(source: MetadataServer(host: "127.0.0.1:\(try #require(authClient.port))"))
            let fake = FakeRegistry(googleToken: "ya29.fake-1")
            let port = Mutex(0)
            try await fake.application(port: { port.withLock { $0 } }).test(.live) { client in
                let registryPort = try #require(client.port)
                port.withLock { $0 = registryPort }
                let host = "127.0.0.1:\(registryPort)"
                let registry = Registry(host: host, insecure: true, credentials: credentials)
                _ = try await ImageAppendTests.pushBase(registry, repository: "project/cyclone/serve", tag: "base", oci: false)
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
