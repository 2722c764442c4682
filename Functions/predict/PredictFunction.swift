import Configuration
import CycloneHTTP
import CycloneRuntime
import Foundation
import Logging

@main
struct PredictFunction {
    static func main() async {
        let reader = ConfigReader.cyclone()
        let logger = CloudLogging.bootstrap(label: "predict", reader: reader)
        await FunctionMain.run("predict", reader: reader, logger: logger) { reader in
            let settings = try PredictSettings(reader: reader)
            return (try await buildApplication(settings, logger: logger), settings.restPort)
        }
    }
}
