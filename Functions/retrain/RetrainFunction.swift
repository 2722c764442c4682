import Configuration
import CycloneModel
import CycloneRuntime
import CycloneStore
import Foundation
import Logging
import PostgresNIO
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// The retrain job: runs once and exits 0 with one line saying what it registered, or non-zero with one line
/// saying why not (Cloud Run marks the task failed). SIGTERM cancels it between stages and exits 143 within
/// about 6 s, with `retrain_failed` recorded.
@main
struct RetrainFunction {
    static func main() async {
        let reader = ConfigReader.cyclone()
        let logger = CloudLogging.bootstrap(label: "retrain", reader: reader)
        let settings: RetrainSettings
        do { settings = try RetrainSettings(reader: reader) } catch { fail("\(error)", status: 2) }

        // Trapped before any work starts, so a SIGTERM is never the default, unrecorded death.
        let sigterm = await UnixSignalsSequence(trapping: .sigterm)
        let client = PostgresClient(configuration: settings.database.configuration, backgroundLogger: logger)
        let runner = DatabaseRunner(client)
        let pool = Task { await runner.run() }
        await runner.running()
        // The job's result, or SIGTERM's: Cloud Run sends it on cancellation and task timeout, then SIGKILL
        // 10 s later. The job is cancelled (honoured between stages; a registered candidate's deployment and
        // record go on) and given 6 s; a stage that ignores cancellation (training, a driver call) is left
        // behind, so the failure is recorded in time.
        let outcome = FirstOutcome<RetrainJob.Report>()
        let terminated = Atomic(false)
        let job = Task {
            do { outcome.finish(.success(try await RetrainJob(settings: settings, client: client, logger: logger).run())) }
            catch { outcome.finish(.failure(error)) }
        }
        let signals = Task {
            for await _ in sigterm {
                terminated.store(true, ordering: .relaxed)
                job.cancel()
                try? await Task.sleep(for: .seconds(6))
                outcome.finish(.failure(CancellationError()))
                return
            }
        }
        let result: Result<RetrainJob.Report, any Error>
        do { result = .success(try await outcome.value) } catch { result = .failure(error) }
        signals.cancel()
        if case .failure(let error) = result {
            // Best effort: the evaluator's trail says the retrain ended.
            let kind = terminated.load(ordering: .relaxed) ? "cancelled (SIGTERM)" + (error is CancellationError ? "" : ": \(error)") : "\(error)"
            _ = try? await withTimeout(.seconds(5)) {
                try await EvaluationStore(client: client, logger: logger).event(
                    .retrainFailed, name: settings.modelName, version: settings.parentVersion,
                    detail: .object(["reason": .string(kind),
                                     "request_event": settings.eventID.map { .number(Double($0)) } ?? .null]))
            }
        }
        pool.cancel()
        switch result {
        case .success(let report):
            logger.info("retrain finished", metadata: [
                "model": "\(settings.modelName)", "version": "\(report.version)", "accepted": "\(report.accepted)",
                "read_seconds": "\(report.readSeconds)", "train_seconds": "\(report.trainSeconds)",
                "register_seconds": "\(report.registerSeconds)",
            ])
            print(report.line)
        case .failure(let error) where terminated.load(ordering: .relaxed):
            fail("cancelled by SIGTERM" + (error is CancellationError ? "" : " (\(error))"), status: 143)
        case .failure(let error) where error is PSQLError || error is TimeoutError:
            // One reading of PostgreSQL's failures across the functions (`StoreProblem`).
            let problem = StoreProblem(error)
            fail(problem == .unavailable ? "cannot reach PostgreSQL (\(error))" : problem.explanation)
        case .failure(let error):
            fail("\(error)")
        }
    }

    static func fail(_ message: String, status: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("retrain: \(message)\n".utf8))
        exit(status)
    }
}
