import Configuration
import CycloneRuntime
import CycloneStore
import Testing

/// `TRAINING_WINDOW_ROWS`, `TRAINING_WINDOWS` and `TRAINING_MAX_ROWS`: the windows a retrain's candidates
/// train on, and what it reads.
@Suite struct TrainingWindowsTests {
    func windows(_ environment: [String: String]) throws -> TrainingWindows {
        try TrainingWindows(ConfigReader.cyclone(environment: environment))
    }

    @Test func byDefaultTheNewestWindowThreeTimesItAndEverything() throws {
        let defaults = try windows([:])
        #expect(defaults.sizes == [100_000, 300_000, 1_000_000])
        #expect(defaults.read(holdout: 0.2) == WindowBounds(rows: 1_020_000, maxAge: .seconds(30 * 86_400)),
                "the widest window, and the holdout (a fifth of the newest) after it")
        let demo = try windows(["TRAINING_WINDOW_ROWS": "720", "TRAINING_MAX_ROWS": "5000", "TRAINING_WINDOW_MAX_AGE": "3650d"])
        #expect(demo.sizes == [720, 2_160, 5_000] && demo.read(holdout: 0.2).rows == 5_144 && demo.newest.rows == 720)
        // A newest window beyond TRAINING_MAX_ROWS is read whole, as before there were windows.
        #expect(try windows(["TRAINING_WINDOW_ROWS": "2000000"]).sizes == [2_000_000])
    }

    @Test func aListPicksTheWindows() throws {
        #expect(try windows(["TRAINING_WINDOW_ROWS": "500", "TRAINING_WINDOWS": "1"]).sizes == [500])
        #expect(try windows(["TRAINING_WINDOW_ROWS": "500", "TRAINING_WINDOWS": "ALL, 2"]).sizes == [1_000, 1_000_000])
        // A multiple past the most rows is the most rows, once.
        #expect(try windows(["TRAINING_WINDOW_ROWS": "500", "TRAINING_WINDOWS": "1,4,all", "TRAINING_MAX_ROWS": "1500"])
            .sizes == [500, 1_500])
    }

    @Test(arguments: ["0", "x", "1,,3", "-1", "1.5"])
    func aBadListNamesTheVariable(_ text: String) {
        let error = #expect(throws: SettingError.self) { try windows(["TRAINING_WINDOWS": text]) }
        #expect(error?.variable == "TRAINING_WINDOWS", "\(String(describing: error))")
    }
}
