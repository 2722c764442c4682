import CompressNIO
import CycloneModel
import Foundation
import NIOCore

/// Builds and pushes a serving image without Docker: the base image (the serve image, with `predict` in it)
/// plus one layer holding the model artifact at the path the image serves from (`MODEL_PATH`), its config
/// saying which model it is. What `crane append` or ko do (gcp-contracts.md §3.6). The same artifact on the
/// same base gives the same image digest.
public struct ImageAppend: Sendable {
    public var base: ImageReference
    public var target: ImageReference
    public var baseRegistry: Registry
    public var targetRegistry: Registry
    /// `live`: the model is the one the image serves (`MODEL_PATH`); `shadow`: it rides beside the base's
    /// model as its shadow (`SHADOW_MODEL_PATH`, `shadow.json` next to `MODEL_PATH`), the base being a model
    /// image.
    public var role: Role

    /// Where the model goes when the base image sets no `MODEL_PATH`.
    public static let defaultModelPath = "/srv/model/model.json"

    public init(base: ImageReference, target: ImageReference, baseRegistry: Registry, targetRegistry: Registry,
                role: Role = .live)
    {
        precondition(role != .canary, "a canary is an image of its own, served as live")
        self.base = base
        self.target = target
        self.baseRegistry = baseRegistry
        self.targetRegistry = targetRegistry
        self.role = role
    }

    /// What a push did.
    public struct Pushed: Sendable, Equatable {
        /// The new image, by digest.
        public var image: ImageReference
        public var modelPath: String
        /// Blob digests uploaded, mounted from the base repository, and found already there.
        public var uploaded: [String] = []
        public var mounted: [String] = []
        public var present: [String] = []
    }

    public func push(model: ModelArtifact, bytes: [UInt8]) async throws -> Pushed {
        let (manifest, manifestObject) = try await resolvedBaseManifest()
        let oci = manifest.mediaType == MediaType.ociManifest
        guard let configDigest = manifestObject["config"]["digest"].string else {
            throw CloudError("the base image \(base) has a manifest without a config")
        }
        let baseConfig = try JSONParser.parse(try await baseRegistry.blob(base.repository, configDigest))
        guard case .object(var config) = baseConfig, case .object(var runtime) = config["config"] ?? .object([:]) else {
            throw CloudError("the base image \(base) has a config that is not a JSON object")
        }

        // The layer: the artifact at MODEL_PATH (a shadow's next to it), as a reproducible tar (fixed times,
        // root-owned), gzipped.
        var environment = runtime["Env"]?.array.compactMap(\.string) ?? []
        let servedPath = environment.first { $0.hasPrefix("MODEL_PATH=") }.map { String($0.dropFirst(11)) }
            ?? Self.defaultModelPath
        let modelPath = role == .shadow
            ? String(servedPath[..<(servedPath.lastIndex(of: "/") ?? servedPath.startIndex)]) + "/shadow.json"
            : servedPath
        let tar = try Tar.archive(file: modelPath, contents: bytes)
        let layer = try Self.gzip(tar)
        let layerDigest = Digest.sha256(layer)

        // The config: the layer's diff_id and history, and which model this image serves (or shadows).
        let settings = role == .shadow
            ? ["SHADOW_MODEL_PATH": modelPath, "SHADOW_MODEL_VERSION": model.version]
            : ["MODEL_PATH": modelPath, "MODEL_NAME": model.name, "MODEL_VERSION": model.version]
        environment.removeAll { entry in settings.keys.contains { entry.hasPrefix("\($0)=") } }
        environment += settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        runtime["Env"] = .array(environment.map(JSONValue.string))
        var labels = runtime["Labels"]?.object ?? [:]
        if role == .shadow {
            labels["dev.cyclone.shadow.version"] = .string(model.version)
        } else {
            labels["dev.cyclone.model.name"] = .string(model.name)
            labels["dev.cyclone.model.version"] = .string(model.version)
            labels["dev.cyclone.model.parent"] = .string(model.training?.parentVersion ?? "")
        }
        runtime["Labels"] = .object(labels)
        config["config"] = .object(runtime)
        guard case .object(var rootfs) = config["rootfs"] ?? .null, case .array(let diffIDs) = rootfs["diff_ids"] ?? .null else {
            throw CloudError("the base image \(base) has a config without rootfs.diff_ids")
        }
        rootfs["diff_ids"] = .array(diffIDs + [.string(Digest.sha256(tar))])
        config["rootfs"] = .object(rootfs)
        let created = (model.training?.trainedAt ?? Date(timeIntervalSince1970: 0)).formatted(.iso8601)
        config["created"] = .string(created)
        config["history"] = .array((config["history"]?.array ?? []) + [.object([
            "created": .string(created), "created_by": "cyclone image append",
            "comment": .string("\(role == .shadow ? "shadow " : "")model \(model.name)@\(model.version) at \(modelPath)"),
        ])])
        let configBytes = Array(JSONValue.object(config).jsonText.utf8)
        let newConfigDigest = Digest.sha256(configBytes)

        // The manifest: the base's layers, then ours, in the base's media-type family.
        guard case .object(var newManifest) = manifestObject, case .array(let layers) = newManifest["layers"] ?? .null else {
            throw CloudError("the base image \(base) has a manifest without layers")
        }
        newManifest["config"] = .object([
            "mediaType": .string(oci ? MediaType.ociConfig : MediaType.dockerConfig),
            "digest": .string(newConfigDigest), "size": .number(Double(configBytes.count)),
        ])
        newManifest["layers"] = .array(layers + [.object([
            "mediaType": .string(oci ? MediaType.ociLayerGzip : MediaType.dockerLayerGzip),
            "digest": .string(layerDigest), "size": .number(Double(layer.count)),
        ])])
        let manifestBytes = Array(JSONValue.object(newManifest).jsonText.utf8)

        // Push: blobs the target lacks (mounted from the base repository where the registry allows), then the
        // manifest under the tag.
        var pushed = Pushed(image: target, modelPath: modelPath)
        let sameRegistry = base.registry == target.registry
        for layerDescriptor in layers {
            guard let digest = layerDescriptor["digest"].string else { continue }
            if try await targetRegistry.hasBlob(target.repository, digest) {
                pushed.present.append(digest)
                continue
            }
            var session: String?
            if sameRegistry, base.repository != target.repository {
                session = try await targetRegistry.mount(target.repository, digest, from: base.repository)
                if session == nil {
                    pushed.mounted.append(digest)
                    continue
                }
            }
            let bytes = try await baseRegistry.blob(base.repository, digest)
            try await targetRegistry.upload(target.repository, bytes, digest: digest, session: session)
            pushed.uploaded.append(digest)
        }
        for (digest, bytes) in [(layerDigest, layer), (newConfigDigest, configBytes)] {
            if try await targetRegistry.hasBlob(target.repository, digest) {
                pushed.present.append(digest)
            } else {
                try await targetRegistry.upload(target.repository, bytes, digest: digest)
                pushed.uploaded.append(digest)
            }
        }
        let digest = try await targetRegistry.putManifest(target.repository, target.tag ?? model.version, manifestBytes,
                                                          mediaType: manifest.mediaType)
        pushed.image = target.pinned(to: digest)
        return pushed
    }

    /// The base's image manifest; an index or list resolves to its linux/amd64 entry (Cloud Run runs amd64).
    private func resolvedBaseManifest() async throws -> (Registry.Manifest, JSONValue) {
        var manifest = try await baseRegistry.manifest(base.repository, base.reference)
        var object = try JSONParser.parse(manifest.bytes)
        if [MediaType.ociIndex, MediaType.dockerManifestList].contains(manifest.mediaType) {
            guard let entry = object["manifests"].array.first(where: {
                $0["platform"]["os"].string == "linux" && $0["platform"]["architecture"].string == "amd64"
            }), let digest = entry["digest"].string else {
                throw CloudError("the base image \(base) is an index without a linux/amd64 image")
            }
            manifest = try await baseRegistry.manifest(base.repository, digest)
            object = try JSONParser.parse(manifest.bytes)
        }
        guard [MediaType.ociManifest, MediaType.dockerManifest].contains(manifest.mediaType) else {
            throw CloudError("the base image \(base) has a manifest of type \(manifest.mediaType), not an OCI or Docker v2 image manifest")
        }
        return (manifest, object)
    }

    /// gzip with zlib's header (no name, time 0) and its OS byte fixed to Unix, so the same bytes give the
    /// same layer digest wherever zlib runs (the same zlib; a different deflate could pick other bytes).
    static func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        var buffer = ByteBuffer(bytes: bytes)
        var compressed = Array(try buffer.compress(with: .gzip()).readableBytesView)
        if compressed.count > 9 { compressed[9] = 3 }
        return compressed
    }
}

/// A POSIX ustar archive of one file and its parent folders: root-owned, time 0, 0755 folders, 0644 file.
enum Tar {
    static func archive(file path: String, contents: [UInt8]) throws -> [UInt8] {
        let parts = path.split(separator: "/").map(String.init)
        guard path.hasPrefix("/"), !parts.isEmpty, !parts.contains(".."), !parts.contains(".") else {
            throw CloudError("MODEL_PATH '\(path)' is not an absolute file path")
        }
        guard contents.count < 8 << 30 else { throw CloudError("a model of \(contents.count) bytes is too big for a tar entry") }
        var archive: [UInt8] = []
        for depth in 1..<parts.count {
            try archive += header(name: parts[..<depth].joined(separator: "/") + "/", size: 0, mode: 0o755, type: "5")
        }
        try archive += header(name: parts.joined(separator: "/"), size: contents.count, mode: 0o644, type: "0")
        archive += contents
        archive += [UInt8](repeating: 0, count: (512 - contents.count % 512) % 512)
        archive += [UInt8](repeating: 0, count: 1024)
        return archive
    }

    private static func header(name: String, size: Int, mode: Int, type: Character) throws -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (i, byte) in text.utf8.prefix(width).enumerated() { block[offset + i] = byte }
        }
        func octal(_ value: Int, at offset: Int, width: Int) {
            put(String(String(value, radix: 8).suffix(width - 1)).leftPadded(to: width - 1), at: offset, width: width - 1)
        }
        var name = name, prefix = ""
        if name.utf8.count > 100 {
            // ustar splits a long path at a '/' into a prefix (155 bytes) and a name (100).
            guard let cut = name.indices.filter({ name[$0] == "/" }).last(where: {
                name[..<$0].utf8.count <= 155 && name[name.index(after: $0)...].utf8.count <= 100
            }) else { throw CloudError("the path '\(name)' is too long for a tar header") }
            prefix = String(name[..<cut])
            name = String(name[name.index(after: cut)...])
        }
        put(name, at: 0, width: 100)
        octal(mode, at: 100, width: 8)
        octal(0, at: 108, width: 8)
        octal(0, at: 116, width: 8)
        octal(size, at: 124, width: 12)
        octal(0, at: 136, width: 12)
        put(String(type), at: 156, width: 1)
        put("ustar\0", at: 257, width: 6)
        put("00", at: 263, width: 2)
        put("root", at: 265, width: 32)
        put("root", at: 297, width: 32)
        put(prefix, at: 345, width: 155)
        // The checksum counts its own field as spaces.
        for i in 148..<156 { block[i] = 0x20 }
        let sum = block.reduce(0) { $0 + Int($1) }
        put(String(String(sum, radix: 8)).leftPadded(to: 6) + "\0 ", at: 148, width: 8)
        return block
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
