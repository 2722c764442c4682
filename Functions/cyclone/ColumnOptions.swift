import ArgumentParser
import CycloneModel
import CycloneTraining

/// How a CSV's columns become features, and the model's penalties: `cyclone train` and `cyclone demo --data`
/// take the same options.
struct ColumnOptions: ParsableArguments {
    @Option(help: "Ridge penalty.") var alpha: Double = 1.0
    @Option(name: .customLong("C"), help: "Inverse logistic penalty, as scikit-learn's C.") var c: Double = 1.0
    @Option(parsing: .upToNextOption, help: "Columns to read as categorical.") var categorical: [String] = []
    @Option(parsing: .upToNextOption, help: "Columns to read as numeric.") var numeric: [String] = []
    @Option(parsing: .upToNextOption, help: "Columns to read as boolean.") var boolean: [String] = []
    @Option(parsing: .upToNextOption, help: "Columns to leave out.") var ignore: [String] = []
    @Option(parsing: .upToNextOption, help: "Features requests may omit even if training had no gaps.")
    var optional: [String] = []

    /// Every column these options name.
    var named: [String] { categorical + numeric + boolean + ignore + optional }

    /// The first named column that is not in `header`.
    func missing(from header: [String]) -> String? { named.first { !header.contains($0) } }

    /// The kinds the options force; the rest are inferred.
    var kinds: [String: Feature.Kind] {
        var kinds: [String: Feature.Kind] = [:]
        for name in categorical { kinds[name] = .categorical }
        for name in numeric { kinds[name] = .numeric }
        for name in boolean { kinds[name] = .boolean }
        return kinds
    }

    /// Training options of `family` with these penalties and optional features.
    func training(_ family: Family) -> TrainingOptions {
        var options = TrainingOptions(family: family)
        options.alpha = alpha
        options.c = c
        options.optionalFeatures = Set(optional)
        return options
    }
}
