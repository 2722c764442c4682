import CycloneModel
import CycloneHTTP
import CycloneRuntime

/// The OpenAPI 3.1 description of `label-ingest`.
enum LabelOpenAPI {
    static func document(maxLabels: Int) -> String {
        let errorResponse = OpenAPI.errorResponse
        let key: JSONValue = ["type": "string", "minLength": 1, "pattern": "^[^\\u0000]*$",
                              "description": .string("the key sent with the prediction: at most \(Storable.maxKeyBytes) bytes of UTF-8, no NUL")]
        let label: JSONValue = [
            "description": .string("a number (regression; magnitude at most \(Storable.largestMagnitudeText)) or a class (string or boolean)"),
            "oneOf": [
                ["type": "number", "minimum": .number(-Storable.largestMagnitude), "maximum": .number(Storable.largestMagnitude)],
                ["type": "string", "pattern": "^[^\\u0000]*$"],
                ["type": "boolean"],
            ],
        ]
        let target: JSONValue = [
            "oneOf": [
                ["type": "object", "required": ["id", "label"], "additionalProperties": false,
                 "properties": ["id": ["type": "string", "format": "uuid"], "label": ["$ref": "#/components/schemas/Label"]]],
                ["type": "object", "required": ["key", "label"], "additionalProperties": false,
                 "properties": ["key": key, "label": ["$ref": "#/components/schemas/Label"]]],
            ],
        ]
        let found: JSONValue = ["type": "object", "properties": ["id": ["type": "string"], "key": ["type": "string"]]]
        let document: JSONValue = [
            "openapi": "3.1.0",
            "info": ["title": "Cyclone label-ingest", "version": "1"],
            "paths": [
                "/labels": ["post": [
                    "summary": "Attach ground truth to stored predictions, by prediction id or caller key",
                    "requestBody": ["required": true, "content": ["application/json": ["schema": [
                        "type": "object", "required": ["labels"], "additionalProperties": false,
                        "properties": ["labels": ["type": "array", "minItems": 1, "maxItems": .number(Double(maxLabels)),
                                                  "items": ["$ref": "#/components/schemas/Target"],
                                                  "description": .string("at most \(maxLabels) (MAX_LABELS); the last label for a target wins")]],
                    ]]]],
                    "responses": [
                        "200": ["description": "What the batch did.", "content": ["application/json": ["schema": [
                            "type": "object", "required": ["applied", "overwritten", "unchanged", "notFound"],
                            "properties": ["applied": ["type": "integer"], "overwritten": ["type": "integer"],
                                           "unchanged": ["type": "integer"],
                                           "notFound": ["type": "array", "items": found]],
                        ]]]],
                        "400": errorResponse("The body or a label is invalid (path names which); nothing was applied."),
                        "413": errorResponse("Too many labels (MAX_LABELS) or too large a body (MAX_BODY_BYTES)."),
                        "415": errorResponse("A Content-Type other than application/json."),
                        "503": errorResponse("PostgreSQL is unavailable; nothing was applied. Retry-After says when to retry."),
                    ],
                ]],
            ],
            "components": ["schemas": ["Target": target, "Label": label, "Error": OpenAPI.errorSchema]],
        ]
        return OpenAPI.withOperationalPaths(document, readiness: "the store pool running").jsonText
    }
}
