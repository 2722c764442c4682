import Foundation

/// A folder of models, as predict serves it (`MODEL_DIR`) and the local platform deploys into it. For each
/// model NAME:
/// - `NAME.json`: the live version (a file, or a link to one);
/// - `NAME.canary.json`, `NAME.shadow.json`: while a canary or a shadow runs, links to the challenger;
/// - `versions/NAME-VERSION.json`: each version's own file, which the links point to (the local platform's).
///
/// The models a folder holds are the names of its `NAME.json` entries; nothing else in it is read.
public struct ModelFolder: Sendable, Equatable {
    public let path: String

    public init(_ path: String) {
        self.path = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    /// Where a model's versions live, one file each, relative to the folder.
    public static let versions = "versions"

    /// How a version of a model serves from the folder.
    public enum Slot: String, Sendable, CaseIterable {
        case live, canary, shadow

        /// The file name's suffix: `.json`, `.canary.json`, `.shadow.json`.
        var suffix: String { self == .live ? ".json" : ".\(rawValue).json" }
    }

    /// The entry `name` serves from in `slot`.
    public func file(of name: String, _ slot: Slot = .live) -> String { "\(path)/\(name)\(slot.suffix)" }

    /// A version's own file, relative to the folder (what a slot's link points to).
    public static func versionFile(name: String, version: String) -> String { "\(versions)/\(name)-\(version).json" }

    /// Why `name` cannot be a model of a folder (its entries are named after it), or `nil`.
    public static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "a model name must not be empty" }
        if name.hasPrefix(".") || name.contains("/") || name.utf8.contains(0) {
            return "model name '\(name)' cannot name a file in a model folder (no '/', no leading '.')"
        }
        if Slot.allCases.dropFirst().contains(where: { name.hasSuffix(".\($0.rawValue)") }) {
            return "model name '\(name)' ends like a canary's or shadow's file"
        }
        return nil
    }

    /// The models the folder holds, sorted: the names of its `NAME.json` entries (files or links, hidden ones
    /// and challengers' links left out, and the version files of the layout before `versions/`). Throws when
    /// the folder cannot be read.
    public func names() throws -> [String] {
        let stems = try FileManager.default.contentsOfDirectory(atPath: path).compactMap { entry -> String? in
            guard entry.hasSuffix(".json"), !entry.hasPrefix(".") else { return nil }
            let name = String(entry.dropLast(5))
            return Self.nameProblem(name) == nil ? name : nil
        }
        let oldLayout = Set(stems.filter { isOldLayoutModel($0) })
        return stems.filter { stem in !isOldVersionFile(stem, among: oldLayout) }.sorted()
    }

    /// Whether `NAME.json` is a version file of the layout the local platform used before `versions/`: a plain
    /// file `MODEL-VERSION.json` beside a model `MODEL` whose links point to files beside them (as they did
    /// then; now they point into `versions/`).
    public func isOldVersionFile(_ name: String) -> Bool {
        isOldVersionFile(name, among: nil)
    }

    private func isOldVersionFile(_ name: String, among oldLayout: Set<String>?) -> Bool {
        guard (try? FileManager.default.destinationOfSymbolicLink(atPath: file(of: name))) == nil,
              FileManager.default.fileExists(atPath: file(of: name))
        else { return false }
        return name.indices.contains { index in
            guard name[index] == "-" else { return false }
            let model = String(name[..<index])
            return oldLayout.map { $0.contains(model) } ?? isOldLayoutModel(model)
        }
    }

    /// Whether a link of `model` (live, canary or shadow) points to a file beside it.
    private func isOldLayoutModel(_ model: String) -> Bool {
        Slot.allCases.contains { slot in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: file(of: model, slot))).map { !$0.contains("/") } ?? false
        }
    }
}
