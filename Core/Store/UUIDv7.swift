import Foundation

/// UUID version 7 (RFC 9562): 48 bits of Unix time in milliseconds, then random bits. Ids made later sort
/// later (to the millisecond), so a primary-key index on them stays append-mostly.
public enum UUIDv7 {
    public static func make(at date: Date = Date()) -> UUID {
        var random = SystemRandomNumberGenerator()
        return make(at: date, counter: UInt32(truncatingIfNeeded: random.next()) & 0x3FF_FFFF)
    }

    /// An id whose 26 bits after the time are `sequence` (RFC 9562's fixed-length dedicated counter), the
    /// rest random: the ids of one request's instances, made at one time, sort in the instances' order.
    public static func make(at date: Date, sequence: Int) -> UUID {
        make(at: date, counter: UInt32(clamping: min(max(sequence, 0), 0x3FF_FFFF)))
    }

    private static func make(at date: Date, counter: UInt32) -> UUID {
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        var random = SystemRandomNumberGenerator()
        let b = random.next()
        return UUID(uuid: (
            UInt8(truncatingIfNeeded: millis >> 40), UInt8(truncatingIfNeeded: millis >> 32),
            UInt8(truncatingIfNeeded: millis >> 24), UInt8(truncatingIfNeeded: millis >> 16),
            UInt8(truncatingIfNeeded: millis >> 8), UInt8(truncatingIfNeeded: millis),
            0x70 | UInt8(truncatingIfNeeded: counter >> 22), UInt8(truncatingIfNeeded: counter >> 14),  // version 7
            0x80 | UInt8(truncatingIfNeeded: counter >> 8) & 0x3F, UInt8(truncatingIfNeeded: counter),  // variant 10
            UInt8(truncatingIfNeeded: b >> 56), UInt8(truncatingIfNeeded: b >> 48),
            UInt8(truncatingIfNeeded: b >> 40), UInt8(truncatingIfNeeded: b >> 32),
            UInt8(truncatingIfNeeded: b >> 24), UInt8(truncatingIfNeeded: b >> 16)))
    }

    /// The creation time encoded in a version-7 id, or `nil` for another version.
    public static func date(of id: UUID) -> Date? {
        let u = id.uuid
        guard u.6 >> 4 == 7 else { return nil }
        let millis = [u.0, u.1, u.2, u.3, u.4, u.5].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Date(timeIntervalSince1970: Double(millis) / 1000)
    }
}
