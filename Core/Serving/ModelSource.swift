import CycloneModel
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Where a model set's models come from, and how their files are read: one model's own paths (`MODEL_PATH`,
/// `CANARY_MODEL_PATH`, `SHADOW_MODEL_PATH`), or a `ModelFolder` of many (`MODEL_DIR`). A file that does not
/// load, holds another model, or (for a shadow) does not fit live's schema is logged and not served.
public struct ModelSource: Sendable {
    public enum Location: Sendable {
        /// One model, `name`, from its own files (a canary's or shadow's path only when given).
        case files(name: String, live: String, canary: String?, shadow: String?)
        /// Every model of a folder.
        case folder(ModelFolder)
    }

    public let location: Location
    let strictCategories: Bool
    let logger: Logger

    public init(_ location: Location, strictCategories: Bool, logger: Logger) {
        self.location = location
        self.strictCategories = strictCategories
        self.logger = logger
    }

    /// The model names this source can serve now, sorted; `nil` when its folder cannot be read.
    public func names() -> [String]? {
        switch location {
        case .files(let name, _, _, _): [name]
        case .folder(let folder): try? folder.names()
        }
    }

    /// What identifies the list of names now: the folder's identity, which any entry added, removed or renamed
    /// changes (`nil` for a model given by its paths, whose name never changes).
    var listIdentity: [Int]? {
        guard case .folder(let folder) = location else { return nil }
        return Self.identity(of: folder.path)
    }

    /// Whether the folder holds `name` as a model (not a version file of the layout before `versions/`).
    func holds(_ name: String) -> Bool {
        guard case .folder(let folder) = location else { return true }
        return !folder.isOldVersionFile(name)
    }

    /// The file `name` serves from in `slot`, or `nil` when the source has none for it.
    public func path(of name: String, _ slot: ModelFolder.Slot) -> String? {
        switch location {
        case .files(let served, let live, let canary, let shadow):
            guard name == served else { return nil }
            return switch slot {
            case .live: live
            case .canary: canary
            case .shadow: shadow
            }
        case .folder(let folder):
            return ModelFolder.nameProblem(name) == nil ? folder.file(of: name, slot) : nil
        }
    }

    /// What identifies the file behind `path` now (symlinks followed): it changes when a new file is renamed
    /// over the path, a link re-pointed, or the file written or its permissions changed; `nil` when there is none.
    public static func identity(of path: String) -> [Int]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [Int(info.st_dev), Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec),
                Int(info.st_ctim.tv_sec), Int(info.st_ctim.tv_nsec)]
    }

    /// The live version of `name` from its file, which must hold that model.
    func live(_ name: String, from path: String) throws -> ServedModel {
        let model = try ServedModel.load(path: path, strictCategories: strictCategories)
        guard model.artifact.name == name else {
            throw ModelSourceError("\(path) holds model '\(model.artifact.name)', not '\(name)'")
        }
        return model
    }

    /// The canary or shadow (`slot`) of `live` from `path`, or `nil`, said in the log, when its file does not
    /// load, holds another model or the live version, or (a shadow) takes other instances than live.
    func challenger(_ slot: ModelFolder.Slot, from path: String, live: ServedModel, current: ServedModel?) -> ServedModel? {
        let role = slot.rawValue
        let challenger: ServedModel
        do {
            challenger = try ServedModel.load(path: path, strictCategories: strictCategories)
        } catch {
            logger.error("the \(role) model file does not load; the \(role) ends; live serves alone", metadata: [
                "path": "\(path)", "error": "\(String(reflecting: error))", "model": "\(live.artifact.name)",
                "version": "\(live.artifact.version)"])
            return nil
        }
        guard challenger.artifact.name == live.artifact.name else {
            logger.error("the \(role) model file holds another model; the \(role) ends; live serves alone", metadata: [
                "path": "\(path)", "found": "\(challenger.artifact.name)", "model": "\(live.artifact.name)"])
            return nil
        }
        // A file that is the live model ends the canary or shadow: traffic must not keep going to, nor labels be
        // paired with, a version the evaluator is no longer judging.
        guard challenger.artifact.version != live.artifact.version else {
            if current != nil {
                logger.notice("the \(role) is the live version now; it ends", metadata: [
                    "path": "\(path)", "version": "\(challenger.artifact.version)"])
            } else {
                logger.warning("the \(role) model file holds the live version; nothing to compare it with", metadata: [
                    "path": "\(path)", "version": "\(challenger.artifact.version)"])
            }
            return nil
        }
        // A shadow is scored on the live model's requests: it must take the same instances.
        if slot == .shadow, let problem = live.challengeProblem(challenger.artifact) {
            logger.error("the shadow model is refused; live keeps serving alone", metadata: [
                "path": "\(path)", "version": "\(challenger.artifact.version)", "problem": "\(problem)"])
            return nil
        }
        return challenger
    }
}

/// A model file that cannot serve the name asked for.
public struct ModelSourceError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
