import HTTPTypes
import Logging
import Hummingbird

/// Puts the request's trace on its logger, read from `X-Cloud-Trace-Context` (`TRACE/SPAN;o=1`, set by
/// Cloud Run's front end) or W3C `traceparent` (`00-TRACE-SPAN-01`), as Cloud Logging's
/// `logging.googleapis.com/trace` field (`projects/PROJECT/traces/TRACE` when `GOOGLE_CLOUD_PROJECT` is known).
public struct TraceLoggingMiddleware<Context: RequestContext>: RouterMiddleware {
    let project: String?

    public init(project: String?) { self.project = project }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        var context = context
        if let (trace, span) = Self.trace(request.headers) {
            context.logger[metadataKey: "logging.googleapis.com/trace"] =
                .string(project.map { "projects/\($0)/traces/\(trace)" } ?? trace)
            if let span { context.logger[metadataKey: "logging.googleapis.com/spanId"] = .string(span) }
        }
        return try await next(request, context)
    }

    static func trace(_ headers: HTTPFields) -> (String, String?)? {
        if let value = headers[HTTPField.Name("X-Cloud-Trace-Context")!] {
            let parts = value.split(separator: ";")[0].split(separator: "/")
            guard let trace = parts.first, !trace.isEmpty else { return nil }
            return (String(trace), parts.count > 1 ? String(parts[1]) : nil)
        }
        if let value = headers[HTTPField.Name("traceparent")!] {
            let parts = value.split(separator: "-")
            guard parts.count >= 3 else { return nil }
            return (String(parts[1]), String(parts[2]))
        }
        return nil
    }
}
