/// Splits a SQL script into statements at top-level semicolons.
///
/// PostgresNIO sends every query with the extended protocol, which takes one statement at a time. Semicolons
/// inside quotes (`'…'`, `"…"`), dollar quotes (`$$…$$`, `$tag$…$tag$`) and comments (`-- …`, `/* … */`) do not
/// split. Statements that are empty or only comments are dropped.
enum SQLScript {
    static func statements(_ script: String) -> [String] {
        let bytes = Array(script.utf8)
        var statements: [String] = []
        var start = 0
        var hasCode = false
        var i = 0
        func at(_ offset: Int) -> UInt8? { i + offset < bytes.count ? bytes[i + offset] : nil }
        while i < bytes.count {
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "-") where at(1) == UInt8(ascii: "-"):
                while i < bytes.count, bytes[i] != UInt8(ascii: "\n") { i += 1 }
                continue
            case UInt8(ascii: "/") where at(1) == UInt8(ascii: "*"):
                i += 2
                while i < bytes.count, !(bytes[i] == UInt8(ascii: "*") && at(1) == UInt8(ascii: "/")) { i += 1 }
                i += 2
                continue
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                hasCode = true
                i += 1
                while i < bytes.count {
                    if bytes[i] == b {
                        if at(1) == b { i += 2; continue }  // doubled quote
                        break
                    }
                    i += 1
                }
            case UInt8(ascii: "$"):
                hasCode = true
                // A dollar-quote tag: $$ or $identifier$.
                var j = i + 1
                while j < bytes.count, bytes[j] == UInt8(ascii: "_") || (bytes[j] >= 0x41 && bytes[j] <= 0x5A)
                    || (bytes[j] >= 0x61 && bytes[j] <= 0x7A) || (j > i + 1 && bytes[j] >= 0x30 && bytes[j] <= 0x39)
                {
                    j += 1
                }
                if j < bytes.count, bytes[j] == UInt8(ascii: "$") {
                    let tag = Array(bytes[i...j])
                    i = j + 1
                    while i + tag.count <= bytes.count, Array(bytes[i..<(i + tag.count)]) != tag { i += 1 }
                    i += tag.count
                    continue
                }
            case UInt8(ascii: ";"):
                if hasCode { statements.append(String(decoding: bytes[start..<i], as: UTF8.self)) }
                start = i + 1
                hasCode = false
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                break
            default:
                hasCode = true
            }
            i += 1
        }
        if hasCode { statements.append(String(decoding: bytes[start..<min(i, bytes.count)], as: UTF8.self)) }
        return statements.map { $0.trimmingWhitespace() }
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
