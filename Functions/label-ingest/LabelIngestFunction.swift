import Configuration
import CycloneServer
import Foundation
import Logging
import ServiceLifecycle

@main
struct LabelIngestFunction {
    static func main() async {
        let reader = ConfigReader.cyclone()
        let logger = CloudLogging.bootstrap(label: "label-ingest", reader: reader)
        do {
            let settings = try LabelSettings(reader: reader)
            let app = try await buildApplication(settings, logger: logger)
            try await ServiceGroup.cloudRun([.init(service: app)], logger: logger).run()
        } catch {
            logger.critical("label-ingest stopped: \(error)", metadata: ["error": "\(String(reflecting: error))"])
            exit(1)
        }
    }
}
