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
        // The 19-digit decimals just below and just above the midpoint between two neighbouring doubles in
        // [0.1, 1): the two roundings of the estimate land on either side of it as often as not, so this is
        // where the exact check has to move it by an ulp. The midpoint (2m + 1)·2^(e−1) needs 54 digits or
        // more, so no 19-digit decimal is a tie; floor(midpoint·10¹⁹) is computed exactly in 128 bits.
        var moved = 0
        for _ in 0..<100_000 {
            let value = 0.1 + random.uniform() * 0.9
            let m = UInt128(value.significandBitPattern | (1 << 52)), e = Int(value.exponentBitPattern) - 1075
            let below = (2 * m + 1) * 10_000_000_000_000_000_000 >> UInt128(1 - e)
            for digits in [below, below + 1] {
                let text = "0." + String(repeating: "0", count: 19 - String(digits).count) + String(digits)
                expectSame(text, answered: true)
                if Double(text)! != Double(digits) / 1e19 { moved += 1 }
            }
        }
        // The doubles' own estimate is off in some of them: the exact check is exercised, not just passed.
        #expect(moved > 1_000, "\(moved) of 200,000 decimals next to a midpoint were not what doubles estimate")
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
