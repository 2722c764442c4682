import Configuration
import CycloneHTTP
import CycloneRuntime
import Foundation
import Logging

@main
struct EvaluateFunction {
    static func main() async {
        let reader = ConfigReader.cyclone()
        let logger = CloudLogging.bootstrap(label: "evaluate", reader: reader)
        await FunctionMain.run("evaluate", reader: reader, logger: logger) { reader in
            let settings = try EvaluateSettings(reader: reader)
            return (try await buildApplication(settings, logger: logger), [.init(settings.server.port, variable: "PORT")])
        }
    }
}
