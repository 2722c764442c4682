import CycloneCloud
import CycloneModel
import CycloneTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `cyclone demo`: the real servers and retrain job over a replayed stream, against a test database. One
/// demo at a time: each runs three servers and its retrains.
@Suite(.serialized) struct DemoTests {
    /// The short synthetic run: the first model degrades, the loop retrains, and the closing table compares
    /// it with the two baselines over what predict actually stored.
    @Test func fastDemoClosesTheLoop() async throws {
        let folder = CycloneCommand.temporary("demo")
        try await withTestDatabase { db in
            let started = Date().addingTimeInterval(-1)
            let (status, output) = try await CycloneCommand.run(["demo", "--fast", "--database-url", db.url,
                                                              "--folder", folder, "--no-serve"])
            #expect(status == 0, "\(output)")
            #expect(output.contains("dashboard: http://127.0.0.1:"), "\(output)")
            #expect(output.contains("retrain requested for bikes@1"), "\(output)")
            let again = try await CycloneCommand.run(["demo", "--fast", "--database-url", db.url, "--folder", folder])
            #expect(again.status != 0 && again.output.contains("is not empty; give --folder a new or empty folder"),
                    "\(again.output)")
            #expect(output.contains("synthetic hourly bike-rental demand, 75 days from 2025-01-01\n"),
                    "no pattern change falls in ten weeks: \(output)")
            #expect(output.contains("bikes@2 accepted") || output.contains("bikes@2 rejected"), "\(output)")
            #expect(output.contains("rmse per month, lower is better"), "\(output)")
            // A week's line: the error and the policy's metric over the window, and the loss against the serving
            // version's first window.
            #expect(output.split(separator: "\n").contains { $0.contains("·  rmse ") && $0.contains(", r2 ") && $0.contains(", loss ×") },
                    "\(output)")
            // February and half of March are replayed; January trained the first model.
            let table = Self.table(output)
            #expect(table.map(\.month) == ["2025-02", "2025-03", "all", "mean"], "\(output)")
            #expect(table.map(\.rows) == [672, 384, 1056, nil])
            for row in table { #expect(row.values.count == 4 && row.values.allSatisfy { $0 > 0 && $0 < 200 }, "\(row)") }
            // The mean weighs each month the same; `all` weighs each row.
            for column in 0..<4 {
                let mean = (table[0].values[column] + table[1].values[column]) / 2
                #expect(abs(table[3].values[column] - mean) <= 0.02 * mean + 0.05, "\(table)")
            }
            // Retrains and deploys per strategy: none for the first model; a calendar baseline deploys every
            // model it trains (one, at March's start); the loop deploys at most what it trained.
            let (retrains, deploys) = (Self.counts(output, "retrains"), Self.counts(output, "deploys"))
            #expect(retrains.count == 4 && deploys.count == 4, "\(output)")
            #expect(retrains[0] == 0 && deploys[0] == 0 && retrains[2...] == [1, 1] && deploys[2...] == [1, 1], "\(output)")
            #expect(retrains[1] >= 1 && deploys[1] <= retrains[1], "\(output)")
            let fits = Self.counts(output, "fits")
            #expect(fits.count == 4 && fits[2...] == [1, 1] && fits[1] >= retrains[1], "each retrain fits at least one model: \(output)")

            // Every replayed row is stored, named by the version that served it; the labels due are attached.
            var stored = 0, labelled = 0, versions: Set<String> = []
            for try await (version, count, labels) in try await db.client.query("""
                SELECT model_version, count(*)::int, count(label)::int FROM prediction
                WHERE model_name = 'bikes' GROUP BY 1
                """, logger: .test).decode((String, Int, Int).self) {
                stored += count
                labelled += labels
                versions.insert(version)
            }
            #expect(stored == 1056)
            #expect(labelled >= 1056 - 48 && labelled < 1056, "the last day's labels are not due yet: \(labelled)")
            var registered: Set<String> = []
            for try await version in try await db.client.query("SELECT version FROM model WHERE name = 'bikes'",
                                                               logger: .test).decode(String.self) {
                registered.insert(version)
            }
            #expect(versions.isSubset(of: registered) && registered.count >= 2, "\(versions) \(registered)")
            #expect(FileManager.default.fileExists(atPath: "\(folder)/models/versions/bikes-1.json"))
            #expect(FileManager.default.fileExists(atPath: "\(folder)/predict.log"))

            // The dashboard over what the demo stored, in a real browser, agrees with the API; every Grafana
            // query (the alert rule's too) runs on the same tables, and the main panels find rows. The alert
            // finds rows only when a serving version's window had 100 labels, which a short run may not reach.
            let browser = try await DashboardBrowser.start(databaseURL: db.url, log: "\(folder)/dashboard.log")
            do {
                try await browser.expectThePanelsShowTheAPI(model: "bikes")
                let shots = try await browser.screenshots("demo")
                #expect(shots.allSatisfy { ((try? Data(contentsOf: $0))?.count ?? 0) > 10_000 }, "\(shots)")
            } catch {
                await browser.stop()
                throw error
            }
            await browser.stop()
            let rows = try await GrafanaDashboard.runEveryPanel(on: db.client, from: started, to: Date().addingTimeInterval(1))
            for panel in ["Policy metric per version", "Predictions per version", "Predict latency p50 / p95",
                          "Drift statistic per feature", "Registry", "Loop events", "annotation: Loop events"] {
                #expect((rows[panel] ?? 0) > 0, "Grafana panel '\(panel)': \(rows)")
            }
        }
    }

    /// Judged by the estimate with labels a week late, the demo replays the stream a second time judged by the
    /// labels alone (a model of its own in the same database) and the table sets the two side by side. The
    /// second replay's evaluate judges only its own model (EVALUATE_MODELS), and its labels reach only its own
    /// predictions (sent by prediction id, not by the stream's keys, which both replays share).
    @Test func anEstimatedLoopIsSetBesideTheLabelsAlone() async throws {
        let folder = CycloneCommand.temporary("estimated")
        try await withTestDatabase { db in
            let (status, output) = try await CycloneCommand.run([
                "demo", "--fast", "--database-url", db.url, "--folder", folder, "--no-serve", "--label-delay", "7d",
                "--performance-source", "estimated",
            ])
            #expect(status == 0, "\(output)")
            #expect(output.contains("judged by the labels alone (PERFORMANCE_SOURCE=realised, model bikes-labels)"), "\(output)")
            // The decision says it was made on the estimate (after the realised test's figures, when labels are
            // there too).
            #expect(output.split(separator: "\n").contains {
                $0.contains("retrain requested for bikes@1: ") && $0.contains("estimated (DLE")
            }, "\(output)")
            let header = try #require(output.split(separator: "\n").first { $0.hasPrefix("month ") })
            #expect(header.contains("Cyclone loop   labels only   every month"), "\(header)")
            #expect(Self.table(output).allSatisfy { $0.values.count == 5 }, "\(output)")
            #expect(output.contains("acting on the estimate before the labels: rmse "), "\(output)")
            var labels: [String: Int] = [:], last: [String: Date] = [:], first: [String: Date] = [:]
            for try await (model, count) in try await db.client.query(
                "SELECT model_name, count(label)::int FROM prediction GROUP BY 1", logger: .test).decode((String, Int).self)
            { labels[model] = count }
            #expect(labels.count == 2 && labels["bikes"] == labels["bikes-labels"] && (labels["bikes"] ?? 0) > 800, "\(labels)")
            for try await (model, earliest, latest) in try await db.client.query(
                "SELECT model_name, min(computed_at), max(computed_at) FROM metric GROUP BY 1", logger: .test)
                .decode((String, Date, Date).self)
            { (first[model], last[model]) = (earliest, latest) }
            let secondStarted = try #require(first["bikes-labels"]), firstEnded = try #require(last["bikes"])
            #expect(firstEnded < secondStarted, "the second replay's evaluate judged the first one's model too")
            // Each model has the training month as its history (January's 744 hours), older than its predictions.
            for try await (model, count, newest, predicted) in try await db.client.query("""
                SELECT h.model_name, count(*)::int, max(h.created_at),
                       (SELECT min(created_at) FROM prediction p WHERE p.model_name = h.model_name)
                FROM history h GROUP BY 1
                """, logger: .test).decode((String, Int, Date, Date).self)
            {
                // Moved to end where the replay started (the servers stamp rows with the wall clock).
                #expect(count == 744 && newest < predicted && predicted.timeIntervalSince(newest) < 7_200,
                        "\(model): \(count) rows of history, the newest at \(newest), the first prediction at \(predicted)")
                labels[model] = nil
            }
            #expect(labels.isEmpty, "models without history: \(labels)")
            // A name whose labels-only twin is taken is refused before the first replay, not after it.
            _ = try await db.client.query("UPDATE model SET name = 'other-labels' WHERE name = 'bikes-labels'", logger: .test)
            let clash = try await CycloneCommand.run([
                "demo", "--fast", "--database-url", db.url, "--folder", folder + "-clash", "--no-serve", "--name", "other",
                "--performance-source", "estimated",
            ])
            #expect(clash.status != 0 && clash.output.contains("already holds a model named 'other-labels'")
                    && !clash.output.contains("rmse per month"), "\(clash.output)")
        }
    }

    /// The same stream and settings give the same table, to the digit, however loaded the machine: three
    /// short runs (a canary at 50 %, so the keyed split is exercised) print one table.
    @Test func aReplayGivesTheSameTableEveryRun() async throws {
        try await withTestDatabase { db in
            var tables: [String] = []
            for run in 1...3 {
                let (status, output) = try await CycloneCommand.run([
                    "demo", "--fast", "--database-url", db.url, "--name", "same\(run)",
                    "--folder", CycloneCommand.temporary("same\(run)"), "--no-serve",
                ])
                #expect(status == 0, "\(output)")
                let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
                let start = try #require(lines.firstIndex { $0.hasSuffix("per month, lower is better") }, "\(output)")
                let end = try #require(lines[start...].firstIndex { $0.hasPrefix("deploys") }, "\(output)")
                tables.append(lines[start...end].joined(separator: "\n"))
            }
            #expect(tables[0].contains("Cyclone loop"), "\(tables[0])")
            #expect(tables[1] == tables[0] && tables[2] == tables[0], "\(tables.joined(separator: "\n\n"))")
        }
    }

    /// With --serve the demo keeps evaluate up after the replay, at the port asked for, until interrupted;
    /// then it stops it and exits cleanly.
    @Test func theDashboardStaysUpUntilInterrupted() async throws {
        let folder = CycloneCommand.temporary("serve")
        try await withTestDatabase { db in
            let port = freePort(), log = folder + ".out"
            let demo = try ChildProcess(try Repository.product("cyclone").path,
                                        arguments: ["demo", "--fast", "--database-url", db.url, "--folder", folder, "--serve",
                                                    "--dashboard-port", "\(port)"],
                                        environment: ProcessInfo.processInfo.environment, stdout: log, stderr: log)
            var output = ""
            for _ in 0..<1_200 where !output.contains("the dashboard stays up") && !demo.hasExited {
                try await Task.sleep(for: .milliseconds(100))
                output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            }
            #expect(output.contains("dashboard: http://127.0.0.1:\(port)/dashboard"), "\(output)")
            #expect(output.contains("the dashboard stays up at http://127.0.0.1:\(port)/dashboard: Ctrl-C to stop"), "\(output)")
            let (page, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/dashboard")!)
            #expect((response as? HTTPURLResponse)?.statusCode == 200 && page.count > 10_000)
            #expect(!demo.hasExited, "still serving")
            demo.signal(SIGINT)
            #expect(await demo.wait() == 0)
            #expect((try? await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/healthz")!)) == nil,
                    "evaluate stopped with it")
        }
    }

    /// Told to stop mid-replay (SIGTERM to the demo alone, as a supervisor or `timeout` sends it), the demo
    /// takes its three servers down with it and exits as the signal would have it, 143.
    @Test func aDemoToldToStopTakesItsServersWithIt() async throws {
        let folder = CycloneCommand.temporary("stop")
        try await withTestDatabase { db in
            let log = folder + ".out"
            let demo = try ChildProcess(try Repository.product("cyclone").path,
                                        arguments: ["demo", "--fast", "--no-serve", "--database-url", db.url, "--folder", folder],
                                        environment: ProcessInfo.processInfo.environment, stdout: log, stderr: log)
            var children: [pid_t] = []
            for _ in 0..<1_200 where children.count < 3 && !demo.hasExited {
                try await Task.sleep(for: .milliseconds(100))
                children = Self.children(of: demo.pid)
            }
            #expect(children.count == 3, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            demo.signal(SIGTERM)
            #expect(await demo.wait() == 143)
            // Ended: gone, or a zombie its new parent has yet to reap.
            for child in children {
                let stat = (try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8)) ?? ""
                let state = stat.lastIndex(of: ")").map { stat[stat.index($0, offsetBy: 2)] }
                #expect(stat.isEmpty || state == "Z", "server \(child) outlived the demo: \(stat)")
            }
        }
    }

    /// The processes whose parent is `pid`, from /proc.
    static func children(of pid: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard let child = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")")
            else { return nil }
            // pid (comm) state ppid …: the name may hold spaces, so the fields are read after its last ')'.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && pid_t(fields[1]) == pid ? child : nil
        }
    }

    /// A CSV of the user's own, out of time order: replayed by its time column, its pattern change seen and
    /// answered by a retrain.
    @Test func backtestReplaysAFileByItsTimeColumn() async throws {
        let folder = CycloneCommand.temporary("backtest")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var random = SplitMix64(seed: 5)
        var lines: [String] = []
        let start = Date(timeIntervalSince1970: 1_709_251_200)  // 2024-03-01
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        for hour in 0..<(24 * 70) {
            let x = 10 * random.uniform(), shop = ["north", "south"][Int(random.next() % 2)]
            // From 20 April the slope turns and the south shop sells more.
            let late = hour >= 24 * 50
            let y = (late ? -2 : 3) * x + (shop == "south" && late ? 15 : 0) + random.normal()
            // Some rows lack a label, some a feature: predicted, never labelled; sent as null and imputed.
            lines.append("\(formatter.string(from: start.addingTimeInterval(Double(hour) * 3_600))),"
                         + "\(hour % 89 == 5 ? "" : shop),\(x),\(hour % 97 == 3 ? "" : "\(y)")")
        }
        lines.shuffle(using: &random)
        let data = "\(folder)/sales.csv"
        try (["sold_at,shop,x,y"] + lines).joined(separator: "\n").write(toFile: data, atomically: true, encoding: .utf8)
        try await withTestDatabase { db in
            let (status, output) = try await CycloneCommand.run([
                "demo", "--data", data, "--target", "y", "--time", "sold_at", "--database-url", db.url,
                "--folder", folder + "/run", "--rollout", "direct", "--training-rows", "240", "--threshold", "0.8",
                "--num-leaves", "8", "--categorical", "shop",
            ])
            #expect(status == 0, "\(output)")
            #expect(output.contains("backtest of \(data): 1680 rows, predicting 'y'"), "\(output)")
            #expect(output.contains("first model: sales@1 (gbdt) trained on"), "\(output)")
            #expect(output.contains("retrain requested for sales@1"), "\(output)")
            let first = try ModelArtifact.load(contentsOf: URL(fileURLWithPath: folder + "/run/models/versions/sales-1.json"))
            #expect(first.training?.parameters["num_leaves"] == 8, "the train options reach the first model")
            #expect(output.contains(" deployed to all requests"), "\(output)")
            let table = Self.table(output)
            #expect(table.map(\.month) == ["2024-04", "2024-05", "all", "mean"], "\(output)")
            let may = try #require(table.count == 4 && table[1].values.count == 4 ? table[1] : nil, "\(output)")
            // After the change the first model is far off; the loop and the monthly retrain are not.
            #expect(may.values[1] < may.values[0] / 2, "\(may)")
            var unlabelled = 0
            for try await count in try await db.client.query(
                "SELECT count(*)::int FROM prediction WHERE model_name = 'sales' AND label IS NULL", logger: .test
            ).decode(Int.self) { unlabelled = count }
            #expect(unlabelled > 0, "rows without a label are stored unlabelled")
        }
    }

    @Test(arguments: [
        (["demo", "--data", "/tmp/x.csv"], "--data needs --target and --time"),
        (["demo", "--target", "y"], "--target, --time, --categorical, --numeric, --boolean, --ignore and --optional go with --data"),
        (["demo", "--data", "BAD", "--target", "y", "--time", "t", "--fast"], "--fast and --days are for the synthetic stream"),
        (["demo", "--training-rows", "100"], "--training-rows must be at least 125"),
        (["demo", "--days", "7"], "--days must be 45 to 365"),
        (["demo", "--dashboard-port", "99999"], "--dashboard-port must be 1 to 65535, not 99999"),
        (["demo", "--evaluate-every", "soon"], "--evaluate-every must be a duration such as 12h or 1d, not 'soon'"),
        (["demo", "--metric", "accuracy"], "--metric must be one of rmse, mae, mape, r2 for a regression model"),
        (["demo", "--data", "BAD", "--target", "y", "--time", "t"], "row 2, column 't': 'yesterday' is not a time"),
        (["demo", "--export", "/nonexistent/out.csv", "--data", "BAD"],
         "--export writes the synthetic stream; it does not go with --data, --target, --time or column options"),
    ])
    func badOptionsAreOneLine(_ arguments: [String], _ expected: String) async throws {
        let bad = CycloneCommand.temporary("bad.csv")
        try "t,x,y\n2024-01-01,1,2\nyesterday,2,3\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let (status, output) = try await CycloneCommand.run(arguments.map { $0 == "BAD" ? bad : $0 })
        #expect(status != 0)
        let message = output.components(separatedBy: "): ").dropFirst().joined(separator: "): ")
        #expect(message.split(separator: "\n").count == 1, "\(message)")
        #expect(message.contains("cyclone: " + expected), "\(message)")
    }

    struct TableRow: CustomStringConvertible {
        var month: String
        /// `nil` on the mean of the months.
        var rows: Int?
        var values: [Double]
        var description: String { "\(month) \(rows.map(String.init) ?? "") \(values)" }
    }

    /// The closing table: its rows (month, rows, then one value per strategy; the mean has no row count),
    /// then the retrains and deploys per strategy.
    static func table(_ output: String) -> [TableRow] {
        let lines = output.split(separator: "\n").map(String.init)
        guard let header = lines.firstIndex(where: { $0.hasPrefix("month ") }) else { return [] }
        return lines[(header + 1)...].prefix { !$0.hasPrefix("retrains") }.compactMap { line in
            let fields = line.split(separator: " ").map(String.init)
            if fields.first == "mean" { return TableRow(month: "mean", rows: nil, values: fields.dropFirst().compactMap(Double.init)) }
            guard fields.count >= 2, let rows = Int(fields[1]) else { return nil }
            return TableRow(month: fields[0], rows: rows, values: fields.dropFirst(2).compactMap(Double.init))
        }
    }

    /// The `retrains` and `deploys` rows: a count per strategy.
    static func counts(_ output: String, _ name: String) -> [Int] {
        output.split(separator: "\n").first { $0.hasPrefix(name + " ") }.map {
            $0.split(separator: " ").dropFirst().compactMap { Int($0) }
        } ?? []
    }
}
