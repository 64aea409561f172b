public import AttestTPM
public import Foundation
import ProcessSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A private swtpm for one test: its own copy of the fixture state in a temporary folder, its own free
/// TCP ports on 127.0.0.1, started on demand and stopped (state deleted) by ``stop()`` or at deinit.
/// Tests never depend on a simulator started by hand, and many can run in parallel.
public final class SoftwareTPM: @unchecked Sendable {
    // @unchecked Sendable: `process` and `stateDirectory` are set in init and only read afterwards;
    // `stop()` is idempotent and guarded by `lock`.
    public let port: Int
    public let controlPort: Int
    public let stateDirectory: URL
    private var process: ChildProcess
    private let lock = NSLock()
    private var stopped = false

    /// `swtpm:host=127.0.0.1,port=N`.
    public var tcti: TCTIConfiguration {
        TCTIConfiguration(name: "swtpm", configuration: "host=127.0.0.1,port=\(port)")
    }
    public var tctiString: String { tcti.loaderString }

    /// The repository root (this file is Tests/VigilTestSupport/SoftwareTPM.swift).
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    /// swtpm-fixtures/state: TPM 2.0 state provisioned by swtpm-fixtures/regenerate.sh.
    public static let fixtureState = repositoryRoot.appendingPathComponent("swtpm-fixtures/state")

    /// True when CI=true: a missing swtpm, tpm2-tools or root is then a failure, never a skip.
    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Whether an executable is on PATH.
    public static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(tool)"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    /// Tests that need swtpm run when it is installed, and always under CI (where its absence fails them).
    public static var canRun: Bool { isCI || which("swtpm") != nil }
    /// Same for tpm2-tools.
    public static var canRunTPM2Tools: Bool { isCI || (which("tpm2_checkquote") != nil && which("swtpm") != nil) }

    public struct StartError: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Starts swtpm from `state` (default: the committed fixture) and waits until it accepts connections.
    public init(state: URL = SoftwareTPM.fixtureState) throws {
        guard let swtpm = Self.which("swtpm") else {
            throw StartError(description: "swtpm is not installed (apt-get install swtpm swtpm-tools); CI=\(Self.isCI)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vigil-swtpm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for item in try FileManager.default.contentsOfDirectory(atPath: state.path) {
            try FileManager.default.copyItem(
                at: state.appendingPathComponent(item), to: directory.appendingPathComponent(item))
        }
        var lastError = "not started"
        for attempt in 0..<8 {
            // libtss2's swtpm TCTI talks to the control channel at port + 1.
            let data = try Self.freePortPair()
            let control = data + 1
            let log = directory.appendingPathComponent("swtpm-\(attempt).log").path
            let process = try Self.launch(swtpm, state: directory, port: data, control: control, log: log)
            if Self.waitForListener(port: data, process: process, seconds: 10) {
                self.port = data
                self.controlPort = control
                self.stateDirectory = directory
                self.process = process
                return
            }
            process.kill(SIGKILL)
            _ = process.wait(timeoutSeconds: 10)
            lastError = (try? String(contentsOfFile: log, encoding: .utf8)) ?? "no output"
        }
        try? FileManager.default.removeItem(at: directory)
        throw StartError(description: "swtpm did not start: \(lastError)")
    }

    /// The swtpm process, e.g. to stop it with SIGSTOP and see what a client does with a TPM that hangs.
    public var processIdentifier: Int32 {
        lock.lock()
        defer { lock.unlock() }
        return process.pid
    }

    /// swtpm on `state`, listening on 127.0.0.1 at `port` (commands) and `control` (libtss2's swtpm TCTI uses
    /// port + 1), started as a machine's firmware would (TPM2_Startup CLEAR), its errors in `log`.
    static func launch(_ swtpm: String, state: URL, port: Int, control: Int, log: String) throws -> ChildProcess {
        try ChildProcess(
            swtpm,
            [
                "socket", "--tpm2", "--tpmstate", "dir=\(state.path)",
                "--server", "type=tcp,port=\(port),bindaddr=127.0.0.1",
                "--ctrl", "type=tcp,port=\(control),bindaddr=127.0.0.1",
                "--flags", "not-need-init,startup-clear", "--log", "level=0",
            ],
            standardOutput: .null, standardError: .file(log))
    }

    /// Restarts the swtpm process on the same state and ports: the machine rebooted with its TPM (TPM2_Startup
    /// CLEAR at start: resetCount + 1, PCRs back to their initial values). Connections to the old process break.
    public func restart() throws {
        guard let swtpm = Self.which("swtpm") else { throw StartError(description: "swtpm is not installed") }
        lock.lock()
        defer { lock.unlock() }
        process.kill(SIGTERM)
        if process.wait(timeoutSeconds: 10) == nil {
            process.kill(SIGKILL)
            _ = process.wait(timeoutSeconds: 10)
        }
        let log = stateDirectory.appendingPathComponent("swtpm-restart-\(UUID().uuidString.prefix(4)).log").path
        for _ in 0..<50 {
            let next = try Self.launch(swtpm, state: stateDirectory, port: port, control: controlPort, log: log)
            if Self.waitForListener(port: port, process: next, seconds: 10) {
                process = next
                return
            }
            next.kill(SIGKILL)
            _ = next.wait(timeoutSeconds: 10)
            usleep(100_000)  // the old listener's port may still be closing
        }
        throw StartError(
            description:
                "swtpm did not restart on port \(port): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    /// Opens the ``TPM`` actor on this simulator.
    public func open() async throws -> TPM { try await TPM.open(tcti) }

    /// Stops swtpm and deletes its state. Safe to call twice.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        // The state is disposable: no need for swtpm's orderly shutdown, which waits for clients.
        process.kill(SIGKILL)
        _ = process.wait(timeoutSeconds: 30)
        try? FileManager.default.removeItem(at: stateDirectory)
    }

    /// Reboots the simulated machine: swtpm's CMD_INIT through its control channel resets the TPM
    /// (PCRs back to their initial values, resetCount + 1); the next ``open()`` issues TPM2_Startup.
    /// Open a new ``TPM`` afterwards: the old connection's sessions and objects are gone.
    public func reboot() throws {
        guard let ioctl = Self.which("swtpm_ioctl") else {
            throw StartError(description: "swtpm_ioctl is not installed (apt-get install swtpm)")
        }
        let result = try ProcessRunner.run(ioctl, ["--tcp", "127.0.0.1:\(controlPort)", "-i"])
        guard result.status == 0 else { throw StartError(description: "swtpm_ioctl -i failed: \(result.stderr)") }
    }

    deinit { stop() }

    /// Runs `body` with a fresh simulator and its TPM actor, stopping the simulator afterwards.
    public static func with<R: Sendable>(_ body: (TPM, SoftwareTPM) async throws -> R) async throws -> R {
        let simulator = try SoftwareTPM()
        defer { simulator.stop() }
        let tpm = try await simulator.open()
        return try await body(tpm, simulator)
    }

    // MARK: Sockets

    /// A port P such that P and P + 1 are free right now, chosen below the kernel's ephemeral range.
    ///
    /// The swtpm TCTI opens a TCP connection per command, so a test run leaves tens of thousands of client
    /// sockets in TIME_WAIT across the ephemeral range (31,636 seen with three runs at once); a listening port
    /// picked from that range then often finds P + 1 taken. Ports between 10000 and the range's start are
    /// never handed to clients. The check binds with SO_REUSEADDR, as swtpm does.
    public static func freePortPair() throws -> Int {
        let upper = ephemeralRangeStart() - 2
        if upper > 10_000 {
            for _ in 0..<256 {
                let p = Int.random(in: 10_000...upper)
                if canBind(p) && canBind(p + 1) { return p }
            }
        }
        for _ in 0..<64 {
            let p = try freePort()
            guard p < 65535 else { continue }
            if canBind(p + 1) { return p }
        }
        throw StartError(description: "no pair of free consecutive ports found")
    }

    /// The first port of `net.ipv4.ip_local_port_range` (32768 when it cannot be read).
    static func ephemeralRangeStart() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8),
            let first = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first,
            let start = Int(first)
        else { return 32768 }
        return start
    }

    static func canBind(_ port: Int) -> Bool {
        guard let fd = boundSocket(port: port) else { return false }
        close(fd)
        return true
    }

    /// Calls `bind` or `connect` (`call`) on `fd` with 127.0.0.1:`port`; returns the call's result.
    static func loopback(_ fd: Int32, port: Int, _ call: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32
    {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                call(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    /// A TCP socket bound to 127.0.0.1:`port`, or nil. The caller closes it.
    public static func boundSocket(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard loopback(fd, port: port, { bind($0, $1, $2) }) == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// A port the kernel considers free right now (bind to port 0, read it back, close).
    static func freePort() throws -> Int {
        guard let fd = boundSocket(port: 0) else { throw StartError(description: "bind: \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func waitForListener(port: Int, process: ChildProcess, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            guard process.isRunning else { return false }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let ok = loopback(fd, port: port) { connect($0, $1, $2) }
            close(fd)
            if ok == 0 { return true }
            usleep(20_000)
        }
        return false
    }
}
