import CycloneModel
import CycloneHTTP
import CycloneRuntime
import CycloneServing

/// The OpenAPI 3.1 description of `predict` for one of its models, with the request schema made from the
/// model's features (`GET /openapi.json`, or `?model=NAME` when several are served).
enum OpenAPIDocument {
    static func predict(_ artifact: ModelArtifact, maxInstances: Int) -> String {
        var properties: [String: JSONValue] = [:]
        for feature in artifact.features {
            var schema: [String: JSONValue]
            switch feature.kind {
            case .numeric:
                schema = ["type": feature.required ? "number" : ["number", "null"],
                          "minimum": .number(-Storable.largestMagnitude), "maximum": .number(Storable.largestMagnitude)]
                if let range = feature.range {
                    schema["description"] = .string("seen in training: \(range.min) to \(range.max)")
                }
            case .boolean:
                schema = ["type": feature.required ? "boolean" : ["boolean", "null"]]
            case .categorical:
                schema = ["type": feature.required ? "string" : ["string", "null"], "pattern": "^[^\\u0000]*$"]
                if let categories = feature.categories {
                    schema["examples"] = .array(categories.map { .string($0) })
                    schema["description"] = .string("categories seen in training: \(categories.joined(separator: ", ")); others are served as unknown unless STRICT_CATEGORIES is set")
                }
            }
            properties[feature.name] = .object(schema)
        }
        let instance: JSONValue = [
            "type": "object",
            "properties": .object(properties),
            "required": .array(artifact.features.filter(\.required).map { .string($0.name) }),
            "additionalProperties": false,
        ]
        let prediction: JSONValue
        if let classes = artifact.classes {
            prediction = [
                "type": "object", "required": ["id", "class", "probabilities"],
                "properties": [
                    "id": ["type": "string", "format": "uuid"],
                    "key": ["type": "string"],
                    "class": ["type": "string", "enum": .array(classes.map { .string($0) })],
                    "probabilities": ["type": "object", "additionalProperties": ["type": "number"]],
                ],
            ]
        } else {
            prediction = [
                "type": "object", "required": ["id", "value"],
                "properties": ["id": ["type": "string", "format": "uuid"], "key": ["type": "string"], "value": ["type": "number"]],
            ]
        }
        let errorResponse = OpenAPI.errorResponse
        let predictOperation: JSONValue = [
            "summary": "Score instances and store each prediction",
            "requestBody": ["required": true, "content": ["application/json": ["schema": [
                "type": "object", "required": ["instances"],
                "properties": [
                    "instances": ["type": "array", "minItems": 1, "maxItems": .number(Double(maxInstances)),
                                  "items": ["$ref": "#/components/schemas/Instance"],
                                  "description": .string("at most \(maxInstances) (MAX_INSTANCES)")],
                    "keys": ["type": "array",
                             "items": ["type": ["string", "null"], "minLength": 1, "pattern": "^[^\\u0000]*$"],
                             "description": .string("optional caller ids, one per instance (as many as instances), to attach labels by: null for none, else a non-empty string of at most \(Storable.maxKeyBytes) bytes of UTF-8 without NUL")],
                ],
            ]]]],
            "responses": [
                "200": [
                    "description": "One prediction per instance, in order. Header Cyclone-Stored says whether the rows are committed, buffered or dropped.",
                    "content": ["application/json": ["schema": [
                        "type": "object",
                        "properties": [
                            "predictions": ["type": "array", "items": ["$ref": "#/components/schemas/Prediction"]],
                            "model": ["type": "object", "properties": ["name": ["type": "string"], "version": ["type": "string"]]],
                        ],
                    ]]],
                ],
                "400": errorResponse("The body or an instance is invalid; path names where."),
                "413": errorResponse("Too many instances (MAX_INSTANCES) or too large a body (MAX_BODY_BYTES)."),
                "415": errorResponse("A Content-Type other than application/json."),
            ],
        ]
        /// `operation` for the path with the model's name in it (`{name}`), with another summary if given.
        func named(_ operation: JSONValue, summary: String? = nil) -> JSONValue {
            guard case .object(var members) = operation else { return operation }
            if let summary { members["summary"] = .string(summary) }
            members["parameters"] = [["name": "name", "in": "path", "required": true,
                                      "schema": ["type": "string", "enum": [.string(artifact.name)]]]]
            return .object(members)
        }
        let status: JSONValue = ["summary": "What serves now: name, version and any canary or shadow",
                                 "responses": ["200": ["description": "the serving model"]]]
        let document: JSONValue = [
            "openapi": "3.1.0",
            "info": ["title": .string("Cyclone predict: \(artifact.name)"), "version": .string(artifact.version)],
            "paths": .object([
                "/predict": ["post": predictOperation],
                "/predict/{name}": ["post": named(predictOperation, summary: "/predict for the model named in the path")],
                "/v1/models/{name}:predict": ["post": named(predictOperation, summary: "KServe v1: the /predict body and answer")],
                "/model": ["get": status],
                "/model/{name}": ["get": named(status)],
            ].merging(inferencePaths(artifact)) { first, _ in first }),
            "components": ["schemas": ["Instance": instance, "Prediction": prediction, "Error": OpenAPI.errorSchema]],
        ]
        return OpenAPI.withOperationalPaths(document, readiness: "model loaded, writer running, schema migrated").jsonText
    }

    /// The Open Inference Protocol v2's REST paths and KServe v1's (`InferenceRoutes`).
    private static func inferencePaths(_ artifact: ModelArtifact) -> [String: JSONValue] {
        let name: JSONValue = ["name": "name", "in": "path", "required": true,
                               "schema": ["type": "string", "enum": [.string(artifact.name)]]]
        let version: JSONValue = ["name": "version", "in": "path", "required": true,
                                  "schema": ["type": "string", "enum": [.string(artifact.version)]]]
        let protocolError: JSONValue = ["description": "{\"error\": \"…\"}, what is wrong and where",
                                        "content": ["application/json": ["schema": [
                                            "type": "object", "required": ["error"], "properties": ["error": ["type": "string"]],
                                        ]]]]
        let datatypes = JSONValue.array(TensorDatatype.allCases.filter { $0 != .fp16 }.map { .string($0.rawValue) })
        let tensor: JSONValue = [
            "type": "object", "required": ["name", "datatype", "shape"],
            "properties": [
                "name": ["type": "string", "enum": .array((artifact.features.map(\.name) + [InferenceTensors.keyInput]).map { .string($0) })],
                "datatype": ["type": "string", "enum": datatypes],
                "shape": ["type": "array", "items": ["type": "integer", "minimum": 0], "minItems": 1, "maxItems": 2],
                "data": ["type": "array", "description": "row-major, flat or nested; null (or NaN in binary data) is a missing value"],
                "parameters": ["type": "object", "properties": ["binary_data_size": ["type": "integer", "minimum": 0]]],
            ],
        ]
        let infer: JSONValue = ["post": [
            "summary": "Open Inference Protocol v2: one input tensor per feature (and an optional BYTES `key`); stored as through /predict",
            "parameters": [name],
            "requestBody": ["required": true, "content": ["application/json": ["schema": [
                "type": "object", "required": ["inputs"],
                "properties": [
                    "id": ["type": "string"],
                    "inputs": ["type": "array", "items": tensor],
                    "outputs": ["type": "array", "items": ["type": "object", "required": ["name"], "properties": [
                        "name": ["type": "string", "enum": .array(InferenceTensors.outputNames(artifact).map { .string($0) })],
                        "parameters": ["type": "object", "properties": ["binary_data": ["type": "boolean"]]],
                    ]]],
                    "parameters": ["type": "object", "properties": ["binary_data_output": ["type": "boolean"]]],
                ],
            ]]]],
            "responses": ["200": ["description": "{model_name, model_version, id, outputs: predict, predict_proba (classifiers), prediction_id}"],
                          "400": protocolError, "404": protocolError, "413": protocolError, "415": protocolError],
        ]]
        var versioned = infer
        if case .object(var post) = infer["post"] {
            post["parameters"] = [name, version]
            versioned = ["post": .object(post)]
        }
        let get = { (summary: String, parameters: [JSONValue]) -> JSONValue in
            ["get": ["summary": .string(summary), "parameters": .array(parameters),
                     "responses": ["200": ["description": .string(summary)], "404": protocolError, "503": protocolError]]]
        }
        return [
            "/v2": get("Server metadata", []),
            "/v2/health/live": get("Liveness: {\"live\": true}", []),
            "/v2/health/ready": get("Readiness: {\"ready\": true}, 503 when not ready", []),
            "/v2/models/{name}": get("Model metadata: inputs, outputs, versions answering requests", [name]),
            "/v2/models/{name}/ready": get("Model readiness", [name]),
            "/v2/models/{name}/versions/{version}": get("Model metadata of one version", [name, version]),
            "/v2/models/{name}/infer": infer,
            "/v2/models/{name}/versions/{version}/infer": versioned,
            "/v2/models/{name}/versions/{version}/ready": get("Readiness of one version", [name, version]),
            "/v1/models/{name}": get("KServe v1: {\"name\", \"ready\"}", [name]),
            "/": get("KServe v1 liveness: {\"status\": \"alive\"}", []),
        ]
    }
}
