import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One folder for every file a test process writes (models, logs, registries, browser profiles), removed when
/// the process exits, so a test run leaves nothing behind in the temporary directory.
public enum TestFiles {
    public static let folder: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cyclone-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: TestFiles.folder) }
        return url
    }()
}
