import CycloneModel
import Testing

@Suite struct RadixSortTests {
    /// The radix sort gives what the standard library's sort gives, value for value (bit for bit but for the
    /// order of −0 and 0, which compare equal), on numbers of every sign and scale, repeated ones, infinities
    /// and subnormals, from below its threshold to many passes.
    @Test(arguments: [10, 2_048, 5_000, 100_000])
    func itSortsAsTheStandardLibrary(count: Int) {
        var generator = SplitMix64(seed: UInt64(count))
        let special: [Double] = [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
                                 .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1, 1, 1]
        let values = (0..<count).map { i -> Double in
            switch i % 4 {
            case 0: generator.normal() * 1e6
            case 1: Double(Int(generator.uniform() * 10))  // many repeats
            case 2: special[Int(generator.uniform() * Double(special.count))]
            default: generator.normal() * 1e-300
            }
        }
        let expected = values.sorted(), got = sortedNumbers(values)
        #expect(got.count == expected.count)
        #expect(zip(got, expected).allSatisfy { $0 == $1 })
        #expect(zip(got, got.dropFirst()).allSatisfy { $0.bitPattern == $1.bitPattern || $0 < $1 || ($0 == 0 && $1 == 0) })
    }

    /// The radix order of indices is the stable comparison sort's, ties (−0 and 0 among them) in index order.
    @Test(arguments: [100, 5_000, 50_000])
    func itOrdersIndicesAsTheStableSort(count: Int) {
        var generator = SplitMix64(seed: UInt64(count) + 1)
        let values = (0..<count).map { i -> Double in
            switch i % 3 {
            case 0: Double(Int(generator.uniform() * 50)) / 50  // probabilities with many ties
            case 1: generator.uniform() < 0.5 ? 0.0 : -0.0
            default: generator.normal()
            }
        }
        #expect(sortedOrder(values) == values.indices.sorted { (values[$0], $0) < (values[$1], $1) })
    }

    /// Numbers that share their high bits (one sign, one scale) skip those passes and still sort.
    @Test func numbersOfOneScaleSort() {
        var generator = SplitMix64(seed: 3)
        let values = (0..<10_000).map { _ in 1 + generator.uniform() }
        #expect(sortedNumbers(values) == values.sorted())
    }
}

/// Numbers read from text: the fast path for short decimals gives what the full parser gives, bit for bit.
@Suite struct NumberParsingTests {
    @Test func decimalsReadAsTheFullParserReadsThem() {
        var generator = SplitMix64(seed: 9)
        var texts = ["0", "-0", "+7", "1.", ".5", "-.25", "00012.500", "1e5", "2E-3", "3e+22", "4e-22", "5e23",
                     "123456789012345", "1234567890123456", "0.1", "9007199254740993", "1e", "1e+", "-", ".", "e5",
                     "0e999", "1e999", " 5", "5 ", "0x1p3", "nan", "inf", "1.5.2", "12a"]
        for _ in 0..<20_000 {
            let digits = Int(generator.uniform() * 17) + 1
            var text = generator.uniform() < 0.3 ? "-" : ""
            text += (0..<digits).map { _ in String(Int(generator.uniform() * 10)) }.joined()
            if generator.uniform() < 0.7 {
                let at = Int(generator.uniform() * Double(text.count + 1))
                text.insert(".", at: text.index(text.startIndex, offsetBy: at))
            }
            if generator.uniform() < 0.3 { text += "e\(Int(generator.uniform() * 60) - 30)" }
            texts.append(text)
        }
        for text in texts {
            // Hexadecimal is text, as pandas reads it.
            let expected = text.lowercased().contains("x") ? nil : Double(text).flatMap { $0.isFinite ? $0 : nil }
            let read: Double?
            if case .number(let value) = FeatureTable.read(text, as: .numeric) { read = value } else { read = nil }
            #expect(read?.bitPattern == expected?.bitPattern || (text.first == " " || text.last == " "), "\(text)")
        }
    }
}
