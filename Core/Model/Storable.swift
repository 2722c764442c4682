/// What the evaluation store can hold of a request, checked at the door: a value PostgreSQL would refuse, or
/// one whose arithmetic would overflow the evaluator's sums, is refused with a 400 before anything is
/// accepted, so that no accepted row can stall the writer or an evaluation cycle.
public enum Storable {
    /// The largest magnitude accepted for a number (a feature or a label). Squared, summed over a billion rows,
    /// it still fits in a double; `1e308` does not survive one square.
    public static let largestMagnitude = 1e100
    public static let largestMagnitudeText = "1e100"

    /// Most UTF-8 bytes in a caller key. PostgreSQL's index on `prediction.key` refuses an entry over about
    /// 2,700 bytes; a key is an id, and 1,024 bytes leaves room for the rest of the index row.
    public static let maxKeyBytes = 1_024

    /// A finite number of magnitude at most `largestMagnitude`.
    public static func accepts(_ number: Double) -> Bool { number.isFinite && abs(number) <= largestMagnitude }

    /// A string without the NUL character, which neither `text` nor `jsonb` can hold.
    public static func accepts(_ text: String) -> Bool { !text.utf8.contains(0) }

    /// Why a caller key cannot be stored, or `nil` when it can.
    public static func keyProblem(_ key: String) -> String? {
        if key.isEmpty { return "a key must not be empty (use null for none)" }
        if !accepts(key) { return "a key must not hold the NUL character (\\u0000), which cannot be stored" }
        let bytes = key.utf8.count
        if bytes > maxKeyBytes { return "a key is at most \(maxKeyBytes) bytes of UTF-8; this one has \(bytes)" }
        return nil
    }
}
