import AsyncHTTPClient
import Configuration
import CryptoExtras
import CycloneCloud
import CycloneModel
import CycloneRuntime
import CycloneTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import Synchronization

// The deploy step of retrain, timed from an accepted candidate to its revision requested: the model image
// pushed onto the serve image in Debian's registry on loopback, then the Admin API calls (read the service,
// PATCH it) against the fake Cloud Run, with a token from the fake metadata server. The platform is built
// from the environment exactly as retrain builds it. scripts/bench-deploy runs this; not part of the tests.

let rounds = max(1, Int(ProcessInfo.processInfo.environment["ROUNDS"] ?? "") ?? 20)

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) * 1e-15
}

func summary(_ name: String, _ samples: [Duration]) -> String {
    let sorted = samples.map(milliseconds).sorted()
    let median = sorted[sorted.count / 2], p90 = sorted[min(sorted.count - 1, sorted.count * 9 / 10)]
    return "\(name.padding(toLength: 34, withPad: " ", startingAt: 0)) median \(String(format: "%7.1f", median)) ms   "
        + "p90 \(String(format: "%7.1f", p90)) ms   max \(String(format: "%7.1f", sorted.last!)) ms"
}

let registry = try await LocalRegistry()
let auth = FakeGoogleAuth(publicKey: try _RSA.Signing.PrivateKey(keySize: .bits2048).publicKey)
let fake = FakeCloudRun(tokenPrefix: "ya29.fake-")
let (authPort, runPort) = (freePort(), freePort())
let servers = Task {
    try await withThrowingDiscardingTaskGroup { group in
        group.addTask { try await auth.application(port: authPort).runService(gracefulShutdownSignals: []) }
        group.addTask { try await fake.application(port: runPort).runService(gracefulShutdownSignals: []) }
    }
}
do {
    _ = try await LocalRegistry.pushBase(Registry(host: registry.host, insecure: true), repository: "project/cyclone/serve",
                                         tag: "base", oci: true)
    fake.addService("predict", image: "\(registry.host)/project/cyclone/serve@sha256:\(String(repeating: "0", count: 64))")
    let environment = [
        "PLATFORM": "cloudrun", "GOOGLE_CLOUD_PROJECT": fake.project, "GOOGLE_CLOUD_REGION": fake.region,
        "SERVE_IMAGE": "\(registry.host)/project/cyclone/serve:base", "CLOUD_RUN_ENDPOINT": "http://127.0.0.1:\(runPort)",
        "GCE_METADATA_HOST": "127.0.0.1:\(authPort)", "ROLLOUT": "canary", "CANARY_PERCENT": "10",
    ]
    // Credentials come from the process environment, as in retrain.
    for (name, value) in environment { setenv(name, value, 1) }
    // The platform retrain builds from these settings, its image step wrapped to note when the push ends.
    var platform = try PlatformSettings(reader: ConfigReader.cyclone(environment: environment)).platform() as! CloudRunPlatform
    // The fake's operations are done at the second poll; Cloud Run's own time to ready is not measured here.
    platform.cloudRun.backoff = .milliseconds(1)
    let clock = ContinuousClock()
    let pushedAt = Mutex(clock.now)
    let push = platform.images!
    platform.images = { model, shadowOn in
        let image = try await push(model, shadowOn)
        pushedAt.withLock { $0 = clock.now }
        return image
    }
    for _ in 0..<100 {  // until the fakes listen
        if (try? await HTTPClient.shared.get(url: "http://127.0.0.1:\(runPort)/").get()) != nil { break }
        try await Task.sleep(for: .milliseconds(50))
    }

    var model = try liveModel()
    var (pushes, requests, totals) = ([Duration](), [Duration](), [Duration]())
    for round in 1...rounds {
        model.version = "\(round + 1)"
        let patches = fake.state.withLock { $0.patchedAt.count }
        let accepted = clock.now
        _ = try await platform.deploy(model, as: round % 2 == 1 ? .canary : .live)
        let pushed = pushedAt.withLock { $0 }
        // The PATCH that requests the revision (its operation not done yet).
        let requested = fake.state.withLock { $0.patchedAt[patches] }
        pushes.append(pushed - accepted)
        requests.append(requested - pushed)
        totals.append(requested - accepted)
    }
    // The first round is what a retrain job sees: one deploy per process, so a token fetched, connections
    // opened and the registry's token exchange done; the rest are warm.
    print("deploy of a \(try model.encoded().count)-byte model, \(rounds) rounds, canary and full in turn")
    func ms(_ duration: Duration) -> String { String(format: "%.1f ms", milliseconds(duration)) }
    print("first deploy of the process (cold): pushed \(ms(pushes[0])), PATCH landed \(ms(requests[0])) later, "
        + "\(ms(totals[0])) in all")
    print(summary("model image pushed", pushes))
    print(summary("Admin API until the PATCH lands", requests))
    print(summary("accepted → revision requested", totals))
    print("tokens fetched: \(auth.state.withLock { $0.issued }), PATCHes: \(fake.state.withLock { $0.patches })")
} catch {
    print("bench-deploy: \(error)")
    servers.cancel()
    await registry.stop()
    exit(1)
}
servers.cancel()
await registry.stop()
