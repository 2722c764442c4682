import CycloneModel
import CycloneTestSupport
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

/// The fake Admin API holds every request to Google's published schema (Tests/Fixtures/cloudrun/run_v2_schema.json):
/// what Google's front end refuses, it refuses in Google's words, before acting; output-only fields are ignored.
@Suite struct CloudRunSchemaTests {
    static let services = "/v2/projects/project/locations/europe-west1/services"
    static let image = "europe-west1-docker.pkg.dev/project/cyclone/predict@sha256:\(String(repeating: "0", count: 64))"

    /// A fake with the service `predict`, and a client sending raw requests to it.
    func withFake(_ body: @Sendable (FakeCloudRun, any TestClientProtocol) async throws -> Void) async throws {
        let fake = FakeCloudRun()
        fake.addService("predict", image: Self.image)
        try await fake.application().test(.router) { client in try await body(fake, client) }
    }

    /// The status and JSON body of a request with a JSON `body`.
    func send(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil)
        async throws -> (HTTPResponse.Status, JSONValue)
    {
        try await client.execute(uri: uri, method: method, body: body.map { ByteBuffer(string: $0) }) { response in
            (response.status, try JSONParser.parse(Array(response.body.readableBytesView)))
        }
    }

    /// The operation of a PATCH done (the fake's are done at the second poll).
    func finish(_ client: any TestClientProtocol, _ operation: JSONValue) async throws {
        let name = try #require(operation["name"].string)
        for _ in 0..<2 { _ = try await send(client, .get, "/v2/\(name)") }
    }

    @Test func anUnknownFieldIsRefusedAsGoogleRefusesIt() async throws {
        try await withFake { fake, client in
            let (status, answer) = try await send(client, .patch, "\(Self.services)/predict?updateMask=template",
                                                  #"{"template": {"containers": [{"image": "\#(Self.image)"}], "foo": 1}}"#)
            #expect(status == .badRequest)
            let google = #"""
                {"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"foo\" at 'service.template': Cannot find field.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"service.template","description":"Invalid JSON payload received. Unknown name \"foo\" at 'service.template': Cannot find field."}]}]}}
                """#
            #expect(answer == (try JSONParser.parse(Array(google.utf8))))
            #expect(fake.state.withLock { $0.patches } == 0, "refused before the fake acts")

            // jobs.run's body is the whole request: a top-level field has no location, its violation no field.
            let (runStatus, run) = try await send(client, .post, "/v2/projects/project/locations/europe-west1/jobs/retrain:run",
                                                  #"{"overrides": {"taskCount": 1}, "foo": true}"#)
            #expect(runStatus == .badRequest)
            #expect(run["error"]["message"] == "Invalid JSON payload received. Unknown name \"foo\": Cannot find field.")
            #expect(run["error"]["details"] == [["@type": "type.googleapis.com/google.rpc.BadRequest",
                                                 "fieldViolations": [["description": "Invalid JSON payload received. Unknown name \"foo\": Cannot find field."]]]])
            #expect(fake.state.withLock { $0.runs.isEmpty })
        }
    }

    /// An enum value the schema does not list names the enum's type; each problem is a line of the message and
    /// a field violation of its own.
    @Test func anEnumValueOutsideTheSchemaIsRefused() async throws {
        try await withFake { fake, client in
            let (status, answer) = try await send(client, .patch, "\(Self.services)/predict?updateMask=ingress,traffic", #"""
                {"ingress": "BOGUS", "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": "all"}]}
                """#)
            #expect(status == .badRequest)
            let ingress = #"Invalid value at 'service.ingress' (type.googleapis.com/google.cloud.run.v2.IngressTraffic), "BOGUS""#
            let percent = #"Invalid value at 'service.traffic[0].percent' (TYPE_INT32), "all""#
            #expect(answer["error"]["message"] == .string(ingress + "\n" + percent))
            #expect(answer["error"]["status"] == "INVALID_ARGUMENT")
            #expect(answer["error"]["details"].array.first?["fieldViolations"] == [
                ["field": "service.ingress", "description": .string(ingress)],
                ["field": "service.traffic[0].percent", "description": .string(percent)],
            ])
            #expect(fake.state.withLock { $0.services["predict"]!.object["ingress"] } == nil)
        }
    }

    /// Output-only fields in a body (a stale etag among them) or in `updateMask` are ignored (AIP-203): the
    /// PATCH succeeds and none of them is stored, nested ones included.
    @Test func outputOnlyFieldsAreIgnoredNotStored() async throws {
        try await withFake { fake, client in
            var service = try #require(try await send(client, .get, "\(Self.services)/predict").1.object)
            let forged: [String: JSONValue] = [
                "uid": "forged", "generation": "99", "observedGeneration": 99, "etag": "\"stale\"", "reconciling": true,
                "uri": "https://forged.example", "latestReadyRevision": "forged", "createTime": "2020-01-01T00:00:00Z",
                "trafficStatuses": [["revision": "forged", "percent": 100]], "terminalCondition": ["state": "CONDITION_FAILED"],
            ]
            service.merge(forged) { $1 }
            var template = try #require(service["template"]?.object)
            template["containers"] = [["image": .string(Self.image), "buildInfo": ["functionTarget": "forged"]]]
            service["template"] = .object(template)
            for mask in [nil, "template,uid,etag,terminalCondition.state"] {
                let (status, operation) = try await send(client, .patch, "\(Self.services)/predict" + (mask.map { "?updateMask=\($0)" } ?? ""),
                                                         JSONValue.object(service).jsonText)
                #expect(status == .ok, "\(operation)")
                try await finish(client, operation)
                let stored = fake.state.withLock { $0.services["predict"]!.object }
                for (field, value) in forged {
                    #expect(stored[field] != value, "\(field) as sent with updateMask \(mask ?? "none")")
                }
                #expect(stored["template"]?["containers"].array.first?["buildInfo"] == .null)
                #expect(stored["template"]?["containers"].array.first?["image"] == .string(Self.image))
            }
            #expect(fake.state.withLock { $0.updateMasks } == [nil, "template,uid,etag,terminalCondition.state"])
        }
    }

    /// Query parameters: the method's own and the system ones are taken, any other is refused, and `updateMask`
    /// must name fields of the Service.
    @Test func queryParametersAreHeldToTheMethod() async throws {
        try await withFake { fake, client in
            let (ok, _) = try await send(client, .get, "\(Self.services)/predict?alt=json&prettyPrint=false")
            #expect(ok == .ok)
            let (status, answer) = try await send(client, .get, "\(Self.services)/predict?view=FULL")
            #expect(status == .badRequest)
            #expect(answer["error"]["message"] == "Invalid JSON payload received. Unknown name \"view\": Cannot find field.")
            let (maskStatus, mask) = try await send(client, .patch, "\(Self.services)/predict?updateMask=template.nope,traffic",
                                                    #"{"traffic": []}"#)
            #expect(maskStatus == .badRequest)
            #expect(mask["error"]["details"].array.first?["fieldViolations"].array.first?["field"] == "update_mask")
            #expect(mask["error"]["message"].string?.contains("\"template.nope\"") == true, "\(mask)")
            let (pageStatus, page) = try await send(client, .get, "/v2/projects/project/locations/europe-west1/jobs/retrain/executions?pageSize=many")
            #expect(pageStatus == .badRequest)
            #expect(page["error"]["message"] == #"Invalid value at 'page_size' (TYPE_INT32), "many""#)
            #expect(fake.state.withLock { $0.patches } == 0)
        }
    }

    /// A services.patch body (a Service) and what Google's front end says of it (nil: taken).
    static let bodies: [(String, String?)] = [
        (#"{"generation": "3", "observedGeneration": 3, "template": {}}"#, nil),  // int64: a string of digits or a number
        (#"{"generation": "3x"}"#, #"Invalid value at 'service.generation' (TYPE_INT64), "3x""#),
        (#"{"template": {"maxInstanceRequestConcurrency": 80, "timeout": "300s"}}"#, nil),
        (#"{"template": {"maxInstanceRequestConcurrency": "80"}}"#, nil),  // int32: a number, or a string of one
        (#"{"template": {"maxInstanceRequestConcurrency": "eighty"}}"#,
         #"Invalid value at 'service.template.max_instance_request_concurrency' (TYPE_INT32), "eighty""#),
        (#"{"template": {"maxInstanceRequestConcurrency": 80.5}}"#,
         #"Invalid value at 'service.template.max_instance_request_concurrency' (TYPE_INT32), 80.5"#),
        (#"{"template": {"timeout": "5m"}}"#,
         #"Invalid value at 'service.template.timeout' (type.googleapis.com/google.protobuf.Duration), "5m""#),
        (#"{"template": {"revision": ["a"]}}"#,
         #"Invalid JSON payload received. Unknown name "revision" at 'service.template': Proto field is not repeating, cannot start list."#),
        (#"{"template": {"containers": {"image": "a"}}}"#,
         #"Invalid value at 'service.template.containers' (type.googleapis.com/google.cloud.run.v2.Container), {"image":"a"}"#),
        (#"{"labels": {"a": "x", "b": 2}}"#, #"Invalid value at 'service.labels[1].value' (TYPE_STRING), 2"#),
        (#"{"scaling": {"maxInstanceCount": 3, "minInstanceCount": null}, "template": {}}"#, nil),  // null is the default value
        (#"{"invokerIamDisabled": "true"}"#, #"Invalid value at 'service.invoker_iam_disabled' (TYPE_BOOL), "true""#),
    ]

    @Test(arguments: bodies)
    func valuesAreHeldToTheirWireEncoding(_ text: String, _ refusal: String?) throws {
        let body = try JSONParser.parse(Array(text.utf8))
        do {
            let checked = try CloudRunSchema.runV2.validate("run.projects.locations.services.patch", query: [], body: body)
            #expect(refusal == nil)
            #expect(checked.body?["generation"] == .null && checked.body?["observedGeneration"] == .null, "output only")
        } catch {
            #expect(error.description == refusal)
            #expect(error.violations.map(\.field) == [refusal?.split(separator: "'").dropFirst().first.map(String.init)])
        }
    }

    /// Once the front end has passed a request, Cloud Run refuses one that leaves a required field unset, in
    /// its words, wherever the request sets anything: the whole body, or with an update mask what it names.
    @Test func requiredFieldsMustBeSet() throws {
        func refusal(_ method: String, _ text: String, mask: String? = nil) throws -> [String] {
            let body = try JSONParser.parse(Array(text.utf8))
            do {
                _ = try CloudRunSchema.runV2.validate("run.projects.locations.\(method)",
                                                      query: mask.map { [("updateMask", $0)] } ?? [], body: body)
                return []
            } catch {
                #expect(error.violations.allSatisfy { $0.field != nil })
                return error.violations.map(\.description)
            }
        }
        #expect(try refusal("services.create", #"{"labels": {"a": "b"}}"#)
            == ["Violation in CreateServiceRequest.service_id: required field not present.",
                "Violation in CreateServiceRequest.service.template: required field not present."])
        #expect(try refusal("services.patch", #"{"template": {"containers": [{"image": "i"}, {"name": "x", "image": ""}]}}"#)
            == ["Violation in UpdateServiceRequest.service.template.containers[1].image: required field not present."])
        #expect(try refusal("services.patch", #"{"template": {"containers": [{"image": "i", "env": [{"value": "v"}]}]}}"#)
            == ["Violation in UpdateServiceRequest.service.template.containers[0].env[0].name: required field not present."])
        // An update mask asks only for what it names: a traffic-only update carries no template.
        #expect(try refusal("services.patch", #"{"traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]}"#,
                            mask: "traffic").isEmpty)
        #expect(try refusal("services.patch", #"{"traffic": []}"#, mask: "traffic,template")
            == ["Violation in UpdateServiceRequest.service.template: required field not present."])
        #expect(try refusal("services.patch", #"{"template": {"containers": [{}]}}"#, mask: "template.containers")
            == ["Violation in UpdateServiceRequest.service.template.containers[0].image: required field not present."])
        #expect(try refusal("jobs.run", #"{"overrides": {"containerOverrides": [{"env": [{"value": "1"}]}]}}"#)
            == ["Violation in RunJobRequest.overrides.container_overrides[0].env[0].name: required field not present."])
        #expect(try refusal("jobs.run", #"{"overrides": {"containerOverrides": [{"env": [{"name": "A", "value": "1"}]}]}}"#).isEmpty)
        // A required query parameter, and a request that sends no body at all.
        func refusal(_ method: String, query: [(String, String)]) -> [String] {
            do {
                _ = try CloudRunSchema.runV2.validate("run.projects.locations.\(method)", query: query, body: nil)
                return []
            } catch {
                return error.violations.map(\.description)
            }
        }
        #expect(refusal("services.create", query: [("serviceId", "predict")])
            == ["Violation in CreateServiceRequest.service.template: required field not present."])
        #expect(refusal("services.create", query: [])
            == ["Violation in CreateServiceRequest.service_id: required field not present.",
                "Violation in CreateServiceRequest.service.template: required field not present."])
        #expect(CloudRunSchema.requestName("run.projects.locations.services.setIamPolicy", body: "GoogleIamV1SetIamPolicyRequest")
            == "SetIamPolicyRequest")
    }

    /// A field may be named by its proto name; Cloud Run gets it under its JSON name, with an update mask's paths.
    @Test func protoNamesArePassedOnAsJSONNames() throws {
        let body = try JSONParser.parse(Array(#"{"template": {"max_instance_request_concurrency": 80}, "uid": "u"}"#.utf8))
        let checked = try CloudRunSchema.runV2.validate("run.projects.locations.services.patch",
                                                        query: [("update_mask", "template.max_instance_request_concurrency,uid")],
                                                        body: body)
        #expect(checked == .init(body: ["template": ["maxInstanceRequestConcurrency": 80]],
                                 updateMask: ["template.maxInstanceRequestConcurrency"]))
    }
}
