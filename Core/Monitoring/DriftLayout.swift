import CycloneModel

/// Where each served instance falls against a model version's reference profile, as cell numbers: predict
/// counts every stored row into cells when it writes it, so a drift window is a sum of stored cell counts
/// (`DriftTally`) and never a re-reading of the rows' JSON.
///
/// The columns are the artifact's features that the profile describes, in schema order, then the
/// prediction. Each column owns a run of cells from its `offset`:
/// - numeric: `+0` missing, `+1` invalid (not a number), then one cell per bin of `NumericBinning` (below the
///   reference range, the profile's bins, above the range), whose values are also summed;
/// - categorical and boolean: `+0` missing, `+1` invalid, `+2` unseen by the reference (their names are kept
///   beside the counts, see `DriftTally.unseen`), then one cell per reference category in sorted order.
///
/// Values are read by `Feature.Kind.read`, as predict's encoder reads them.
public struct DriftLayout: Sendable, Equatable {
    public struct Column: Sendable, Equatable {
        public var name: String
        public var kind: Feature.Kind
        public var offset: Int32
        public var binning: NumericBinning?
        /// Reference categories, sorted (categorical and boolean).
        public var categories: [String]
        let index: [String: Int32]

        var width: Int32 {
            kind == .numeric ? 2 + Int32(binning?.binCount ?? 1) : 3 + Int32(categories.count)
        }
    }

    public let columns: [Column]
    /// Index of the prediction column in `columns`, when the profile describes predictions.
    public let predictionColumn: Int?
    /// A hash of everything that numbers the cells (columns, kinds, thresholds, categories), stored with each
    /// rollup: cells counted against one profile are never read against another.
    public let fingerprint: Int64
    let task: ModelArtifact.Task
    let positiveClass: Int?

    static let missing: Int32 = 0, invalid: Int32 = 1, unseen: Int32 = 2

    /// `nil` when the artifact has no reference profile.
    public init?(_ artifact: ModelArtifact) {
        guard let profile = artifact.profile else { return nil }
        var columns: [Column] = []
        var offset: Int32 = 0
        func add(_ name: String, _ reference: FeatureProfile) {
            let categories = reference.kind == .numeric ? [] : (reference.categories ?? [:]).keys.sorted()
            let column = Column(
                name: name, kind: reference.kind, offset: offset,
                binning: reference.kind == .numeric ? NumericBinning(reference) : nil, categories: categories,
                index: Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($1, Int32($0)) }))
            columns.append(column)
            offset += column.width
        }
        for feature in artifact.features {
            if let reference = profile.features[feature.name] { add(feature.name, reference) }
        }
        if let reference = profile.prediction {
            predictionColumn = columns.count
            add("prediction", reference)
        } else {
            predictionColumn = nil
        }
        self.columns = columns
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a, 64 bits
        for column in columns {
            let thresholds = column.binning?.thresholds.map { String($0.bitPattern) } ?? []
            let text = [column.name, column.kind.rawValue, String(column.offset)] + thresholds + column.categories
            for byte in text.joined(separator: "\u{1f}").utf8 + [0x1e] {
                hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
            }
        }
        fingerprint = Int64(bitPattern: hash)
        task = artifact.task
        positiveClass = artifact.task == .binary ? (artifact.classes?.count ?? 0) - 1 : nil
    }

    /// The cells of one served instance and its prediction.
    public func cells(instance: [String: JSONValue], output: Output, classes: [String]?) -> DriftCells {
        var row = DriftCells(layout: fingerprint, capacity: columns.count)
        for (i, column) in columns.enumerated() {
            let value: JSONValue?
            if i == predictionColumn {
                switch (output, task) {
                case (.value(let v), _): value = .number(v)
                case (.classification(_, let probabilities), .binary):
                    value = positiveClass.flatMap { probabilities.indices.contains($0) ? .number(probabilities[$0]) : nil }
                case (.classification(let c, _), _): value = classes.flatMap { $0.indices.contains(c) ? .string($0[c]) : nil }
                }
            } else {
                value = instance[column.name]
            }
            count(value, in: column, into: &row)
        }
        return row
    }

    private func count(_ value: JSONValue?, in column: Column, into row: inout DriftCells) {
        let cell: (Int32, Double)
        switch column.kind.read(value) {
        case .missing: cell = (Self.missing, 0)
        case .invalid: cell = (Self.invalid, 0)
        case .number(let x): cell = (2 + Int32(column.binning?.bin(of: x) ?? 0), x)
        case .flag(let flag): cell = category(flag ? "true" : "false", column: column, row: &row)
        case .category(let text): cell = category(text, column: column, row: &row)
        }
        row.cells.append(column.offset + cell.0)
        row.values.append(cell.1)
    }

    private func category(_ name: String, column: Column, row: inout DriftCells) -> (Int32, Double) {
        if let k = column.index[name] { return (3 + k, 0) }
        row.unseen.append(DriftTally.unseenKey(column: column.offset, category: name))
        return (Self.unseen, 0)
    }

    /// The window's columns from summed cells: features by name, and the prediction.
    public func columns(from tally: DriftTally) -> (features: [String: WindowColumn], prediction: WindowColumn?) {
        var features: [String: WindowColumn] = [:]
        var prediction: WindowColumn?
        for (i, column) in columns.enumerated() {
            var window = WindowColumn(binning: column.binning)
            func at(_ k: Int32) -> DriftTally.Cell { tally.cells[column.offset + k] ?? .init() }
            window.missing = at(Self.missing).count
            window.invalid = at(Self.invalid).count
            if column.kind == .numeric, column.binning == nil {
                // A reference without values has no bins: every value is counted in one cell.
                window.count = at(2).count
            } else if column.kind == .numeric {
                for bin in window.binCounts.indices {
                    let cell = at(2 + Int32(bin))
                    window.binCounts[bin] = cell.count
                    window.binSums[bin] = cell.sum
                    window.count += cell.count
                }
            } else {
                for (k, name) in column.categories.enumerated() where at(3 + Int32(k)).count > 0 {
                    window.categories[name] = at(3 + Int32(k)).count
                }
                var named = 0
                for (key, n) in tally.unseen {
                    guard let category = DriftTally.category(of: key, column: column.offset) else { continue }
                    window.categories[category, default: 0] += n
                    named += n
                }
                window.unnamedUnseen = max(0, at(Self.unseen).count - named)
                window.count = window.categories.values.reduce(0, +) + window.unnamedUnseen
            }
            if i == predictionColumn { prediction = window } else { features[column.name] = window }
        }
        return (features, prediction)
    }
}

/// One stored row's cells (one per column of its `DriftLayout`), with the value counted in each (numeric
/// columns) and the names of categories the reference never saw.
public struct DriftCells: Sendable, Equatable {
    /// The `DriftLayout.fingerprint` the cells are numbered by.
    public var layout: Int64
    public var cells: [Int32] = []
    public var values: [Double] = []
    public var unseen: [String] = []

    public init(layout: Int64, capacity: Int = 0) {
        self.layout = layout
        cells.reserveCapacity(capacity)
        values.reserveCapacity(capacity)
    }
}

/// Cells summed over many rows: what a stored rollup holds and what a drift window adds up.
public struct DriftTally: Sendable, Equatable {
    public struct Cell: Sendable, Equatable {
        public var count = 0
        public var sum = 0.0

        public init(count: Int = 0, sum: Double = 0) {
            self.count = count
            self.sum = sum
        }
    }

    /// At most this many unseen category names are kept per column and rollup; the rest are still counted.
    public static let unseenNamesKept = 20

    public var rows = 0
    public var cells: [Int32: Cell] = [:]
    /// Unseen categories by `unseenKey` (column offset and name).
    public var unseen: [String: Int] = [:]

    public init() {}

    public mutating func add(_ row: DriftCells) {
        rows += 1
        for (cell, value) in zip(row.cells, row.values) {
            cells[cell, default: .init()].count += 1
            cells[cell, default: .init()].sum += value
        }
        for key in row.unseen { unseen[key, default: 0] += 1 }
    }

    /// Keeps the `unseenNamesKept` commonest unseen names per column (their total stays in the unseen cell).
    public mutating func trimUnseenNames() {
        var byColumn: [Substring: [(String, Int)]] = [:]
        for (key, n) in unseen { byColumn[key.prefix { $0 != ":" }, default: []].append((key, n)) }
        for (_, names) in byColumn where names.count > Self.unseenNamesKept {
            for (key, _) in names.sorted(by: { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }).dropFirst(Self.unseenNamesKept) {
                unseen[key] = nil
            }
        }
    }

    static func unseenKey(column: Int32, category: String) -> String { "\(column):\(category)" }

    static func category(of key: String, column: Int32) -> String? {
        let prefix = "\(column):"
        return key.hasPrefix(prefix) ? String(key.dropFirst(prefix.count)) : nil
    }
}
