import Configuration
import CycloneCloud
import CycloneEvaluation
import CycloneModel
import CycloneRuntime
import CycloneTestSupport
import Foundation
import Synchronization
import Testing

@testable import Evaluate
@testable import LabelIngest
@testable import Predict
@testable import Retrain

/// The Terraform against the code: each Cloud Run service and job runs a binary the package builds, sets
/// what its function reads (and nothing it does not), and its service account holds exactly the roles
/// the function's code needs. scripts/check-infra checks the same files for format, parse and checkov.
@Suite struct InfraTests {
    /// The environment variables a function's settings read, by their names.
    final class Reads: AccessReporter {
        let names = Mutex<Set<String>>([])
        func report(_ event: AccessEvent) {
            let name = event.metadata.key.components.joined(separator: "_").uppercased()
            names.withLock { _ = $0.insert(name) }
        }
    }

    /// Builds the settings of the function `binary` from `environment`; returns what they read.
    static func settingsRead(_ binary: String, _ environment: [String: String]) throws -> Set<String> {
        let reads = Reads()
        let reader = ConfigReader.cyclone(environment: environment, accessReporter: reads)
        switch binary {
        case "predict": _ = try PredictSettings(reader: reader)
        case "label-ingest": _ = try LabelSettings(reader: reader)
        case "evaluate": _ = try EvaluateSettings(reader: reader)
        case "retrain": _ = try RetrainSettings(reader: reader)
        default: throw TestDatabaseError(description: "no settings known for \(binary)")
        }
        return reads.names.withLock { $0 }
    }

    /// `ENV` of a Dockerfile's final stage: what every container of that image starts with.
    static func imageEnvironment(_ dockerfile: String) throws -> Set<String> {
        let text = try String(contentsOf: Repository.root.appendingPathComponent(dockerfile), encoding: .utf8)
        let final = text.components(separatedBy: "\nFROM ").last ?? ""
        return Set(final.matches(of: /(?:ENV|\\\n)\s+([A-Z_]+)=/).map { String($0.output.1) })
    }

    /// Cloud Run's own variables in every container (gcp-contracts §1.10).
    static let runtime: Set<String> = ["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "CLOUD_RUN_JOB",
                                       "CLOUD_RUN_EXECUTION", "CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_ATTEMPT",
                                       "CLOUD_RUN_TASK_COUNT"]

    /// With one model (`predict_image`) and with a service per model (`models`).
    @Test(arguments: [[:], ["bikes": "europe-west1-docker.pkg.dev/p/c/predict@sha256:1", "taxis": "…@sha256:2"]])
    func everyFunctionGetsWhatItReadsAndReadsWhatItGets(_ models: [String: String]) async throws {
        let terraform = try await Terraform.load().with(models: models)
        let workloads = Workload.all(terraform)
        #expect(Set(workloads.map(\.binary)) == ["predict", "label-ingest", "evaluate", "retrain", "cyclone"])
        let evaluate = try #require(workloads.first { $0.binary == "evaluate" })
        for workload in workloads {
            let declared = workload.environment
            if workload.binary == "cyclone" {
                // The operator command reads DATABASE_URL alone (Functions/cyclone/Database.swift).
                let source = try String(contentsOf: Repository.root.appendingPathComponent("Functions/cyclone/Database.swift"),
                                        encoding: .utf8)
                #expect(source.contains(#"environment["DATABASE_URL"]"#))
                #expect(Set(declared.keys) == ["DATABASE_URL"], "\(workload.resource) sets \(declared.keys.sorted())")
                continue
            }
            // What the container has: the declared variables, the image's, Cloud Run's, and for retrain what
            // evaluate passes with jobs.run.
            var environment = declared
            for name in try Self.imageEnvironment(workload.binary == "retrain" ? "Dockerfile.train" : "Dockerfile.serve") {
                environment[name] = environment[name] ?? (name == "PORT" ? "8080" : "/srv/model/model.json")
            }
            environment["PORT"] = "8080"
            environment["DATABASE_URL"] = environment["DATABASE_URL"].map { _ in
                "postgres://cyclone:secret@/cyclone?host=/cloudsql/project:europe-west1:cyclone"
            }
            if workload.binary == "retrain" {
                let passedOn = try EvaluateSettings(reader: ConfigReader.cyclone(environment: evaluate.environment.merging(
                    ["DATABASE_URL": "postgres://u:p@/db?host=/cloudsql/p:r:i"]) { $1 })).evaluation.trainingWindow
                let request = RetrainRequest(modelName: "demand", modelVersion: "1", reason: "r2 0.3 < 0.4", eventID: 1,
                                             settings: passedOn)
                for (name, value) in request.environment { environment[name] = value }
            }
            let read: Set<String>
            do { read = try Self.settingsRead(workload.binary, environment) } catch {
                Issue.record("\(workload.resource): \(workload.binary) does not start with what Terraform gives it: \(error)")
                continue
            }
            let unread = Set(declared.keys).subtracting(read)
            #expect(unread.isEmpty, "\(workload.resource) sets \(unread.sorted()), which \(workload.binary) never reads")
        }
    }

    /// The gRPC predict: gRPC on its container port, which is declared h2c, REST moved aside; and the two
    /// functions that deploy name it as the mirror of predict, both: for the one model of `predict_image`, or
    /// for each model its own services.
    @Test func theGRPCServiceServesGRPCOnItsH2CPortAndIsMirrored() async throws {
        let terraform = try await Terraform.load()
        let services = terraform.resources("google_cloud_run_v2_service")
        let service = try #require(services.first { $0.name == "predict_grpc" }?.body)
        let rest = try #require(services.first { $0.name == "predict" }?.body)
        let container = service["template"].array.first?["containers"].array.first ?? .null
        let port = container["ports"].array.first ?? .null
        #expect(port["name"].string == "h2c")
        let workloads = Workload.all(terraform)
        let grpc = try #require(workloads.first { $0.resource == "google_cloud_run_v2_service.predict_grpc" })
        #expect(grpc.binary == "predict")
        #expect(grpc.environment["GRPC_PORT"] == port["container_port"].number.map { String(Int($0)) })
        #expect(grpc.environment["REST_PORT"] != nil && grpc.environment["REST_PORT"] != grpc.environment["GRPC_PORT"])
        let name = terraform.resolve(try #require(service["name"].string), each: "_")
        #expect(name == "cyclone-predict-grpc")
        for binary in ["evaluate", "retrain"] {
            let workload = try #require(workloads.first { $0.binary == binary })
            #expect(workload.environment["PREDICT_GRPC_SERVICE"] == name, "\(binary) mirrors onto \(name)")
            #expect(workload.environment["PREDICT_SERVICES"] == nil)
        }

        // A service per model: each model's deploys go to its own two services, and to no shared one.
        let models = terraform.with(models: ["bikes": "a", "taxis": "b"])
        let names = { (body: JSONValue, model: String) in models.resolve(body["name"].string ?? "", each: model) }
        #expect(names(rest, "bikes") == "cyclone-predict-bikes" && names(service, "taxis") == "cyclone-predict-taxis-grpc")
        for binary in ["evaluate", "retrain"] {
            let environment = try #require(Workload.all(models).first { $0.binary == binary }).environment
            #expect(environment["PREDICT_SERVICES"] == "bikes=\(names(rest, "bikes")),taxis=\(names(rest, "taxis"))")
            #expect(environment["PREDICT_GRPC_SERVICES"] == "bikes=\(names(service, "bikes")),taxis=\(names(service, "taxis"))")
            #expect(environment["PREDICT_SERVICE"] == nil && environment["PREDICT_GRPC_SERVICE"] == nil)
            let read = try EvaluateSettings(reader: ConfigReader.cyclone(environment: environment.merging(
                ["DATABASE_URL": "postgres://u:p@/db?host=/cloudsql/p:r:i"]) { $1 }))
            guard case .cloudRun(let run) = read.evaluation.platform.kind else { Issue.record("not cloud run"); continue }
            #expect(run.models["taxis"] == .init(service: "cyclone-predict-taxis", mirrors: ["cyclone-predict-taxis-grpc"]))
        }
    }

    /// Every service and job reaches the store alike, from one definition (`local.database`): DATABASE_URL from
    /// the secret, and the Cloud SQL instance's volume mounted where DATABASE_URL's socket lies.
    @Test func everyWorkloadReachesTheDatabaseAlike() async throws {
        let terraform = try await Terraform.load()
        let workloads = Workload.all(terraform)
        #expect(workloads.count == 7)
        let secret = terraform.resolve("${google_secret_manager_secret.database_url.secret_id}")
        let url = try #require(terraform.resources("google_secret_manager_secret_version").first { $0.name == "database_url" }?
            .body["secret_data"].string)
        for workload in workloads {
            #expect(workload.environment["DATABASE_URL"] == "<secret \(secret)>", "\(workload.resource)")
            #expect(workload.volumes == ["cloudsql": [terraform.resolve("${local.connection}")]], "\(workload.resource)")
            #expect(workload.mounts == ["cloudsql": "/cloudsql"], "\(workload.resource)")
            for (name, instances) in workload.volumes {
                let path = try #require(workload.mounts[name], "\(workload.resource) mounts no \(name)")
                #expect(instances.allSatisfy { url.hasSuffix("?host=\(path)/\($0)") }, "DATABASE_URL's socket is not in \(path)")
            }
        }
    }

    /// A variable its function requires and Terraform leaves out makes the check fail (the check can fail).
    @Test func aMissingRequiredVariableIsCaught() async throws {
        let terraform = try await Terraform.load()
        var retrain = try #require(Workload.all(terraform).first { $0.binary == "retrain" }).environment
        retrain["GOOGLE_CLOUD_REGION"] = nil
        retrain["DATABASE_URL"] = "postgres://u:p@/db?host=/cloudsql/p:r:i"
        retrain["RETRAIN_MODEL_NAME"] = "demand"
        retrain["RETRAIN_PARENT_VERSION"] = "1"
        #expect { try Self.settingsRead("retrain", retrain) } throws: { "\($0)".contains("GOOGLE_CLOUD_REGION") }
    }

    /// Every binary a Dockerfile builds or a service or job runs is a product of Package.swift.
    @Test func everyBinaryNamedIsAProduct() async throws {
        let manifest = try String(contentsOf: Repository.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let products = Set(manifest.matches(of: #/\.executable\(name: "([a-z-]+)"/#).map { String($0.output.1) })
        #expect(products == ["predict", "label-ingest", "evaluate", "retrain", "cyclone", "cyclone-serve"])
        var named: [(String, String)] = []
        for dockerfile in ["Dockerfile.serve", "Dockerfile.train"] {
            let text = try String(contentsOf: Repository.root.appendingPathComponent(dockerfile), encoding: .utf8)
            for match in text.matches(of: /for product in ([a-z -]+); do/) {
                named += match.output.1.split(separator: " ").map { (dockerfile, String($0)) }
            }
            named += text.matches(of: /--product ([a-z-]+)/).map { (dockerfile, String($0.output.1)) }
            named += text.matches(of: /CMD \["([a-z-]+)"/).map { (dockerfile, String($0.output.1)) }
            named += text.matches(of: #/\/out\/([a-z-]+) /#).map { (dockerfile, String($0.output.1)) }
        }
        #expect(named.contains { $0 == ("Dockerfile.train", "retrain") } && named.contains { $0 == ("Dockerfile.serve", "predict") })
        for workload in Workload.all(try await Terraform.load()) { named.append((workload.resource, workload.binary)) }
        for (place, binary) in named {
            #expect(products.contains(binary), "\(place) names \(binary), which Package.swift does not build")
        }
    }

    /// The serve image carries one multi-call binary: each command it links to it is one the binary answers
    /// by name, and every workload runs a command the serve image links, or retrain from the train image.
    @Test func theServeImageLinksEveryCommandItsWorkloadsRun() async throws {
        let dockerfile = try String(contentsOf: Repository.root.appendingPathComponent("Dockerfile.serve"), encoding: .utf8)
        let links = try #require(dockerfile.firstMatch(of: #/for command in ([a-z -]+); do ln -s cyclone-serve/#))
            .output.1.split(separator: " ").map(String.init)
        let serve = try String(contentsOf: Repository.root.appendingPathComponent("Functions/main/serve/main.swift"),
                               encoding: .utf8)
        let answered = Set(serve.matches(of: #/"([a-z-]+)": \{ await/#).map { String($0.output.1) })
        #expect(Set(links) == answered && answered == ["predict", "label-ingest", "evaluate", "cyclone"],
                "links \(links), commands \(answered.sorted())")
        #expect(dockerfile.contains(#"CMD ["predict"]"#))
        for workload in Workload.all(try await Terraform.load()) {
            #expect(links.contains(workload.binary) || workload.binary == "retrain",
                    "\(workload.resource) runs \(workload.binary), which the serve image does not link")
        }
    }
}

/// Roles against code: each function's service account holds exactly what its code calls for, and no
/// principal holds a project-wide basic role.
@Suite struct RoleTests {
    /// One IAM grant as "ROLE on TARGET", its target named by kind and Terraform name.
    struct Grant: Hashable, CustomStringConvertible {
        var role: String
        var target: String
        var description: String { "\(role) on \(target)" }
    }

    /// The grants to each function account (its key in `google_service_account.function`).
    static func grants(_ terraform: Terraform) -> [String: Set<Grant>] {
        let types = ["google_project_iam_member", "google_cloud_run_v2_job_iam_member", "google_cloud_run_v2_service_iam_member",
                     "google_service_account_iam_member", "google_secret_manager_secret_iam_member",
                     "google_artifact_registry_repository_iam_member"]
        var grants: [String: Set<Grant>] = [:]
        for type in types {
            for (_, body) in terraform.resources(type) {
                guard var role = body["role"].string, let member = body["member"].string,
                      let account = member.firstMatch(of: /google_service_account\.function\[(each\.value(?:\.account)?|"([a-z]+)")\]/)
                else { continue }
                if let custom = role.firstMatch(of: /google_project_iam_custom_role\.([a-z_]+)\./) {
                    role = "custom \(custom.output.1)"
                }
                let accounts = account.output.2.map { [String($0)] } ?? forEach(body["for_each"].string ?? "", terraform)
                let target = Self.target(type, body)
                for account in accounts { grants[account, default: []].insert(Grant(role: role, target: target)) }
            }
        }
        return grants
    }

    /// The items of `toset([...])` or `toset(local.x)`, or the accounts of `setproduct(…, [...])`.
    static func forEach(_ expression: String, _ terraform: Terraform) -> [String] {
        if let product = expression.firstMatch(of: /setproduct\([^\[]*\[([^\]]*)\]\)/) {
            return product.output.1.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " \"")) }
        }
        if let local = expression.firstMatch(of: /toset\(local\.([a-z_]+)\)/) {
            return terraform.locals[String(local.output.1)]?.array.compactMap(\.string) ?? []
        }
        // python-hcl2 prints a literal list's strings without their quotes: toset([evaluate, retrain]).
        guard let list = expression.firstMatch(of: /toset\(\[([^\]]*)\]\)/) else { return [] }
        return list.output.1.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " \"")) }
    }

    static func target(_ type: String, _ body: JSONValue) -> String {
        func name(_ text: String?) -> String {
            guard let text else { return "?" }
            if let match = text.firstMatch(of: /google_[a-z0-9_]+\.([a-z_]+)(?:\["([a-z]+)"\]|\[each\.[a-z.]+\])?\./) {
                return String(match.output.2 ?? match.output.1)
            }
            return text
        }
        switch type {
        case "google_project_iam_member": return "project"
        case "google_cloud_run_v2_job_iam_member": return "job \(name(body["name"].string))"
        case "google_cloud_run_v2_service_iam_member": return "service \(name(body["name"].string))"
        case "google_service_account_iam_member": return "account \(name(body["service_account_id"].string))"
        case "google_secret_manager_secret_iam_member": return "secret \(name(body["secret_id"].string))"
        default: return "repository \(name(body["repository"].string))"
        }
    }

    static func source(_ folders: [String]) throws -> String {
        var text = ""
        for folder in folders {
            let url = Repository.root.appendingPathComponent(folder)
            for file in try FileManager.default.contentsOfDirectory(atPath: url.path) where file.hasSuffix(".swift") {
                text += try String(contentsOf: url.appendingPathComponent(file), encoding: .utf8)
            }
        }
        return text
    }

    /// What each account's code needs, read from the code: the database for whoever reads DATABASE_URL;
    /// the retrain job and predict's traffic for the evaluator, which starts retrains and promotes or rolls
    /// back canaries; the registry and predict's revisions for retrain, which deploys; log writing for the
    /// two that log the loop's decisions (the breach alert reads evaluate's); and reading the operations of
    /// the Cloud Run updates either makes, which `CloudRun.wait` polls.
    static func needs(_ terraform: Terraform) throws -> [String: Set<Grant>] {
        let database: Set<Grant> = [Grant(role: "roles/cloudsql.client", target: "project"),
                                    Grant(role: "roles/secretmanager.secretAccessor", target: "secret database_url")]
        let logs = Grant(role: "roles/logging.logWriter", target: "project")
        let operations = try source(["Core/Cloud"]).contains("call(.GET, \"/v2/\\(name)\"")
            ? [Grant(role: "custom run_operations", target: "project")] : Set<Grant>()
        var needs: [String: Set<Grant>] = [:]
        for workload in Workload.all(terraform) {
            guard let account = workload.account else { continue }
            if workload.environment["DATABASE_URL"] != nil { needs[account, default: []].formUnion(database) }
        }
        // The gRPC predict is updated with predict (CloudRunPlatform's mirrors) by both.
        let mirrored = try source(["Core/Cloud"]).contains("grpcService = reader.nonEmpty(\"predict.grpc.service\")")
            && Workload.all(terraform).contains { $0.environment["PREDICT_GRPC_SERVICE"] != nil }
        let mirror: Set<Grant> = mirrored ? [Grant(role: "roles/run.developer", target: "service predict_grpc")] : []
        let evaluate = try source(["Functions/evaluate", "Core/Evaluation"])
        if evaluate.contains("platform.startRetrain(") {
            needs["evaluate", default: []].insert(Grant(role: "roles/run.developer", target: "job retrain"))
        }
        if evaluate.contains("platform.promote(") || evaluate.contains("platform.rollback(") {
            needs["evaluate", default: []].formUnion([Grant(role: "roles/run.developer", target: "service predict"),
                                                       Grant(role: "roles/iam.serviceAccountUser", target: "account predict")])
            needs["evaluate", default: []].formUnion(operations)
            needs["evaluate", default: []].formUnion(mirror)
        }
        // Promoting a shadow deploys the challenger's own image as a new revision: whoever deploys an image
        // needs to read it (Artifact Registry's Cloud Run guide), so evaluate does then.
        if evaluate.contains("platform.promote("),
           try source(["Core/Cloud"]).contains("return try await deploy(try ImageReference(text), of: model, canary: false)")
        {
            needs["evaluate", default: []].insert(Grant(role: "roles/artifactregistry.reader", target: "repository images"))
        }
        if evaluate.contains("alerts.send(") { needs["evaluate", default: []].insert(logs) }
        // retrain deploys through `Rollout` (Core/Evaluation), which asks the platform.
        let retrain = try source(["Functions/retrain"]), rollout = try source(["Core/Evaluation"])
        if retrain.contains("platform.deploy(") || retrain.contains("rollout.deploy(") && rollout.contains("platform.deploy(") {
            needs["retrain", default: []].formUnion([Grant(role: "roles/run.developer", target: "service predict"),
                                                      Grant(role: "roles/iam.serviceAccountUser", target: "account predict"),
                                                      Grant(role: "roles/artifactregistry.writer", target: "repository images"),
                                                      logs])
            needs["retrain", default: []].formUnion(operations)
            needs["retrain", default: []].formUnion(mirror)
        }
        return needs
    }

    @Test func eachAccountHoldsWhatItsCodeNeedsAndNoMore() async throws {
        let terraform = try await Terraform.load()
        let (granted, needed) = (Self.grants(terraform), try Self.needs(terraform))
        #expect(Set(granted.keys) == ["predict", "labels", "evaluate", "retrain", "maintain"])
        for account in Set(granted.keys).union(needed.keys).sorted() {
            let extra = (granted[account] ?? []).subtracting(needed[account] ?? [])
            let missing = (needed[account] ?? []).subtracting(granted[account] ?? [])
            #expect(extra.isEmpty, "\(account) holds \(extra.map(\.description).sorted()), which its code does not need")
            #expect(missing.isEmpty, "\(account) lacks \(missing.map(\.description).sorted()), which its code needs")
        }
        #expect(needed["predict"] == needed["labels"] && needed["predict"]?.count == 2, "predict and label-ingest reach the database only")
    }

    @Test func noBasicRolesAnywhere() async throws {
        let terraform = try await Terraform.load()
        for type in ["google_project_iam_member", "google_project_iam_binding", "google_project_iam_policy"] {
            for (name, body) in terraform.resources(type) {
                #expect(!["roles/owner", "roles/editor", "roles/viewer"].contains(body["role"].string ?? ""),
                        "\(type).\(name) grants \(body["role"].string ?? "")")
                #expect(type == "google_project_iam_member", "\(type).\(name) is authoritative over the whole project")
            }
        }
    }
}
