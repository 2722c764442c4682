import CycloneModel

/// Pieces every function's OpenAPI document shares: the error body `APIError` writes.
public enum OpenAPI {
    /// The schema of `{"error": {"status", "message", "path"}}`.
    public static let errorSchema: JSONValue = [
        "type": "object",
        "properties": ["error": [
            "type": "object",
            "properties": ["status": ["type": "integer"], "message": ["type": "string"], "path": ["type": "string"]],
        ]],
    ]

    /// A response with the error body, referring to `#/components/schemas/Error`.
    public static func errorResponse(_ description: String) -> JSONValue {
        ["description": .string(description), "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]]
    }

    /// `document` with the paths every function serves (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`)
    /// added to its own; `readiness` says what `/readyz` waits for.
    public static func withOperationalPaths(_ document: JSONValue, readiness: String) -> JSONValue {
        guard case .object(var top) = document, case .object(var paths)? = top["paths"] else { return document }
        paths["/healthz"] = ["get": ["summary": "Liveness", "responses": ["200": ["description": "alive"]]]]
        paths["/readyz"] = ["get": ["summary": .string("Readiness: \(readiness)"),
                                    "responses": ["200": ["description": "ready"], "503": ["description": "not ready, and why"]]]]
        paths["/metrics"] = ["get": ["summary": "Prometheus metrics", "responses": ["200": ["description": "text format 0.0.4"]]]]
        paths["/openapi.json"] = ["get": ["summary": "This document", "responses": ["200": ["description": "OpenAPI 3.1"]]]]
        top["paths"] = .object(paths)
        return .object(top)
    }
}
