import Foundation

/// A tree ensemble read from another library's model file, with what the file says about its features and
/// training: enough for `cyclone import` to make an artifact, and for a retrain to keep its shape.
public struct ImportedTrees: Sendable {
    public enum Library: String, Sendable { case xgboost, lightgbm }

    public var library: Library
    public var ensemble: TreeEnsemble
    /// The model's task as its objective says.
    public var task: ModelArtifact.Task
    /// The objective as the library names it (`reg:squarederror`, `multiclass`).
    public var objective: String
    /// Feature names in the model's column order, when the file has them.
    public var featureNames: [String]?
    public var featureCount: Int
    /// LightGBM's categorical features: column → the integer codes it saw (XGBoost's are not imported).
    public var categoricalCodes: [Int: [Int]]
    /// LightGBM's `pandas_categorical`: column → the category names, whose positions are the codes.
    public var categoryNames: [Int: [String]] = [:]
    /// Training settings the file records (learning rate, depth, leaves, trees), for a native retrain.
    public var parameters: [String: Double]
}

/// A model file that is not a supported XGBoost or LightGBM model; the message says what was found.
public struct TreeImportError: Error, CustomStringConvertible, Equatable, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Builds the flat node arrays tree by tree.
private struct EnsembleBuilder {
    var roots: [Int32] = [], outputs: [Int32] = [], feature: [Int32] = [], threshold: [Double] = []
    var left: [Int32] = [], right: [Int32] = [], flags: [UInt8] = [], sets: [[UInt32]] = []

    mutating func node(feature f: Int, threshold t: Double, flags fl: UInt8) {
        feature.append(Int32(f))
        threshold.append(t)
        left.append(-1)
        right.append(-1)
        flags.append(fl)
    }

    func ensemble(link: TreeEnsemble.Link, classes: [String]?, baseMargin: [Double]) -> TreeEnsemble {
        TreeEnsemble(link: link, classes: classes, baseMargin: baseMargin, roots: roots, outputs: outputs,
                     feature: feature, threshold: threshold, left: left, right: right, flags: flags, sets: sets)
    }

    /// Depth of the deepest tree (a lone leaf is depth 0).
    var depth: Int {
        var deepest = 0
        for root in roots {
            var stack = [(Int(root), 0)]
            while let (node, depth) = stack.popLast() {
                deepest = max(deepest, depth)
                if feature[node] >= 0 { stack += [(Int(left[node]), depth + 1), (Int(right[node]), depth + 1)] }
            }
        }
        return deepest
    }
}

extension ImportedTrees {
    /// XGBoost's JSON model (`save_model("model.json")`), gbtree, with the objectives `reg:squarederror`,
    /// `reg:logistic`, `binary:logistic`, `multi:softprob` and `multi:softmax`.
    public static func xgboost(_ bytes: [UInt8]) throws(TreeImportError) -> ImportedTrees {
        let document: JSONValue
        do { document = try JSONParser.parse(bytes) } catch {
            throw TreeImportError("not an XGBoost JSON model: the file is not JSON (\(error))")
        }
        let learner = document["learner"]
        guard learner != .null else {
            throw TreeImportError("not an XGBoost JSON model: no 'learner' object (keys: \(document.object?.keys.sorted().joined(separator: ", ") ?? document.typeName))")
        }
        let booster = learner["gradient_booster"]
        guard booster["name"].string == "gbtree" else {
            throw TreeImportError("XGBoost booster '\(booster["name"].string ?? "?")' is not supported (gbtree only)")
        }
        let objective = learner["objective"]["name"].string ?? "?"
        let parameters = learner["learner_model_param"]
        let classCount = Int(parameters["num_class"].string ?? "0") ?? 0
        let featureCount = Int(parameters["num_feature"].string ?? "") ?? 0
        let base = (parameters["base_score"].string ?? "0.5")
            .trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",")
            .compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !base.isEmpty else { throw TreeImportError("XGBoost base_score '\(parameters["base_score"].string ?? "")' is not a number") }

        let link: TreeEnsemble.Link, task: ModelArtifact.Task, classes: [String]?, margin: [Double]
        switch objective {
        case "reg:squarederror":
            (link, task, classes, margin) = (.identity, .regression, nil, [base[0]])
        case "reg:logistic", "binary:logistic":
            // base_score is a probability; the margin starts at its log-odds.
            guard base[0] > 0, base[0] < 1 else { throw TreeImportError("XGBoost base_score \(base[0]) is not a probability") }
            let start = log(base[0] / (1 - base[0]))
            (link, task, classes, margin) = objective == "reg:logistic"
                ? (.logistic, .regression, nil, [start]) : (.logistic, .binary, ["0", "1"], [start])
        case "multi:softprob", "multi:softmax":
            guard classCount >= 2 else { throw TreeImportError("XGBoost \(objective) with num_class \(classCount)") }
            (link, task, classes, margin) = (.softmax, .multiclass, (0..<classCount).map(String.init),
                                             base.count == classCount ? base : Array(repeating: base[0], count: classCount))
        default:
            throw TreeImportError("XGBoost objective '\(objective)' is not supported (reg:squarederror, reg:logistic, binary:logistic, multi:softprob, multi:softmax)")
        }

        let model = booster["model"]
        let trees = model["trees"].array
        let info = model["tree_info"].array.compactMap { $0.number.map(Int.init) }
        guard info.count == trees.count else { throw TreeImportError("XGBoost tree_info has \(info.count) entries for \(trees.count) trees") }
        var builder = EnsembleBuilder()
        for (t, tree) in trees.enumerated() {
            let lefts = tree["left_children"].array.compactMap(\.number), rights = tree["right_children"].array.compactMap(\.number)
            let splits = tree["split_indices"].array.compactMap(\.number), conditions = tree["split_conditions"].array.compactMap(\.number)
            let defaults = tree["default_left"].array.map { $0 == .bool(true) || $0 == .number(1) }
            let types = tree["split_type"].array.compactMap(\.number)
            let count = lefts.count
            guard count > 0, rights.count == count, splits.count == count, conditions.count == count, defaults.count == count else {
                throw TreeImportError("XGBoost tree \(t): its node arrays differ in length")
            }
            if types.contains(where: { $0 != 0 }) {
                throw TreeImportError("XGBoost tree \(t) has categorical splits, which are not imported (train with numeric features, or use LightGBM's categorical splits)")
            }
            guard (0..<margin.count).contains(info[t]) else { throw TreeImportError("XGBoost tree \(t) adds to output \(info[t]) of \(margin.count)") }
            let offset = builder.feature.count
            builder.roots.append(Int32(offset))
            builder.outputs.append(Int32(info[t]))
            for n in 0..<count {
                if lefts[n] == -1 {
                    builder.node(feature: -1, threshold: conditions[n], flags: 0)
                } else {
                    guard (0..<Double(count)).contains(lefts[n]), (0..<Double(count)).contains(rights[n]),
                          splits[n] >= 0, splits[n] < Double(Int16.max) else {
                        throw TreeImportError("XGBoost tree \(t) node \(n) has children or a split feature out of range")
                    }
                    guard featureCount == 0 || Int(splits[n]) < featureCount else {
                        throw TreeImportError("XGBoost tree \(t) node \(n) splits on feature \(Int(splits[n])) of \(featureCount)")
                    }
                    builder.node(feature: Int(splits[n]), threshold: Self.float32Threshold(conditions[n]),
                                 flags: TreeEnsemble.Flag.nanMissing | (defaults[n] ? TreeEnsemble.Flag.defaultLeft : 0))
                    builder.left[offset + n] = Int32(offset + Int(lefts[n]))
                    builder.right[offset + n] = Int32(offset + Int(rights[n]))
                }
            }
        }
        let names = learner["feature_names"].array.compactMap(\.string)
        let ensemble = builder.ensemble(link: link, classes: classes, baseMargin: margin)
        if let problem = ensemble.problem(width: featureCount > 0 ? featureCount : Int(Int16.max)) {
            throw TreeImportError("XGBoost model: \(problem)")
        }
        return ImportedTrees(
            library: .xgboost, ensemble: ensemble, task: task, objective: objective,
            featureNames: names.isEmpty ? nil : names, featureCount: featureCount, categoricalCodes: [:],
            parameters: ["trees": Double(trees.count / max(margin.count, 1)), "max_depth": Double(builder.depth)])
    }

    /// XGBoost compares in single precision: the input is rounded to a `Float`, then `x < t`. The double
    /// threshold with the same outcome for every double input is the midpoint below `t`'s float (or just
    /// above it, when the midpoint itself rounds down).
    public static func float32Threshold(_ value: Double) -> Double {
        let t = Float(value)
        guard t.isFinite, t != -.greatestFiniteMagnitude else {
            return min(max(Double(t), -.greatestFiniteMagnitude), .greatestFiniteMagnitude)  // JSON has no infinity
        }
        let midpoint = (Double(t.nextDown) + Double(t)) / 2
        return Float(midpoint) == t ? midpoint : midpoint.nextUp
    }

    /// LightGBM's text model (`save_model("model.txt")`): regression (identity objectives), binary and
    /// multiclass; numeric splits with their missing types, and categorical splits.
    public static func lightgbm(_ text: String) throws(TreeImportError) -> ImportedTrees {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard lines.first == "tree" else {
            throw TreeImportError("not a LightGBM text model: the first line is '\(lines.first?.prefix(40) ?? "")', not 'tree'")
        }
        func fields(_ block: ArraySlice<String>) -> [String: String] {
            var result: [String: String] = [:]
            for line in block {
                guard let equals = line.firstIndex(of: "=") else { continue }
                result[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
            return result
        }
        let end = lines.firstIndex(of: "end of trees") ?? lines.count
        // Only the trees: after `end of trees` come feature importances, where a feature may be named Tree.
        let starts = lines.indices.filter { $0 < end && lines[$0].hasPrefix("Tree=") }
        let header = fields(lines[..<(starts.first ?? end)])
        let objectiveWords = (header["objective"] ?? "").split(separator: " ").map(String.init)
        let objective = objectiveWords.first ?? "?"
        let perIteration = Int(header["num_tree_per_iteration"] ?? "1") ?? 1
        let classCount = Int(header["num_class"] ?? "1") ?? 1
        let names = (header["feature_names"] ?? "").split(separator: " ").map(String.init)
        let infos = (header["feature_infos"] ?? "").split(separator: " ").map(String.init)
        var sigmoid = 1.0
        for word in objectiveWords.dropFirst() where word.hasPrefix("sigmoid:") { sigmoid = Double(word.dropFirst(8)) ?? 1 }

        let link: TreeEnsemble.Link, task: ModelArtifact.Task, classes: [String]?
        var scale = 1.0
        switch objective {
        case "regression", "regression_l2", "regression_l1", "huber", "fair", "quantile", "mape":
            (link, task, classes) = (.identity, .regression, nil)
        case "binary":
            (link, task, classes) = (.logistic, .binary, ["0", "1"])
            scale = sigmoid  // p = 1 / (1 + exp(-sigmoid · margin))
        case "multiclass":
            guard classCount >= 2, perIteration == classCount else {
                throw TreeImportError("LightGBM multiclass with num_class \(classCount) and \(perIteration) trees per iteration")
            }
            (link, task, classes) = (.softmax, .multiclass, (0..<classCount).map(String.init))
        default:
            throw TreeImportError("LightGBM objective '\(header["objective"] ?? "")' is not supported (regression, binary, multiclass)")
        }

        var builder = EnsembleBuilder()
        for (t, start) in starts.enumerated() {
            let stop = t + 1 < starts.count ? starts[t + 1] : end
            let tree = fields(lines[(start + 1)..<stop])
            // Thresholds may be infinite (a split with everything on one side); indices must be whole and fit.
            func numbers(_ key: String) -> [Double] { (tree[key] ?? "").split(separator: " ").compactMap { Double($0) } }
            func indices(_ key: String) throws(TreeImportError) -> [Int] {
                let values = numbers(key)
                guard values.allSatisfy({ $0 == $0.rounded() && abs($0) < 1e9 }) else {
                    throw TreeImportError("LightGBM tree \(t): \(key) holds something that is not an index")
                }
                return values.map { Int($0) }
            }
            let leaves = Int(tree["num_leaves"] ?? "") ?? 0
            let values = numbers("leaf_value")
            guard leaves >= 1, values.count == leaves else {
                throw TreeImportError("LightGBM tree \(t): \(values.count) leaf values for \(leaves) leaves")
            }
            if tree["is_linear"] == "1" { throw TreeImportError("LightGBM tree \(t) is a linear tree, which is not supported") }
            let offset = builder.feature.count
            builder.roots.append(Int32(offset))
            builder.outputs.append(Int32(t % perIteration))
            let splitCount = leaves - 1
            let splitFeature = try indices("split_feature"), thresholds = numbers("threshold"), types = try indices("decision_type")
            let lefts = try indices("left_child"), rights = try indices("right_child")
            guard splitFeature.count == splitCount, thresholds.count == splitCount, types.count == splitCount,
                  lefts.count == splitCount, rights.count == splitCount
            else { throw TreeImportError("LightGBM tree \(t): its split arrays do not have \(splitCount) entries") }
            let boundaries = try indices("cat_boundaries")
            let words = (tree["cat_threshold"] ?? "").split(separator: " ").compactMap { UInt32($0) }
            let setBase = builder.sets.count
            for i in 0..<max(boundaries.count - 1, 0) {
                guard boundaries[i] >= 0, boundaries[i] <= boundaries[i + 1], boundaries[i + 1] <= words.count else {
                    throw TreeImportError("LightGBM tree \(t): cat_boundaries do not fit cat_threshold")
                }
                builder.sets.append(Array(words[boundaries[i]..<boundaries[i + 1]]))
            }
            func child(_ index: Int) throws(TreeImportError) -> Int32 {
                guard index >= -leaves, index < splitCount else {
                    throw TreeImportError("LightGBM tree \(t): child \(index) is neither a split nor a leaf")
                }
                return Int32(index >= 0 ? offset + index : offset + splitCount + (-index - 1))
            }
            for n in 0..<splitCount {
                let type = types[n]
                guard splitFeature[n] >= 0, splitFeature[n] < Int(Int16.max), !thresholds[n].isNaN else {
                    throw TreeImportError("LightGBM tree \(t) node \(n): split feature \(splitFeature[n]) or threshold out of range")
                }
                let missing = (type >> 2) & 3
                var flag: UInt8 = type & 2 != 0 ? TreeEnsemble.Flag.defaultLeft : 0
                if missing == 1 { flag |= TreeEnsemble.Flag.zeroMissing }
                if missing == 2 { flag |= TreeEnsemble.Flag.nanMissing }
                // JSON has no infinity: a split with everything on one side keeps the largest finite bound,
                // the same for every input the encoder admits (it refuses infinite ones).
                var threshold = min(max(thresholds[n], -.greatestFiniteMagnitude), .greatestFiniteMagnitude)
                if type & 1 != 0 {
                    flag |= TreeEnsemble.Flag.categorical
                    guard threshold.isFinite, threshold >= 0, threshold < Double(boundaries.count - 1) else {
                        throw TreeImportError("LightGBM tree \(t) node \(n): category set \(Int(threshold)) does not exist")
                    }
                    threshold = Double(setBase + Int(threshold))
                } else {
                    flag |= TreeEnsemble.Flag.inclusive
                }
                builder.node(feature: splitFeature[n], threshold: threshold, flags: flag)
                builder.left[offset + n] = try child(lefts[n])
                builder.right[offset + n] = try child(rights[n])
            }
            for value in values { builder.node(feature: -1, threshold: value * scale, flags: 0) }
        }
        guard !starts.isEmpty else { throw TreeImportError("LightGBM model has no trees") }
        let ensemble = builder.ensemble(link: link, classes: classes, baseMargin: Array(repeating: 0, count: perIteration))
        if let problem = ensemble.problem(width: Int(Int16.max)) { throw TreeImportError("LightGBM model: \(problem)") }

        var categorical: [Int: [Int]] = [:]
        for (column, info) in infos.enumerated() where !info.hasPrefix("[") && info != "none" {
            categorical[column] = info.split(separator: ":").compactMap { Int($0) }.filter { $0 >= 0 }.sorted()
        }
        var parameters: [String: Double] = ["trees": Double(starts.count / perIteration), "max_depth": Double(builder.depth)]
        for line in lines[end...] where line.hasPrefix("[") {
            let parts = line.dropFirst().dropLast().split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, ["learning_rate", "num_leaves", "min_data_in_leaf", "lambda_l2", "bagging_fraction"].contains(parts[0]),
               let value = Double(parts[1]) {
                parameters[parts[0]] = value
            }
        }
        var imported = ImportedTrees(library: .lightgbm, ensemble: ensemble, task: task, objective: objective,
                                     featureNames: names.isEmpty ? nil : names,
                                     featureCount: (Int(header["max_feature_idx"] ?? "") ?? (names.count - 1)) + 1,
                                     categoricalCodes: categorical, parameters: parameters)
        // A model trained on pandas categories lists each categorical column's names in code order.
        if let line = lines.last(where: { $0.hasPrefix("pandas_categorical:") }),
           let lists = try? JSONParser.parse(Array(line.dropFirst("pandas_categorical:".count).utf8)).array,
           lists.count == categorical.count {
            for (column, list) in zip(categorical.keys.sorted(), lists) {
                let names = list.array.map { $0.string ?? $0.number.map { String(Int($0)) } ?? "" }
                if !names.isEmpty { imported.categoryNames[column] = names }
            }
        }
        return imported
    }
}

extension ImportedTrees {
    /// The artifact serving this ensemble with `features` (the model's columns, by name when the file
    /// names them, else in order). Numbers and booleans go to the trees as they are, categories as their
    /// codes; every feature may be missing, since the trees route missing values.
    public func artifact(name: String, version: String, features schema: [Feature], target: String?) throws(TreeImportError)
        -> ModelArtifact
    {
        guard schema.count == featureCount else {
            throw TreeImportError("the model reads \(featureCount) features, the schema has \(schema.count)")
        }
        var ordered = schema
        if let featureNames {
            let byName = Dictionary(schema.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
            ordered = []
            for name in featureNames {
                guard let feature = byName[name] else {
                    throw TreeImportError("the model's feature '\(name)' is not in the schema (it has \(schema.map(\.name).joined(separator: ", ")))")
                }
                ordered.append(feature)
            }
        }
        var features: [Feature] = [], columns: [Preprocessing.Column] = []
        for (column, var feature) in ordered.enumerated() {
            feature.required = false
            switch feature.kind {
            case .numeric, .boolean:
                if categoricalCodes[column] != nil {
                    throw TreeImportError("feature '\(feature.name)' is categorical in the model but \(feature.kind.rawValue) in the schema")
                }
                columns.append(.raw(feature: feature.name))
            case .categorical:
                guard let codes = categoricalCodes[column] else {
                    throw TreeImportError(library == .xgboost
                        ? "feature '\(feature.name)' is categorical, but XGBoost models are imported with numeric features only"
                        : "feature '\(feature.name)' is categorical in the schema but numeric in the model")
                }
                // A category's position is its code: the names pandas gave, or the codes themselves.
                let categories = categoryNames[column] ?? (0...(codes.max() ?? 0)).map(String.init)
                feature.categories = categories
                columns.append(.code(feature: feature.name, categories: categories))
            }
            features.append(feature)
        }
        var training = TrainingInfo(family: "gbdt", parameters: parameters, rows: 0)
        training.holdoutMetrics = nil
        let artifact = ModelArtifact(name: name, version: version, task: task, target: target, features: features,
                                     preprocessing: Preprocessing(columns: columns), predictor: .trees(ensemble),
                                     training: training)
        do { try artifact.validate() } catch { throw TreeImportError("the imported model does not validate: \(error)") }
        return artifact
    }
}
