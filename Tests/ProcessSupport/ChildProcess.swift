import Synchronization

#if canImport(Glibc)
    public import Glibc
#endif

/// A child process started with `posix_spawn(3)` and reaped with `waitpid(2)` by its owner.
///
/// The tests do not use Foundation's `Process` for this: its `waitUntilExit()` waits for a run-loop
/// notification that, on Linux and under load, can fail to arrive for a child that has already exited
/// (swiftlang/swift#79881, swift-corelibs-foundation#5153), parking the waiting thread for ever. Here every
/// wait is a `waitpid` poll with a deadline, stdin is /dev/null, outputs are pipes or files opened
/// close-on-exec, and the child starts with an empty signal mask and default signal dispositions.
public final class ChildProcess: Sendable {

    /// How a child ended.
    public enum Termination: Equatable, Sendable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        public var description: String {
            switch self {
            case .exited(let code): "exit status \(code)"
            case .signaled(let signal): "signal \(signal)"
            }
        }
    }

    /// Where a child's standard output or error goes.
    public enum Output: Sendable {
        case null
        case pipe
        /// A file created (or truncated) with mode 0600.
        case file(String)
    }

    public struct SpawnError: Error, CustomStringConvertible {
        public let description: String
    }

    public let pid: pid_t
    /// Read ends of the `.pipe` outputs, owned (and closed) by this object.
    public let standardOutput: Int32?
    public let standardError: Int32?

    /// How the child ended, once reaped (waitpid must not be called again after that: the pid may be reused).
    private let status = Mutex<Termination?>(nil)

    /// Starts `executable` (a path, or a name looked up in PATH) with `arguments`.
    /// `environment` replaces the whole environment when given.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        standardOutput: Output = .null, standardError: Output = .null
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)

        var parentEnds: [Int32] = []
        var childEnds: [Int32] = []
        func route(_ output: Output, to fd: Int32) throws -> Int32? {
            switch output {
            case .null:
                posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0)
                return nil
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
                return nil
            case .pipe:
                var ends: [Int32] = [-1, -1]
                // pipe2(O_CLOEXEC) is not visible to Swift; the parent's ends are marked right away.
                guard pipe(&ends) == 0 else {
                    throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))")
                }
                ends.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) }
                posix_spawn_file_actions_adddup2(&actions, ends[1], fd)
                parentEnds.append(ends[0])
                childEnds.append(ends[1])
                return ends[0]
            }
        }
        let out: Int32?, err: Int32?
        do {
            out = try route(standardOutput, to: 1)
            err = try route(standardError, to: 2)
        } catch {
            (parentEnds + childEnds).forEach { _ = close($0) }
            throw error
        }

        // Last action (after the dup2s onto 0-2): nothing else of this process reaches the child. A TPM
        // connection inherited by a long-lived child (another test's swtpm) would keep the simulator's only
        // client slot busy after its owner closed it.
        Self.closeDescriptorsFrom3(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let environmentStrings = (environment ?? Self.currentEnvironment()).map { "\($0.key)=\($0.value)" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environmentStrings.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc =
            executable.contains("/")
            ? posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            : posix_spawnp(&pid, executable, &actions, &attributes, argv, envp)
        childEnds.forEach { _ = close($0) }
        guard rc == 0 else {
            parentEnds.forEach { _ = close($0) }
            throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
        self.standardOutput = out
        self.standardError = err
    }

    deinit {
        if poll() == nil {
            Glibc.kill(pid, SIGKILL)
            _ = wait(timeoutSeconds: 10)
        }
        standardOutput.map { _ = close($0) }
        standardError.map { _ = close($0) }
    }

    /// The termination, if the child has ended (reaps it); nil while it runs.
    public func poll() -> Termination? {
        status.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
            // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift cannot import as macros.
            status = raw & 0x7F == 0 ? .exited((raw >> 8) & 0xFF) : .signaled(raw & 0x7F)
            return status
        }
    }

    public var isRunning: Bool { poll() == nil }

    /// Waits up to `timeoutSeconds` for the child to end; nil if it is still running.
    public func wait(timeoutSeconds: Double) -> Termination? {
        let deadline = Self.now() + timeoutSeconds
        while true {
            if let status = poll() { return status }
            if Self.now() >= deadline { return nil }
            usleep(2_000)
        }
    }

    /// Sends `signal` unless the child has already been reaped.
    public func kill(_ signal: Int32 = SIGKILL) {
        status.withLock { status in
            if status == nil { _ = Glibc.kill(pid, signal) }
        }
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later; declared only under _GNU_SOURCE,
    /// so looked up at run time). Without it, every descriptor open right now gets its own close action.
    private static let addCloseFrom:
        (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32)? = {
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
            else { return nil }
            return unsafeBitCast(
                symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32).self)
        }()

    private static func closeDescriptorsFrom3(_ actions: inout posix_spawn_file_actions_t) {
        if let addCloseFrom, addCloseFrom(&actions, 3) == 0 { return }
        guard let dir = opendir("/proc/self/fd") else { return }
        defer { closedir(dir) }
        let own = dirfd(dir)
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let fd = Int32(name), fd > 2, fd != own { posix_spawn_file_actions_addclose(&actions, fd) }
        }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// This process's environment (`environ`).
    public static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}
