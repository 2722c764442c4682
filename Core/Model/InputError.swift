/// Why an instance could not be scored. Every case carries `path`, a pointer into the request body such as
/// `instances[2].age`.
public enum InputError: Error, Equatable, CustomStringConvertible, Sendable {
    case notAnObject(found: String, path: String)
    case missingFeature(String, path: String)
    case unknownFeature(String, expected: [String], path: String)
    case wrongType(String, expected: Feature.Kind, found: String, path: String)
    case nonFinite(String, path: String)
    case unknownCategory(String, value: String, allowed: [String], path: String)
    /// A required feature given as `null`.
    case nullFeature(String, path: String)
    /// A string PostgreSQL cannot store (it holds the NUL character).
    case nulCharacter(String, path: String)

    public var path: String {
        switch self {
        case .notAnObject(_, let path), .missingFeature(_, let path), .unknownFeature(_, _, let path),
            .wrongType(_, _, _, let path), .nonFinite(_, let path), .unknownCategory(_, _, _, let path),
            .nulCharacter(_, let path), .nullFeature(_, let path):
            path
        }
    }

    public var description: String {
        switch self {
        case .notAnObject(let found, let path):
            "\(path): an instance must be a JSON object of feature values, found \(found)"
        case .missingFeature(let name, let path):
            "\(path): required feature '\(name)' is missing"
        case .unknownFeature(let name, let expected, let path):
            "\(path): '\(name)' is not a feature of this model (features: \(expected.joined(separator: ", ")))"
        case .wrongType(let name, let expected, let found, let path):
            "\(path): feature '\(name)' must be \(expected.article), found \(found)"
        case .nonFinite(let name, let path):
            "\(path): feature '\(name)' must be a finite number of magnitude at most \(Storable.largestMagnitudeText)"
        case .unknownCategory(let name, let value, let allowed, let path):
            "\(path): '\(value)' is not a known category of '\(name)' (expected one of \(allowed.joined(separator: ", ")))"
        case .nullFeature(let name, let path):
            "\(path): required feature '\(name)' is null; it needs a value"
        case .nulCharacter(let name, let path):
            "\(path): feature '\(name)' holds the NUL character (\\u0000), which cannot be stored"
        }
    }
}

extension Feature.Kind {
    fileprivate var article: String {
        switch self {
        case .numeric: "a number"
        case .categorical: "a string (one of its categories)"
        case .boolean: "true or false"
        }
    }
}
