import CycloneModel
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The platform of a single machine. With a retrain command it starts that command as a child process (the
/// `retrain` executable, say) with the request in its environment; without one it only acknowledges the
/// request, which the evaluator has already written to the event trail.
///
/// Models live in a `ModelFolder`, one file per version (`versions/NAME-VERSION.json`), with `NAME.json` a
/// symlink to the one in service: predict serves the folder (`MODEL_DIR`, or one model's link as
/// `MODEL_PATH`) and swaps when the link is re-pointed. During a canary `NAME.canary.json` points to the
/// canary, which predict serves to `CANARY_PERCENT` of the requests; during a shadow evaluation
/// `NAME.shadow.json` points to the challenger, which predict scores beside the live version. A deploy of
/// one model touches its own entries only.
public struct LocalPlatform: Platform {
    /// The executable and its arguments, or `nil` to record requests only.
    public var retrainCommand: [String]?
    /// The model folder, or `nil` to record deployments only.
    public var modelDirectory: String?

    public init(retrainCommand: [String]? = nil, modelDirectory: String? = nil) {
        self.retrainCommand = retrainCommand
        self.modelDirectory = modelDirectory
    }

    public var deploys: Bool { modelDirectory != nil }

    /// The link predict serves for model `name`.
    public static func servingPath(name: String, in directory: String) -> String { path(name: name, .live, in: directory) }

    /// The link predict serves model `name` from in `role`: `NAME.json`, `NAME.canary.json`, `NAME.shadow.json`.
    public static func path(name: String, _ role: Role, in directory: String) -> String {
        ModelFolder(directory).file(of: name, ModelFolder.Slot(role))
    }

    /// Writes the version's file (once; a version never changes) and points the model's link for `role` to it
    /// in one rename, so a reader sees the old file or the new one, never neither. A new live version ends any
    /// canary or shadow of another version (the registry supersedes them).
    public func deploy(_ model: ModelArtifact, as role: Role, beside live: ModelArtifact? = nil) async throws -> Deployment? {
        guard let directory = modelDirectory else { return nil }
        if let problem = ModelFolder.nameProblem(model.name) { throw CocoaError(.fileWriteInvalidFileName, userInfo: [
            NSFilePathErrorKey: directory, NSLocalizedDescriptionKey: problem]) }
        try FileManager.default.createDirectory(atPath: "\(directory)/\(ModelFolder.versions)",
                                                withIntermediateDirectories: true)
        let file = Self.fileName(model)
        let path = "\(directory)/\(file)"
        let bytes = try model.encoded()
        if let existing = FileManager.default.contents(atPath: path) {
            // A version never changes: the same model may be there already, another one may not. The same model,
            // not the same bytes: a challenger promoted comes back from the registry's jsonb, which keeps every
            // number but not a zero's sign (a tree's threshold of -0 comes back as 0, as equal as it compares).
            guard existing == bytes || (try? ModelArtifact.decode(existing)) == model else {
                throw CocoaError(.fileWriteFileExists, userInfo: [
                    NSFilePathErrorKey: path,
                    NSLocalizedDescriptionKey: "\(path) holds another model under the same version"])
            }
        } else {
            let partial = path + ".partial-\(getpid())"
            try bytes.write(to: URL(fileURLWithPath: partial))
            try Self.rename(partial, to: path)
        }
        let link = Self.path(name: model.name, role, in: directory)
        try Self.point(link, to: file)
        if role == .live {
            for challenger in [Role.canary, .shadow] {
                let other = Self.path(name: model.name, challenger, in: directory)
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: other), !Self.isLink(target, to: model) {
                    try FileManager.default.removeItem(atPath: other)
                }
            }
        }
        return Deployment(location: path, detail: "\(link) now points to \(file)")
    }

    public func promote(_ model: ModelArtifact, from role: Role) async throws -> Deployment? {
        guard let directory = modelDirectory else { return nil }
        // Live first, then the challenger's link goes: predict never loses the version meanwhile.
        let deployment = try await deploy(model, as: .live)
        try Self.removeLink(of: model, role, in: directory)
        return deployment
    }

    public func rollback(_ model: ModelArtifact, from role: Role) async throws -> Deployment? {
        guard let directory = modelDirectory else { return nil }
        let link = Self.path(name: model.name, role, in: directory)
        try Self.removeLink(of: model, role, in: directory)
        return Deployment(location: link, detail: "\(link) removed; the live version serves alone")
    }

    private static func fileName(_ model: ModelArtifact) -> String {
        ModelFolder.versionFile(name: model.name, version: model.version)
    }

    /// Whether a link's `target` is `model`'s file (in `versions/`, or beside the link as before it existed).
    private static func isLink(_ target: String, to model: ModelArtifact) -> Bool {
        target.split(separator: "/").last.map(String.init) == "\(model.name)-\(model.version).json"
    }

    /// Removes the canary or shadow link if it still points to `model` (a newer challenger keeps its own).
    private static func removeLink(of model: ModelArtifact, _ role: Role, in directory: String) throws {
        guard role != .live else { return }
        let link = path(name: model.name, role, in: directory)
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link), isLink(target, to: model) {
            try FileManager.default.removeItem(atPath: link)
        }
    }

    private static func point(_ link: String, to file: String) throws {
        let next = link + ".next-\(getpid())"
        try? FileManager.default.removeItem(atPath: next)
        try FileManager.default.createSymbolicLink(atPath: next, withDestinationPath: file)
        try rename(next, to: link)
    }

    private static func rename(_ from: String, to: String) throws {
        guard Glibc.rename(from, to) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: to,
                                                           NSLocalizedDescriptionKey: String(cString: strerror(errno))])
        }
    }

    public func startRetrain(_ request: RetrainRequest) async throws -> RetrainExecution {
        guard let command = retrainCommand, let executable = command.first else {
            return RetrainExecution(id: "recorded-\(request.eventID)",
                                    detail: "recorded; no retrain command is configured (RETRAIN_COMMAND)")
        }
        var environment = ProcessInfo.processInfo.environment
        for (name, value) in request.environment { environment[name] = value }
        // Its output is ours; it reports its outcome to the event trail, and its exit status tells of a crash
        // that could not (the caller waits for it, which reaps it).
        let process = try ChildProcess(executable, arguments: Array(command.dropFirst()), environment: environment,
                                       stdout: nil)
        return RetrainExecution(id: "pid-\(process.pid)",
                                detail: "started \(executable) as process \(process.pid)",
                                exitStatus: { await process.wait() })
    }
}

extension ModelFolder.Slot {
    init(_ role: Role) {
        switch role {
        case .live: self = .live
        case .canary: self = .canary
        case .shadow: self = .shadow
        }
    }
}
