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
}
