import Configuration
import CycloneModel
import CycloneServer
import CycloneStore
import Dispatch
import Foundation
import Logging
import PostgresNIO
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The retrain job: runs once and exits 0 with one line saying what it registered, or non-zero with one line
/// saying why not (Cloud Run marks the task failed). SIGTERM cancels it between stages.
@main
struct RetrainFunction {
    static func main() async {
        let reader = ConfigReader.cyclone()
        let logger = CloudLogging.bootstrap(label: "retrain", reader: reader)
        let settings: RetrainSettings
        do { settings = try RetrainSettings(reader: reader) } catch { fail("\(error)", status: 2) }

        let client = PostgresClient(configuration: settings.database.configuration, backgroundLogger: logger)
        // Set by the signal: a query cancelled mid-way may fail with a database error, not CancellationError.
        let terminated = Atomic(false)
        let outcome: Result<RetrainJob.Report, any Error> = await withTaskGroup(of: Result<RetrainJob.Report, any Error>?.self) { group in
            group.addTask { await client.run(); return nil }
            let job = Task { try await RetrainJob(settings: settings, client: client, logger: logger).run() }
            signal(SIGTERM, SIG_IGN)
            let sigterm = DispatchSource.makeSignalSource(signal: SIGTERM)
            sigterm.setEventHandler {
                terminated.store(true, ordering: .relaxed)
                job.cancel()
            }
            sigterm.resume()
            let result = await job.result
            sigterm.cancel()
            if case .failure(let error) = result {
                // Best effort: the evaluator's trail says the retrain ended.
                let kind = terminated.load(ordering: .relaxed) ? "cancelled (SIGTERM): \(error)" : "\(error)"
                _ = try? await withTimeout(.seconds(5)) {
                    try await EvaluationStore(client: client, logger: logger).event(
                        .retrainFailed, name: settings.modelName, version: settings.parentVersion,
                        detail: .object(["reason": .string(kind),
                                         "request_event": settings.eventID.map { .number(Double($0)) } ?? .null]))
                }
            }
            group.cancelAll()
            return result
        }
        switch outcome {
        case .success(let report):
            logger.info("retrain finished", metadata: [
                "model": "\(settings.modelName)", "version": "\(report.version)", "accepted": "\(report.accepted)",
                "read_seconds": "\(report.readSeconds)", "train_seconds": "\(report.trainSeconds)",
                "register_seconds": "\(report.registerSeconds)",
            ])
            print(report.line)
        case .failure(let error) where terminated.load(ordering: .relaxed):
            fail("cancelled by SIGTERM" + (error is CancellationError ? "" : " (\(error))"), status: 143)
        case .failure(let error as PSQLError):
            fail(error.serverInfo?[.message].map { "PostgreSQL: \($0)" } ?? "cannot reach PostgreSQL (\(error.code))")
        case .failure(let error):
            fail("\(error)")
        }
    }

    static func fail(_ message: String, status: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("retrain: \(message)\n".utf8))
        exit(status)
    }
}
