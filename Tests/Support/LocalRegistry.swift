import CycloneCloud
import CycloneModel
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Debian's docker-registry on a free loopback port, with its storage in a temporary folder (scripts/setup
/// installs it, and skopeo to read images back the way container runtimes do).
public final class LocalRegistry: Sendable {
    public let process: ChildProcess
    /// `127.0.0.1:PORT`.
    public let host: String
    public let folder: String

    public init() async throws {
        folder = TestFiles.folder.appendingPathComponent("registry-\(UUID().uuidString)").path
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

    public func stop() async {
        process.signal(SIGTERM)
        _ = await process.wait()
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// A small base image: one layer with an executable, a config with an entrypoint, env and a label.
    public static func pushBase(_ registry: Registry, repository: String, tag: String, oci: Bool,
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

    /// A tar of `files` (path → text, executable), as GNU tar writes it for an image layer.
    static func tarball(_ files: [String: String]) async throws -> [UInt8] {
        let folder = TestFiles.folder.appendingPathComponent("tar-\(UUID().uuidString)").path
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
        let file = TestFiles.folder.appendingPathComponent("gz-\(UUID().uuidString)").path
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        try await Repository.run("/usr/bin/gzip", ["-n", file])
        return Array(try Data(contentsOf: URL(fileURLWithPath: file + ".gz")))
    }
}
