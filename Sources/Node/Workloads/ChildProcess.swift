import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A workload process: spawned (posix_spawn) as the leader of its own process group, with default signal
/// dispositions and an empty mask, standard input from /dev/null and its output appended to a 0600 log file.
/// Signals go to the whole group, so what it forks stops with it.
struct ChildProcess: Sendable {
    /// The process id (and process group id).
    let pid: pid_t

    /// Spawns `argv` with exactly `environment`.
    static func spawn(_ argv: [String], environment: [String], log: String) throws(NodeError) -> ChildProcess {
        guard let executable = argv.first else { throw NodeError("spawn: no command") }
        let logFD = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard logFD >= 0 else { throw NodeError("spawn: cannot open \(log): \(String(cString: strerror(errno)))") }
        defer { close(logFD) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, logFD, 1)
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, &cArgs, &cEnv)
        guard rc == 0 else { throw NodeError("spawn \(executable): \(String(cString: strerror(rc)))") }
        return ChildProcess(pid: pid)
    }

    /// Waits for the process to end (on a thread of its own: waitpid blocks) and returns its wait status.
    func waitForExit() async -> Int32 {
        let pid = self.pid
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                continuation.resume(returning: status)
            }
        }
    }

    /// Sends `signal` to the process group (never to a bare pid: a reaped one may have been reused).
    func signalGroup(_ signal: Int32) {
        kill(-pid, signal)
    }

    /// `exit 3`, `killed by signal 9`.
    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exit \((status >> 8) & 0xff)" }
        return "killed by signal \(signal)"
    }

    /// Whether the status is a clean exit (0).
    static func succeeded(_ status: Int32) -> Bool { status & 0x7f == 0 && (status >> 8) & 0xff == 0 }
}
