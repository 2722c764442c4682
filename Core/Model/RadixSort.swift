/// `values` in ascending order, for numbers without NaN: what `sorted()` gives, but that −0 always comes
/// before 0 (which compare equal, so `sorted()` keeps their input order), in linear time. A least
/// significant digit radix sort on the numbers' bits turned into unsigned integers that order as the numbers
/// do, 11 bits a pass, skipping the passes whose digit every number shares (the high bits of numbers of one
/// sign and magnitude). Drift statistics sort each numeric column of a file whole; this is several times
/// faster than the standard library's merge sort from a few thousand values.
public func sortedNumbers(_ values: [Double]) -> [Double] {
    guard values.count >= 2_048 else { return values.sorted() }
    var keys = values.map { sortKey($0) }
    var none: [Int]?
    radixSort(&keys, carrying: &none)
    return keys.map { key in Double(bitPattern: key & (1 << 63) != 0 ? key & ~(1 << 63) : ~key) }
}

/// The indices that put `values` (without NaN) in ascending order, equal values (−0 and 0 among them) in
/// index order: what `values.indices.sorted { (values[$0], $0) < (values[$1], $1) }` gives, in linear time,
/// by the same radix passes carrying each value's index.
public func sortedOrder(_ values: [Double]) -> [Int] {
    guard values.count >= 2_048 else { return values.indices.sorted { (values[$0], $0) < (values[$1], $1) } }
    var keys = values.map { sortKey($0 == 0 ? 0 : $0) }
    var order: [Int]? = Array(values.indices)
    radixSort(&keys, carrying: &order)
    return order!
}

/// A number's bits as an unsigned integer that orders as the numbers do: positive numbers get the sign bit
/// set, negative ones all bits flipped, so larger magnitudes sort first.
private func sortKey(_ value: Double) -> UInt64 {
    let bits = value.bitPattern
    return bits & (1 << 63) == 0 ? bits | (1 << 63) : ~bits
}

/// Sorts `keys` ascending, stably, moving `payload` (when there is one) with them: 11 bits a pass, a digit
/// every key shares skipped.
private func radixSort(_ keys: inout [UInt64], carrying payload: inout [Int]?) {
    let n = keys.count
    guard n > 1 else { return }
    let radix = 11, buckets = 1 << radix, passes = (64 + radix - 1) / radix, mask = UInt64(buckets - 1)
    var counts = [Int](repeating: 0, count: buckets * passes)
    for key in keys {
        for pass in 0..<passes { counts[pass * buckets + Int((key >> UInt64(pass * radix)) & mask)] += 1 }
    }
    var scratchKeys = [UInt64](repeating: 0, count: n)
    var scratchPayload = payload.map { _ in [Int](repeating: 0, count: n) }
    for pass in 0..<passes {
        let base = pass * buckets, shift = UInt64(pass * radix)
        // A digit every key shares leaves the order as it is.
        if counts[base + Int((keys[0] >> shift) & mask)] == n { continue }
        var offset = 0
        for digit in 0..<buckets {
            let count = counts[base + digit]
            counts[base + digit] = offset
            offset += count
        }
        // The payload's scratch is taken out while it is written, so writing it copies nothing.
        var to = scratchPayload ?? []
        scratchPayload = nil
        let from = payload ?? []
        keys.withUnsafeBufferPointer { source in
            scratchKeys.withUnsafeMutableBufferPointer { target in
                counts.withUnsafeMutableBufferPointer { starts in
                    from.withUnsafeBufferPointer { fromPayload in
                        to.withUnsafeMutableBufferPointer { toPayload in
                            let carried = !fromPayload.isEmpty
                            for i in 0..<n {
                                let slot = base + Int((source[i] >> shift) & mask)
                                target[starts[slot]] = source[i]
                                if carried { toPayload[starts[slot]] = fromPayload[i] }
                                starts[slot] += 1
                            }
                        }
                    }
                }
            }
        }
        if payload != nil { scratchPayload = to }
        swap(&keys, &scratchKeys)
        swap(&payload, &scratchPayload)
    }
}
