import CycloneModel
import CycloneMonitoring
import CycloneStore
import CycloneTraining
import CycloneTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// The `cyclone` executable as an operator runs it: results on stdout, and every failure one line on stderr
/// starting `cyclone:` with a non-zero exit.
@Suite struct CycloneCommandTests {
    @Test func trainWritesAModelThatLoadsWithItsProfile() async throws {
        let out = CycloneCommand.temporary("model.json")
        let (status, output) = try await CycloneCommand.run([
            "train", "--data", Fixture.url("linear/logistic_multiclass-train.csv").path, "--target", "species",
            "--family", "logistic", "--C", "0.5", "--name", "iris", "--version", "4", "--out", out,
        ])
        #expect(status == 0)
        // The last fifth of the file is held out and scores the model.
        #expect(output.contains("trained iris@4 (logistic, multiclass) on 320 rows"), "\(output)")
        #expect(output.contains("holdout (80 rows): accuracy "), "\(output)")
        let model = try ModelArtifact.load(contentsOf: URL(fileURLWithPath: out))
        #expect(model.classes == ["setosa", "versicolor", "virginica"])
        #expect(model.profile?.rows == 320)
        #expect(model.training?.holdoutRows == 80)
        #expect(Set(model.training?.holdoutMetrics?.keys.map { $0 } ?? []) == ["accuracy", "macro_f1", "log_loss"])

        let all = try await CycloneCommand.run([
            "train", "--data", Fixture.url("linear/logistic_multiclass-train.csv").path, "--target", "species",
            "--family", "logistic", "--holdout", "0", "--out", out,
        ])
        #expect(all.output.contains("on 400 rows") && !all.output.contains("holdout"), "\(all.output)")
        #expect(try ModelArtifact.load(contentsOf: URL(fileURLWithPath: out)).training?.holdoutMetrics == nil)
    }

    @Test(arguments: [
        (["train", "--data", "/nonexistent.csv", "--target", "y", "--family", "ridge", "--out", "/tmp/x.json"], "cannot read the file"),
        (["train", "--data", "LINEAR", "--target", "nope", "--family", "ridge", "--out", "/tmp/x.json"], "--target 'nope' is not a column"),
        (["train", "--data", "LINEAR", "--target", "count", "--family", "forest", "--out", "/tmp/x.json"], "--family must be one of ridge, logistic, gbdt"),
        (["train", "--data", "LINEAR", "--target", "count", "--family", "logistic", "--numeric", "season", "--out", "/tmp/x.json"], "column 'season': row"),
        (["profile", "--data", "LINEAR", "--model", "/nonexistent.json"], "/nonexistent.json: cannot read model file"),
        (["train", "--data", "LINEAR", "--target", "count", "--family", "ridge", "--holdout", "1", "--out", "/tmp/x.json"],
         "the holdout share must be at least 0 and below 1, not 1.0"),
        (["import", "--xgboost", "LIGHTGBM", "--schema", "/tmp/x.json", "--out", "/tmp/x.json"], "not an XGBoost JSON model: the file is not JSON"),
        (["import", "--lightgbm", "LIGHTGBM", "--out", "/tmp/x.json"], "give the features: --schema FILE, or --data FILE with --target COLUMN"),
        (["import", "--lightgbm", "LIGHTGBM", "--data", "LINEAR", "--target", "count", "--out", "/tmp/x.json"],
         "the model's feature 'x0' is not a column of"),
        (["import", "--out", "/tmp/x.json"], "give one model: --xgboost FILE or --lightgbm FILE"),
        (["train", "--data", "LINEAR", "--target", "count", "--family", "gbdt", "--num-leaves", "1", "--out", "/tmp/x.json"],
         "--num-leaves must be at least 2, not 1"),
        (["score", "--model", "/nonexistent.json", "--data", "LINEAR"], "/nonexistent.json: cannot read model file"),
        (["train", "--data", "LINEAR", "--target", "count", "--family", "ridge", "--out", "/nonexistent/m.json"],
         "cannot write /nonexistent/m.json: the folder /nonexistent does not exist"),
        (["frobnicate"], "'frobnicate' is not a subcommand (one of: demo, train"),
        (["drift", "--reference", "LINEAR", "--current", "/nonexistent.csv"], "/nonexistent.csv: cannot read the file"),
        (["drift", "--reference", "LINEAR", "--current", "/tmp"], "/tmp: cannot read the file: it is a directory"),
        (["drift", "--reference", "LINEAR", "--current", "LINEAR", "--columns", "nope"], "has no column 'nope' (its columns: "),
        (["drift", "--reference", "LINEAR", "--current", "LINEAR", "--numeric", "season"], "the reference's column 'season': row"),
        (["demo", "--fast", "--database-url", "postgres://u@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"], "cannot reach PostgreSQL"),
    ])
    func failuresAreOneReadableLine(_ arguments: [String], _ expected: String) async throws {
        let data = Fixture.url("linear/ridge_mixed-train.csv").path
        let lightgbm = Fixture.url("trees/lgb_regression.txt").path
        let (status, output) = try await CycloneCommand.run(arguments.map { $0 == "LINEAR" ? data : $0 == "LIGHTGBM" ? lightgbm : $0 })
        #expect(status != 0)
        let message = output.components(separatedBy: "): ").dropFirst().joined(separator: "): ")
        let lines = message.split(separator: "\n")
        #expect(lines.count == 1, "\(message)")
        #expect(message.hasPrefix("cyclone: "), "\(message)")
        #expect(message.contains(expected), "\(message)")
    }

    /// `cyclone drift` refuses a data-quality exception for a column it does not compare (a misspelt name would
    /// leave the column at the overall threshold unsaid), and a column named under two types.
    @Test func driftRefusesUnknownExceptionsAndTwoTypes() async throws {
        let data = Fixture.url("linear/ridge_mixed-train.csv").path
        let unknown = try await CycloneCommand.run(["drift", "--reference", data, "--current", data],
                                                   environment: ["DATA_QUALITY_MISSING": "0.1,sesaon=0.5"])
        #expect(unknown.status != 0 && unknown.output.contains("DATA_QUALITY_MISSING names 'sesaon', which is not a compared column"),
                "\(unknown.output)")
        let twice = try await CycloneCommand.run(["drift", "--reference", data, "--current", data, "--numeric", "count",
                                                  "--categorical", "count"])
        #expect(twice.status != 0 && twice.output.contains("column 'count' is named as both categorical and numeric"),
                "\(twice.output)")
    }

    /// A column with no value in the current file reads "not tested", not "ok".
    @Test func driftSaysAColumnWithoutValuesIsNotTested() async throws {
        let (reference, current) = (CycloneCommand.temporary("reference.csv"), CycloneCommand.temporary("current.csv"))
        try ("x,y\n" + (0..<50).map { "\($0),\($0 % 7)" }.joined(separator: "\n") + "\n").write(toFile: reference, atomically: true, encoding: .utf8)
        try ("x,y\n" + (0..<50).map { "\($0),inf" }.joined(separator: "\n") + "\n").write(toFile: current, atomically: true, encoding: .utf8)
        let (status, output) = try await CycloneCommand.run(["drift", "--reference", reference, "--current", current])
        #expect(status == 0, "\(output)")
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("  y ") }, "\(output)")
        #expect(line.contains("not tested") && !line.contains(" ok"), "\(line)")
    }

    /// A LightGBM model imported with its training CSV (missing cells, a categorical column of codes): the
    /// profile comes from the rows, and its metrics there are the library's, here offset by exactly 0.1.
    @Test func importMakesAnArtifactOfALightGBMModel() async throws {
        let data = try JSONParser.parse(Array(try Data(contentsOf: Fixture.url("trees/cases.json"))))
        let fixture = try #require(data["cases"].array.first { $0["name"].string == "lgb_regression" })
        let names = fixture["features"].array.compactMap(\.string)
        var csv = (names + ["y"]).joined(separator: ",") + "\n"
        for (instance, expected) in zip(fixture["instances"].array, fixture["expected"].array) {
            let cells = names.map { name in instance[name].number.map { name == "colour" ? String(Int($0)) : "\($0)" } ?? "" }
            csv += (cells + ["\((expected.number ?? 0) + 0.1)"]).joined(separator: ",") + "\n"
        }
        let (path, out) = (CycloneCommand.temporary("train.csv"), CycloneCommand.temporary("model.json"))
        try csv.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output) = try await CycloneCommand.run([
            "import", "--lightgbm", Fixture.url("trees/lgb_regression.txt").path, "--data", path, "--target", "y",
            "--name", "demand", "--version", "3", "--out", out,
        ])
        #expect(status == 0, "\(output)")
        #expect(output.contains("imported LightGBM regression: 25 trees, regression, features x0:numeric x1:numeric x2:numeric x3:numeric colour:categorical"), "\(output)")
        let model = try ModelArtifact.load(contentsOf: URL(fileURLWithPath: out))
        #expect(model.name == "demand" && model.version == "3" && model.training?.family == "gbdt")
        #expect(abs((model.training?.holdoutMetrics?["mae"] ?? 0) - 0.1) < 1e-6, "\(model.training?.holdoutMetrics ?? [:])")
        #expect(model.profile?.rows == 90 && model.features.allSatisfy { !$0.required })
    }

    @Test func migrateIsIdempotentAndNamesAMissingDatabaseURL() async throws {
        try await withTestDatabase { db in
            // The test database is already migrated: nothing to apply, and partitions are maintained.
            let (status, output) = try await CycloneCommand.run(["migrate", "--database-url", db.url])
            #expect(status == 0)
            #expect(output == "schema is up to date")
            let partitions = try await CycloneCommand.run(["partitions", "--database-url", db.url, "--ahead-days", "10"])
            #expect(partitions.status == 0)
            #expect(partitions.output.contains("created prediction_p"))
        }
        let (status, output) = try await CycloneCommand.run(["migrate"], environment: ["DATABASE_URL": ""])
        #expect(status != 0)
        #expect(output.contains("cyclone: DATABASE_URL is not set (export it or pass --database-url)"))
    }

    /// `cyclone register` then `cyclone evaluate`: the report a person reads, and a bad setting as one line.
    @Test func evaluateRunsOneCycleAndPrintsItsReport() async throws {
        let model = CycloneCommand.temporary("model.json")
        let data = Fixture.url("linear/ridge_mixed-train.csv").path
        _ = try await CycloneCommand.run(["train", "--data", data, "--target", "count", "--family", "ridge", "--name", "rides",
                               "--version", "3", "--out", model])
        try await withTestDatabase { db in
            let registered = try await CycloneCommand.run(["register", "--model", model, "--database-url", db.url])
            #expect(registered.output == "registered rides@3 as live")
            let artifact = try ModelArtifact.load(contentsOf: URL(fileURLWithPath: model))
            try await db.store((1...150).map { i in
                ServedInstance(input: ["temp": .number(Double(40 + i % 5)), "humidity": 0.5, "wind": 2, "holiday": false,
                                       "season": "summer", "weather": "clear"],
                               output: .value(150), label: .number(Double(100 + i % 7)))
            }, model: artifact, spacing: 0.01)
            let (status, output) = try await CycloneCommand.run(["evaluate", "--database-url", db.url],
                                                     environment: ["RETRAIN_COOLDOWN": "0s", "RETRAIN_TRIGGER": "threshold"])
            #expect(status == 0)
            #expect(output.contains("rides@3 (serving)"), "\(output)")
            #expect(output.contains("performance: 150 labels"), "\(output)")
            #expect(output.contains("temp") && output.contains("DRIFT"), "temperatures 40-44 are outside training: \(output)")
            #expect(output.contains("action: retrain_started"), "\(output)")
            let bad = try await CycloneCommand.run(["evaluate", "--database-url", db.url], environment: ["RETRAIN_THRESHOLD": "fast"])
            #expect(bad.status != 0)
            #expect(bad.output.contains("cyclone: RETRAIN_THRESHOLD 'fast' is not a number (absolute) or a factor"), "\(bad.output)")
        }
    }

    /// `cyclone register --history`: the rows a model was trained on become its history, which a retrain reads
    /// beside its labelled predictions (older, with no stored prediction) and loading the file again adds nothing.
    @Test func registerStoresTheTrainingRowsAsHistory() async throws {
        let model = CycloneCommand.temporary("model.json")
        let data = Fixture.url("linear/ridge_mixed-train.csv").path
        let trained = try await CycloneCommand.run(["train", "--data", data, "--target", "count", "--family", "ridge",
                                                    "--name", "rides", "--out", model])
        try #require(trained.status == 0, "\(trained.output)")
        // The fixture with a time column, a minute apart and ending two days ago, shuffled (the rows are put in
        // time order), one row without a label, and a column the model does not use (a postcode of digits).
        let lines = try String(contentsOfFile: data, encoding: .utf8).split(separator: "\n")
        let start = Date().addingTimeInterval(-2 * 86_400 - Double(lines.count) * 60)
        let rows = lines.dropFirst().enumerated().map { i, line in
            "\(Int(start.timeIntervalSince1970) + 60 * i)," + (i == 7 ? line.split(separator: ",", omittingEmptySubsequences: false).dropLast().joined(separator: ",") + "," : line) + ",98101"
        }.reversed() as [String]
        let history = CycloneCommand.temporary("history.csv")
        try (["time," + lines[0] + ",postcode"] + rows).joined(separator: "\n").write(toFile: history, atomically: true, encoding: .utf8)
        try await withTestDatabase { db in
            let first = try await CycloneCommand.run(["register", "--model", model, "--history", history, "--time", "time",
                                                      "--database-url", db.url])
            #expect(first.status == 0 && first.output.contains("registered rides@1 as live"), "\(first.output)")
            #expect(first.output.contains("stored 399 labelled rows of \(history) as rides's history")
                        && first.output.contains("1 without a label left out"), "\(first.output)")
            // The same rows again, with the columns in another order and CRLF line ends, and ten rows more whose
            // postcode is not a number (so the column is now read as text): only those ten are new.
            let header = (lines[0] + ",postcode").split(separator: ",").map(String.init)
            let order = Array(header.indices.reversed())
            let more = (0..<10).map { i in "\(Int(start.timeIntervalSince1970) - 60 * (i + 1))," + lines[1 + i] + ",SW1A" }
            let reordered = ([("time," + lines[0] + ",postcode")] + rows + more).map { line -> String in
                let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                return ([cells[0]] + order.map { cells[1 + $0] }).joined(separator: ",")
            }
            let again = CycloneCommand.temporary("history-again.csv")
            try reordered.joined(separator: "\r\n").write(toFile: again, atomically: true, encoding: .utf8)
            let second = try await CycloneCommand.run(["register", "--model", model, "--history", again, "--time", "time",
                                                       "--database-url", db.url])
            #expect(second.output.contains("stored 10 new labelled rows") && second.output.contains("399 were stored already"),
                    "\(second.output)")
            var stored = 0
            for try await count in try await db.client.query("SELECT count(*) FROM history", logger: .test).decode(Int.self) { stored = count }
            #expect(stored == 409)

            // Served and labelled since: the newest rows are those, then the history's newest.
            let artifact = try ModelArtifact.load(contentsOf: URL(fileURLWithPath: model))
            try await db.store((1...30).map { i in
                ServedInstance(input: ["temp": .number(Double(20 + i % 5)), "humidity": 0.5, "wind": 2, "holiday": false,
                                       "season": "summer", "weather": "clear"],
                               output: .value(150), label: .number(Double(100 + i)))
            }, model: artifact, spacing: 1)
            let all = try await LabelledRows.read(model: artifact, bounds: WindowBounds(rows: 1_000, maxAge: .seconds(30 * 86_400)),
                                                  client: db.client, logger: .test)
            #expect(all.count == 439 && all.times == all.times.sorted())
            #expect(all.predictions.served.prefix(409).allSatisfy { $0 == nil } && all.predictions.served.suffix(30).allSatisfy { $0 != nil })
            #expect(all.predictions.versions.prefix(409).allSatisfy { $0.isEmpty })
            // The history's labels and features read back as the file has them (its newest row is the fixture's last).
            let last = lines.last!.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard case .numeric(let labels) = all.predictions.target.values,
                  case .numeric(let temperatures) = all.predictions.features.columns.first(where: { $0.name == "temp" })?.values,
                  case .categorical(let seasons) = all.predictions.features.columns.first(where: { $0.name == "season" })?.values
            else { Issue.record("columns of the wrong kind"); return }
            #expect(abs(labels[408] - Double(last[6])!) < 1e-9 && labels[409] == 101)
            #expect(abs(temperatures[408] - Double(last[1])!) < 1e-9 && seasons[408] == last[0])
            let newest = try await LabelledRows.read(model: artifact, bounds: WindowBounds(rows: 35, maxAge: .seconds(30 * 86_400)),
                                                     client: db.client, logger: .test)
            #expect(newest.count == 35 && newest.predictions.served.prefix(5).allSatisfy { $0 == nil })
            #expect(newest.times.first == all.times[404])
            // Older than the window's age, the history is not read.
            let recent = try await LabelledRows.read(model: artifact, bounds: WindowBounds(rows: 1_000, maxAge: .seconds(86_400)),
                                                     client: db.client, logger: .test)
            #expect(recent.count == 30)
            // A history older than TRAINING_WINDOW_MAX_AGE is stored, with a note that it will not be read.
            let old = CycloneCommand.temporary("history-old.csv")
            try (["time," + lines[0]] + lines.dropFirst().enumerated().map { "2020-01-01T\(String(format: "%02d", $0 / 60)):\(String(format: "%02d", $0 % 60)):00Z," + $1 })
                .joined(separator: "\n").write(toFile: old, atomically: true, encoding: .utf8)
            let aged = try await CycloneCommand.run(["register", "--model", model, "--history", old, "--time", "time",
                                                     "--database-url", db.url], environment: ["TRAINING_WINDOW_MAX_AGE": ""])
            #expect(aged.status == 0 && aged.output.contains("note: 400 of the 400 rows are older than TRAINING_WINDOW_MAX_AGE (30d, its default)"),
                    "\(aged.output)")

            // A classifier's history holds only classes it knows.
            let classifier = CycloneCommand.temporary("classifier.json")
            let churn = Fixture.url("linear/logistic_binary-train.csv").path
            let logistic = try await CycloneCommand.run(["train", "--data", churn, "--target", "churned", "--family", "logistic",
                                                         "--out", classifier])
            try #require(logistic.status == 0, "\(logistic.output)")
            let churnLines = try String(contentsOfFile: churn, encoding: .utf8).split(separator: "\n")
            let unknown = CycloneCommand.temporary("churn-history.csv")
            try (["time," + churnLines[0]] + churnLines.dropFirst().prefix(20).enumerated().map { i, line in
                "2026-01-01T00:\(String(format: "%02d", i)):00Z," + (i == 5 ? line.replacingOccurrences(of: ",no", with: ",maybe").replacingOccurrences(of: ",yes", with: ",maybe") : String(line))
            }).joined(separator: "\n").write(toFile: unknown, atomically: true, encoding: .utf8)
            let refusedClass = try await CycloneCommand.run(["register", "--model", classifier, "--history", unknown, "--time", "time",
                                                             "--database-url", db.url])
            #expect(refusedClass.status != 0 && refusedClass.output.contains("the label 'maybe' at 2026-01-01T00:05:00Z is not one of the model's classes (no, yes)"),
                    "\(refusedClass.output)")

            for (arguments, says) in [(["--history", history], "--history needs --time COLUMN"),
                                      (["--time", "time"], "--time names --history's time column"),
                                      (["--history", history, "--time", "when"], "--time 'when' is not a column"),
                                      (["--history", data, "--time", "time"], "--time 'time' is not a column")] {
                let refused = try await CycloneCommand.run(["register", "--model", model, "--database-url", db.url] + arguments)
                #expect(refused.status != 0 && refused.output.contains(says), "\(refused.output)")
            }
        }
    }

    /// `cyclone drift` on two files: the text report, and the JSON an Evidently user would read.
    @Test func driftComparesTwoFiles() async throws {
        let data = Fixture.url("linear/ridge_mixed-train.csv").path
        let text = try await CycloneCommand.run(["drift", "--reference", data, "--current", data, "--ignore", "count"])
        #expect(text.status == 0)
        #expect(text.output.contains("0 of ") && text.output.contains("dataset drift no") && text.output.contains("checks passed"),
                "\(text.output)")
        let json = try await CycloneCommand.run(["drift", "--reference", data, "--current", data, "--json"])
        #expect(json.status == 0)
        let line = try #require(json.output.split(separator: "\n").first { $0.hasPrefix("{") })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let columns = try #require(object["columns"] as? [[String: Any]])
        #expect(object["dataset_drift"] as? Bool == false && !columns.isEmpty)
        #expect(columns.allSatisfy { $0["drifted"] as? Bool == false && $0["feature"] is String && $0["test"] is String })

        // A column named twice is compared once; a file with a header and no rows is refused; an Excel byte
        // order mark is no part of the first column's name.
        let twice = try await CycloneCommand.run(["drift", "--reference", data, "--current", data, "--columns", "temp,temp"])
        #expect(twice.status == 0 && twice.output.contains("0 of 1 columns drifted"), "\(twice.output)")
        let empty = CycloneCommand.temporary("empty.csv")
        try "temp,humidity\n".write(toFile: empty, atomically: true, encoding: .utf8)
        let refused = try await CycloneCommand.run(["drift", "--reference", empty, "--current", data])
        #expect(refused.status != 0 && refused.output.contains("has a header and no rows"), "\(refused.output)")
        let marked = CycloneCommand.temporary("bom.csv")
        try ("\u{FEFF}" + String(contentsOfFile: data, encoding: .utf8)).write(toFile: marked, atomically: true, encoding: .utf8)
        let bom = try await CycloneCommand.run(["drift", "--reference", data, "--current", marked, "--ignore", "count"])
        #expect(bom.status == 0 && bom.output.contains("dataset drift no"), "\(bom.output)")
    }

    /// `cyclone estimate` on a logistic model: per chunk, the CBPE estimates the library makes from the model's
    /// own outputs (the library equals nannyml's on its fixtures), with the realised values of labelled rows.
    @Test func estimatePrintsCBPEPerChunk() async throws {
        let train = Fixture.url("linear/logistic_binary-train.csv").path, test = Fixture.url("linear/logistic_binary-test.csv").path
        let out = CycloneCommand.temporary("model.json")
        let trained = try await CycloneCommand.run(["train", "--data", train, "--target", "churned", "--family", "logistic",
                                                    "--out", out])
        #expect(trained.status == 0, "\(trained.output)")
        let run = try await CycloneCommand.run(["estimate", "--model", out, "--reference", train, "--current", test,
                                                "--chunk-size", "40", "--json"])
        #expect(run.status == 0, "\(run.output)")
        let line = try #require(run.output.split(separator: "\n").first { $0.hasPrefix("{") })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let chunks = try #require(object["chunks"] as? [[String: Any]])
        #expect(chunks.map { $0["end"] as? Int } == [40, 60] && object["method"] as? String == "cbpe")

        // The same estimates from the library, on the outputs the model gives both files.
        let model = try ModelArtifact.load(contentsOf: URL(fileURLWithPath: out))
        func rows(_ path: String) throws -> [ConfidenceBasedEstimation.Row] {
            let csv = try CSV(contentsOf: URL(fileURLWithPath: path))
            let kinds = Dictionary(uniqueKeysWithValues: model.features.map { ($0.name, $0.kind) })
            let outputs = model.outputs(for: try FeatureTable(csv: csv, columns: model.features.map(\.name), kinds: kinds))
            return zip(outputs, csv.column("churned")!).map { output, label in
                guard case .classification(let predicted, let probabilities) = output else { fatalError() }
                return .init(probability: probabilities[1], predicted: predicted, label: model.classes!.firstIndex(of: label))
            }
        }
        let estimation = try #require(ConfidenceBasedEstimation(reference: try rows(train), chunkSize: 40))
        let current = try rows(test)
        for (chunk, range) in zip(chunks, [0..<40, 40..<60]) {
            let expected = estimation.estimate(Array(current[range]))
            let printed = try #require(chunk["estimates"] as? [String: [String: Any]])
            for (metric, estimate) in expected {
                let values = try #require(printed[metric.rawValue])
                // To 1e-12: the printed number is read back by Foundation, which may differ in the last bit.
                for (key, expected) in [("value", estimate.value), ("lower", estimate.lower), ("upper", estimate.upper)] {
                    let printed = try #require(values[key] as? Double, "\(metric).\(key) at \(range)")
                    #expect(abs(printed - expected) <= 1e-12, "\(metric).\(key) at \(range): \(printed) against \(expected)")
                }
                #expect(values["alert"] as? Bool == estimate.alert && values["realised"] is Double)
            }
        }

        let text = try await CycloneCommand.run(["estimate", "--model", out, "--reference", train, "--current", test])
        #expect(text.status == 0 && text.output.contains("CBPE on 400 labelled reference rows") && text.output.contains("rows 1–40:"),
                "\(text.output)")
        // A regressor is estimated by DLE: MAE and RMSE per chunk, with the realised values where labels are.
        let regressor = CycloneCommand.temporary("ridge.json")
        let ridgeTrain = Fixture.url("linear/ridge_mixed-train.csv").path, ridgeTest = Fixture.url("linear/ridge_mixed-test.csv").path
        _ = try await CycloneCommand.run(["train", "--data", ridgeTrain, "--target", "count", "--family", "ridge", "--out", regressor])
        let dle = try await CycloneCommand.run(["estimate", "--model", regressor, "--reference", ridgeTrain, "--current", ridgeTest,
                                                "--json"])
        let dleLine = try #require(dle.output.split(separator: "\n").first { $0.hasPrefix("{") }, "\(dle.output)")
        let dleObject = try #require(try JSONSerialization.jsonObject(with: Data(dleLine.utf8)) as? [String: Any])
        #expect(dleObject["method"] as? String == "dle" && dleObject["chunk_size"] as? Int == 40)
        let dleChunks = try #require(dleObject["chunks"] as? [[String: Any]])
        #expect(dleChunks.count == 2)
        for chunk in dleChunks {
            let estimates = try #require(chunk["estimates"] as? [String: [String: Any]])
            #expect(Set(estimates.keys) == ["mae", "rmse"])
            for (_, figures) in estimates {
                let value = try #require(figures["value"] as? Double), lower = try #require(figures["lower"] as? Double)
                #expect(value > 0 && lower <= value && figures["realised"] is Double)
            }
        }
        for (arguments, says) in [
            (["--model", regressor, "--reference", ridgeTrain, "--current", test], "the model's feature"),
            (["--model", out, "--reference", test, "--current", test, "--target", "tenure"], "label '"),
            (["--model", out, "--reference", train, "--current", Fixture.url("linear/ridge_mixed-train.csv").path],
             "the model's feature 'tenure' is not a column of"),
            (["--model", out, "--reference", train, "--current", test, "--chunk-size", "0"], "--chunk-size must be at least 1"),
            (["--model", out, "--reference", train, "--current", test, "--chunk-size", "300"],
             "--chunk-size 300 leaves 1 whole chunk(s) of the 400 labelled reference rows"),
        ] {
            let failed = try await CycloneCommand.run(["estimate"] + arguments)
            #expect(failed.status != 0 && failed.output.contains(says) && failed.output.split(separator: "\n").count == 1,
                    "\(failed.output)")
        }
    }

    /// `--version` answers; list options take commas as well as repeats.
    @Test func versionAndCommaLists() async throws {
        let (status, output) = try await CycloneCommand.run(["--version"])
        #expect(status == 0 && output.hasPrefix("cyclone "), "\(output)")
        // A subcommand's own --version is its option: a fault beside it is named, not answered with the version.
        let (missing, said) = try await CycloneCommand.run([
            "train", "--data", Fixture.url("linear/ridge_mixed-train.csv").path, "--target", "count", "--version", "3",
            "--out", CycloneCommand.temporary("model.json"),
        ])
        #expect(missing != 0 && said.contains("--family") && !said.hasPrefix("cyclone 0"), "\(said)")
        let out = CycloneCommand.temporary("model.json")
        let (trained, text) = try await CycloneCommand.run([
            "train", "--data", Fixture.url("linear/ridge_mixed-train.csv").path, "--target", "count", "--family", "ridge",
            "--categorical", "season,weather", "--boolean", "holiday", "--out", out,
        ])
        #expect(trained == 0, "\(text)")
        let model = try ModelArtifact.load(contentsOf: URL(fileURLWithPath: out))
        #expect(model.features.filter { $0.kind == .categorical }.map(\.name).sorted() == ["season", "weather"])
    }

}
