import CycloneCloud
import CycloneTestSupport
import Foundation
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The dashboard in a real browser: the built `evaluate` serves it over a test database, and Debian's
/// headless Chromium (installed by `scripts/setup`) loads it, runs its script, and dumps the DOM or takes a
/// screenshot. Screenshots are kept in `.build/test-artifacts/`.
struct DashboardBrowser {
    let base: String
    let process: ChildProcess
    static let artifacts = Repository.root.appendingPathComponent(".build/test-artifacts")

    /// Starts `evaluate` on a free port against `databaseURL` and waits until it is ready.
    static func start(databaseURL: String, log: String) async throws -> DashboardBrowser {
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = databaseURL
        let (process, port) = try await ChildServer.start(try Repository.product("evaluate").path, environment: environment,
                                                          log: { _ in log })
        return DashboardBrowser(base: "http://127.0.0.1:\(port)", process: process)
    }

    func stop() async {
        process.signal(SIGTERM)
        _ = await process.wait()
    }

    func get(_ path: String) async throws -> (status: Int, body: Data) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: base + path)!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    /// A JSON object the API answers.
    func api(_ path: String) async throws -> [String: Any] {
        let (status, body) = try await get(path)
        guard status == 200, let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw TestDatabaseError(description: "\(path) answered \(status): \(String(decoding: body, as: UTF8.self))")
        }
        return object
    }

    static func chromium() throws -> String {
        for path in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw TestDatabaseError(description: "Chromium is not installed: run scripts/setup (it installs Debian's chromium)")
    }

    /// Chromium's command line: headless, and given virtual time for the page's requests and first render
    /// (the page refreshes itself only with `refresh` above 0).
    static func arguments(_ extra: [String]) -> [String] {
        ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=15000",
         "--user-data-dir=\(TestFiles.folder.path)/cyclone-chromium-\(UUID().uuidString)"] + extra
    }

    /// The page's DOM after its first render.
    func dom() async throws -> DOM {
        let html = try await Repository.run(try Self.chromium(),
                                            Self.arguments(["--dump-dom", base + "/dashboard?refresh=0"]))
        return DOM(html: html)
    }

    /// Screenshots: wide, wide in dark mode, and at a phone's 375 px. Headless Chromium lays out no window
    /// narrower than 500 px, so the phone's is the page in a 375 px frame, the frame served from the same
    /// site (another loopback port, by Python's http.server) so that the page's requests share its virtual time.
    func screenshots(_ name: String) async throws -> [URL] {
        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        let page = base + "/dashboard?refresh=0"
        let frame = Self.artifacts.appendingPathComponent("\(name)-phone.html")
        try #"<!doctype html><body style="margin:0"><iframe src="\#(page)" width="375" height="3400" style="border:0"></iframe>"#
            .write(to: frame, atomically: true, encoding: .utf8)
        let port = freePort()
        let server = try ChildProcess("/usr/bin/python3", arguments: ["-m", "http.server", "\(port)", "--bind", "127.0.0.1",
                                                                     "--directory", Self.artifacts.path],
                                      environment: ProcessInfo.processInfo.environment, stdout: "/dev/null", stderr: "/dev/null")
        defer { server.signal(SIGTERM) }
        let phone = "http://127.0.0.1:\(port)/\(frame.lastPathComponent)"
        for _ in 0..<100 where (try? await URLSession.shared.data(from: URL(string: phone)!)) == nil {
            try await Task.sleep(for: .milliseconds(50))
        }
        let shots: [(String, [String], String)] = [
            ("wide", ["--window-size=1400,2400"], page),
            ("dark", ["--window-size=1400,2400", "--force-dark-mode", "--blink-settings=preferredColorScheme=0"], page),
            ("phone", ["--window-size=500,3400"], phone),
        ]
        var written: [URL] = []
        for (variant, options, url) in shots {
            let file = Self.artifacts.appendingPathComponent("\(name)-\(variant).png")
            try? FileManager.default.removeItem(at: file)
            try await Repository.run(try Self.chromium(), Self.arguments(options + ["--screenshot=\(file.path)", url]))
            written.append(file)
        }
        server.signal(SIGTERM)
        _ = await server.wait()
        return written
    }
}

/// The elements of a dumped page, found by tag and attributes (Chromium writes every attribute as
/// `name="value"`).
struct DOM {
    let html: String

    /// The part of the page inside `<section data-panel="name">`.
    func panel(_ name: String) -> DOM? {
        guard let start = html.range(of: #"<section data-panel="\#(name)""#),
              let end = html.range(of: "</section>", range: start.upperBound..<html.endIndex) else { return nil }
        return DOM(html: String(html[start.lowerBound..<end.upperBound]))
    }

    /// The attributes of each `<tag ...>` that has every attribute of `having` (a `nil` value: any value).
    func elements(_ tag: String, having: [String: String?] = [:]) -> [[String: String]] {
        var found: [[String: String]] = []
        let opening = try! Regex(#"<\#(tag)(\s[^>]*)?>"#)
        let attribute = try! Regex(#"([a-zA-Z_:][-a-zA-Z0-9_:.]*)="([^"]*)""#)
        for match in html.matches(of: opening) {
            var attributes: [String: String] = [:]
            for pair in String(html[match.range]).matches(of: attribute) {
                attributes[String(pair.output[1].substring!)] = String(pair.output[2].substring!)
                    .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
            }
            // A class matches when it is one of the element's classes.
            let matches = having.allSatisfy { key, value in
                guard let present = attributes[key] else { return false }
                guard let value else { return true }
                return key == "class" ? present.split(separator: " ").contains(Substring(value)) : present == value
            }
            if matches {
                found.append(attributes)
            }
        }
        return found
    }

    func contains(_ text: String) -> Bool { html.contains(text) }
}

extension DashboardBrowser {
    /// An instant as the API or the page writes it (with or without fractions of a second).
    static func date(_ text: String) -> Date? {
        (try? Date(text, strategy: .iso8601)) ?? (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
    }

    /// Checks through the DOM that every panel is drawn and that its numbers are the API's: the policy
    /// metric's points and limit, the volume, the drift cells, the data-quality sums, the events, the traffic
    /// split and the registry.
    func expectThePanelsShowTheAPI(model: String) async throws {
        let dom = try await dom()
        let main = dom.elements("main", having: ["id": "dashboard"]).first
        #expect(main?["data-state"] == "ready" && main?["data-model"] == model, "\(main ?? [:])")
        for name in ["performance", "volume", "latency", "drift", "quality", "events", "traffic", "registry"] {
            #expect(dom.panel(name) != nil, "the \(name) panel")
        }
        let since = "since=7d&limit=10000&model=\(model)"
        let models = (try await api("/api/models")["models"] as? [[String: Any]] ?? []).filter { $0["name"] as? String == model }
        let policy = models.first { $0["status"] as? String == "live" }?["policy"] as? [String: Any]
        let metric = try #require(policy?["metric"] as? String)

        let performance = try #require(dom.panel("performance"))
        #expect(dom.elements("section", having: ["data-panel": "performance"]).first?["data-metric"] == metric)
        // Points as (version, time, value), compared to 1e-12: Foundation's JSON and the browser's may read the
        // last digit of a double differently.
        // A version that no longer serves is drawn up to its last prediction and the first point after it.
        var expected: [(String, String, Double)] = []
        for series in try await api("/api/metrics?\(since)&metric=\(metric)")["series"] as? [[String: Any]] ?? [] {
            let version = "\(series["version"]!)"
            let entry = models.first { "\($0["version"]!)" == version }
            let serving = ["live", "canary", "candidate"].contains(entry?["status"] as? String ?? "live")
            let last = (entry?["last_prediction_at"] as? String).flatMap(Self.date)
            var pastLast = 0
            for point in series["points"] as? [[String: Any]] ?? [] {
                if !serving, let last, let at = Self.date("\(point["at"]!)"), at > last { pastLast += 1 }
                if pastLast > 1 { break }
                if let value = point["value"] as? Double { expected.append((version, "\(point["at"]!)", value)) }
            }
        }
        let drawn = performance.elements("circle", having: ["class": "point"]).map {
            ($0["data-version"] ?? "", $0["data-at"] ?? "", Double($0["data-value"] ?? "") ?? .nan)
        }
        let order = { (a: (String, String, Double), b: (String, String, Double)) in (a.0, a.1, a.2) < (b.0, b.1, b.2) }
        let pairs = zip(drawn.sorted(by: order), expected.sorted(by: order))
        #expect(!expected.isEmpty && drawn.count == expected.count
                && pairs.allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 && abs($0.2 - $1.2) <= 1e-12 * max(1, abs($1.2)) },
                "\(drawn.count) points drawn, \(expected.count) served: \(drawn.sorted(by: order).prefix(2)) against \(expected.sorted(by: order).prefix(2))")
        if let limit = policy?["limit"] as? Double {
            #expect(performance.elements("line", having: ["class": "limit"]).first?["data-limit"].flatMap(Double.init) == limit)
        }

        let volume = try await api("/api/volume?\(since)")
        let buckets = (volume["series"] as? [[String: Any]] ?? []).flatMap { $0["points"] as? [[String: Any]] ?? [] }
        let section = dom.elements("section", having: ["data-panel": "volume"]).first
        #expect(section?["data-predictions"] == "\(buckets.compactMap { $0["predictions"] as? Int }.reduce(0, +))")
        #expect(section?["data-labelled"] == "\(buckets.compactMap { $0["labelled"] as? Int }.reduce(0, +))")

        let drift = (try await api("/api/drift?\(since)")["series"] as? [[String: Any]] ?? [])
        let cells = try #require(dom.panel("drift")).elements("rect", having: ["class": "cell"])
        #expect(cells.count == drift.reduce(0) { $0 + (($1["points"] as? [Any])?.count ?? 0) } && !cells.isEmpty)
        #expect(cells.allSatisfy { $0["data-test"]?.isEmpty == false }, "each cell names its test")
        let quality = try #require(dom.panel("quality"))
        for series in drift where series["feature"] as? String != "dataset" {
            let feature = series["feature"] as? String ?? ""
            let missing = (series["points"] as? [[String: Any]] ?? []).compactMap { $0["missing"] as? Int }.reduce(0, +)
            let rows = quality.elements("tr", having: ["data-feature": feature])
            #expect(rows.first?["data-missing"] == "\(missing)", "missing values of \(feature)")
        }
        // The checks breached in each feature's newest window (over all its versions' series), and the refused
        // requests on the dataset row.
        let byFeature = Dictionary(grouping: drift) { $0["feature"] as? String ?? "" }
        for (feature, series) in byFeature {
            let points = series.flatMap { $0["points"] as? [[String: Any]] ?? [] }
            let timed = points.compactMap { point in (point["at"] as? String).flatMap(Self.date).map { (point, $0) } }
            guard let newest = timed.map(\.1).max() else { continue }
            let breaches = Set(timed.filter { $0.1 == newest }.flatMap { $0.0["quality_breaches"] as? [String] ?? [] })
            let row = quality.elements("tr", having: ["data-feature": feature]).first
            #expect(row?["data-breaches"] == breaches.sorted().joined(separator: " "), "breaches of \(feature)")
            if feature == "dataset" {
                #expect(row?["data-refused"] == "\(points.compactMap { $0["refused"] as? Int }.reduce(0, +))")
            }
        }

        let events = try await api("/api/events?\(since)")["events"] as? [[String: Any]] ?? []
        let listed = try #require(dom.panel("events")).elements("li", having: ["class": "event"])
        #expect(listed.count == events.count && !events.isEmpty, "\(listed.count) listed, \(events.count) served")
        // A replay (its clock marks) is drawn in its stream's time, which the header says and can switch off.
        let marks = (try await api("/api/events?\(since)&kind=replay_clock")["events"] as? [[String: Any]] ?? [])
            .compactMap { (($0["detail"] as? [String: Any])?["stream_at"] as? String).flatMap(Self.date) }
        let clock = dom.elements("div", having: ["id": "clock"]).first
        #expect(!events.contains { $0["kind"] as? String == "replay_clock" }, "clock marks are not loop events")
        if let first = marks.min(), let last = marks.max(), marks.count > 1 {
            #expect(clock != nil && clock?["hidden"] == nil && dom.contains("in its stream time"))
            // Each listed event is shown at a time of the stream, within a cycle of its marks (wall time is now).
            let cycle = (last.timeIntervalSince(first) / Double(marks.count - 1)) * 1.5
            for event in listed {
                let shown = Self.date(event["data-shown"] ?? "")
                #expect(shown.map { $0 >= first.addingTimeInterval(-cycle) && $0 <= last.addingTimeInterval(cycle) } == true,
                        "\(event["data-kind"] ?? "") shown at \(event["data-shown"] ?? "") for a stream from \(first) to \(last)")
            }
        } else {
            #expect(clock?["hidden"] != nil, "no replay: no clock switch")
            #expect(listed.allSatisfy { Self.date($0["data-shown"] ?? "") == Self.date($0["data-at"] ?? "") })
        }
        #expect(performance.elements("line", having: ["class": "event"]).count == events.count, "each event marked")

        let traffic = try #require(dom.panel("traffic")).elements("li", having: ["data-percent": nil])
        let split = models.filter { ($0["traffic_percent"] as? Int ?? 0) > 0 }.map { "\($0["version"]!) \($0["traffic_percent"]!)" }
        #expect(traffic.map { "\($0["data-version"]!) \($0["data-percent"]!)" }.sorted() == split.sorted())
        let registry = try #require(dom.panel("registry")).elements("tr", having: ["data-version": nil])
        #expect(registry.map { "\($0["data-version"]!) \($0["data-status"]!)" }.sorted()
                == models.map { "\($0["version"]!) \($0["status"]!)" }.sorted())
    }
}

@Suite struct DashboardBrowserTests {
    /// An empty database: the page says there is nothing yet, and is not an error.
    @Test func anEmptyDatabaseSaysThereIsNothingYet() async throws {
        try await withTestDatabase { db in
            let log = TestFiles.folder.appendingPathComponent("cyclone-empty-\(UUID().uuidString).log").path
            let browser = try await DashboardBrowser.start(databaseURL: db.url, log: log)
            do {
                let dom = try await browser.dom()
                #expect(dom.elements("main", having: ["id": "dashboard"]).first?["data-state"] == "empty")
                #expect(dom.contains(#"<p id="empty">Nothing yet: no model has served a prediction."#), "\(dom.html.prefix(2000))")
                _ = try await browser.screenshots("empty")
            } catch {
                await browser.stop()
                throw error
            }
            await browser.stop()
        }
    }
}
