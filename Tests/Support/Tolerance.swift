import Foundation
import Testing

/// Expects `actual` within `relative` of `expected` (relative to `max(1, |expected|)`).
public func expectClose(
    _ actual: Double, _ expected: Double, relative: Double, _ what: @autoclosure () -> String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let scale = max(1, abs(expected))
    #expect(abs(actual - expected) <= relative * scale,
            "\(what()) \(actual) differs from \(expected) by \(abs(actual - expected))", sourceLocation: sourceLocation)
}

/// A small deterministic generator for property tests: a failure replays from its seed.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension SplitMix64 {
    /// Uniform in [0, 1), from the top 53 bits.
    public mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Standard normal, by Box–Muller.
    public mutating func normal() -> Double {
        (-2 * log(1 - uniform())).squareRoot() * cos(2 * .pi * uniform())
    }
}
