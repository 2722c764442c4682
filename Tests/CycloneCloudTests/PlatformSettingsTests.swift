import Configuration
import CycloneCloud
import CycloneRuntime
import CycloneTestSupport
import Testing

/// `PLATFORM` picks where the loop acts; Cloud Run's settings are checked at start, one line each.
@Suite struct PlatformSettingsTests {
    func settings(_ environment: [String: String]) throws -> PlatformSettings {
        try PlatformSettings(reader: ConfigReader.cyclone(environment: environment))
    }

    @Test func localIsTheDefault() throws {
        let local = try settings(["RETRAIN_COMMAND": "/bin/retrain --quiet", "MODEL_DIR": "/srv/models"])
        guard case .local(let command, let directory) = local.kind else { Issue.record("not local"); return }
        #expect(command == ["/bin/retrain", "--quiet"] && directory == "/srv/models" && local.canaryPercent == 10)
        #expect(try local.platform() is LocalPlatform)
    }

    @Test func cloudRunReadsItsServiceJobAndImages() throws {
        let cloud = try settings([
            "PLATFORM": "cloudrun", "GOOGLE_CLOUD_PROJECT": "project", "GOOGLE_CLOUD_REGION": "europe-west1",
            "SERVE_IMAGE": "europe-west1-docker.pkg.dev/project/cyclone/serve:abc123", "CANARY_PERCENT": "25",
        ])
        guard case .cloudRun(let run) = cloud.kind else { Issue.record("not cloud run"); return }
        #expect(run.service == "predict" && run.job == "retrain" && run.endpoint == "https://run.googleapis.com")
        #expect(run.modelImages?.description == "europe-west1-docker.pkg.dev/project/cyclone/serve")
        #expect(cloud.canaryPercent == 25)
    }

    /// Each model's own services: `PREDICT_SERVICES` and `PREDICT_GRPC_SERVICES` pair model names with them.
    @Test func eachModelsServicesAreRead() throws {
        let cloud = try settings([
            "PLATFORM": "cloudrun", "GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_CLOUD_REGION": "r",
            "PREDICT_SERVICES": "bikes=c-predict-bikes, taxis = c-predict-taxis",
            "PREDICT_GRPC_SERVICES": "taxis=c-predict-taxis-grpc",
        ])
        guard case .cloudRun(let run) = cloud.kind else { Issue.record("not cloud run"); return }
        #expect(run.models == ["bikes": .init(service: "c-predict-bikes"),
                               "taxis": .init(service: "c-predict-taxis", mirrors: ["c-predict-taxis-grpc"])])
    }

    /// A new version goes to shadow unless told otherwise; a `CANARY_PERCENT` set without `ROLLOUT` keeps
    /// what it meant before `ROLLOUT` existed (a canary, or at 0 a direct deploy).
    @Test(arguments: [
        ([:], PlatformSettings.RolloutMode.shadow, Role.shadow),
        (["CANARY_PERCENT": "25"], .canary, .canary),
        (["CANARY_PERCENT": "0"], .direct, .live),
        (["ROLLOUT": "shadow", "CANARY_PERCENT": "25"], .shadow, .shadow),
        (["ROLLOUT": "canary"], .canary, .canary),
        (["ROLLOUT": "canary", "CANARY_PERCENT": "100"], .canary, .live),
        (["ROLLOUT": "direct"], .direct, .live),
    ])
    func theRolloutAndTheRoleOfANewVersion(_ environment: [String: String], _ rollout: PlatformSettings.RolloutMode,
                                           _ role: Role) throws
    {
        let read = try settings(environment)
        #expect(read.rollout == rollout && read.newVersionRole == role)
    }

    /// evaluate only moves traffic and runs the job: without `SERVE_IMAGE` it starts, and a deploy says why
    /// it cannot build an image.
    @Test func withoutAServeImageDeployingSaysWhy() async throws {
        let cloud = try settings(["PLATFORM": "cloudrun", "GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_CLOUD_REGION": "r"])
        guard case .cloudRun(let run) = cloud.kind else { Issue.record("not cloud run"); return }
        #expect(run.serveImage == nil && run.modelImages == nil)
        let platform = CloudRunPlatform(cloudRun: CloudRun(project: "p", region: "r", credentials: nil), service: "predict",
                                        job: "retrain", canaryPercent: 10, images: nil)
        await #expect { try await platform.deploy(try TestModels.regression(), as: .canary) } throws: {
            "\($0)".hasSuffix("image on (SERVE_IMAGE)")
        }
    }

    @Test(arguments: [
        (["PLATFORM": "heroku"], "PLATFORM"),
        (["PLATFORM": "cloudrun"], "GOOGLE_CLOUD_PROJECT"),
        (["PLATFORM": "cloudrun", "GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_CLOUD_REGION": "r", "SERVE_IMAGE": "serve:v1"],
         "SERVE_IMAGE 'serve:v1': 'serve:v1' names no registry host"),
        (["CANARY_PERCENT": "150"], "CANARY_PERCENT"),
        (["ROLLOUT": "blue-green"], "ROLLOUT 'blue-green' is not shadow, canary or direct"),
        (["PLATFORM": "cloudrun", "GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_CLOUD_REGION": "r", "PREDICT_SERVICES": "bikes"],
         "PREDICT_SERVICES 'bikes' is not MODEL=SERVICE"),
        (["PLATFORM": "cloudrun", "GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_CLOUD_REGION": "r", "PREDICT_SERVICES": "a=x,a=y"],
         "PREDICT_SERVICES names model 'a' twice"),
        (["PLATFORM": "cloudrun", "GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_CLOUD_REGION": "r", "PREDICT_SERVICES": "a=x",
          "PREDICT_GRPC_SERVICES": "b=y"], "PREDICT_GRPC_SERVICES names model 'b', which PREDICT_SERVICES does not"),
        (["PLATFORM": "cloudrun", "GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_CLOUD_REGION": "r", "PREDICT_SERVICES": "a=x,b=x"],
         "service x is named twice"),
        (["PLATFORM": "cloudrun", "GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_CLOUD_REGION": "r", "PREDICT_SERVICES": "a=x",
          "PREDICT_GRPC_SERVICE": "g"], "PREDICT_GRPC_SERVICE is for every model's one service"),
    ])
    func badSettingsNameTheVariable(_ environment: [String: String], _ expected: String) {
        #expect { try settings(environment) } throws: { "\($0)".contains(expected) }
    }
}
