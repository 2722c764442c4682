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
