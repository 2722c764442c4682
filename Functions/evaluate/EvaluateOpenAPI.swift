import CycloneModel
import CycloneHTTP
import CycloneMonitoring
import CycloneRuntime

/// The OpenAPI 3.1 description of `evaluate`: the cycle, the dashboard and the JSON API the dashboard reads.
enum EvaluateOpenAPI {
    static let document: String = {
        let time: JSONValue = ["type": "string", "format": "date-time"]
        let number: JSONValue = ["type": ["number", "null"]]
        let count: JSONValue = ["type": ["integer", "null"]]
        func parameter(_ name: String, _ description: String, _ type: String = "string") -> JSONValue {
            ["name": .string(name), "in": "query", "required": false, "description": .string(description),
             "schema": ["type": .string(type)]]
        }
        let common: [JSONValue] = [
            parameter("model", "only this model"),
            parameter("version", "only this version"),
            parameter("since", "an ISO 8601 time, or a duration back from now such as 24h or 30m; 7 days by default"),
            parameter("limit", "at most this many of the newest points (1000; at most 10000)", "integer"),
        ]
        func get(_ summary: String, _ parameters: [JSONValue], _ schema: JSONValue) -> JSONValue {
            ["get": [
                "summary": .string(summary),
                "parameters": .array(parameters),
                "responses": [
                    "200": ["description": "the data, oldest first", "content": ["application/json": ["schema": schema]]],
                    "400": OpenAPI.errorResponse("An unknown parameter or a bad value; path names which."),
                ],
            ]]
        }
        /// An object whose properties are all present, except those that may be null (absent when they are).
        func object(_ properties: [String: JSONValue]) -> JSONValue {
            let required = properties.filter { _, schema in
                !schema["type"].jsonText.contains("\"null\"") && !schema["oneOf"].jsonText.contains("\"null\"")
            }
            return ["type": "object", "properties": .object(properties), "required": .array(required.keys.sorted().map { .string($0) })]
        }
        func series(_ key: String, _ name: String, _ point: JSONValue) -> JSONValue {
            object([key: ["type": "array", "items": object([
                "model": ["type": "string"], "version": ["type": "string"], name: ["type": "string"],
                "points": ["type": "array", "items": point],
            ])]])
        }
        let model = object([
            "name": ["type": "string"], "version": ["type": "string"], "family": ["type": "string"],
            "task": ["enum": ["regression", "binary", "multiclass"]],
            "status": ["enum": ["candidate", "canary", "live", "retired", "rejected"]],
            "parent_version": ["type": ["string", "null"]], "training_rows": count,
            "training_window": ["oneOf": [["type": "null"], object(["start": time, "end": time])]],
            "holdout_metrics": ["type": ["object", "null"], "additionalProperties": ["type": "number"],
                                "description": "the trainer's metrics on its holdout rows"],
            "comparison": ["type": ["object", "null"],
                           "description": "a retrained version's test against the live model on the same newest rows: metric, rows, candidate and live metrics"],
            "image_digest": ["type": ["string", "null"]],
            "reason": ["type": ["string", "null"], "description": "why a candidate was accepted or rejected, or a version retired"],
            "created_at": time, "updated_at": time,
            "traffic_percent": ["type": "integer", "description": "share of predict's requests this version answers now"],
            "policy": object([
                "metric": ["type": "string"], "higher_is_better": ["type": "boolean"],
                "threshold": ["type": "string", "description": "the policy's threshold: a value, or a factor of the holdout value such as 1.1x"],
                "limit": ["type": ["number", "null"], "description": "the value this version's metric is held to"],
            ]),
            "predictions": ["type": "integer"],
            "first_prediction_at": ["type": ["string", "null"], "format": "date-time"],
            "last_prediction_at": ["type": ["string", "null"], "format": "date-time"],
        ])
        let document: JSONValue = [
            "openapi": "3.1.0",
            "info": ["title": "Cyclone evaluate", "version": "1"],
            "paths": [
                "/evaluate": ["post": [
                    "summary": "Run one evaluation cycle (Cloud Scheduler calls this): metrics, drift, policy, retrain",
                    "responses": [
                        "200": ["description": "the cycle's report per model version"],
                        "503": OpenAPI.errorResponse("The store is unavailable; nothing was decided. Retry-After says when to retry."),
                    ],
                ]],
                "/dashboard": ["get": [
                    "summary": "The loop's page: performance against the policy, volume and latency, drift, data quality, events, traffic and the registry",
                    "responses": ["200": ["description": "a self-contained HTML page", "content": ["text/html": [:]]]],
                ]],
                "/api/models": get("Every registered version, with its lineage, holdout metrics, status, traffic share and policy limit", [],
                                   object(["models": ["type": "array", "items": model]])),
                "/api/metrics": get("Performance metrics per evaluation window; `estimated_<metric>` is the metric estimated before labels (CBPE, DLE) with its band",
                                    common + [parameter("metric", "only this metric, such as rmse, roc_auc or estimated_mae")],
                                    series("series", "metric", object(["at": time, "value": number, "rows": ["type": "integer"],
                                                                       "lower": number, "upper": number]))),
                "/api/drift": get("Drift and data quality per feature and evaluation window (feature `prediction` is the prediction's drift, `dataset` the dataset verdict)",
                                  common + [parameter("feature", "only this feature")],
                                  series("series", "feature", object([
                                      "at": time, "test": ["type": "string"], "statistic": number, "p_value": number,
                                      "threshold": number, "drifted": ["type": "boolean"], "psi": number,
                                      "rows": ["type": "integer"], "missing_rate": number, "missing": count,
                                      "invalid": count, "out_of_range": count, "unseen": count,
                                      "refused": count,
                                      "quality_breaches": ["type": "array", "items": ["type": "string", "enum": .array(DataQualityCheck.Kind.allCases.map { .string($0.rawValue) })]],
                                  ]))),
                "/api/volume": get("Predictions, labelled predictions and predict's latency per time bucket",
                                   common.filter { $0["name"] != "limit" } + [
                                       parameter("limit", "at most this many buckets (1000; at most 10000)", "integer"),
                                       parameter("bucket", "seconds per bucket (default: about 120 buckets over the predictions' span)", "integer"),
                                   ],
                                   object([
                                       "bucket_seconds": ["type": "integer"],
                                       "series": ["type": "array", "items": object([
                                           "model": ["type": "string"], "version": ["type": "string"],
                                           "points": ["type": "array", "items": object([
                                               "at": time, "predictions": ["type": "integer"], "labelled": ["type": "integer"],
                                               "latency_ms_p50": number, "latency_ms_p95": number,
                                           ])],
                                       ])],
                                   ])),
                "/api/shadow": get("Each shadow against the live version it was scored beside, on the same labelled rows (version: the live one)",
                                   common,
                                   object(["comparisons": ["type": "array", "items": object([
                                       "model": ["type": "string"], "live_version": ["type": "string"],
                                       "shadow_version": ["type": "string"], "loss": ["type": "string"],
                                       "pairs": ["type": "integer"], "live_mean_loss": number, "shadow_mean_loss": number,
                                       "first_at": time, "last_at": time,
                                   ])]])),
                "/api/events": get("The loop's events: retrains requested, started, finished (accepted or rejected, with the reason), deploys, canaries, shadows, promotions, rollbacks, discards, alerts",
                                   common + [parameter("kind", "only this kind, such as rolled_back; a replay's clock marks (replay_clock) are listed only when asked for")],
                                   object(["events": ["type": "array", "items": object([
                                       "id": ["type": "integer"], "at": time, "model": ["type": ["string", "null"]],
                                       "version": ["type": ["string", "null"]], "kind": ["type": "string"],
                                       "detail": ["type": "object"],
                                   ])]])),
            ],
            "components": ["schemas": ["Error": OpenAPI.errorSchema]],
        ]
        return OpenAPI.withOperationalPaths(document, readiness: "schema migrated").jsonText
    }()
}
