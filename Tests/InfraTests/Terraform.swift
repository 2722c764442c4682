import CycloneModel
import CycloneTestSupport
import Foundation

/// infra/ as python-hcl2 parses it (scripts/hcl2json.py, in the virtual environment scripts/setup makes),
/// with just enough evaluation for the tests: `${var.x}` (defaults, or samples for the required ones),
/// `${tostring(…)}`, `${local.a.b}` and `${type.name.attribute}` references, `${merge…}`-free maps, and the
/// two forms that depend on `var.models`: `${length(var.models) > 0 ? A : B}` (or `each.key == "K" ? A : B`
/// for one instance of a `for_each`) and `${join(",", [for m in keys(var.models) : "…${m}…"])}`.
struct Terraform {
    var files: [String: JSONValue]
    /// `var.models`, as an operator would pass it (empty: the one model of `predict_image`).
    var models: [String: String] = [:]
    /// Values for the variables without a default, as an operator would pass them.
    static let required: [String: String] = [
        "project_id": "project", "image_tag": "abc123",
        "predict_image": "europe-west1-docker.pkg.dev/project/cyclone/predict@sha256:" + String(repeating: "0", count: 64),
    ]

    static func load() async throws -> Terraform {
        let python = Repository.root.appendingPathComponent(".venv-infra/hcl2/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw TestDatabaseError(description: "\(python) is missing: run scripts/setup (it installs python-hcl2)")
        }
        let json = try await Repository.run(python, [Repository.root.appendingPathComponent("scripts/hcl2json.py").path,
                                                     Repository.root.appendingPathComponent("infra").path])
        return Terraform(files: try JSONParser.parse(Array(json.utf8)).object ?? [:])
    }

    /// This Terraform with `models` passed (and, as the validation asks, no `predict_image`).
    func with(models: [String: String]) -> Terraform {
        var terraform = self
        terraform.models = models
        return terraform
    }

    /// Every block of a top-level kind (`resource`, `locals`, `variable`) across the files.
    func blocks(_ kind: String) -> [JSONValue] { files.keys.sorted().flatMap { files[$0]![kind].array } }

    /// The resources of a type: name → body.
    func resources(_ type: String) -> [(name: String, body: JSONValue)] {
        blocks("resource").compactMap { $0[type].object }.flatMap { $0.map { ($0.key, $0.value) } }.sorted { $0.name < $1.name }
    }

    var locals: [String: JSONValue] {
        blocks("locals").reduce(into: [:]) { all, block in all.merge(block.object ?? [:]) { $1 } }
    }

    func variable(_ name: String) -> String? {
        if name == "predict_image", !models.isEmpty { return "" }
        for block in blocks("variable") {
            guard let body = block[name].object else { continue }
            switch body["default"] {
            case .string(let text)?: return text
            case .number(let number)?: return number == number.rounded() ? String(Int(number)) : String(number)
            case .bool(let flag)?: return String(flag)
            default: return Self.required[name]
            }
        }
        return nil
    }

    /// `text` with every reference this evaluator knows replaced, innermost first; `each` is the `for_each`
    /// key of the instance `text` belongs to.
    func resolve(_ text: String, each: String? = nil) -> String {
        if let choice = text.wholeMatch(of: /\$\{(length\(var\.models\) > 0|each\.key == "([^"]*)") \? (.+?) : (.+)\}/) {
            let condition = choice.output.2.map { each == String($0) } ?? !models.isEmpty
            let branch = String(condition ? choice.output.3 : choice.output.4)
            if branch == #""""# { return "" }
            let quoted = branch.wholeMatch(of: /"(.*)"/).map { String($0.output.1) }
            return resolve(quoted ?? "${\(branch)}", each: each)
        }
        if let join = text.wholeMatch(of: /\$\{join\(",", \[for ([a-z]+) in keys\(var\.models\) : "(.*)"\]\)\}/) {
            let (name, template) = (String(join.output.1), String(join.output.2))
            return models.keys.sorted().map { model in
                resolve(template.replacingOccurrences(of: "${\(name)}", with: model), each: each)
            }.joined(separator: ",")
        }
        var text = each.map { text.replacingOccurrences(of: "${each.key}", with: $0) } ?? text
        let reference = /\$\{(?:tostring\()?([a-z_]+(?:\.[A-Za-z0-9_\-]+)+)\)?\}/
        while let match = text.firstMatch(of: reference) {
            guard let value = lookup(String(match.output.1)) else { break }
            text.replaceSubrange(match.range, with: value)
        }
        return text
    }

    /// `var.x`, `local.a.b`, or `type.name.attribute` as text, resolved in turn.
    func lookup(_ path: String) -> String? {
        let parts = path.split(separator: ".").map(String.init)
        switch parts[0] {
        case "var": return variable(parts[1])
        case "local":
            var value: JSONValue? = locals[parts[1]]
            for part in parts.dropFirst(2) { value = value?[part] }
            return value?.string.map { resolve($0) }
        default:
            guard parts.count == 3, let body = resources(parts[0]).first(where: { $0.name == parts[1] })?.body else { return nil }
            return body[parts[2]].string.map { resolve($0) }
        }
    }

    /// A container's environment: its `env` blocks, written out or made by its `dynamic "env"` blocks (the
    /// secret's from `local.database`, the rest from `local.env`), a secret's value as `<secret NAME>`.
    func environment(_ container: JSONValue) -> [String: String] {
        var environment: [String: String] = [:]
        for entry in blocks("env", in: container) {
            guard let name = entry["name"].string else { continue }
            if let secret = entry["value_source"].array.first?["secret_key_ref"].array.first?["secret"].string {
                environment[name] = "<secret \(resolve(secret))>"
            } else {
                environment[name] = resolve(entry["value"].string ?? "")
            }
        }
        return environment
    }

    /// The blocks of a kind in `body` (`env`, `volumes`, `volume_mounts`): those written out, then those each
    /// `dynamic "KIND"` makes, in the key order Terraform iterates a map in. A dynamic block here iterates a
    /// local map, `${local.a.b}`, or its entries whose value is not empty,
    /// `${{for key , value in local.a.b : key => value if value != ""}}`; its content gets `KIND.key`,
    /// `KIND.value` and `KIND.value.ATTRIBUTE` put in.
    func blocks(_ kind: String, in body: JSONValue) -> [JSONValue] {
        var blocks = body[kind].array
        for dynamic in body["dynamic"].array {
            guard let source = dynamic[kind]["for_each"].string, let content = dynamic[kind]["content"].array.first
            else { continue }
            let path: Substring, nonEmpty: Bool
            if let plain = source.wholeMatch(of: /\$\{local\.([a-z_.]+)\}/) {
                (path, nonEmpty) = (plain.output.1, false)
            } else if let filtered = source.wholeMatch(
                of: /\$\{\{for ([a-z_]+) , ([a-z_]+) in local\.([a-z_.]+) : ([a-z_]+) => ([a-z_]+) if ([a-z_]+) != ""\}\}/),
                filtered.output.1 == filtered.output.4, filtered.output.2 == filtered.output.5, filtered.output.2 == filtered.output.6 {
                (path, nonEmpty) = (filtered.output.3, true)
            } else {
                continue
            }
            var map = locals[String(path.split(separator: ".").first ?? "")]
            for part in path.split(separator: ".").dropFirst() { map = map?[String(part)] }
            for (key, value) in (map?.object ?? [:]).sorted(by: { $0.key < $1.key }) {
                if nonEmpty, let text = value.string, resolve(text).isEmpty { continue }
                blocks.append(Self.substitute(content, kind, key: key, value: value))
            }
        }
        return blocks
    }

    /// `node` with a dynamic block's iterator (`NAME.key`, `NAME.value`, `NAME.value.ATTRIBUTE`) put in: a
    /// whole reference by the value itself (a list stays a list), the key within text as text.
    static func substitute(_ node: JSONValue, _ iterator: String, key: String, value: JSONValue) -> JSONValue {
        switch node {
        case .object(let members): return .object(members.mapValues { substitute($0, iterator, key: key, value: value) })
        case .array(let items): return .array(items.map { substitute($0, iterator, key: key, value: value) })
        case .string(let text):
            if text == "${\(iterator).key}" { return .string(key) }
            if text == "${\(iterator).value}" { return value }
            let prefix = "${\(iterator).value."
            if text.hasPrefix(prefix), text.hasSuffix("}") {
                return text.dropFirst(prefix.count).dropLast().split(separator: ".").reduce(value) { $0[String($1)] }
            }
            return .string(text.replacingOccurrences(of: "${\(iterator).key}", with: key))
        default: return node
        }
    }
}

/// A Cloud Run service or job as declared: its function (the binary its command names), its container, its
/// volumes (name → Cloud SQL instances) and their mounts (name → path), and its service account's key in
/// `google_service_account.function`.
struct Workload {
    var resource: String
    var binary: String
    var arguments: [String]
    var environment: [String: String]
    var volumes: [String: [String]]
    var mounts: [String: String]
    var account: String?
    var isJob: Bool

    static func all(_ terraform: Terraform) -> [Workload] {
        func workload(_ resource: String, template: JSONValue, isJob: Bool) -> Workload {
            let container = template["containers"].array.first ?? .null
            let account = template["service_account"].string?.firstMatch(of: /function\["([a-z]+)"\]/).map { String($0.output.1) }
            return Workload(resource: resource, binary: container["command"].array.first?.string ?? "",
                            arguments: container["args"].array.compactMap(\.string)
                                + (container["args"].string.map { [$0] } ?? []),
                            environment: terraform.environment(container),
                            volumes: terraform.blocks("volumes", in: template).reduce(into: [:]) { volumes, volume in
                                volumes[volume["name"].string ?? ""] = volume["cloud_sql_instance"].array.first?["instances"].array
                                    .map { terraform.resolve($0.string ?? "") } ?? []
                            },
                            mounts: terraform.blocks("volume_mounts", in: container).reduce(into: [:]) { mounts, mount in
                                mounts[mount["name"].string ?? ""] = mount["mount_path"].string ?? ""
                            },
                            account: account, isJob: isJob)
        }
        return terraform.resources("google_cloud_run_v2_service").map {
            workload("google_cloud_run_v2_service.\($0.name)", template: $0.body["template"].array.first ?? .null, isJob: false)
        } + terraform.resources("google_cloud_run_v2_job").map {
            workload("google_cloud_run_v2_job.\($0.name)",
                     template: $0.body["template"].array.first?["template"].array.first ?? .null, isJob: true)
        }
    }
}
