import Configuration
import CycloneHTTP
import CycloneRuntime
import Foundation
import Logging

@main
struct LabelIngestFunction {
    static func main() async {
        let reader = ConfigReader.cyclone()
        let logger = CloudLogging.bootstrap(label: "label-ingest", reader: reader)
        await FunctionMain.run("label-ingest", reader: reader, logger: logger) { reader in
            let settings = try LabelSettings(reader: reader)
            return (try await buildApplication(settings, logger: logger), [.init(settings.server.port, variable: "PORT")])
        }
    }
}
