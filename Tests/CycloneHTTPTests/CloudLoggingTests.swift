import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Testing

@testable import CycloneHTTP
@testable import CycloneRuntime

@Suite struct CloudLoggingTests {
    func line(_ level: Logger.Level, _ message: String, metadata: Logger.Metadata = [:]) throws -> [String: Any] {
        var handler = CloudLoggingHandler(label: "predict", level: .info)
        handler[metadataKey: "service"] = "predict"
        let bytes = handler.line(for: LogEvent(level: level, message: "\(message)", metadata: metadata, source: nil,
                                               file: "Predict/PredictRoutes.swift", function: "f", line: 42))
        #expect(bytes.last == UInt8(ascii: "\n"))
        #expect(bytes.dropLast().contains(UInt8(ascii: "\n")) == false, "one line per entry")
        return try JSONSerialization.jsonObject(with: Data(bytes)) as! [String: Any]
    }

    /// One JSON object per line, in the shape Cloud Logging reads from stdout.
    @Test func linesHaveCloudLoggingsShape() throws {
        let entry = try line(.warning, "storing predictions failed\nretrying", metadata: [
            "logging.googleapis.com/trace": "projects/p/traces/abc", "rows": "12",
        ])
        #expect(entry["severity"] as? String == "WARNING")
        #expect(entry["message"] as? String == "storing predictions failed\nretrying")
        #expect(entry["logger"] as? String == "predict")
        #expect(entry["logging.googleapis.com/trace"] as? String == "projects/p/traces/abc")
        #expect(entry["rows"] as? String == "12")
        #expect(entry["service"] as? String == "predict")
        #expect((entry["time"] as? String)?.hasSuffix("Z") == true)
        #expect(entry["sourceLocation"] == nil)
        let error = try line(.error, "request failed")
        #expect(error["severity"] as? String == "ERROR")
        #expect((error["sourceLocation"] as? [String: Any])?["line"] as? Int == 42)
    }

    @Test(arguments: [
        (["X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1"], "105445aa7843bc8bf206b12000100000", "1"),
        (["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"], "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
        (["X-Cloud-Trace-Context": "abc"], "abc", nil),
    ] as [([String: String], String, String?)])
    func traceComesFromCloudRunOrW3CHeaders(_ headers: [String: String], _ trace: String, _ span: String?) throws {
        var fields = HTTPFields()
        for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
        let parsed = try #require(TraceLoggingMiddleware<BasicRequestContext>.trace(fields))
        #expect(parsed.0 == trace)
        #expect(parsed.1 == span)
    }

    @Test func noTraceHeaderMeansNoTrace() {
        #expect(TraceLoggingMiddleware<BasicRequestContext>.trace(HTTPFields()) == nil)
    }
}
