import CycloneModel
import CycloneMonitoring
import CycloneStore
import CycloneTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// The windows' SQL against the Swift metrics and a direct count of the rows.
@Suite struct WindowTests {
    static let wide = WindowBounds(rows: 1_000_000, maxAge: .seconds(86_400))

    /// Binary metrics from SQL (confusion at 0.5, log loss, Brier, ROC AUC as Mann–Whitney) equal the
    /// scikit-learn-checked Swift ones, with scores on a coarse grid so many tie; unusable labels are counted.
    @Test func binarySQLMetricsEqualTheSwiftOnesWithTiedScores() async throws {
        let model = try TestModels.binary()
        var generator = SplitMix64(seed: 5)
        var served: [ServedInstance] = []
        var positives: [Bool] = [], scores: [Double] = []
        for i in 0..<400 {
            let score = (generator.uniform() * 10).rounded() / 10
            let positive = generator.uniform() < 0.2 + 0.6 * score
            let label: JSONValue = i % 50 == 7 ? "maybe" : .string(positive ? "yes" : "no")
            served.append(ServedInstance(input: [:], output: .classification(classIndex: score > 0.5 ? 1 : 0,
                                                                              probabilities: [1 - score, score]),
                                         label: label))
            if case .string(let text) = label, text != "maybe" {
                positives.append(positive)
                scores.append(score)
            }
        }
        let expected = BinaryMetrics(positives: positives, scores: scores)
        try await withTestDatabase { [served] db in
            try await db.store(served, model: model)
            let window = try await EvaluationWindows(client: db.client, logger: .test)
                .performance(of: model, bounds: Self.wide)
            #expect(window.labelled == 400 && window.invalidLabels == 8)
            for (name, value) in expected.values {
                expectClose(try #require(window.metrics[name], "\(name)"), value, relative: 1e-9, name)
            }
            #expect(window.metrics.count == expected.values.count)
        }
    }

    /// Multiclass accuracy, macro F1 and log loss from SQL equal the Swift ones.
    @Test func multiclassSQLMetricsEqualTheSwiftOnes() async throws {
        var model = try TestModels.binary()
        model.task = .multiclass
        let classes = ["low", "mid", "high"]
        model.predictor = .logistic(.init(classes: classes, intercepts: [0, 0, 0], coefficients: [[0], [0], [0]]))
        var generator = SplitMix64(seed: 9)
        var served: [ServedInstance] = []
        var sums = MulticlassMetrics.Sums(classCount: 3)
        for _ in 0..<300 {
            var weights = (0..<3).map { _ in generator.uniform() + 0.05 }
            let total = weights.reduce(0, +)
            weights = weights.map { $0 / total }
            let label = Int(generator.uniform() * 3)
            let predicted = weights.indices.max { weights[$0] < weights[$1] }!
            served.append(ServedInstance(input: [:], output: .classification(classIndex: predicted, probabilities: weights),
                                         label: .string(classes[label])))
            sums.add(label: label, probabilities: weights)
        }
        let expected = MulticlassMetrics(sums: sums)
        try await withTestDatabase { [model, served] db in
            try await db.store(served, model: model)
            let window = try await EvaluationWindows(client: db.client, logger: .test)
                .performance(of: model, bounds: Self.wide)
            #expect(window.labelled == 300 && window.invalidLabels == 0)
            for (name, value) in expected.values {
                expectClose(try #require(window.metrics[name], "\(name)"), value, relative: 1e-9, name)
            }
        }
    }

    /// What predict stores with each batch adds up to the window a direct count of the rows gives: values per
    /// reference bin (and their sums), missing, invalid, categories seen and unseen. Merging the rollups into
    /// blocks changes none of it, only how many rows hold it; a count window takes whole rollups, newest first.
    @Test func driftRollupsCountWhatTheRowsHold() async throws {
        let model = try trainedModel()
        let profile = try #require(model.profile)
        var stream = Stream(seed: 3)
        var inputs = stream.rows(300, shift: 0.7).map(\.instance)
        for i in inputs.indices {
            guard case .object(var values) = inputs[i] else { continue }
            switch i % 10 {
            case 1: values["x2"] = .null
            case 2: values["x3"] = nil
            case 3: values["x1"] = "high"
            case 4: values["colour"] = .string("new-\(i)")  // 30 different unseen categories
            case 5: values["flag"] = .number(1)
            case 6: values["colour"] = .number(7)
            default: break
            }
            inputs[i] = .object(values)
        }
        func member(_ instance: JSONValue, _ name: String) -> JSONValue? {
            guard case .object(let values) = instance else { return nil }
            return values[name]
        }
        // The direct count.
        var expected: [String: WindowColumn] = [:]
        for name in ["x1", "x2", "x3"] {
            let reference = try #require(profile.features[name])
            let binning = try #require(NumericBinning(reference))
            var column = WindowColumn(binning: binning)
            for input in inputs {
                switch member(input, name) {
                case .number(let x)?: column.add(x, binning: binning)
                case nil, .null?: column.missing += 1
                default: column.invalid += 1
                }
            }
            expected[name] = column
        }
        var colour = WindowColumn(), flag = WindowColumn()
        for input in inputs {
            switch member(input, "colour") {
            case .string(let text)?: colour.add(category: text)
            case .number(let n)?: colour.add(category: String(Int(n)))
            default: colour.missing += 1
            }
            switch member(input, "flag") {
            case .bool(let b)?: flag.add(category: b ? "true" : "false")
            case .number(let n)?: flag.add(category: n == 1 ? "true" : "false")
            default: flag.missing += 1
            }
        }
        expected["colour"] = colour
        expected["flag"] = flag

        try await withTestDatabase { [inputs, expected, colour] db in
            let served = inputs.map { ServedInstance(input: $0, output: .value(1)) }
            try await db.store(served, model: model, batch: 7)
            let windows = EvaluationWindows(client: db.client, logger: .test)
            let window = try await windows.drift(of: model, bounds: Self.wide)
            #expect(window.rows == 300)
            for (name, column) in expected {
                let got = try #require(window.columns[name])
                #expect(got.count == column.count && got.missing == column.missing && got.invalid == column.invalid, "\(name)")
                #expect(got.binCounts == column.binCounts && got.categories == column.categories, "\(name)")
                for (a, b) in zip(got.binSums, column.binSums) { expectClose(a, b, relative: 1e-9, name) }
            }
            #expect(window.columns["colour"]?.categories["7"] == 30, "an integral number is its decimal text")
            // The bins predict assigns are PostgreSQL's width_bucket against the same thresholds.
            for name in ["x1", "x2"] {
                let reference = try #require(profile.features[name])
                let binning = try #require(NumericBinning(reference))
                var buckets = [Int](repeating: 0, count: binning.binCount)
                let rows = try await db.client.query("""
                    SELECT width_bucket((input->>\(name))::float8, \(binning.thresholds)::float8[]), count(*)::int
                    FROM prediction WHERE jsonb_typeof(input->\(name)) = 'number' GROUP BY 1
                    """, logger: .test)
                for try await (bucket, n) in rows.decode((Int, Int).self) { buckets[bucket] = n }
                #expect(window.columns[name]?.binCounts == buckets, "\(name)")
            }
            #expect(window.prediction?.binCounts.reduce(0, +) == 300)

            // The newest 10 rows are in the last two rollups (of 6 and 7 rows).
            let recent = try await windows.drift(of: model, bounds: WindowBounds(rows: 10, maxAge: .seconds(3_600)))
            #expect(recent.rows == 13)

            // Merge everything: fewer rows, the same counts; the commonest 20 unseen names stay named.
            let rollups = DriftRollups(client: db.client, logger: .test)
            let blocks = try await rollups.compact(settledBefore: Date().addingTimeInterval(3_600), blockRows: 100)
            #expect(blocks >= 3 && blocks <= 10, "300 rows in blocks of at most 100 within a minute: \(blocks)")
            let merged = try await windows.drift(of: model, bounds: Self.wide)
            #expect(merged.rows == 300)
            for name in ["x1", "x2", "x3", "flag"] {
                let (a, b) = (try #require(merged.columns[name]), try #require(window.columns[name]))
                #expect(a.count == b.count && a.missing == b.missing && a.invalid == b.invalid, "\(name)")
                #expect(a.binCounts == b.binCounts && a.categories == b.categories, "\(name)")
                for (x, y) in zip(a.binSums, b.binSums) { expectClose(x, y, relative: 1e-9, name) }
            }
            let mergedColour = try #require(merged.columns["colour"])
            #expect(mergedColour.count == colour.count && mergedColour.missing == colour.missing)
            let unseen = { (c: WindowColumn) in c.categories.filter { !["red", "green", "blue"].contains($0.key) } }
            #expect(unseen(mergedColour).values.reduce(0, +) + mergedColour.unnamedUnseen == unseen(colour).values.reduce(0, +))
            let sizes = try await db.client.query("SELECT max(rows)::int FROM drift_rollup", logger: .test)
            for try await size in sizes.decode(Int.self) { #expect(size <= 100) }
            let report = profile.drift(against: merged.columns, prediction: merged.prediction,
                                       order: model.features.map(\.name))
            let colourDrift = report.features.first { $0.feature == "colour" }
            #expect(colourDrift?.unseen == 60, "30 new names and 30 of '7'")
        }
    }

    /// A batch stored twice (a retry after a commit that timed out) is counted once; refused requests reach the
    /// window, even with no prediction to carry them.
    @Test func aRetriedBatchCountsOnceAndRefusalsAreCounted() async throws {
        let model = try trainedModel()
        let layout = try #require(DriftLayout(model))
        var stream = Stream(seed: 4)
        let rows = stream.rows(20).map { row in
            guard case .object(let values) = row.instance else { fatalError() }
            return PredictionRow(id: UUIDv7.make(), modelName: model.name, modelVersion: model.version,
                                 input: row.instance.jsonText, prediction: #"{"value":1}"#, createdAt: Date(),
                                 drift: layout.cells(instance: values, output: .value(1), classes: nil))
        }
        try await withTestDatabase { db in
            let version = DriftRollups.Version(name: model.name, version: model.version)
            try await PredictionWriter.insert(rows, rejected: [version: 2], client: db.client, logger: .test)
            try await PredictionWriter.insert(rows, client: db.client, logger: .test)
            try await PredictionWriter.insert([], rejected: [version: 3], client: db.client, logger: .test)
            let window = try await EvaluationWindows(client: db.client, logger: .test).drift(of: model, bounds: Self.wide)
            #expect(window.rows == 20)
            #expect(window.rejected == 5)
            #expect(window.columns["x1"]?.count == 20)
            #expect(window.otherProfileRows == 0)

            // The same version re-profiled on other data: its cells are numbered differently, so the rows
            // counted against the first profile are reported, not misread.
            let reprofiled = try trainedModel(rows: 500)
            let other = try await EvaluationWindows(client: db.client, logger: .test).drift(of: reprofiled, bounds: Self.wide)
            #expect(other.rows == 0 && other.otherProfileRows == 20 && other.rejected == 5)
        }
    }
}
