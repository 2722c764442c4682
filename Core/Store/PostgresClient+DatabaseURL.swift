import Foundation
import NIOSSL
import PostgresNIO

/// Why a `DATABASE_URL` could not be used.
public struct DatabaseURLError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var description: String { "DATABASE_URL: \(message)" }
}

extension PostgresClient.Configuration {
    /// Reads a libpq-style connection URL.
    ///
    /// - `postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=disable|prefer|require` (default `prefer`);
    /// - a unix socket, as libpq writes it: `postgres://USER:PASSWORD@/DATABASE?host=/cloudsql/P:R:I` (the folder;
    ///   the socket file `.s.PGSQL.PORT` inside it is used, PORT from `port=`, default 5432), or the folder
    ///   percent-encoded as the host. Sockets never use TLS (the Cloud SQL connector already encrypts).
    /// - `connect_timeout=SECONDS` (default 5) bounds each connection attempt, so an unreachable server
    ///   fails in seconds instead of about a minute.
    public init(databaseURL: String) throws(DatabaseURLError) {
        guard let components = URLComponents(string: databaseURL),
            components.scheme == "postgres" || components.scheme == "postgresql"
        else {
            throw DatabaseURLError(message: "expected postgres://user:password@host:port/database")
        }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] { query[item.name] = item.value ?? "" }
        guard let username = components.user.flatMap({ $0.removingPercentEncoding }), !username.isEmpty else {
            throw DatabaseURLError(message: "no user name (postgres://USER:password@...)")
        }
        let password = components.password?.removingPercentEncoding
        var database = components.path
        if database.hasPrefix("/") { database.removeFirst() }
        let port: Int
        if let text = query["port"] {
            guard let value = Int(text) else { throw DatabaseURLError(message: "port '\(text)' is not a number") }
            port = value
        } else {
            port = components.port ?? 5432
        }
        let host = query["host"] ?? components.percentEncodedHost.flatMap { $0.removingPercentEncoding } ?? ""
        if host.hasPrefix("/") {
            let socket = host.hasSuffix(".s.PGSQL.\(port)") ? host : "\(host)/.s.PGSQL.\(port)"
            guard socket.utf8.count < 108 else {
                throw DatabaseURLError(message: "the socket path \(socket) is longer than the 107 bytes a unix socket allows")
            }
            self.init(unixSocketPath: socket, username: username, password: password,
                      database: database.isEmpty ? nil : database)
        } else {
            guard !host.isEmpty else { throw DatabaseURLError(message: "no host") }
            let tls: TLS
            switch query["sslmode"] ?? "prefer" {
            case "disable": tls = .disable
            case "allow", "prefer": tls = .prefer(.makeClientConfiguration())
            case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
            case let mode: throw DatabaseURLError(message: "sslmode '\(mode)' is not one of disable, prefer, require")
            }
            self.init(host: host, port: port, username: username, password: password,
                      database: database.isEmpty ? nil : database, tls: tls)
        }
        if let text = query["connect_timeout"] {
            guard let seconds = Int(text), seconds > 0 else {
                throw DatabaseURLError(message: "connect_timeout '\(text)' is not a positive number of seconds")
            }
            options.connectTimeout = .seconds(seconds)
        } else {
            options.connectTimeout = .seconds(5)
        }
        if let name = query["application_name"] {
            options.additionalStartupParameters.append(("application_name", name))
        }
    }
}
