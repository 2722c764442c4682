import CycloneModel
import Foundation

/// When a window's data counts as broken: a share per check, above which (with 99 % confidence) the check
/// breaches, for every feature or for the named ones.
///
/// The shares, and the defaults:
/// - `missing` (0.1): values absent or `null`, as a rise over the reference's own missing share;
/// - `invalid` (0.01): values of the wrong type (a string for a number); predict refuses such a request, so
///   through predict they count as `refused`, and as `invalid` in a file compared by `cyclone drift`;
/// - `outOfRange` (0.05): numeric values outside the reference's minimum and maximum, of the values present;
/// - `unseen` (0.05): categories the reference never saw, of a categorical feature's values present (for a
///   boolean, a value the reference never had is drift, not broken data);
/// - `refused` (0.05): instances predict refused as bad input (a refused request counts the instances it
///   carried, 1 when it could not be read), of those refused and those stored.
///
/// The prediction is not checked: it is the model's output, not input data.
///
/// A share is judged by its Wilson score lower bound at `confidence` (one-sided), so that one missing value
/// in a window of three is no breach while a feature gone missing in ten rows is one. With a threshold of 0,
/// any occurrence breaches (for `missing`, any rise over the reference's share). Feature names in
/// exceptions are taken as written, trimmed of spaces; a name with a comma cannot have one.
public struct DataQualityOptions: Sendable, Equatable {
    /// A threshold for every feature, with exceptions by feature name; `nil` turns the check off.
    public struct Limit: Sendable, Equatable {
        public var share: Double?
        public var features: [String: Double?]

        public init(_ share: Double?, features: [String: Double?] = [:]) {
            self.share = share
            self.features = features
        }

        public func share(for feature: String) -> Double? {
            features[feature] ?? share
        }

        /// `0.1`, `off`, or either followed by exceptions: `0.1,income=0.5,zip=off`. `nil` for anything else.
        public init?(_ text: String) {
            func share(_ text: Substring) -> Double?? {
                let trimmed = text.trimmingCharacters(in: .whitespaces)
                if trimmed == "off" { return .some(nil) }
                guard let value = Double(trimmed), value >= 0, value <= 1 else { return nil }
                return .some(value)
            }
            var parts = text.split(separator: ",", omittingEmptySubsequences: false)[...]
            guard let first = parts.popFirst(), let overall = share(first) else { return nil }
            var features: [String: Double?] = [:]
            for part in parts {
                guard let equals = part.lastIndex(of: "=") else { return nil }
                let name = part[..<equals].trimmingCharacters(in: .whitespaces)
                guard !name.isEmpty, features[name] == nil, let value = share(part[part.index(after: equals)...])
                else { return nil }
                features[name] = value
            }
            self.init(overall, features: features)
        }
    }

    public var missing = Limit(0.1)
    public var invalid = Limit(0.01)
    public var outOfRange = Limit(0.05)
    public var unseen = Limit(0.05)
    public var refused = Limit(0.05)
    /// The one-sided confidence that the share is above its threshold.
    public var confidence = 0.99

    public init() {}

    /// The first exception (by check, then name) that names none of `features`, with its check: a misspelt
    /// name would otherwise leave its feature at the overall threshold without a word.
    public func unknownException(among features: [String]) -> (check: DataQualityCheck.Kind, feature: String)? {
        let known = Set(features)
        for check in DataQualityCheck.Kind.allCases {
            if let name = limit(check).features.keys.sorted().first(where: { !known.contains($0) }) { return (check, name) }
        }
        return nil
    }

    public func limit(_ check: DataQualityCheck.Kind) -> Limit {
        switch check {
        case .missing: missing
        case .invalid: invalid
        case .outOfRange: outOfRange
        case .unseen: unseen
        case .refused: refused
        }
    }
}

/// One data-quality check of one feature (or, for refused requests, of the dataset) in one window.
public struct DataQualityCheck: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case missing, invalid, outOfRange = "out_of_range", unseen, refused
    }

    /// A feature's name, or `dataset` for refused requests.
    public var feature: String
    public var check: Kind
    /// How many of how many: the share is `count / of`.
    public var count: Int
    public var of: Int
    public var share: Double?
    /// What the reference had (the missing share); 0 for the other checks.
    public var referenceShare: Double
    /// The share above `referenceShare` that breaches.
    public var threshold: Double
    /// The Wilson score lower bound of `share` at the options' confidence.
    public var lowerBound: Double?
    public var breached: Bool

    enum CodingKeys: String, CodingKey {
        case feature, check, count, of, share, referenceShare = "reference_share", threshold,
             lowerBound = "lower_bound", breached
    }

    public var text: String {
        let what = check == .outOfRange ? "out of range" : check == .refused ? "requests refused" : check.rawValue
        var line = "\(feature): \(count) of \(of) \(what)"
        if let share { line += " (\(percent(share))" + (referenceShare > 0 ? ", reference \(percent(referenceShare))" : "") + ")" }
        line += breached ? ", above \(percent(referenceShare + threshold)): BREACH" : ""
        return line
    }
}

/// The data-quality verdicts of one window: every check that applies, and whether any breached.
public struct DataQualityReport: Sendable, Equatable, Codable {
    public var checks: [DataQualityCheck]

    public init(checks: [DataQualityCheck]) {
        self.checks = checks
    }

    public var breaches: [DataQualityCheck] { checks.filter(\.breached) }
    public var breached: Bool { checks.contains(where: \.breached) }

    enum CodingKeys: String, CodingKey { case checks, breached }

    public init(from decoder: any Decoder) throws {
        checks = try decoder.container(keyedBy: CodingKeys.self).decode([DataQualityCheck].self, forKey: .checks)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(checks, forKey: .checks)
        try container.encode(breached, forKey: .breached)
    }

    /// The breaches in one line, `nil` when there are none: `age missing 100 % (reference 0 %); …`.
    public var summary: String? {
        let breaches = breaches
        return breaches.isEmpty ? nil : breaches.map(\.text).joined(separator: "; ")
    }

    /// `3 checks passed`, `2 of 9 checks BREACHED`, or `nothing to check` (an empty window): only checks
    /// with rows count.
    public var verdict: String {
        let made = checks.filter { $0.of > 0 }.count
        let breaches = breaches.count
        return made == 0 ? "nothing to check" : breaches == 0 ? "\(made) checks passed" : "\(breaches) of \(made) checks BREACHED"
    }

    /// The breached checks of one feature, by name (`missing`, `out_of_range`…).
    public func breaches(of feature: String) -> [String] {
        checks.filter { $0.breached && $0.feature == feature }.map(\.check.rawValue)
    }
}

extension DriftReport {
    /// The data-quality verdicts of the window this report compared: the features' counts, and `refused`
    /// requests against `rows` stored instances.
    public func dataQuality(refused: Int, rows: Int, options: DataQualityOptions = DataQualityOptions())
        -> DataQualityReport
    {
        var checks: [DataQualityCheck] = []
        func judge(_ feature: String, _ kind: DataQualityCheck.Kind, count: Int, of total: Int, reference: Double = 0) {
            guard let threshold = options.limit(kind).share(for: feature) else { return }
            let share = total > 0 ? Double(count) / Double(total) : nil
            let lower = total > 0 ? wilsonLowerBound(successes: count, trials: total, confidence: options.confidence) : nil
            checks.append(DataQualityCheck(
                feature: feature, check: kind, count: count, of: total, share: share, referenceShare: reference,
                threshold: threshold, lowerBound: lower, breached: lower.map { $0 > reference + threshold } ?? false))
        }
        for feature in features {
            judge(feature.feature, .missing, count: feature.missing, of: feature.rows,
                  reference: feature.referenceMissingRate)
            judge(feature.feature, .invalid, count: feature.invalid, of: feature.rows)
            let present = max(0, feature.rows - feature.missing - feature.invalid)
            if let outOfRange = feature.outOfRange { judge(feature.feature, .outOfRange, count: outOfRange, of: present) }
            if let unseen = feature.unseen, feature.kind == .categorical {
                judge(feature.feature, .unseen, count: unseen, of: present)
            }
        }
        judge("dataset", .refused, count: refused, of: refused + rows)
        return DataQualityReport(checks: checks)
    }
}

/// The lower end of the Wilson score interval for a binomial share, one-sided at `confidence`: the share
/// is above it with that confidence. 0 when there are no successes.
public func wilsonLowerBound(successes: Int, trials: Int, confidence: Double) -> Double {
    guard trials > 0, successes > 0 else { return 0 }
    let n = Double(trials), p = Double(successes) / n
    let z = standardNormalQuantile(confidence)
    let z2 = z * z
    let centre = p + z2 / (2 * n)
    let spread = z * (p * (1 - p) / n + z2 / (4 * n * n)).squareRoot()
    return max(0, (centre - spread) / (1 + z2 / n))
}

private func percent(_ share: Double) -> String {
    let value = 100 * share
    return (value == value.rounded() ? String(Int(value)) : String(format: "%.3g", value)) + " %"
}
