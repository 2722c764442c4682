import ArgumentParser
import CycloneModel
import CycloneMonitoring
import CycloneTraining
import Foundation

struct EstimateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "estimate",
        abstract: "Estimate a model's performance on unlabelled rows (NannyML's CBPE and DLE), from labelled reference rows.",
        discussion: """
            The model scores both files. On the reference (rows the model is trusted on, with their labels) the \
            estimation decides whether the probabilities need calibrating, fits the calibrator, and sets each \
            metric's alert thresholds (mean ± 3 standard deviations over reference chunks). The current file is \
            cut into chunks of the same size and each metric estimated per chunk with a band of ± 3 sampling \
            errors, equal to nannyml 0.13's estimates. A current file that has the target column also shows the \
            realised value beside each estimate. A regressor is estimated by direct loss estimation: gradient-boosted \
            models learn each reference row's absolute and squared error from its features and prediction, and \
            a chunk's MAE and RMSE come from their predictions.
            """)

    @Option(help: "The model artifact.") var model: String
    @Option(help: "Labelled reference rows: the model's features and its target, a CSV file.") var reference: String
    @Option(help: "The rows to estimate on, a CSV file with the model's features.") var current: String
    @Option(help: "The label column (default: the model's target).") var target: String?
    @Option(help: "Rows per chunk (default: a tenth of the reference rows).") var chunkSize: Int?
    @Flag(help: "Print the estimates as JSON.") var json = false

    func run() throws {
        let artifact = Cyclone.model(at: model)
        guard let target = target ?? artifact.target else { Cyclone.fail("the model names no target: pass --target") }
        if let chunkSize, chunkSize < 1 { Cyclone.fail("--chunk-size must be at least 1, not \(chunkSize)") }
        if artifact.task == .regression { return estimateRegression(artifact, target: target) }
        let classes = artifact.classes ?? []
        let (referenceFile, currentFile) = Cyclone.csvs(at: reference, current)
        guard let labelCells = referenceFile.column(target) else {
            Cyclone.fail("--target '\(target)' is not a column of \(reference): the reference needs its labels")
        }
        let scored = Cyclone.sideBySide([(referenceFile, reference), (currentFile, current)].map { file, path in
            { () throws in artifact.outputs(for: try Self.table(of: artifact, in: file, path: path)) }
        })
        let (referenceOutputs, currentOutputs) = (scored[0], scored[1])
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
        Self.checkChunks(size, referenceRows: labelled.count)
        let counts = (0..<classes.count).map { k in labelled.filter { $0.1 == k }.count }
        guard labelled.count >= 20, counts.allSatisfy({ $0 >= 2 }) else {
            Cyclone.fail("the reference needs at least 20 labelled rows and 2 of each class; it has \(labelled.count) (\(zip(classes, counts).map { "\($0) \($1)" }.joined(separator: ", ")))")
        }
        let chunks = ConfidenceBasedEstimation.chunks(currentOutputs.count, size: size)
        typealias Metric = ConfidenceBasedEstimation.Metric
        func figures(_ estimate: ConfidenceBasedEstimation.Estimate, _ realised: Double?) -> Figures {
            (estimate.value, estimate.samplingError, estimate.lower, estimate.upper, estimate.alert, realised)
        }
        var results: [[String: Figures]] = []
        let metrics: [Metric], thresholds: [Metric: (lower: Double, upper: Double)], calibration: String
        if artifact.task == .binary {
            func row(_ output: Output, _ label: Int?) -> ConfidenceBasedEstimation.Row {
                guard case .classification(let predicted, let probabilities) = output else { fatalError("not a classifier") }
                return .init(probability: probabilities[1], predicted: predicted, label: label)
            }
            guard let estimation = ConfidenceBasedEstimation(reference: labelled.map { row($0.0, $0.1) }, chunkSize: size)
            else { Cyclone.fail("the reference's probabilities are not all finite numbers") }
            (metrics, thresholds) = (estimation.metrics, estimation.thresholds)
            var text = estimation.calibrates ? "calibrated (isotonic)" : "not calibrated"
            if let error = estimation.calibrationError {
                text += String(format: "; expected calibration error %.4g, %.4g after calibration", error.before, error.after)
            }
            calibration = text
            for range in chunks {
                let rows = range.map { row(currentOutputs[$0], realisedLabels?[$0]) }
                let estimates = estimation.estimate(rows)
                let known = rows.filter { $0.label != nil }
                results.append(Dictionary(uniqueKeysWithValues: metrics.map { metric in
                    (metric.rawValue, figures(estimates[metric]!, known.isEmpty ? nil : ConfidenceBasedEstimation.realised(
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
            (metrics, thresholds) = (estimation.metrics, estimation.thresholds)
            let calibrated = zip(classes, estimation.calibrates).filter(\.1).map(\.0)
            calibration = calibrated.isEmpty ? "not calibrated" : "calibrated (isotonic, one against the rest) for \(calibrated.joined(separator: ", "))"
            for range in chunks {
                let rows = range.map { row(currentOutputs[$0], realisedLabels?[$0]) }
                let estimates = estimation.estimate(rows)
                let known = rows.filter { $0.label != nil }
                results.append(Dictionary(uniqueKeysWithValues: metrics.map { metric in
                    (metric.rawValue, figures(estimates[metric]!, known.isEmpty ? nil : Multiclass.realised(metric, known, classCount: classes.count)))
                }))
            }
        }
        print(artifact, method: "cbpe", detail: calibration, referenceRows: labelled.count, size: size,
              metrics: metrics.map(\.rawValue),
              thresholds: Dictionary(uniqueKeysWithValues: metrics.compactMap { m in thresholds[m].map { (m.rawValue, $0) } }),
              chunks: chunks, results: results)
    }

    /// A regressor: direct loss estimation of MAE and RMSE per chunk.
    private func estimateRegression(_ artifact: ModelArtifact, target: String) {
        let (referenceFile, currentFile) = Cyclone.csvs(at: reference, current)
        guard let labelCells = referenceFile.column(target) else {
            Cyclone.fail("--target '\(target)' is not a column of \(reference): the reference needs its labels")
        }
        func numbers(_ cells: [String], _ path: String) -> [Double] {
            do {
                guard case .numeric(let values) = try FeatureTable.parse(cells, as: .numeric, column: target) else { return [] }
                return values
            } catch {
                Cyclone.fail("\(path): \(error)")
            }
        }
        let labels = numbers(labelCells, reference)
        let scored = Cyclone.sideBySide([(referenceFile, reference), (currentFile, current)].map { file, path in
            { () throws -> (FeatureTable, [Double]) in
                let table = try Self.table(of: artifact, in: file, path: path)
                return (table, artifact.outputs(for: table).map { if case .value(let value) = $0 { value } else { Double.nan } })
            }
        })
        let (referenceTable, referencePredictions) = scored[0], (currentTable, currentPredictions) = scored[1]
        let realisedLabels = currentFile.column(target).map { numbers($0, current) }
        let size = chunkSize ?? max(1, labels.filter(\.isFinite).count / 10)
        Self.checkChunks(size, referenceRows: labels.filter(\.isFinite).count)
        let estimation: DirectLossEstimation
        do {
            estimation = try DirectLossEstimation(reference: referenceTable, predictions: referencePredictions,
                                                  labels: labels, chunkSize: size)
        } catch {
            Cyclone.fail("\(reference): \(error.description)")
        }
        let chunks = ConfidenceBasedEstimation.chunks(currentPredictions.count, size: size)
        let results = chunks.map { range in
            let estimates = estimation.estimate(currentTable.selecting(rows: Array(range)),
                                                predictions: Array(currentPredictions[range]))
            return Dictionary(uniqueKeysWithValues: estimation.metrics.map { metric -> (String, Figures) in
                let estimate = estimates[metric]!
                return (metric.rawValue, (estimate.value, estimate.samplingError, estimate.lower, estimate.upper, estimate.alert,
                                          realisedLabels.map { DirectLossEstimation.realised(
                                              metric, predictions: Array(currentPredictions[range]), labels: Array($0[range])) }))
            })
        }
        let thresholds = Dictionary(uniqueKeysWithValues: estimation.metrics.map { ($0.rawValue, estimation.thresholds[$0]!) })
        let referenceRows = labels.filter(\.isFinite).count
        print(artifact, method: "dle", detail: "loss models: gradient boosting on the features and the prediction",
              referenceRows: referenceRows, size: size, metrics: estimation.metrics.map(\.rawValue), thresholds: thresholds,
              chunks: chunks, results: results)
    }

    /// The alert thresholds are the spread of the metric over reference chunks: fewer than two chunks have
    /// none, and a band of zero width would alert on everything.
    static func checkChunks(_ size: Int, referenceRows: Int) {
        guard referenceRows / size >= 2 else {
            Cyclone.fail("--chunk-size \(size) leaves \(referenceRows / size) whole chunk(s) of the \(referenceRows) labelled reference rows; the alert thresholds need at least 2 (at most \(max(1, referenceRows / 2)) rows a chunk)")
        }
    }

    /// One chunk's estimate of one metric: value, sampling error, band, alert and the realised value if known.
    typealias Figures = (value: Double, samplingError: Double, lower: Double, upper: Double, alert: Bool, realised: Double?)

    /// Prints the estimates, as JSON with `--json`.
    private func print(_ artifact: ModelArtifact, method: String, detail: String, referenceRows: Int, size: Int,
                       metrics: [String], thresholds: [String: (lower: Double, upper: Double)], chunks: [Range<Int>],
                       results: [[String: Figures]])
    {
        if json {
            func number(_ x: Double?) -> JSONValue { x.map { $0.isFinite ? .number($0) : .null } ?? .null }
            let body: JSONValue = .object([
                "model": .string(artifact.name), "version": .string(artifact.version), "task": .string(artifact.task.rawValue),
                "method": .string(method), "detail": .string(detail), "reference_rows": .number(Double(referenceRows)),
                "chunk_size": .number(Double(size)),
                "thresholds": .object(Dictionary(uniqueKeysWithValues: metrics.map { metric in
                    (metric, JSONValue.array([number(thresholds[metric]?.lower), number(thresholds[metric]?.upper)]))
                })),
                "chunks": .array(zip(chunks, results).map { range, estimates in
                    .object(["start": .number(Double(range.lowerBound)), "end": .number(Double(range.upperBound)),
                             "estimates": .object(Dictionary(uniqueKeysWithValues: metrics.map { metric in
                                 let figures = estimates[metric]!
                                 return (metric, JSONValue.object([
                                     "value": number(figures.value), "sampling_error": number(figures.samplingError),
                                     "lower": number(figures.lower), "upper": number(figures.upper),
                                     "alert": .bool(figures.alert), "realised": number(figures.realised),
                                 ]))
                             }))])
                }),
            ])
            Swift.print(body.jsonText)
            return
        }
        Swift.print("\(artifact.name)@\(artifact.version) (\(artifact.task.rawValue)): \(method.uppercased()) on \(referenceRows) labelled reference rows, \(detail); chunks of \(size) rows")
        for metric in metrics {
            guard let band = thresholds[metric] else { continue }
            Swift.print(String(format: "  %@ alerts outside [%.4f, %.4f]", metric, band.lower, band.upper))
        }
        for (range, estimates) in zip(chunks, results) {
            var line = "rows \(range.lowerBound + 1)–\(range.upperBound):"
            for metric in metrics {
                let figures = estimates[metric]!
                line += String(format: "  %@ %.4f [%.4f, %.4f]", metric, figures.value, figures.lower, figures.upper)
                if let realised = figures.realised { line += String(format: " (realised %.4f)", realised) }
                if figures.alert { line += " ALERT" }
            }
            Swift.print(line)
        }
    }

    /// The model's features in a file, typed as in training, or a failure naming the file.
    private static func table(of artifact: ModelArtifact, in file: CSV, path: String) throws(Cyclone.Failure) -> FeatureTable {
        if let absent = artifact.features.first(where: { !file.header.contains($0.name) }) {
            throw Cyclone.Failure(description: "the model's feature '\(absent.name)' is not a column of \(path)")
        }
        do {
            let kinds = Dictionary(uniqueKeysWithValues: artifact.features.map { ($0.name, $0.kind) })
            return try FeatureTable(csv: file, columns: artifact.features.map(\.name), kinds: kinds)
        } catch {
            throw Cyclone.Failure(description: "\(path): \(error)")
        }
    }
}
