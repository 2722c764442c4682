import Configuration
import CycloneModel
import CycloneRuntime
import CycloneStore
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
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

        // The pool runs first and stops last; the run stops first, on SIGTERM (Cloud Run sends it on
        // cancellation and task timeout, then SIGKILL 10 s later). The signal is trapped before any work starts,
        // so it is never the default, unrecorded death. The process ends as soon as the run has its result
        // (and any failure is recorded): it does not wait for the pool to close, which can take a connect
        // timeout when the database is gone.
        let client = PostgresClient(configuration: settings.database.configuration, backgroundLogger: logger)
        let runner = DatabaseRunner(client)
        let run = RetrainRun(settings: settings, runner: runner, logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: runner),
                       .init(service: run, successTerminationBehavior: .gracefullyShutdownGroup,
                             failureTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm], logger: logger))
        Task {
            do { try await group.run() } catch { run.result.finish(.failure(error)) }
        }
        let result: Result<RetrainJob.Report, any Error>
        do { result = .success(try await run.result.value) } catch { result = .failure(error) }

        switch result {
        case .success(let report):
            logger.info("retrain finished", metadata: [
                "model": "\(settings.modelName)", "version": "\(report.version)", "accepted": "\(report.accepted)",
                "read_seconds": "\(report.readSeconds)", "train_seconds": "\(report.trainSeconds)",
                "register_seconds": "\(report.registerSeconds)",
            ])
            print(report.line)
        case .failure(let error) where run.terminated.load(ordering: .relaxed):
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

/// The one retrain, as the group's service: on shutdown (SIGTERM) the job is cancelled (honoured between
/// stages; a registered candidate's deployment and record go on) and given 6 s; a stage that ignores
/// cancellation (training, a driver call) is left behind, so the failure is recorded in time. A failure is
/// recorded as a `retrain_failed` event, best effort and for at most 3 s (6 + 3 s stays inside Cloud Run's
/// 10 s before SIGKILL), before `result` is given.
final class RetrainRun: Service, Sendable {
    let settings: RetrainSettings
    let runner: DatabaseRunner
    let logger: Logger
    /// The run's report or failure, once it is recorded.
    let result = FirstOutcome<RetrainJob.Report>()
    /// Whether SIGTERM ended the run.
    let terminated = Atomic(false)

    init(settings: RetrainSettings, runner: DatabaseRunner, logger: Logger) {
        self.settings = settings
        self.runner = runner
        self.logger = logger
    }

    func run() async {
        await runner.running()
        let (settings, client, logger) = (settings, runner.client, logger)
        let outcome = FirstOutcome<RetrainJob.Report>()
        let job = Task {
            do { outcome.finish(.success(try await RetrainJob(settings: settings, client: client, logger: logger).run())) }
            catch { outcome.finish(.failure(error)) }
        }
        let ending: Result<RetrainJob.Report, any Error> = await withGracefulShutdownHandler {
            do { return .success(try await outcome.value) } catch { return .failure(error) }
        } onGracefulShutdown: {
            self.terminated.store(true, ordering: .relaxed)
            job.cancel()
            Task {
                try? await Task.sleep(for: .seconds(6))
                outcome.finish(.failure(CancellationError()))
            }
        }
        if case .failure(let error) = ending {
            // Best effort: the evaluator's trail says the retrain ended.
            let reason = terminated.load(ordering: .relaxed)
                ? "cancelled (SIGTERM)" + (error is CancellationError ? "" : ": \(error)") : "\(error)"
            _ = try? await withTimeout(.seconds(3)) {
                try await EvaluationStore(client: client, logger: logger).event(
                    .retrainFailed, name: settings.modelName, version: settings.parentVersion,
                    detail: .object(["reason": .string(reason),
                                     "request_event": settings.eventID.map { .number(Double($0)) } ?? .null]))
            }
        }
        result.finish(ending)
    }
}
