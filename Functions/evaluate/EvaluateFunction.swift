import Configuration
import CycloneServer
import Foundation
import Logging
import ServiceLifecycle

@main
struct EvaluateFunction {
    static func main() async {
        let reader = ConfigReader.cyclone()
        let logger = CloudLogging.bootstrap(label: "evaluate", reader: reader)
        do {
            let settings = try EvaluateSettings(reader: reader)
            let app = try await buildApplication(settings, logger: logger)
            try await ServiceGroup.cloudRun([.init(service: app)], logger: logger).run()
        } catch {
            logger.critical("evaluate stopped: \(error)", metadata: ["error": "\(String(reflecting: error))"])
            exit(1)
        }
    }
}
