import Configuration
import CycloneModel

extension ConfigReader {
    /// The process environment: key `model.path` is `MODEL_PATH`, `port` is `PORT`. `accessReporter` hears
    /// of every read (the infra tests list what each function reads).
    public static func cyclone(environment: [String: String]? = nil,
                               accessReporter: (any AccessReporter)? = nil) -> ConfigReader {
        let secrets: SecretsSpecifier<String, String> = .specific(["DATABASE_URL"])
        if let environment {
            return ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: environment,
                                                                      secretsSpecifier: secrets),
                                accessReporter: accessReporter)
        }
        return ConfigReader(provider: EnvironmentVariablesProvider(secretsSpecifier: secrets), accessReporter: accessReporter)
    }

    /// A setting parsed by `parse`, `defaultValue` when unset. A value that does not parse stops start-up with
    /// an error naming the variable, rather than falling back silently.
    public func setting<Value>(
        _ key: ConfigKey, variable: String, default defaultValue: Value, expected: String,
        isSecret: Bool = false, _ parse: (String) -> Value?
    ) throws(SettingError) -> Value {
        guard let text = string(forKey: key, isSecret: isSecret), !text.isEmpty else { return defaultValue }
        guard let value = parse(text) else {
            throw SettingError(variable: variable, message: isSecret ? "is not \(expected)" : "'\(text)' is not \(expected)")
        }
        return value
    }

    /// `CANARY_PERCENT` (10): the share of traffic a new version gets first, as predict and the platforms read it.
    public func canaryPercent() throws -> Int {
        try setting("canary.percent", variable: "CANARY_PERCENT", default: 10,
                    expected: "a whole percentage from 0 to 100", Int.percentage)
    }

    /// A required string setting; missing or empty stops start-up with an error naming the variable.
    public func required(_ key: ConfigKey, variable: String, isSecret: Bool = false, hint: String = "")
        throws(SettingError) -> String
    {
        guard let text = string(forKey: key, isSecret: isSecret), !text.isEmpty else {
            throw SettingError(variable: variable, message: "is not set\(hint.isEmpty ? "" : " (\(hint))")")
        }
        return text
    }
}

/// A setting that is missing or malformed.
public struct SettingError: Error, CustomStringConvertible, Equatable {
    public var variable: String
    public var message: String
    public init(variable: String, message: String) {
        self.variable = variable
        self.message = message
    }
    public var description: String { "\(variable) \(message)" }
}

extension ConfigReader {
    /// An optional setting: `nil` when unset or empty.
    public func nonEmpty(_ key: ConfigKey) -> String? {
        string(forKey: key).flatMap { $0.isEmpty ? nil : $0 }
    }
}

extension Int {
    /// Parses a positive integer setting.
    public static func positive(_ text: String) -> Int? { Int(text).flatMap { $0 > 0 ? $0 : nil } }

    /// Parses a whole percentage, 0 to 100.
    public static func percentage(_ text: String) -> Int? { Int(text).flatMap { (0...100).contains($0) ? $0 : nil } }
}

extension Double {
    /// Parses a finite share of at least 0 (`0.01` is 1 %).
    public static func nonNegative(_ text: String) -> Double? { Double(text).flatMap { $0 >= 0 && $0.isFinite ? $0 : nil } }
}

extension Duration {
    /// The duration as a setting writes it: `7d`, `12h`, `30m`, `45s` (the largest unit that divides it).
    public var settingText: String {
        let seconds = seconds
        for (suffix, unit) in [("d", 86_400.0), ("h", 3_600.0), ("m", 60.0)] where seconds >= unit && seconds.truncatingRemainder(dividingBy: unit) == 0 {
            return "\(Int(seconds / unit))\(suffix)"
        }
        return seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(seconds)s"
    }

    /// The longest duration a setting or a query may name: 100 years (longer ones are typos, and would
    /// overflow the milliseconds a `Duration` is built from).
    public static let longestSetting: Double = 100 * 365.25 * 86_400

    /// Parses `250ms`, `2s`, `1.5s`, `5m`, `1h`, `7d`, or a plain number of seconds: finite, not negative, at
    /// most `longestSetting`.
    public static func setting(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3_600), ("d", 86_400)]
        var number = Substring(text), scale = 1.0
        if let (suffix, unit) = units.first(where: { text.hasSuffix($0.0) }) {
            number = number.dropLast(suffix.count)
            scale = unit
        }
        // Digits only, so that `inf`, `nan` and hexadecimal floats are not numbers here.
        guard number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "." || $0 == "e" || $0 == "E" || $0 == "+" || $0 == "-") }),
            let value = Double(number), value >= 0
        else { return nil }
        let seconds = value * scale
        guard seconds.isFinite, seconds <= longestSetting else { return nil }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }
}
