import CycloneModel
import CycloneStore
import CycloneTestSupport
import Foundation
import Testing

@Suite struct LabelStoreTests {
    @Test func labelsJoinPredictionsByIDAndByKey() async throws {
        try await withTestDatabase { db in
            let rows = [row(1), row(2, key: "order-2"), row(3, key: "order-3")]
            try await withWriter(database: try db.databaseURL) { writer in _ = await writer.append(rows, waitForCommit: true) }
            // Not strict: any JSON label is stored (label-ingest's tests cover refusing a regression's string).
            let store = LabelStore(client: db.client, logger: .test, strict: false)
            let missing = UUIDv7.make()
            let result = try await store.apply([
                .init(target: .id(rows[0].id), value: 42.5),
                .init(target: .key("order-2"), value: "yes"),
                .init(target: .key("nobody"), value: 1),
                .init(target: .id(missing), value: true),
            ])
            #expect(result.applied == 2)
            #expect(result.overwritten == 0)
            #expect(result.notFound == [.key("nobody"), .id(missing)])
            let stored = try await db.predictions()
            #expect(stored.first { $0.id == rows[0].id }?.label == "42.5")
            #expect(stored.first { $0.key == "order-2" }?.label == "\"yes\"")
            #expect(stored.first { $0.key == "order-3" }?.label == nil)
        }
    }

    @Test func repeatingIsHarmlessAndChangingIsCounted() async throws {
        try await withTestDatabase { db in
            let rows = [row(1)]
            try await withWriter(database: try db.databaseURL) { writer in _ = await writer.append(rows, waitForCommit: true) }
            let store = LabelStore(client: db.client, logger: .test)
            let first = try await store.apply([.init(target: .id(rows[0].id), value: 10)])
            let again = try await store.apply([.init(target: .id(rows[0].id), value: 10)])
            let changed = try await store.apply([.init(target: .id(rows[0].id), value: 11)])
            #expect((first.applied, first.overwritten, first.unchanged) == (1, 0, 0))
            #expect((again.applied, again.overwritten, again.unchanged) == (1, 0, 1))
            #expect((changed.applied, changed.overwritten, changed.unchanged) == (1, 1, 0))
            #expect(try await db.predictions()[0].label == "11")
        }
    }

    @Test func aKeyLabelsEveryPredictionStoredWithIt() async throws {
        try await withTestDatabase { db in
            let rows = [row(1, key: "k"), row(2, key: "k")]
            try await withWriter(database: try db.databaseURL) { writer in _ = await writer.append(rows, waitForCommit: true) }
            let result = try await LabelStore(client: db.client, logger: .test).apply([.init(target: .key("k"), value: 5)])
            #expect(result.applied == 2)
        }
    }
}
