import CycloneStore
import Foundation
import PostgresNIO
import Testing

@Suite struct DatabaseURLTests {
    @Test func tcpURL() throws {
        let c = try PostgresClient.Configuration(databaseURL: "postgres://u%40x:p%2Fw@db.example:6543/app?sslmode=disable")
        #expect(c.host == "db.example")
        #expect(c.port == 6543)
        #expect(c.username == "u@x")
        #expect(c.password == "p/w")
        #expect(c.database == "app")
    }

    @Test func cloudSQLSocketAsLibpqWritesIt() throws {
        let c = try PostgresClient.Configuration(databaseURL: "postgres://u:p@/app?host=/cloudsql/proj:us-central1:db")
        #expect(c.unixSocketPath == "/cloudsql/proj:us-central1:db/.s.PGSQL.5432")
        #expect(c.host == nil)
    }

    @Test func percentEncodedSocketHost() throws {
        let c = try PostgresClient.Configuration(databaseURL: "postgresql://u@%2Ftmp%2Fpg/app?port=7000")
        #expect(c.unixSocketPath == "/tmp/pg/.s.PGSQL.7000")
    }

    @Test(arguments: ["mysql://u@h/db", "postgres://h/db", "postgres://u@h/db?sslmode=maybe", "postgres://u@h/db?port=x",
                      "postgres://u@/db?host=/" + String(repeating: "x", count: 120)])
    func badURLsSayWhy(_ url: String) {
        #expect(throws: DatabaseURLError.self) { try PostgresClient.Configuration(databaseURL: url) }
    }
}

@Suite struct UUIDv7Tests {
    @Test func versionVariantAndTime() {
        let date = Date(timeIntervalSince1970: 1_795_000_000.123)
        let id = UUIDv7.make(at: date)
        #expect(id.uuid.6 >> 4 == 7)
        #expect(id.uuid.8 >> 6 == 0b10)
        #expect(abs(UUIDv7.date(of: id)!.timeIntervalSince(date)) < 0.001)
    }

    @Test func laterIdsSortLater() {
        let a = UUIDv7.make(at: Date(timeIntervalSince1970: 1_000))
        let b = UUIDv7.make(at: Date(timeIntervalSince1970: 1_000.002))
        #expect(a.uuidString.lowercased() < b.uuidString.lowercased())
    }
}
