import CycloneCLI
import Evaluate
import Foundation
import LabelIngest
import Predict

// The serve image's one binary for its four commands, as busybox is for its applets: each is a link of its
// own name to this file (`/usr/local/bin/predict` → `cyclone-serve`), and the name it is run by picks the
// command. The four share their Swift runtime, Foundation (with its 34 MB of ICU data) and their
// dependencies, which four static binaries each carried whole: the image is a quarter of the size.
let commands: [String: @Sendable () async -> Void] = [
    "predict": { await PredictFunction.main() },
    "label-ingest": { await LabelIngestFunction.main() },
    "evaluate": { await EvaluateFunction.main() },
    "cyclone": { await Cyclone.main() },
]
let name = (CommandLine.arguments.first ?? "").split(separator: "/").last.map(String.init) ?? ""
guard let command = commands[name] else {
    FileHandle.standardError.write(Data("cyclone-serve: run it by a link named \(commands.keys.sorted().joined(separator: ", ")), not as '\(name)'\n".utf8))
    exit(2)
}
await command()
