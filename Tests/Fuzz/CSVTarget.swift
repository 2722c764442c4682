// libFuzzer target: the CSV reader and the type inference of `cyclone train` (Core/Model/CSV.swift,
// FeatureTable.swift). Whatever the bytes: no crash, no hang; a table it reads has rows as wide as its header.

func fuzzCSV(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let csv = try? CSV(parsing: text) else { return 0 }
    for row in csv.rows where row.count != csv.header.count { fatalError("a row is not as wide as the header") }
    _ = try? FeatureTable(csv: csv, columns: csv.header)
    return 0
}
