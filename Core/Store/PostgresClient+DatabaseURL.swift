import Foundation
import NIOCore
import NIOSSL
import PostgresNIO

/// Why a `DATABASE_URL` could not be used.
public struct DatabaseURLError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var description: String { "DATABASE_URL: \(message)" }
}

/// A libpq-style connection URL, read once, from which both of PostgresNIO's configurations are made: a pool's
/// (`client`) and a single connection's (`connection()`, for probes that must see the server's own error).
///
/// - `postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=disable|prefer|require` (default `prefer`);
/// - a unix socket, as libpq writes it: `postgres://USER:PASSWORD@/DATABASE?host=/cloudsql/P:R:I` (the folder;
///   the socket file `.s.PGSQL.PORT` inside it is used, PORT from `port=`, default 5432), or the folder
///   percent-encoded as the host. Sockets never use TLS (the Cloud SQL connector already encrypts).
/// - `connect_timeout=SECONDS` (default 5) bounds each connection attempt, so an unreachable server
///   fails in seconds instead of about a minute.
public struct DatabaseURL: Sendable {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
    }

    public enum TLSMode: Sendable, Equatable { case disable, prefer, require }

    public var endpoint: Endpoint
    public var tls: TLSMode
    public var username: String
    public var password: String?
    public var database: String?
    public var connectTimeout: Duration
    public var applicationName: String?

    public init(_ databaseURL: String) throws(DatabaseURLError) {
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
        self.username = username
        password = components.password?.removingPercentEncoding
        var database = components.path
        if database.hasPrefix("/") { database.removeFirst() }
        self.database = database.isEmpty ? nil : database
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
            endpoint = .unixSocket(path: socket)
            tls = .disable
        } else {
            guard !host.isEmpty else { throw DatabaseURLError(message: "no host") }
            endpoint = .tcp(host: host, port: port)
            switch query["sslmode"] ?? "prefer" {
            case "disable": tls = .disable
            case "allow", "prefer": tls = .prefer
            case "require", "verify-ca", "verify-full": tls = .require
            case let mode: throw DatabaseURLError(message: "sslmode '\(mode)' is not one of disable, prefer, require")
            }
        }
        if let text = query["connect_timeout"] {
            guard let seconds = Int(text), seconds > 0 else {
                throw DatabaseURLError(message: "connect_timeout '\(text)' is not a positive number of seconds")
            }
            connectTimeout = .seconds(seconds)
        } else {
            connectTimeout = .seconds(5)
        }
        applicationName = query["application_name"]
    }

    /// A pool's configuration (its sizes left at PostgresNIO's defaults).
    public var client: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        switch endpoint {
        case .unixSocket(let path):
            configuration = .init(unixSocketPath: path, username: username, password: password, database: database)
        case .tcp(let host, let port):
            let tls: PostgresClient.Configuration.TLS = switch self.tls {
            case .disable: .disable
            case .prefer: .prefer(.makeClientConfiguration())
            case .require: .require(.makeClientConfiguration())
            }
            configuration = .init(host: host, port: port, username: username, password: password, database: database, tls: tls)
        }
        configuration.options.connectTimeout = connectTimeout
        if let applicationName { configuration.options.additionalStartupParameters.append(("application_name", applicationName)) }
        return configuration
    }

    /// A single connection's configuration.
    public func connection() throws -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        switch endpoint {
        case .unixSocket(let path):
            configuration = .init(unixSocketPath: path, username: username, password: password, database: database)
        case .tcp(let host, let port):
            let tls: PostgresConnection.Configuration.TLS = switch self.tls {
            case .disable: .disable
            case .prefer: .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            case .require: .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
            configuration = .init(host: host, port: port, username: username, password: password, database: database, tls: tls)
        }
        configuration.options.connectTimeout = TimeAmount(connectTimeout)
        if let applicationName { configuration.options.additionalStartupParameters.append(("application_name", applicationName)) }
        return configuration
    }
}

extension PostgresClient.Configuration {
    /// Reads a libpq-style connection URL (see `DatabaseURL`).
    public init(databaseURL: String) throws(DatabaseURLError) {
        self = try DatabaseURL(databaseURL).client
    }
}
