import Configuration
import CycloneRuntime
import Testing

@Suite struct SettingsTests {
    @Test(arguments: [("250ms", 0.25), ("2s", 2), ("1.5s", 1.5), ("5m", 300), ("1h", 3_600), ("7d", 604_800), ("30", 30),
                      ("0", 0), ("36500d", 3_153_600_000)])
    func durationsParse(_ text: String, _ seconds: Double) {
        #expect(Duration.setting(text) == .milliseconds(Int64(seconds * 1000)), "\(text)")
    }

    /// Infinities, NaN and durations too long for a clock are refused (they once trapped converting to Int64).
    @Test(arguments: ["inf", "INF", "infs", "nan", "1e20", "99999999999999d", "1e300ms", "-5s", "", "5 s", "0x10", "two"])
    func badDurationsAreRefused(_ text: String) {
        #expect(Duration.setting(text) == nil, "\(text)")
    }

    /// A setting that does not parse stops start-up with one line naming the variable.
    @Test func aBadDurationSettingNamesItsVariable() throws {
        let reader = ConfigReader.cyclone(environment: ["STORE_TIMEOUT": "inf"])
        #expect(throws: SettingError(variable: "STORE_TIMEOUT", message: "'inf' is not a duration")) {
            try reader.setting("store.timeout", variable: "STORE_TIMEOUT", default: Duration.seconds(1),
                               expected: "a duration", Duration.setting)
        }
    }
}
