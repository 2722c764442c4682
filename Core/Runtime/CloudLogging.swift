import Configuration
import CycloneModel
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Log lines as Cloud Logging reads them from a container's stdout: one JSON object per line with
/// `severity`, `message`, `time`, the logger's label, and metadata as top-level fields (so
/// `logging.googleapis.com/trace` links a line to its request's trace).
public struct CloudLoggingHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        Self.write(line(for: event))
    }

    /// The line written for `event`, newline included.
    func line(for event: LogEvent) -> [UInt8] {
        var writer = JSONWriter(capacity: 256)
        writer.raw("{\"severity\":")
        writer.string(Self.severity(event.level))
        writer.raw(",\"message\":")
        writer.string("\(event.message)")
        writer.raw(",\"time\":")
        writer.string(Date().ISO8601Format(.init(includingFractionalSeconds: true)))
        writer.raw(",\"logger\":")
        writer.string(label)
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            writer.raw(",")
            writer.string(key)
            writer.raw(":")
            writer.string("\(value)")
        }
        if event.level >= .error {
            writer.raw(",\"sourceLocation\":{\"file\":")
            writer.string(event.file)
            writer.raw(",\"line\":")
            writer.number(Double(event.line))
            writer.raw("}")
        }
        writer.raw("}\n")
        return writer.bytes
    }

    static func severity(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: "DEBUG"
        case .info: "INFO"
        case .notice: "NOTICE"
        case .warning: "WARNING"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }

    private static let lock = Mutex(())

    /// One write per line under a lock, so lines from concurrent tasks never interleave.
    private static func write(_ bytes: [UInt8]) {
        lock.withLock { _ in
            bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(1, buffer.baseAddress! + offset, buffer.count - offset)
                    if written <= 0 { break }
                    offset += written
                }
            }
        }
    }
}

/// Sets up logging for a process once.
public enum CloudLogging {
    /// Bootstraps swift-log with `CloudLoggingHandler` at `LOG_LEVEL` (default `info`) and returns the
    /// process's logger. `LOG_FORMAT=text` keeps swift-log's plain console lines for a terminal.
    public static func bootstrap(label: String, reader: ConfigReader) -> Logger {
        let level = reader.string(forKey: "log.level").flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
        let format = reader.string(forKey: "log.format", default: "json")
        bootstrapOnce(level: level, text: format == "text")
        return Logger(label: label)
    }

    private static let state = Mutex(false)

    /// swift-log allows one bootstrap per process; tests build several applications.
    private static func bootstrapOnce(level: Logger.Level, text: Bool) {
        state.withLock { done in
            guard !done else { return }
            done = true
            if text {
                LoggingSystem.bootstrap { label in
                    var handler = StreamLogHandler.standardError(label: label)
                    handler.logLevel = level
                    return handler
                }
            } else {
                LoggingSystem.bootstrap { CloudLoggingHandler(label: $0, level: level) }
            }
        }
    }
}
