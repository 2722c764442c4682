import Foundation
import Testing

@testable import CycloneModel

/// The CSV reader's own decimal parser (`FeatureTable.fastDecimal`) against Swift's `Double(String)`, the
/// correctly rounded parser it stands in for: bit for bit wherever it answers, and answering the numbers files
/// are full of (what `%.17g` and `repr` write), so that its fast paths are the ones tested.
@Suite struct DecimalParsingTests {
    func fast(_ text: String) -> Double? {
        var text = text
        return text.withUTF8 { FeatureTable.fastDecimal($0) }
    }

    /// Where the fast path answers, it answers what `Double(String)` does, to the bit.
    func expectSame(_ text: String, answered: Bool? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        let expected = Double(text)
        let got = fast(text)
        if let answered { #expect((got != nil) == answered, "\(text)", sourceLocation: sourceLocation) }
        if let got {
            #expect(got.bitPattern == expected?.bitPattern, "\(text): \(got) against \(String(describing: expected))",
                    sourceLocation: sourceLocation)
        }
    }

    @Test func seventeenDigitsAsPrintfWritesThem() {
        var random = SplitMix64(seed: 21)
        for _ in 0..<200_000 {
            // Magnitudes from 1e-12 to 1e6, as probabilities, scores and measurements have; from 1e-10 on, 17
            // digits reach no further than 10⁻²⁷, within the fast paths' reach, and are answered there.
            let power = Int(random.next() % 19) - 12
            let value = random.uniform() * pow(10, Double(power))
            let text = String(format: "%.17g", random.next() % 2 == 0 ? value : -value)
            expectSame(text, answered: power >= -10 && value >= 1e-10 ? true : nil)
        }
    }

    @Test func nineteenDigitFractionsAndNearHalfways() {
        var random = SplitMix64(seed: 22)
        for _ in 0..<200_000 {
            let digits = String((random.next() % 9_000_000_000_000_000_000) + 1_000_000_000_000_000_000)
            expectSame("0." + digits, answered: true)
            expectSame("0.000000" + digits, answered: true)
        }
        // Decimals next to the midpoint between two neighbouring doubles, where an estimate off by one would show.
        for _ in 0..<50_000 {
            let value = random.uniform()
            let midpoint = (Decimal(value) + Decimal(value.nextUp)) / 2
            for text in [String(format: "%.19f", NSDecimalNumber(decimal: midpoint).doubleValue),
                         "\(midpoint)".prefix(21).description] {
                expectSame(text)
            }
        }
    }

    @Test func edgesOfTheFastPaths() {
        for text in ["0", "-0", "0.0", "-0.0", "1", "-1", "9007199254740993", "9223372036854775807",
                     "9999999999999999999", "18446744073709551615", "12345678901234567890", "0.1", "0.30000000000000004",
                     "1e-27", "1.5e-27", "1e-28", "2.2250738585072014e-308", "4.9e-324", "1e22", "1e23", "123.456e-5",
                     "0.0000000000000000000000000001", "1.7976931348623157e308", "00000.5", "5.", ".5", "-.5e1"] {
            expectSame(text)
        }
        expectSame("0.1234567890123456789", answered: true)
        expectSame("9999999999999999999", answered: true)
        expectSame("0.12345678901234567890", answered: false)  // 20 digits: the full parser's
    }
}
