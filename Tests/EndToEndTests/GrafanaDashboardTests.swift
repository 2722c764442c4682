import CycloneTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// infra/grafana/cyclone.json as Grafana runs it: every query of the dashboard (panels, panels in collapsed rows,
/// annotations, query variables) with Grafana's macros and the dashboard's variables expanded the way Grafana
/// sends them to PostgreSQL.
enum GrafanaDashboard {
    static var dashboardPath: String { Repository.root.appendingPathComponent("infra/grafana/cyclone.json").path }
    static var alertRulesPath: String { Repository.root.appendingPathComponent("infra/grafana/alert-rules.yaml").path }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Every query of the dashboard, in the order Grafana lays them out: a panel's first target under the panel's
    /// title, its other targets as `title #refId`; then `annotation: NAME`, `alert rule N` (the queries of the alert
    /// rules file `alerts`) and `variable: NAME`. A panel without
    /// targets, or a target without `rawSql`, is listed with empty SQL.
    static func panels(at path: String = dashboardPath, alerts: String? = alertRulesPath) throws -> [(title: String, sql: String)] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let dashboard = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Failure(description: "\(path): not a JSON object")
        }
        var queries: [(title: String, sql: String)] = []
        func add(_ title: String, _ sql: String) {
            var unique = title, n = 2
            while queries.contains(where: { $0.title == unique }) { unique = "\(title) (\(n))"; n += 1 }
            queries.append((unique, sql))
        }
        func walk(_ panels: [[String: Any]]) {
            for panel in panels {
                let title = panel["title"] as? String ?? "panel \(panel["id"].map { "\($0)" } ?? "?")"
                if panel["type"] as? String != "row" {
                    let targets = panel["targets"] as? [[String: Any]] ?? []
                    if targets.isEmpty { add(title, "") }
                    for (i, target) in targets.enumerated() {
                        add(i == 0 ? title : "\(title) #\(target["refId"] as? String ?? "\(i)")",
                            target["rawSql"] as? String ?? "")
                    }
                }
                walk(panel["panels"] as? [[String: Any]] ?? [])
            }
        }
        walk(dashboard["panels"] as? [[String: Any]] ?? [])
        let annotations = (dashboard["annotations"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
        for annotation in annotations where (annotation["builtIn"] as? Int ?? 0) == 0 {
            let target = annotation["target"] as? [String: Any]
            add("annotation: \(annotation["name"] as? String ?? "?")",
                target?["rawSql"] as? String ?? annotation["rawQuery"] as? String ?? "")
        }
        // The alert rules' SQL: each `rawSql: |-` block of the YAML, as far as its indentation goes.
        if let alerts {
            let rules = try String(contentsOfFile: alerts, encoding: .utf8)
            let lines = rules.split(separator: "\n", omittingEmptySubsequences: false)
            var rule = 0
            for (i, line) in lines.enumerated() where line.trimmingCharacters(in: .whitespaces).hasPrefix("rawSql: |") {
                let indent = line.prefix { $0 == " " }.count
                var sql: [String] = []
                for next in lines[(i + 1)...] {
                    guard next.isEmpty || next.prefix(while: { $0 == " " }).count > indent else { break }
                    sql.append(String(next.dropFirst(indent + 2)))
                }
                rule += 1
                add("alert rule \(rule)", sql.joined(separator: "\n"))
            }
        }
        let variables = (dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
        for variable in variables where variable["type"] as? String == "query" {
            let query = variable["query"] as? String ?? (variable["query"] as? [String: Any])?["rawSql"] as? String ?? ""
            add("variable: \(variable["name"] as? String ?? "?")", query)
        }
        return queries
    }

    /// `sql` as Grafana sends it: the variables (`$model`, `${model}`, `[[model]]`, `$metric`, `$limit`,
    /// `$__interval`, `$__interval_ms`, `$__from`, `$__to`, `$__range_s`, `$__range_ms`) first, then the macros of
    /// the PostgreSQL data source (`$__time`, `$__timeEpoch`, `$__timeFilter`, `$__timeFrom`, `$__timeTo`,
    /// `$__timeGroup`, `$__timeGroupAlias`, `$__unixEpochFilter`, `$__unixEpochFrom`, `$__unixEpochTo`,
    /// `$__unixEpochGroup`, `$__unixEpochGroupAlias`). Text values have their quotes doubled, as Grafana does for a
    /// single-valued variable. Times are RFC 3339 in UTC; a time group is `floor(extract(epoch from x)/60)*60`.
    /// `interval` is Grafana's (`1m`, `30s`, `100ms`) or words (`1 minute`, `30 seconds`). Whatever is not known
    /// is left as it is.
    static func expand(_ sql: String, from: Date, to: Date, model: String, metric: String, limit: Double,
                       interval: String = "1 minute") -> String
    {
        let seconds = intervalSeconds(interval) ?? 60
        let quoted: (String) -> String = { $0.replacingOccurrences(of: "'", with: "''") }
        let variables: [String: String] = [
            "model": quoted(model), "metric": quoted(metric), "limit": "\(limit)",
            "__interval": grafanaInterval(seconds), "__interval_ms": "\(Int((seconds * 1000).rounded()))",
            "__from": "\(milliseconds(from))", "__to": "\(milliseconds(to))",
            "__range_s": "\(Int(to.timeIntervalSince(from)))", "__range_ms": "\(milliseconds(to) - milliseconds(from))",
        ]
        let variable = /\$\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)/
        let interpolated = sql.replacing(variable) { match in
            let name = String(match.output.1 ?? match.output.2 ?? match.output.3 ?? "")
            return variables[name] ?? String(match.output.0)
        }

        let fromText = "'\(rfc3339(from))'", toText = "'\(rfc3339(to))'"
        let macro = /\$__(\w+)\(([^)]*)\)/
        return interpolated.replacing(macro) { match in
            let name = String(match.output.1)
            let arguments = match.output.2.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let column = arguments.first ?? ""
            func group(_ epoch: String) -> String? {
                guard arguments.count >= 2 else { return nil }
                let text = arguments[1].trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
                guard let step = intervalSeconds(text) else { return nil }
                let number = step == step.rounded() ? "\(Int(step))" : "\(step)"
                return "floor(\(epoch)/\(number))*\(number)"
            }
            let expanded: String? = switch name {
            case "time": "\(column) AS \"time\""
            case "timeEpoch": "extract(epoch from \(column)) AS \"time\""
            case "timeFilter": "\(column) BETWEEN \(fromText) AND \(toText)"
            case "timeFrom": fromText
            case "timeTo": toText
            case "timeGroup": group("extract(epoch from \(column))")
            case "timeGroupAlias": group("extract(epoch from \(column))").map { "\($0) AS \"time\"" }
            case "unixEpochFilter": "\(column) >= \(Int(from.timeIntervalSince1970)) AND \(column) <= \(Int(to.timeIntervalSince1970))"
            case "unixEpochFrom": "\(Int(from.timeIntervalSince1970))"
            case "unixEpochTo": "\(Int(to.timeIntervalSince1970))"
            case "unixEpochGroup": group(column)
            case "unixEpochGroupAlias": group(column).map { "\($0) AS \"time\"" }
            default: nil
            }
            return expanded ?? String(match.output.0)
        }
    }

    /// Runs every query of the dashboard (`panels(at:)`), expanded for the time range `from`...`to`, and counts
    /// the rows each returns: rows per title. Throws at the first query PostgreSQL refuses, naming its title.
    /// The interval defaults to what Grafana picks for a panel about 1,000 points wide: the range over 1,000,
    /// whole seconds, at least one.
    static func runEveryPanel(on client: PostgresClient, from: Date, to: Date, model: String = "bikes",
                              metric: String = "r2", limit: Double = 0.4, interval: String? = nil,
                              path: String = dashboardPath) async throws -> [String: Int]
    {
        let interval = interval ?? "\(max(1, Int((to.timeIntervalSince(from) / 1000).rounded(.up)))) seconds"
        var counts: [String: Int] = [:]
        for (title, sql) in try panels(at: path) {
            let expanded = expand(sql, from: from, to: to, model: model, metric: metric, limit: limit, interval: interval)
            do {
                var rows = 0
                for try await _ in try await client.query(PostgresQuery(unsafeSQL: expanded), logger: .test) { rows += 1 }
                counts[title] = rows
            } catch let error as PSQLError {
                let server = [error.serverInfo?[.message], error.serverInfo?[.detail], error.serverInfo?[.hint]]
                    .compactMap { $0 }.joined(separator: "; ")
                throw Failure(description: "Grafana panel '\(title)': \(server.isEmpty ? String(reflecting: error) : server)\n\(expanded)")
            } catch {
                throw Failure(description: "Grafana panel '\(title)': \(String(reflecting: error))\n\(expanded)")
            }
        }
        return counts
    }

    /// Seconds of `1m`, `30s`, `100ms`, `2h`, `1d`, `1w`, `1y`, or of `1 minute`, `30 seconds`.
    static func intervalSeconds(_ text: String) -> Double? {
        let units: [String: Double] = [
            "ms": 0.001, "millisecond": 0.001, "milliseconds": 0.001, "s": 1, "sec": 1, "second": 1, "seconds": 1,
            "m": 60, "min": 60, "minute": 60, "minutes": 60, "h": 3_600, "hour": 3_600, "hours": 3_600,
            "d": 86_400, "day": 86_400, "days": 86_400, "w": 604_800, "week": 604_800, "weeks": 604_800,
            "y": 31_536_000, "year": 31_536_000, "years": 31_536_000,
        ]
        guard let match = text.trimmingCharacters(in: .whitespaces).wholeMatch(of: /([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]+)/),
              let number = Double(match.output.1), let unit = units[match.output.2.lowercased()], number > 0
        else { return nil }
        return number * unit
    }

    /// An interval as Grafana writes `$__interval`: the largest unit it is a whole number of (`1m`, `90s`, `100ms`).
    static func grafanaInterval(_ seconds: Double) -> String {
        let ms = Int((seconds * 1000).rounded())
        for (unit, size) in [("y", 31_536_000_000), ("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000),
                             ("m", 60_000), ("s", 1_000)] where ms >= size && ms % size == 0 {
            return "\(ms / size)\(unit)"
        }
        return "\(ms)ms"
    }

    static func rfc3339(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    static func milliseconds(_ date: Date) -> Int { Int((date.timeIntervalSince1970 * 1000).rounded(.down)) }
}

/// The dashboard and the alert rule as files: importable, every query complete. Running them against data is
/// DemoTests' part (`GrafanaDashboard.runEveryPanel` over a demo's database).
@Suite struct GrafanaDashboardTests {
    let from = Date(timeIntervalSince1970: 1_764_410_400)  // 2025-11-29T10:00:00Z
    var to: Date { from.addingTimeInterval(3_600.25) }

    @Test func everyPanelHasSQLAndNothingIsLeftToExpand() throws {
        let panels = try GrafanaDashboard.panels()
        for title in ["Policy metric per version", "Traffic now", "Predictions per version", "Labelled predictions",
                      "Predict latency p50 / p95", "Prediction and label distribution", "Drift statistic per feature",
                      "Drifted features", "Data-quality counts", "Data quality per feature",
                      "Rows per model version", "Loop events", "Registry", "annotation: Loop events",
                      "annotation: Version spans", "variable: model", "variable: metric", "alert rule 1"] {
            #expect(panels.contains { $0.title == title }, "no query titled '\(title)'")
        }
        #expect(Set(panels.map(\.title)).count == panels.count)
        for (title, sql) in panels {
            #expect(!sql.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "'\(title)' has no SQL")
            let expanded = GrafanaDashboard.expand(sql, from: from, to: to, model: "bikes", metric: "r2", limit: 0.4)
            #expect(!expanded.contains("$") && !expanded.contains("[["), "'\(title)' keeps a macro or variable: \(expanded)")
        }
        // The latency comes from prediction.latency_ms; the threshold from the `limit` variable.
        #expect(panels.contains { $0.title == "Predict latency p50 / p95" && $0.sql.contains("latency_ms") })
        #expect(panels.contains { $0.sql.contains("$limit") })
    }

    @Test func expansionIsGrafanas() {
        let sql = """
            SELECT $__timeGroupAlias(created_at, $__interval), count(*) FROM prediction
            WHERE model_name = '$model' AND name = '${metric}' AND $__timeFilter(created_at) AND v < $limit
              AND t > $__timeFrom() AND t < $__timeTo() AND $__time(t) AND $__interval_ms > 0 AND '[[model]]' <> ''
            """
        let expanded = GrafanaDashboard.expand(sql, from: from, to: to, model: "o'bikes", metric: "r2", limit: 0.4,
                                               interval: "5 minutes")
        #expect(expanded == """
            SELECT floor(extract(epoch from created_at)/300)*300 AS "time", count(*) FROM prediction
            WHERE model_name = 'o''bikes' AND name = 'r2' AND created_at BETWEEN '2025-11-29T10:00:00.000Z' AND '2025-11-29T11:00:00.250Z' AND v < 0.4
              AND t > '2025-11-29T10:00:00.000Z' AND t < '2025-11-29T11:00:00.250Z' AND t AS "time" AND 300000 > 0 AND 'o''bikes' <> ''
            """)
        #expect(GrafanaDashboard.expand("$__timeGroup(x, '30s') $__interval", from: from, to: to, model: "m",
                                        metric: "r2", limit: 1, interval: "100ms")
                == "floor(extract(epoch from x)/30)*30 100ms")
        #expect(GrafanaDashboard.grafanaInterval(60) == "1m" && GrafanaDashboard.grafanaInterval(90) == "90s"
                && GrafanaDashboard.grafanaInterval(7_200) == "2h")
    }

    @Test func theDashboardImportsWithAPostgreSQLDataSource() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: GrafanaDashboard.dashboardPath))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let inputs = dashboard["__inputs"] as? [[String: Any]] ?? []
        #expect(inputs.contains { $0["name"] as? String == "DS_CYCLONE" && $0["type"] as? String == "datasource"
            && $0["pluginId"] as? String == "grafana-postgresql-datasource" }, "\(inputs)")
        let requires = dashboard["__requires"] as? [[String: Any]] ?? []
        #expect(requires.contains { $0["id"] as? String == "grafana-postgresql-datasource" })
        // Every panel, target and annotation names the data source of the input.
        var sources: [String] = []
        func collect(_ value: Any) {
            if let object = value as? [String: Any] {
                if let source = object["datasource"] as? [String: Any], source["uid"] as? String != "-- Grafana --" {
                    sources.append("\(source["type"] as? String ?? "")/\(source["uid"] as? String ?? "")")
                }
                object.values.forEach(collect)
            } else if let array = value as? [Any] {
                array.forEach(collect)
            }
        }
        collect(dashboard)
        #expect(!sources.isEmpty && sources.allSatisfy { $0 == "grafana-postgresql-datasource/${DS_CYCLONE}" },
                "\(Set(sources))")
        let variables = (dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
        let byName = Dictionary(variables.map { ($0["name"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byName["model"]?["query"] as? String == "SELECT DISTINCT name FROM model ORDER BY 1")
        #expect((byName["metric"]?["current"] as? [String: Any])?["value"] as? String == "r2")
        #expect(byName["limit"]?["type"] as? String == "textbox" && byName["limit"]?["query"] as? String == "0.4")
    }

    @Test func theAlertRuleWatchesTheMetricTable() throws {
        let rules = try String(contentsOfFile: GrafanaDashboard.alertRulesPath, encoding: .utf8)
        #expect(rules.contains("apiVersion: 1") && rules.contains("groups:") && rules.contains("rules:"))
        #expect(rules.contains("FROM metric m") && rules.contains("m.name = 'r2'"))
        #expect(rules.contains("condition: C") && rules.contains("type: reduce") && rules.contains("reducer: last")
                && rules.contains("type: threshold") && rules.contains("type: lt") && rules.contains("- 0.4")
                && rules.contains("for: 15m"))
        #expect(rules.contains("type: grafana-postgresql-datasource"))
    }

    /// Every query runs on a freshly migrated, empty database: the columns and tables it names exist.
    @Test func everyQueryRunsOnTheSchema() async throws {
        try await withTestDatabase { db in
            let counts = try await GrafanaDashboard.runEveryPanel(on: db.client, from: from, to: to)
            let panels = try GrafanaDashboard.panels()
            #expect(counts.count == panels.count, "\(counts)")
        }
    }
}
