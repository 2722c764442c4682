import ArgumentParser
import CycloneCloud
import CycloneModel
import Foundation

struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image", abstract: "Build serving images without Docker.", subcommands: [Append.self])

    struct Append: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Push a serving image: a base image plus one layer holding a model artifact.",
            discussion: """
                Reads the base image (an index resolves to linux/amd64), adds a layer with the artifact at the \
                base's MODEL_PATH (or \(ImageAppend.defaultModelPath)), sets MODEL_NAME, MODEL_VERSION and \
                labels in its config, pushes only the blobs the target lacks (mounting from the base repository \
                when both are on one registry) and the manifest under the target's tag (default: the model's \
                version). The last line printed is the new image by digest, which deployments use. The same \
                artifact on the same base gives the same digest. Artifact Registry hosts (*.pkg.dev) are reached \
                with Google credentials: GOOGLE_APPLICATION_CREDENTIALS, the metadata server, or gcloud.
                """)

        @Option(help: "The base image, such as europe-west1-docker.pkg.dev/PROJECT/cyclone/predict:base.") var base: String
        @Option(help: "The model artifact to serve.") var model: String
        @Option(help: "Where to push the new image (its tag names it).") var to: String
        @Flag(help: "Speak plain HTTP to a registry on loopback (a local test registry).") var insecure = false

        func run() async throws {
            let base: ImageReference, target: ImageReference
            do {
                base = try ImageReference(self.base)
                target = try ImageReference(to)
            } catch { Cyclone.fail("\(error)") }
            for reference in [base, target] where insecure && !reference.isLoopback {
                Cyclone.fail("--insecure is for a registry on loopback, not \(reference.registry)")
            }
            guard let bytes = FileManager.default.contents(atPath: model) else { Cyclone.fail("\(model): cannot read the file") }
            let artifact = Cyclone.model(at: model)
            do {
                // One token cache for both registries.
                let google = [base, target].contains { Self.isGoogle($0.registry) } ? try GoogleCredentials.fromEnvironment() : nil
                let registry = { (host: String) in
                    Registry(host: host, insecure: insecure, credentials: Self.isGoogle(host) ? google : nil)
                }
                let append = ImageAppend(base: base, target: target, baseRegistry: registry(base.registry),
                                         targetRegistry: registry(target.registry))
                let pushed = try await append.push(model: artifact, bytes: Array(bytes))
                print("\(artifact.name)@\(artifact.version) at \(pushed.modelPath) on \(base)")
                print("blobs: \(pushed.uploaded.count) uploaded, \(pushed.mounted.count) mounted, \(pushed.present.count) already there")
                print(pushed.image.description)
            } catch {
                Cyclone.fail("\(error)")
            }
        }

        static func isGoogle(_ host: String) -> Bool { host.hasSuffix(".pkg.dev") || host.hasSuffix("gcr.io") }
    }
}
