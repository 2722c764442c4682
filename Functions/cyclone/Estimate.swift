import ArgumentParser
import CycloneModel
import CycloneMonitoring
import CycloneTraining
import Foundation

struct EstimateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "estimate",
        abstract: "Estimate a classifier's performance on unlabelled rows (NannyML's CBPE), from labelled reference rows.",
        discussion: """
            The model scores both files. On the reference (rows the model is trusted on, with their labels) the \
            estimation decides whether the probabilities need calibrating, fits the calibrator, and sets each \
            metric's alert thresholds (mean ± 3 standard deviations over reference chunks). The current file is \
            cut into chunks of the same size and each metric estimated per chunk with a band of ± 3 sampling \
            errors, equal to nannyml 0.13's estimates. A current file that has the target column also shows the \
            realised value beside each estimate. Regressors (direct loss estimation) are not supported yet.
            """)

    @Option(help: "The model artifact (a binary or multiclass classifier).") var model: String
    @Option(help: "Labelled reference rows: the model's features and its target, a CSV file.") var reference: String
    @Option(help: "The rows to estimate on, a CSV file with the model's features.") var current: String
    @Option(help: "The label column (default: the model's target).") var target: String?
    @Option(help: "Rows per chunk (default: a tenth of the reference rows).") var chunkSize: Int?
    @Flag(help: "Print the estimates as JSON.") var json = false

    func run() throws {
        let artifact = Cyclone.model(at: model)
        guard artifact.task != .regression else {
            Cyclone.fail("\(artifact.name)@\(artifact.version) is a regressor: only classifiers can be estimated yet (CBPE); direct loss estimation for regressors is not built")
        }
        guard let target = target ?? artifact.target else { Cyclone.fail("the model names no target: pass --target") }
        let classes = artifact.classes ?? []
        let referenceFile = Cyclone.csv(at: reference), currentFile = Cyclone.csv(at: current)
        guard let labelCells = referenceFile.column(target) else {
            Cyclone.fail("--target '\(target)' is not a column of \(reference): the reference needs its labels")
        }
        if let chunkSize, chunkSize < 1 { Cyclone.fail("--chunk-size must be at least 1, not \(chunkSize)") }
        let referenceOutputs = outputs(of: artifact, in: referenceFile, path: reference)
        let currentOutputs = outputs(of: artifact, in: currentFile, path: current)
        // Labels as class indices; a reference row without one is left out, one outside the classes is an error.
        var labels: [Int?] = []
        for (row, cell) in labelCells.enumerated() {
            if cell.isEmpty { labels.append(nil); continue }
            guard let index = classes.firstIndex(of: cell) else {
                Cyclone.fail("\(reference) row \(row + 1): label '\(cell)' is not one of the model's classes (\(classes.prefix(20).joined(separator: ", ")))")
            }
            labels.append(index)
        }
        let realisedLabels: [Int?]? = currentFile.column(target).map { cells in
            cells.map { $0.isEmpty ? nil : classes.firstIndex(of: $0) }
        }
        let labelled = zip(referenceOutputs, labels).compactMap { output, label in label.map { (output, $0) } }
        let size = chunkSize ?? max(1, labelled.count / 10)
        let counts = (0..<classes.count).map { k in labelled.filter { $0.1 == k }.count }
        guard labelled.count >= 20, counts.allSatisfy({ $0 >= 2 }) else {
            Cyclone.fail("the reference needs at least 20 labelled rows and 2 of each class; it has \(labelled.count) (\(zip(classes, counts).map { "\($0) \($1)" }.joined(separator: ", ")))")
        }
        let chunks = ConfidenceBasedEstimation.chunks(currentOutputs.count, size: size)
        var results: [[ConfidenceBasedEstimation.Metric: (ConfidenceBasedEstimation.Estimate, Double?)]] = []
        let metrics: [ConfidenceBasedEstimation.Metric]
        let thresholds: [ConfidenceBasedEstimation.Metric: (lower: Double, upper: Double)]
        var calibration: String
        if artifact.task == .binary {
            func row(_ output: Output, _ label: Int?) -> ConfidenceBasedEstimation.Row {
                guard case .classification(let predicted, let probabilities) = output else { fatalError("not a classifier") }
                return .init(probability: probabilities[1], predicted: predicted, label: label)
            }
            guard let estimation = ConfidenceBasedEstimation(reference: labelled.map { row($0.0, $0.1) }, chunkSize: size)
            else { Cyclone.fail("the reference's probabilities are not all finite numbers") }
            metrics = estimation.metrics
            thresholds = estimation.thresholds
            calibration = estimation.calibrates ? "calibrated (isotonic)" : "not calibrated"
            if let error = estimation.calibrationError {
                calibration += String(format: "; expected calibration error %.4g, %.4g after calibration", error.before, error.after)
            }
            for range in chunks {
                let rows = range.map { row(currentOutputs[$0], realisedLabels?[$0]) }
                let estimates = estimation.estimate(rows)
                let known = rows.filter { $0.label != nil }
                results.append(Dictionary(uniqueKeysWithValues: metrics.map { metric in
                    (metric, (estimates[metric]!, known.isEmpty ? nil : ConfidenceBasedEstimation.realised(
                        metric, labels: known.map { $0.label! }, predicted: known.map(\.predicted),
                        probabilities: known.map(\.probability))))
                }))
            }
        } else {
            typealias Multiclass = MulticlassConfidenceBasedEstimation
            func row(_ output: Output, _ label: Int?) -> Multiclass.Row {
                guard case .classification(let predicted, let probabilities) = output else { fatalError("not a classifier") }
                return .init(probabilities: probabilities, predicted: predicted, label: label)
            }
            guard let estimation = Multiclass(reference: labelled.map { row($0.0, $0.1) }, classCount: classes.count,
                                              chunkSize: size)
            else { Cyclone.fail("the reference's probabilities are not all finite numbers") }
            metrics = estimation.metrics
            thresholds = estimation.thresholds
            let calibrated = zip(classes, estimation.calibrates).filter(\.1).map(\.0)
            calibration = calibrated.isEmpty ? "not calibrated" : "calibrated (isotonic, one against the rest) for \(calibrated.joined(separator: ", "))"
            for range in chunks {
                let rows = range.map { row(currentOutputs[$0], realisedLabels?[$0]) }
                let estimates = estimation.estimate(rows)
                let known = rows.filter { $0.label != nil }
                results.append(Dictionary(uniqueKeysWithValues: metrics.map { metric in
                    (metric, (estimates[metric]!, known.isEmpty ? nil : Multiclass.realised(metric, known, classCount: classes.count)))
                }))
            }
        }

        if json {
            func number(_ x: Double?) -> JSONValue { x.map { $0.isFinite ? .number($0) : .null } ?? .null }
            let body: JSONValue = .object([
                "model": .string(artifact.name), "version": .string(artifact.version), "task": .string(artifact.task.rawValue),
                "method": "cbpe", "calibration": .string(calibration), "reference_rows": .number(Double(labelled.count)),
                "chunk_size": .number(Double(size)),
                "thresholds": .object(Dictionary(uniqueKeysWithValues: metrics.map { metric in
                    (metric.rawValue, JSONValue.array([number(thresholds[metric]?.lower), number(thresholds[metric]?.upper)]))
                })),
                "chunks": .array(zip(chunks, results).map { range, estimates in
                    .object(["start": .number(Double(range.lowerBound)), "end": .number(Double(range.upperBound)),
                             "estimates": .object(Dictionary(uniqueKeysWithValues: metrics.map { metric in
                                 let (estimate, realised) = estimates[metric]!
                                 return (metric.rawValue, JSONValue.object([
                                     "value": number(estimate.value), "sampling_error": number(estimate.samplingError),
                                     "lower": number(estimate.lower), "upper": number(estimate.upper),
                                     "alert": .bool(estimate.alert), "realised": number(realised),
                                 ]))
                             }))])
                }),
            ])
            print(body.jsonText)
            return
        }
        print("\(artifact.name)@\(artifact.version) (\(artifact.task.rawValue)): CBPE on \(labelled.count) labelled reference rows, \(calibration); chunks of \(size) rows")
        for metric in metrics {
            guard let band = thresholds[metric] else { continue }
            print(String(format: "  %@ alerts outside [%.4f, %.4f]", metric.rawValue, band.lower, band.upper))
        }
        for (range, estimates) in zip(chunks, results) {
            var line = "rows \(range.lowerBound + 1)–\(range.upperBound):"
            for metric in metrics {
                let (estimate, realised) = estimates[metric]!
                line += String(format: "  %@ %.4f [%.4f, %.4f]", metric.rawValue, estimate.value, estimate.lower, estimate.upper)
                if let realised { line += String(format: " (realised %.4f)", realised) }
                if estimate.alert { line += " ALERT" }
            }
            print(line)
        }
    }

    /// The model's outputs on every row of a file, or a failure naming the file.
    private func outputs(of artifact: ModelArtifact, in file: CSV, path: String) -> [Output] {
        if let absent = artifact.features.first(where: { !file.header.contains($0.name) }) {
            Cyclone.fail("the model's feature '\(absent.name)' is not a column of \(path)")
        }
        do {
            let kinds = Dictionary(uniqueKeysWithValues: artifact.features.map { ($0.name, $0.kind) })
            return artifact.outputs(for: try FeatureTable(csv: file, columns: artifact.features.map(\.name), kinds: kinds))
        } catch {
            Cyclone.fail("\(path): \(error)")
        }
    }
}
