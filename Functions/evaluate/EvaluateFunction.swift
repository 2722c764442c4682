import Configuration
import CycloneHTTP
import CycloneRuntime
import Foundation
import Logging

/// The function's entry point: its own executable's `main.swift` calls it, and so does the serve image's
/// multi-call binary (`cyclone-serve`).
public enum EvaluateFunction {
    public static func main() async {
        let reader = ConfigReader.cyclone()
        let logger = CloudLogging.bootstrap(label: "evaluate", reader: reader)
        await FunctionMain.run("evaluate", reader: reader, logger: logger) { reader in
            let settings = try EvaluateSettings(reader: reader)
            return (try await buildApplication(settings, logger: logger), [.init(settings.server.port, variable: "PORT")])
        }
    }
}
