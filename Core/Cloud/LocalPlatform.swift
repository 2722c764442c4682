import Foundation

/// The platform of a single machine. With a retrain command it starts that command as a child process (the
/// `retrain` executable, say) with the request in its environment; without one it only acknowledges the
/// request, which the evaluator has already written to the event trail.
public struct LocalPlatform: Platform {
    /// The executable and its arguments, or `nil` to record requests only.
    public var retrainCommand: [String]?

    public init(retrainCommand: [String]? = nil) {
        self.retrainCommand = retrainCommand
    }

    public func startRetrain(_ request: RetrainRequest) async throws -> RetrainExecution {
        guard let command = retrainCommand, let executable = command.first else {
            return RetrainExecution(id: "recorded-\(request.eventID)",
                                    detail: "recorded; no retrain command is configured (RETRAIN_COMMAND)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(command.dropFirst())
        var environment = ProcessInfo.processInfo.environment
        environment["RETRAIN_MODEL_NAME"] = request.modelName
        environment["RETRAIN_PARENT_VERSION"] = request.modelVersion
        environment["RETRAIN_EVENT_ID"] = "\(request.eventID)"
        environment["RETRAIN_REASON"] = request.reason
        process.environment = environment
        // Foundation reaps it when it exits; the retrain reports its own outcome to the event trail.
        try process.run()
        return RetrainExecution(id: "pid-\(process.processIdentifier)",
                                detail: "started \(executable) as process \(process.processIdentifier)")
    }
}
