import Configuration
import CycloneHTTP
import CycloneRuntime
import Foundation
import Logging

/// The function's entry point: its own executable's `main.swift` calls it, and so does the serve image's
/// multi-call binary (`cyclone-serve`).
public enum PredictFunction {
    public static func main() async {
        let reader = ConfigReader.cyclone()
        let logger = CloudLogging.bootstrap(label: "predict", reader: reader)
        await FunctionMain.run("predict", reader: reader, logger: logger) { reader in
            let settings = try PredictSettings(reader: reader)
            var ports = [FunctionMain.Port(settings.restPort,
                                           variable: reader.nonEmpty("rest.port") == nil ? "PORT" : "REST_PORT")]
            if let grpc = settings.grpcPort { ports.append(.init(grpc, variable: "GRPC_PORT")) }
            return (try await buildApplication(settings, logger: logger), ports)
        }
    }
}
