import ArgumentParser
import Configuration
import CycloneEvaluation
import CycloneModel
import CycloneMonitoring
import CycloneRuntime
import Foundation

struct DriftCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift",
        abstract: "Compare two CSV files column by column: drift tests, PSI, data-quality checks and the dataset verdict.",
        discussion: """
            The same tests the evaluator runs on a window against its model's reference, chosen as Evidently \
            chooses them: up to 1,000 reference rows, Kolmogorov–Smirnov (numeric), the Z-test (two categories) \
            or chi-squared (p < 0.05, the columns' p-values corrected together unless --correction none); above that, the Wasserstein distance in reference standard deviations \
            (≥ 0.1) or the Jensen–Shannon distance (≥ 0.1). The dataset drifts when half the columns tested do. \
            Column types are inferred from the reference as cyclone train infers them; the current file is read \
            with those types, and a cell of another type counts as invalid. Data-quality thresholds come from \
            DATA_QUALITY_MISSING, DATA_QUALITY_INVALID, DATA_QUALITY_OUT_OF_RANGE and DATA_QUALITY_UNSEEN, as for \
            the evaluator. The multivariate check fits a PCA on the reference's columns (standardised; a category \
            as its share of the reference) and compares the current file's mean reconstruction error with the \
            reference's, as NannyML's data reconstruction drift does: it sees a change in how the columns move \
            together that no single column shows.
            """)

    @Option(help: "The reference data (for example the training data), a CSV file with a header row.") var reference: String
    @Option(help: "The data to compare with it, a CSV file with the reference's columns.") var current: String
    @Option(parsing: .upToNextOption, help: "Columns to compare (several, or a,b; default: every column of the reference).")
    var columns: [String] = []
    @Option(parsing: .upToNextOption, help: "Columns to leave out (several, or a,b).") var ignore: [String] = []
    @Option(parsing: .upToNextOption, help: "Columns to read as categorical (several, or a,b).") var categorical: [String] = []
    @Option(parsing: .upToNextOption, help: "Columns to read as numeric (several, or a,b).") var numeric: [String] = []
    @Option(parsing: .upToNextOption, help: "Columns to read as boolean (several, or a,b).") var boolean: [String] = []
    @Option(help: "bh: the columns' p-values corrected together (Benjamini–Hochberg), as the evaluator does; none: each at 0.05, as Evidently.")
    var correction: String = "bh"
    @Flag(help: "Print the comparison as JSON.") var json = false

    mutating func validate() throws {
        func split(_ names: [String]) -> [String] {
            names.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
        }
        (columns, ignore, categorical, numeric, boolean) = (split(columns), split(ignore), split(categorical),
                                                            split(numeric), split(boolean))
    }

    func run() throws {
        let quality: DataQualityOptions
        do { quality = try DataQualityOptions(reader: ConfigReader.cyclone()) } catch {
            Cyclone.fail("\(error)")
        }
        let clock = ContinuousClock(), start = clock.now
        let (referenceFile, currentFile) = Cyclone.csvs(at: reference, current)
        guard referenceFile.rowCount > 0 else { Cyclone.fail("\(reference) has a header and no rows: nothing to compare with") }
        guard currentFile.rowCount > 0 else { Cyclone.fail("\(current) has a header and no rows: nothing to compare") }
        var named = Set<String>()
        let chosen = (columns.isEmpty ? referenceFile.header : columns).filter { !ignore.contains($0) && named.insert($0).inserted }
        for name in columns + ignore + categorical + numeric + boolean where !referenceFile.header.contains(name) {
            Cyclone.fail("\(reference) has no column '\(name)' (its columns: \(referenceFile.header.prefix(20).joined(separator: ", ")))")
        }
        guard !chosen.isEmpty else { Cyclone.fail("no column left to compare") }
        if let (check, name) = quality.unknownException(among: chosen) {
            Cyclone.fail("DATA_QUALITY_\(check.rawValue.uppercased()) names '\(name)', which is not a compared column (\(chosen.prefix(20).joined(separator: ", ")))")
        }
        var options = DriftOptions()
        guard let correction = DriftOptions.Correction(rawValue: correction) else {
            Cyclone.fail("--correction must be bh or none, not '\(correction)'")
        }
        options.correction = correction
        var kinds: [String: Feature.Kind] = [:]
        for (names, kind) in [(categorical, Feature.Kind.categorical), (numeric, .numeric), (boolean, .boolean)] {
            for name in names {
                if let other = kinds[name], other != kind {
                    Cyclone.fail("column '\(name)' is named as both \(other.rawValue) and \(kind.rawValue)")
                }
                kinds[name] = kind
            }
        }
        let comparison: FileDrift
        do {
            comparison = try FileDrift(reference: referenceFile, current: currentFile, columns: chosen, kinds: kinds,
                                       options: options, quality: quality)
        } catch {
            Cyclone.fail(error.description)
        }
        let elapsed = clock.now - start
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity",
                                                                          negativeInfinity: "-Infinity", nan: "NaN")
            do { print(String(decoding: try encoder.encode(comparison), as: UTF8.self)) } catch { Cyclone.fail("\(error)") }
            return
        }
        let report = comparison.drift
        print("\(comparison.currentRows) current rows against \(comparison.referenceRows) reference rows: "
              + "\(report.drifted) of \(report.tested) columns drifted; dataset drift \(report.datasetDrift ? "YES" : "no")")
        for feature in report.features { print("  " + feature.text) }
        let breaches = comparison.dataQuality.breaches
        print("data quality: " + comparison.dataQuality.verdict)
        for check in breaches { print("  " + check.text) }
        if let multivariate = comparison.multivariate {
            print("multivariate: " + multivariate.text)
        } else {
            print("multivariate: no check (it needs two columns with values in ten reference rows and two current ones, a finite spread, and a PCA that keeps fewer components than columns)")
        }
        print("compared in \(String(format: "%.2f", elapsed.seconds)) s")
    }
}
