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
    /// and challengers' links left out). A folder the local platform laid out before `versions/` existed keeps
    /// its version files beside the links, as `NAME-VERSION.json`: a plain file so named next to a link
    /// `NAME.json` is such a version, not a model. Throws when the folder cannot be read.
    public func names() throws -> [String] {
        let stems = try FileManager.default.contentsOfDirectory(atPath: path).compactMap { entry -> String? in
            guard entry.hasSuffix(".json"), !entry.hasPrefix(".") else { return nil }
            let name = String(entry.dropLast(5))
            return Self.nameProblem(name) == nil ? name : nil
        }
        let isLink = { (name: String) in (try? FileManager.default.destinationOfSymbolicLink(atPath: file(of: name))) != nil }
        let links = Set(stems.filter(isLink))
        return stems.filter { stem in
            links.contains(stem) || !stem.indices.contains { stem[$0] == "-" && links.contains(String(stem[..<$0])) }
        }.sorted()
    }
}
