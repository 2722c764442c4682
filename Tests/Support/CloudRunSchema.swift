import CycloneModel
import Foundation

/// The Cloud Run Admin API v2 as Google publishes it, and the check Google's JSON front end makes of a request
/// before Cloud Run sees it, so that `FakeCloudRun` refuses what Google refuses.
///
/// The schema is `Tests/Fixtures/cloudrun/run_v2_schema.json`, written by
/// `scripts/fixtures/cloudrun/run_v2_schema.py` from the Cloud SDK's generated clients: every message with its
/// fields' JSON names, types, enum values and `outputOnly` flags, and every method's query parameters and body.
///
/// `validate` checks, as the proto3 JSON mapping and Google's transcoder do:
/// - query parameters: each must be one of the method's or a system parameter (`fields`, `alt`, `key`, …), of its
///   type; `updateMask`'s paths must name fields of the body's message (descending only through singular messages);
/// - the body, recursively: an unknown field, a JSON list for a field that is not repeated, a value of the wrong
///   type, or an enum value the schema does not list is a problem. int64/uint64 take a string of digits or an
///   integral number, int32/uint32 an integral number in range, bool `true`/`false`, enums a listed name (or a
///   number), Timestamp/Duration strings their RFC 3339 / `"300s"` forms, bytes base64; `null` is the default
///   value, so it is taken anywhere. camelCase JSON names and the proto's snake_case names are both taken.
///
/// Problems are reported all at once, in Google's words: 400 INVALID_ARGUMENT, the descriptions joined by line
/// breaks as the message, one `google.rpc.BadRequest` field violation each. Paths use proto (snake_case) field
/// names and `[i]` for list items, as Google's do (`service.template.containers[0].env[1]`); a map's entries are
/// `labels[i].value`, numbered in key order (the order `JSONWriter` writes them). A body bound to a field of the
/// request (services.patch binds it to `service`) has its paths start there; a whole-request body (jobs.run) has
/// none, so a top-level unknown field has no ` at '…'` and no `field`.
///
/// Output-only fields are checked like any other and then dropped (AIP-203: a service ignores them in input),
/// also from `updateMask`: what `validate` returns is what Cloud Run would act on. Then, as Cloud Run does once the
/// front end has passed a request, every query parameter and body field Google marks `Required.` must be set
/// (`Violation in CreateServiceRequest.service.template: required field not present.`, Cloud Run's words; a
/// missing body sets nothing); with an update mask, only in what the mask names (an assumption: Google's
/// AIP-134 leaves a field outside the mask untouched, so its absence cannot be an error). Not checked: values' own rules (name patterns, traffic sums), which
/// `FakeCloudRun` keeps where it models them; the schema marks no run v2 field immutable.
public struct CloudRunSchema: Sendable, Decodable {
    /// A field of a message, a query parameter, or a map's value: an entry of the fixture.
    public final class Field: Sendable, Decodable {
        /// `string`, `int32`, `int64`, `uint32`, `uint64`, `double`, `float`, `boolean`, `bytes`, `enum`,
        /// `message`, `map`, `any` (`google.protobuf.Any`) or `json` (`google.protobuf.Value`).
        public let type: String
        /// `google-datetime`, `google-duration`, `google-fieldmask` or `byte`, for strings.
        public let format: String?
        /// An enum's value names.
        public let values: [String]
        /// An enum's full proto name (`google.cloud.run.v2.IngressTraffic`), when the fixture knows it.
        public let `enum`: String?
        /// A message field's message (`GoogleCloudRunV2RevisionTemplate`).
        public let message: String?
        /// A map's value.
        public let value: Field?
        public let repeated: Bool
        public let outputOnly: Bool
        /// `Required.` in Google's description (`google.api.field_behavior = REQUIRED`).
        public let required: Bool

        enum CodingKeys: String, CodingKey {
            case type, format, values, `enum`, message, value, repeated, outputOnly, required
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            type = try container.decode(String.self, forKey: .type)
            format = try container.decodeIfPresent(String.self, forKey: .format)
            values = try container.decodeIfPresent([String].self, forKey: .values) ?? []
            `enum` = try container.decodeIfPresent(String.self, forKey: .enum)
            message = try container.decodeIfPresent(String.self, forKey: .message)
            value = try container.decodeIfPresent(Field.self, forKey: .value)
            repeated = try container.decodeIfPresent(Bool.self, forKey: .repeated) ?? false
            outputOnly = try container.decodeIfPresent(Bool.self, forKey: .outputOnly) ?? false
            required = try container.decodeIfPresent(Bool.self, forKey: .required) ?? false
        }
    }

    /// A method: its query parameters and its body's message (nil: no body).
    public struct Method: Sendable, Decodable {
        public let httpMethod: String
        public let path: String
        public let query: [String: Field]
        public let body: String?
    }

    /// Message name (`GoogleCloudRunV2Service`) → JSON field name → field.
    public let messages: [String: [String: Field]]
    /// Method id (`run.projects.locations.services.patch`) → method.
    public let methods: [String: Method]
    /// The parameters every Google API takes (`fields`, `alt`, `prettyPrint`, `$.xgafv`, …).
    public let standardQueryParameters: [String: Field]

    /// The committed schema (Cloud SDK 528.0.0).
    public static let runV2: CloudRunSchema = {
        do { return try Fixture.load(CloudRunSchema.self, "cloudrun/run_v2_schema.json") } catch {
            fatalError("Tests/Fixtures/cloudrun/run_v2_schema.json does not load: \(error)")
        }
    }()

    /// A request as Cloud Run gets it from the front end.
    public struct Request: Sendable, Equatable {
        /// The body with every field under its JSON name and output-only fields left out; nil without one.
        public var body: JSONValue?
        /// `updateMask`'s paths in JSON names (`template`, `template.containers`), those through an output-only
        /// field left out; nil when the request has no mask (or an empty one).
        public var updateMask: [String]?

        public init(body: JSONValue?, updateMask: [String]?) {
            self.body = body
            self.updateMask = updateMask
        }
    }

    /// Google's answer to a request the schema refuses: 400 INVALID_ARGUMENT with a `google.rpc.BadRequest`.
    public struct BadRequest: Error, Equatable, CustomStringConvertible {
        public struct Violation: Equatable, Sendable {
            /// Where, in proto field names; nil for a top-level field of a whole-request body or an unknown
            /// query parameter.
            public var field: String?
            public var description: String

            public init(field: String?, description: String) {
                self.field = field
                self.description = description
            }
        }

        public var violations: [Violation]

        public init(violations: [Violation]) {
            self.violations = violations
        }

        /// The violations' descriptions, one a line.
        public var description: String { violations.map(\.description).joined(separator: "\n") }

        /// The `google.rpc.BadRequest` detail of the error envelope.
        public var detail: JSONValue {
            ["@type": "type.googleapis.com/google.rpc.BadRequest",
             "fieldViolations": .array(violations.map { violation in
                 var object: [String: JSONValue] = ["description": .string(violation.description)]
                 object["field"] = violation.field.map(JSONValue.string)
                 return .object(object)
             })]
        }
    }

    /// Checks a request to `method` (`run.projects.locations.services.patch`) as Google's front end would:
    /// its query parameters (name, value) and its JSON body (nil: none). Returns what Cloud Run acts on.
    public func validate(_ method: String, query: [(String, String)], body: JSONValue?) throws(BadRequest) -> Request {
        guard let spec = methods[method] else { preconditionFailure("\(method) is not a method of run v2") }
        var check = Check(schema: self)
        var mask: [String]?
        for (name, value) in query {
            if let (json, field) = Self.lookup(name, in: spec.query) {
                if field.format == "google-fieldmask", let message = spec.body {
                    mask = check.fieldMask(value, of: message, parameter: Self.snake(json))
                } else {
                    check.parameter(value, field, named: Self.snake(json))
                }
            } else if Self.lookup(name, in: standardQueryParameters) == nil {
                check.problem(nil, "Invalid JSON payload received. Unknown name \"\(name)\": Cannot find field.")
            }
        }
        var checked: JSONValue?
        if let body, let message = spec.body {
            checked = check.root(body, message, at: Self.bodyField(message))
        }
        guard check.violations.isEmpty else { throw BadRequest(violations: check.violations) }
        // Then Cloud Run's own check of what the front end passed: every required query parameter and body field
        // set, where the request sets anything (the whole body, or with an update mask the fields it names); a
        // request without a body sets nothing in it.
        let request = Self.requestName(method, body: spec.body)
        for (json, field) in spec.query.sorted(by: { $0.key < $1.key }) where field.required {
            let value = query.first { Self.lookup($0.0, in: [json: field]) != nil }?.1
            if value?.isEmpty ?? true {
                check.problem(Self.snake(json), "Violation in \(request).\(Self.snake(json)): required field not present.")
            }
        }
        if let message = spec.body {
            check.required(checked ?? [:], message, at: Self.bodyField(message) ?? "", jsonPath: "", mask: mask,
                           request: request)
        }
        guard check.violations.isEmpty else { throw BadRequest(violations: check.violations) }
        return Request(body: checked, updateMask: mask)
    }

    /// The request message of a method, as Cloud Run's violations name it: a whole-request body's own message
    /// (`jobs.run` → `RunJobRequest`, `setIamPolicy` → `SetIamPolicyRequest`), else the verb and the resource
    /// (`run.projects.locations.services.patch` → `UpdateServiceRequest`).
    public static func requestName(_ method: String, body: String?) -> String {
        if let body, body.hasSuffix("Request"), let name = protoName(body).split(separator: ".").last { return String(name) }
        let parts = method.split(separator: ".")
        guard parts.count >= 2 else { return method }
        let verb = parts[parts.count - 1] == "patch" ? "Update" : parts[parts.count - 1].prefix(1).uppercased() + parts[parts.count - 1].dropFirst()
        let resource = parts[parts.count - 2]
        let singular = resource.hasSuffix("s") ? resource.dropLast() : resource
        return verb + singular.prefix(1).uppercased() + singular.dropFirst() + "Request"
    }

    /// The writable fields of `message` (every field not output only), by JSON name.
    public func writableFields(of message: String) -> [String] {
        (messages[message] ?? [:]).filter { !$0.value.outputOnly }.keys.sorted()
    }

    /// The request field a body binds to, as run v2's HTTP rules have it: a resource binds to its own field
    /// (`body: "service"`, `"job"`, `"worker_pool"`), a `…Request` message is the whole request (`body: "*"`).
    static func bodyField(_ message: String) -> String? {
        guard !message.hasSuffix("Request"), let type = protoName(message).split(separator: ".").last else { return nil }
        return snake(type.prefix(1).lowercased() + type.dropFirst())
    }

    /// The full proto name of a message of the fixture: `GoogleCloudRunV2RevisionTemplate` →
    /// `google.cloud.run.v2.RevisionTemplate`.
    static func protoName(_ message: String) -> String {
        let packages = [("GoogleCloudRunV2", "google.cloud.run.v2"), ("GoogleDevtoolsCloudbuildV1", "google.devtools.cloudbuild.v1"),
                        ("GoogleIamV1", "google.iam.v1"), ("GoogleLongrunning", "google.longrunning"),
                        ("GoogleProtobuf", "google.protobuf"), ("GoogleRpc", "google.rpc"), ("GoogleType", "google.type")]
        guard let (prefix, package) = packages.first(where: { message.hasPrefix($0.0) }) else { return message }
        return package + "." + message.dropFirst(prefix.count)
    }

    /// A JSON name's proto field name (`maxInstanceCount` → `max_instance_count`), as protoc derives one from the other.
    static func snake(_ name: String) -> String {
        name.reduce(into: "") { result, character in
            if character.isUppercase {
                result += "_" + character.lowercased()
            } else {
                result.append(character)
            }
        }
    }

    /// The field `name` names in `fields`, by its JSON name or its proto name; with its JSON name.
    static func lookup(_ name: String, in fields: [String: Field]) -> (String, Field)? {
        if let field = fields[name] { return (name, field) }
        return fields.first { snake($0.key) == name }.map { ($0.key, $0.value) }
    }
}

/// One walk over a request, gathering violations and the body as Cloud Run gets it.
private struct Check {
    let schema: CloudRunSchema
    var violations: [CloudRunSchema.BadRequest.Violation] = []

    mutating func problem(_ field: String?, _ description: String) {
        violations.append(.init(field: field, description: description))
    }

    /// `Invalid value at 'service.ingress' (type.googleapis.com/google.cloud.run.v2.IngressTraffic), "BOGUS"`.
    mutating func invalid(_ path: String, _ type: String, _ value: String) {
        problem(path, "Invalid value at '\(path)' (\(type)), \(value)")
    }

    /// Cloud Run's check of a body the front end took: `Violation in CreateServiceRequest.service.template:
    /// required field not present.` for each required field that is unset (absent, an empty string, list or
    /// map) in a message that is checked: every one without an update mask; with one, those at or under the
    /// paths it names (a traffic-only update need not carry the template). `value` is the checked body (JSON
    /// names, output-only fields gone); `path` in proto names for the message, `jsonPath` in JSON names for the mask.
    mutating func required(_ value: JSONValue, _ message: String, at path: String, jsonPath: String, mask: [String]?,
                           request: String) {
        let fields = schema.messages[message] ?? [:]
        let members = value.object ?? [:]
        for (json, field) in fields.sorted(by: { $0.key < $1.key }) where !field.outputOnly {
            let child = path.isEmpty ? CloudRunSchema.snake(json) : "\(path).\(CloudRunSchema.snake(json))"
            let childJSON = jsonPath.isEmpty ? json : "\(jsonPath).\(json)"
            let member = members[json]
            // A field is held to it when the mask names it or what holds it (or there is no mask).
            if field.required, mask.map({ $0.contains { childJSON == $0 || childJSON.hasPrefix($0 + ".") } }) ?? true {
                let unset = switch member {
                case nil, .null?: true
                case .string(let text)?: text.isEmpty
                case .array(let items)?: items.isEmpty
                case .object(let entries)?: field.type == "map" && entries.isEmpty
                default: false
                }
                if unset { problem(child, "Violation in \(request).\(child): required field not present.") }
            }
            // Descend wherever a mask path may still lie below, or everywhere without one.
            let below = mask.map { $0.contains { $0 == childJSON || $0.hasPrefix(childJSON + ".") || childJSON.hasPrefix($0 + ".") } } ?? true
            guard below, field.type == "message" || field.value?.type == "message", let member else { continue }
            let type = field.message ?? field.value?.message ?? ""
            switch member {
            case .array(let items):
                for (index, item) in items.enumerated() {
                    required(item, type, at: "\(child)[\(index)]", jsonPath: childJSON, mask: mask, request: request)
                }
            case .object(let entries) where field.type == "map":
                for (index, (_, item)) in entries.sorted(by: { $0.key < $1.key }).enumerated() {
                    required(item, type, at: "\(child)[\(index)].value", jsonPath: childJSON, mask: mask, request: request)
                }
            case .object:
                required(member, type, at: child, jsonPath: childJSON, mask: mask, request: request)
            default:
                continue
            }
        }
    }

    /// `Unknown name "foo" at 'service.template': <reason>`, or without ` at '…'` at the top of a whole request.
    mutating func unknown(_ name: String, at path: String, _ reason: String) {
        problem(path.isEmpty ? nil : path,
                "Invalid JSON payload received. Unknown name \"\(name)\"\(path.isEmpty ? "" : " at '\(path)'"): \(reason)")
    }

    /// The body: an object of `message`, bound to the request field `field` (nil: the whole request).
    mutating func root(_ body: JSONValue, _ message: String, at field: String?) -> JSONValue? {
        guard case .object = body else {
            problem(nil, "Invalid JSON payload received. Unknown name \"\": Root element must be a message.")
            return nil
        }
        return self.message(body, message, at: field ?? "")
    }

    /// An object of `message` at `path`, with its fields under their JSON names and output-only ones left out.
    mutating func message(_ value: JSONValue, _ message: String, at path: String) -> JSONValue {
        let fields = schema.messages[message] ?? [:]
        var kept: [String: JSONValue] = [:]
        for (name, member) in (value.object ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let (json, field) = CloudRunSchema.lookup(name, in: fields) else {
                unknown(name, at: path, "Cannot find field.")
                continue
            }
            let child = path.isEmpty ? CloudRunSchema.snake(json) : "\(path).\(CloudRunSchema.snake(json))"
            guard member != .null else { continue }  // null is the default value: as if absent
            let checked: JSONValue?
            if field.type == "map" {
                checked = map(member, field, named: name, at: child)
            } else if field.repeated {
                checked = list(member, field, at: child)
            } else if case .array = member {
                unknown(name, at: path, "Proto field is not repeating, cannot start list.")
                checked = nil
            } else {
                checked = single(member, field, at: child)
            }
            if !field.outputOnly { kept[json] = checked }
        }
        return .object(kept)
    }

    mutating func list(_ value: JSONValue, _ field: CloudRunSchema.Field, at path: String) -> JSONValue? {
        guard case .array(let items) = value else {
            invalid(path, typeName(field), value.jsonText)
            return nil
        }
        return .array(items.enumerated().compactMap { index, item in single(item, field, at: "\(path)[\(index)]") })
    }

    /// A map: a JSON object whose values are the map's value type; entry `i` (in key order) is `path[i].value`.
    mutating func map(_ value: JSONValue, _ field: CloudRunSchema.Field, named name: String, at path: String) -> JSONValue? {
        guard case .object(let entries) = value, let entry = field.value else {
            if case .array = value {
                invalid(path, "Map", "Cannot bind a list to map for field '\(name)'.")
            } else {
                invalid(path, "Map", value.jsonText)
            }
            return nil
        }
        var kept: [String: JSONValue] = [:]
        for (index, (key, item)) in entries.sorted(by: { $0.key < $1.key }).enumerated() where item != .null {
            let at = "\(path)[\(index)].value"
            kept[key] = entry.repeated ? list(item, entry, at: at) : single(item, entry, at: at)
        }
        return .object(kept)
    }

    /// One value of `field`'s type (a list's item, a map's value, or a singular field).
    mutating func single(_ value: JSONValue, _ field: CloudRunSchema.Field, at path: String) -> JSONValue? {
        let ok: Bool
        switch (field.type, value) {
        case ("message", .object):
            return message(value, field.message ?? "", at: path)
        case ("any", .object(let members)):
            ok = members["@type"]?.string != nil
        case ("json", _):
            ok = true
        case ("string", .string(let text)):
            ok = Self.matches(text, format: field.format)
        case ("bytes", .string(let text)):
            ok = Data(base64Encoded: Self.standardBase64(text)) != nil
        case ("boolean", .bool):
            ok = true
        case ("int32", .number(let number)), ("sint32", .number(let number)):
            ok = number == number.rounded() && Double(Int32.min) <= number && number <= Double(Int32.max)
        case ("uint32", .number(let number)):
            ok = number == number.rounded() && 0 <= number && number <= Double(UInt32.max)
        // proto3's JSON mapping: "JSON value will be a decimal number. Either numbers or strings are accepted."
        case ("int32", .string(let text)), ("sint32", .string(let text)):
            ok = Int32(text) != nil
        case ("uint32", .string(let text)):
            ok = UInt32(text) != nil
        case ("int64", .number(let number)), ("sint64", .number(let number)):
            ok = number == number.rounded() && abs(number) < 0x1p63
        case ("uint64", .number(let number)):
            ok = number == number.rounded() && 0 <= number && number < 0x1p64
        case ("int64", .string(let text)), ("sint64", .string(let text)):
            ok = Int64(text) != nil
        case ("uint64", .string(let text)):
            ok = UInt64(text) != nil
        case ("double", .number), ("float", .number):
            ok = true
        case ("double", .string(let text)), ("float", .string(let text)):
            // A decimal number, or one of the three names (not "inf", "nan" or hexadecimal, which Double takes).
            ok = ["NaN", "Infinity", "-Infinity"].contains(text)
                || text.wholeMatch(of: #/-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/#) != nil
        case ("enum", .string(let name)):
            ok = field.values.contains(name)
        case ("enum", .number(let number)):
            ok = number == number.rounded()
        default:
            ok = false
        }
        guard ok else {
            invalid(path, typeName(field), value.jsonText)
            return nil
        }
        return value
    }

    /// A query parameter's value, of its field's type.
    mutating func parameter(_ text: String, _ field: CloudRunSchema.Field, named name: String) {
        let ok = switch field.type {
        case "boolean": text == "true" || text == "false"
        case "int32": Int32(text) != nil
        case "uint32": UInt32(text) != nil
        case "int64": Int64(text) != nil
        case "uint64": UInt64(text) != nil
        case "enum": field.values.contains(text)
        default: true
        }
        if !ok { invalid(name, typeName(field), JSONValue.string(text).jsonText) }
    }

    /// An update mask's comma-separated paths, each naming a field of `message` (JSON or proto names; through
    /// singular message fields only); returns them in JSON names, those through an output-only field left out.
    mutating func fieldMask(_ text: String, of message: String, parameter: String) -> [String]? {
        var kept: [String] = []
        for path in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            var (current, names, outputOnly) = (Optional(message), [String](), false)
            for segment in path.split(separator: ".", omittingEmptySubsequences: false).map(String.init) {
                guard let owner = current, let (json, field) = CloudRunSchema.lookup(segment, in: schema.messages[owner] ?? [:])
                else {
                    problem(parameter, "Invalid field mask path \"\(path)\": \(CloudRunSchema.protoName(message)) has no field \"\(path)\".")
                    names = []
                    break
                }
                names.append(json)
                outputOnly = outputOnly || field.outputOnly
                current = field.type == "message" && !field.repeated ? field.message : nil
            }
            if !names.isEmpty, !outputOnly { kept.append(names.joined(separator: ".")) }
        }
        return text.isEmpty ? nil : kept
    }

    /// How Google names a field's type in "Invalid value" messages: `TYPE_INT32`, or a message or enum's type URL.
    func typeName(_ field: CloudRunSchema.Field) -> String {
        switch (field.type, field.format) {
        case ("message", _): "type.googleapis.com/" + CloudRunSchema.protoName(field.message ?? "")
        case ("enum", _): field.enum.map { "type.googleapis.com/" + $0 } ?? "TYPE_ENUM"
        case ("any", _): "type.googleapis.com/google.protobuf.Any"
        case ("map", _): "Map"
        case (_, "google-datetime"): "type.googleapis.com/google.protobuf.Timestamp"
        case (_, "google-duration"): "type.googleapis.com/google.protobuf.Duration"
        case (_, "google-fieldmask"): "type.googleapis.com/google.protobuf.FieldMask"
        case ("boolean", _): "TYPE_BOOL"
        default: "TYPE_" + field.type.uppercased()
        }
    }

    /// Whether a string is of its format: RFC 3339 with a zone for a Timestamp, `-?seconds[.fraction]s` (up to nine
    /// digits of fraction) for a Duration; anything for a plain string or a field mask.
    static func matches(_ text: String, format: String?) -> Bool {
        switch format {
        case "google-datetime":
            // Upper-case T and Z only (protobuf's conformance suite refuses the lower-case ones).
            text.wholeMatch(of: #/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})/#) != nil
        case "google-duration":
            text.wholeMatch(of: #/-?\d+(\.\d{1,9})?s/#) != nil
        default:
            true
        }
    }

    /// Base64 in the standard alphabet, padded: proto3 JSON takes the URL-safe alphabet and no padding too.
    static func standardBase64(_ text: String) -> String {
        let standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        return standard + String(repeating: "=", count: (4 - standard.count % 4) % 4)
    }
}
