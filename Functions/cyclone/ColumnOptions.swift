import ArgumentParser
import Foundation
import CycloneModel
import CycloneTraining

/// How a CSV's columns become features, and the model's penalties and boosting settings: `cyclone train`
/// and `cyclone demo --data` take the same options.
struct ColumnOptions: ParsableArguments {
    @Option(help: "Ridge penalty.") var alpha: Double = 1.0
    @Option(name: .customLong("C"), help: "Inverse logistic penalty, as scikit-learn's C.") var c: Double = 1.0
    @Option(help: "gbdt: boosting rounds at most.") var trees: Int = 300
    @Option(help: "gbdt: shrinkage of each tree.") var learningRate: Double = 0.1
    @Option(help: "gbdt: deepest a tree grows (0: no limit).") var maxDepth: Int = 6
    @Option(help: "gbdt: most leaves per tree, grown best-first.") var numLeaves: Int = 31
    @Option(help: "gbdt: fewest rows in a leaf.") var minDataInLeaf: Int = 20
    @Option(help: "gbdt: L2 penalty on leaf values.") var lambda: Double = 1.0
    @Option(help: "gbdt: share of rows each tree sees.") var subsample: Double = 1.0
    @Option(help: "gbdt: newest share of the training rows kept to stop early on (0: every round).")
    var earlyStopping: Double = 0.1
    @Option(parsing: .upToNextOption, help: "Columns to read as categorical (several after one flag, or a,b).") var categorical: [String] = []
    @Option(parsing: .upToNextOption, help: "Columns to read as numeric (several, or a,b).") var numeric: [String] = []
    @Option(parsing: .upToNextOption, help: "Columns to read as boolean (several, or a,b).") var boolean: [String] = []
    @Option(parsing: .upToNextOption, help: "Columns to leave out (several, or a,b).") var ignore: [String] = []
    @Option(parsing: .upToNextOption, help: "Features requests may omit even if training had no gaps (several, or a,b).")
    var optional: [String] = []

    /// `--categorical a,b` is `--categorical a b`.
    mutating func validate() throws {
        func split(_ names: [String]) -> [String] {
            names.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
        }
        categorical = split(categorical)
        numeric = split(numeric)
        boolean = split(boolean)
        ignore = split(ignore)
        optional = split(optional)
    }

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
        options.boosting.trees = trees
        options.boosting.learningRate = learningRate
        options.boosting.maxDepth = maxDepth
        options.boosting.maxLeaves = numLeaves
        options.boosting.minDataInLeaf = minDataInLeaf
        options.boosting.lambda = lambda
        options.boosting.subsample = subsample
        options.boosting.validation = earlyStopping
        return options
    }
}
