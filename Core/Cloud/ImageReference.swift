/// A container image reference, `HOST[:PORT]/NAME[:TAG][@sha256:HEX]`, as Artifact Registry writes them
/// (`europe-west1-docker.pkg.dev/project/cyclone/predict:v3`).
public struct ImageReference: Sendable, Equatable, CustomStringConvertible {
    /// `host[:port]`.
    public var registry: String
    /// The repository within the registry (`project/cyclone/predict`).
    public var repository: String
    public var tag: String?
    public var digest: String?

    public init(registry: String, repository: String, tag: String? = nil, digest: String? = nil) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// Parses a reference; the registry host is required (a first component with a dot or a port, or
    /// `localhost`), as Cyclone never means Docker Hub by default.
    public init(_ text: String) throws(CloudError) {
        var rest = Substring(text)
        if let at = rest.firstIndex(of: "@") {
            let digest = String(rest[rest.index(after: at)...])
            guard digest.hasPrefix("sha256:"), digest.count == 71,
                  digest.dropFirst(7).allSatisfy({ $0.isHexDigit && !$0.isUppercase })
            else { throw CloudError("'\(text)' has a digest that is not sha256: and 64 lowercase hex digits") }
            self.digest = digest
            rest = rest[..<at]
        }
        guard let slash = rest.firstIndex(of: "/") else {
            throw CloudError("'\(text)' names no registry host (REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE:TAG)")
        }
        let host = rest[..<slash]
        guard host.contains(".") || host.contains(":") || host == "localhost" else {
            throw CloudError("'\(text)' names no registry host (REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE:TAG)")
        }
        registry = String(host)
        var name = rest[rest.index(after: slash)...]
        if let colon = name.lastIndex(of: ":"), !name[colon...].contains("/") {
            tag = String(name[name.index(after: colon)...])
            name = name[..<colon]
        }
        guard !name.isEmpty, name.allSatisfy({ $0.isLowercase || $0.isNumber || "._-/".contains($0) }) else {
            throw CloudError("'\(text)' has a repository name that is not lowercase letters, digits, '.', '_', '-' and '/'")
        }
        if let tag, tag.isEmpty || tag.count > 128 || !tag.allSatisfy({ $0.isLetter || $0.isNumber || "._-".contains($0) }) {
            throw CloudError("'\(text)' has a tag that is not 1 to 128 letters, digits, '.', '_' and '-'")
        }
        repository = String(name)
    }

    /// What the distribution API takes after `manifests/`: the digest, else the tag, else `latest`.
    public var reference: String { digest ?? tag ?? "latest" }

    public var description: String {
        "\(registry)/\(repository)" + (tag.map { ":\($0)" } ?? "") + (digest.map { "@\($0)" } ?? "")
    }

    /// Whether the registry is on this machine (`localhost`, `127.x.x.x`, `[::1]`), where plain HTTP is
    /// acceptable, as Docker treats it.
    public var isLoopback: Bool {
        let name = registry.hasPrefix("[") ? String(registry.dropFirst().prefix { $0 != "]" }) : String(registry.prefix { $0 != ":" })
        return name == "localhost" || name == "::1" || name.hasPrefix("127.")
    }

    /// The same image by digest, the form deployments use.
    public func pinned(to digest: String) -> ImageReference {
        ImageReference(registry: registry, repository: repository, digest: digest)
    }
}
