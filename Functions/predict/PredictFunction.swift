import Configuration
import CycloneServer
import Foundation
import Logging
import ServiceLifecycle

@main
struct PredictFunction {
    static func main() async {
        let reader = ConfigReader.cyclone()
        let logger = CloudLogging.bootstrap(label: "predict", reader: reader)
        do {
            let settings = try PredictSettings(reader: reader)
            let app = try await buildApplication(settings, logger: logger)
            try await ServiceGroup.cloudRun([.init(service: app)], logger: logger).run()
        } catch {
            logger.critical("predict stopped: \(error)", metadata: ["error": "\(String(reflecting: error))"])
            exit(1)
        }
    }
}
