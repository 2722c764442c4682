import Foundation

/// A JSON value as it arrives in a request body or is stored in a `jsonb` column.
///
/// Numbers are `Double` (JSON has one number type); integers above 2^53 lose precision, as in JavaScript.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The JSON type name used in error messages: `null`, `boolean`, `number`, `string`, `array`, `object`.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let depth = decoder.codingPath.count
        /// Decodes as `T`, or `nil` when the value here is of another type. Errors from inside (a number too
        /// large for a Double, a bad value deeper in an object) propagate with their path.
        func attempt<T: Decodable>(_ type: T.Type) throws -> T? {
            do {
                return try container.decode(T.self)
            } catch DecodingError.typeMismatch(_, let context) where context.codingPath.count == depth {
                return nil
            }
        }
        // Most feature values are numbers: try the common cases first so the failed attempts stay rare.
        if container.decodeNil() {
            self = .null
        } else if let number = try attempt(Double.self) {
            self = .number(number)
        } else if let string = try attempt(String.self) {
            self = .string(string)
        } else if let bool = try attempt(Bool.self) {
            self = .bool(bool)
        } else if let object = try attempt([String: JSONValue].self) {
            self = .object(object)
        } else {
            self = .array(try container.decode([JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral, ExpressibleByDictionaryLiteral, ExpressibleByArrayLiteral
{
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue {
    /// The member `key` of an object, or `null` (for anything else, or when there is none).
    public subscript(key: String) -> JSONValue {
        if case .object(let members) = self { return members[key] ?? .null }
        return .null
    }

    public var string: String? { if case .string(let text) = self { text } else { nil } }
    public var number: Double? { if case .number(let value) = self { value } else { nil } }
    public var object: [String: JSONValue]? { if case .object(let members) = self { members } else { nil } }
    /// The elements of an array; empty for anything else.
    public var array: [JSONValue] { if case .array(let items) = self { items } else { [] } }
}
