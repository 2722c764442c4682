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

    /// Numbers that share their high bits (one sign, one scale) skip those passes and still sort.
    @Test func numbersOfOneScaleSort() {
        var generator = SplitMix64(seed: 3)
        let values = (0..<10_000).map { _ in 1 + generator.uniform() }
        #expect(sortedNumbers(values) == values.sorted())
    }
}
