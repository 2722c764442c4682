import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A child process to signal and wait for: the local platform's retrain, the demo's servers, the tests'
/// executables. posix_spawn, not Foundation's `Process`, which was seen here to leave an exited child
/// unreaped and never return.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    /// The file stdout goes to, or `nil` when it is the parent's.
    public let logPath: String?

    /// Starts `executable` with `arguments` and exactly `environment`; stdin is /dev/null. stdout goes to the
    /// file `stdout` (the parent's when `nil`); stderr to the file `stderr`, or when `nil` wherever stdout goes.
    public init(_ executable: String, arguments: [String] = [], environment: [String: String], stdout: String?,
                stderr: String? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let stdout { posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
        if let stderr {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        } else if stdout != nil {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        // Nothing else of ours: NIO's sockets (a listener, database connections) are not close-on-exec.
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }
        // A clean signal state: servers here ignore SIGTERM and SIGINT to handle them themselves, and a child
        // would inherit that.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw SpawnError(executable: executable, code: result) }
        self.pid = pid
        self.logPath = stdout
        // Listed before anyone can wait for it; one started while the others are being stopped stops too.
        Self.children.withLock { children in
            children.running.insert(pid)
            if children.stopping { kill(pid, SIGTERM) }
        }
    }

    /// The children started and not yet waited for (a pid is listed until just before it is reaped, so it is
    /// never reused while listed), and whether a signal is stopping them.
    private struct Children {
        var running: Set<pid_t> = []
        var stopping = false
    }
    private static let children = Mutex(Children())
    private static let signalSources = Mutex<[any DispatchSourceSignal]>([])

    /// Until `handleSignalsAgain()`, SIGTERM, SIGINT and SIGHUP stop this process's children with it: each
    /// still running gets SIGTERM (as does one started meanwhile), has up to `grace` to finish what it holds (a
    /// predict its queued writes) before SIGKILL, and then this process exits with 128 + the signal, as the
    /// signal's default would have; a second signal kills them at once. Without it a `cyclone demo` told to
    /// stop leaves its servers running, holding their ports. A signal this process was started ignoring (under
    /// `nohup`) stays ignored. A command line's, not a server's (those stop on SIGTERM through their service
    /// group); grandchildren are their parents' to stop.
    public static func stopChildrenOnSignals(grace: Duration = .seconds(10)) {
        signalSources.withLock { sources in
            guard sources.isEmpty else { return }
            for number in [SIGTERM, SIGINT, SIGHUP] {
                let previous = Glibc.signal(number, SIG_IGN)
                if unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { continue }
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { stopChildren(signal: number, grace: grace) }
                source.resume()
                sources.append(source)
            }
        }
    }

    private static func stopChildren(signal number: Int32, grace: Duration) {
        let first = children.withLock { children in
            defer { children.stopping = true }
            for child in children.running { kill(child, children.stopping ? SIGKILL : SIGTERM) }
            return !children.stopping
        }
        // A second signal: the children are killed, and this process ends at once (the first's handler is
        // still waiting, so `_exit`, which runs no exit handlers beside it).
        guard first else { _exit(128 + number) }
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline, children.withLock({ $0.running.contains { !exited($0) } }) {
            usleep(20_000)
        }
        children.withLock { children in for child in children.running where !exited(child) { kill(child, SIGKILL) } }
        exit(128 + number)
    }

    /// Ends `stopChildrenOnSignals`: the signals are this process's own to handle again (a demo serving its
    /// dashboard stops it on Ctrl-C and exits cleanly).
    public static func handleSignalsAgain() {
        signalSources.withLock { sources in
            for source in sources { source.cancel() }
            sources.removeAll()
        }
    }

    /// Whether the child `pid` has ended (a zombie not yet waited for counts), without reaping it.
    private static func exited(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info._sifields._sigchld.si_pid == pid
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc module does not
    /// declare.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
            return nil
        }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    public struct SpawnError: Error, CustomStringConvertible {
        public var executable: String
        public var code: Int32
        public var description: String { "cannot start \(executable): \(String(cString: strerror(code)))" }
    }

    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// Whether it has exited, without reaping it (`wait` still returns its status).
    public var hasExited: Bool { Self.exited(pid) }

    /// Waits for the process to end, on a thread of its own; returns its exit code, 128 + the signal that
    /// ended it, or -1 when it was already waited for.
    public func wait() async -> Int32 {
        let pid = self.pid
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                // Waited for without reaping, unlisted, then reaped: a listed pid is never one reused.
                var info = siginfo_t()
                while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR {}
                Self.children.withLock { _ = $0.running.remove(pid) }
                var status: Int32 = 0
                var result: pid_t
                repeat { result = waitpid(pid, &status, 0) } while result == -1 && errno == EINTR
                guard result == pid else { return continuation.resume(returning: -1) }
                let signal = status & 0x7f
                continuation.resume(returning: signal == 0 ? (status >> 8) & 0xff : 128 + signal)
            }
        }
    }

    /// What it wrote to its log file so far.
    public var log: String { logPath.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? "" }
}

/// A TCP port nothing listens on right now (the kernel's choice for port 0). Another process may take it
/// before the caller binds it; a server given it then fails to start, which its caller reports.
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
