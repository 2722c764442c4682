import Configuration
import CycloneRuntime

/// What every HTTP function reads from its environment.
public struct ServerSettings: Sendable {
    /// `PORT`: set by Cloud Run; 8080 when unset.
    public var port: Int
    /// `MAX_BODY_BYTES`: largest request body; 10 MiB.
    public var maxBodyBytes: Int
    /// `MAX_BODY_BYTES_IN_FLIGHT`: the request bodies handled at once, in bytes; more wait for room (one
    /// alone always fits); 32 MiB.
    public var maxBodyBytesInFlight: Int
    /// `GOOGLE_CLOUD_PROJECT`: names the project in log lines' trace field; optional.
    public var project: String?

    public init(reader: ConfigReader) throws {
        port = try reader.setting("port", variable: "PORT", default: 8080, expected: "a port number") {
            Int($0).flatMap { (0...65535).contains($0) ? $0 : nil }
        }
        maxBodyBytes = try reader.setting("max.body.bytes", variable: "MAX_BODY_BYTES", default: 10 << 20,
                                          expected: "a positive integer", Int.positive)
        maxBodyBytesInFlight = try reader.setting("max.body.bytes.in.flight", variable: "MAX_BODY_BYTES_IN_FLIGHT",
                                                  default: 32 << 20, expected: "a positive integer", Int.positive)
        project = reader.string(forKey: "google.cloud.project")
    }
}
