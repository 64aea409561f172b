public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a command-line tool (tpm2-tools, the `vigil` binary) printed and how it ended.
public struct ProcessResult: Sendable {
    /// The exit status, or 128 + the signal that ended the tool.
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

public struct ProcessRunnerError: Error, CustomStringConvertible {
    public let description: String
}

/// Runs command-line tools to completion with a deadline (``ChildProcess`` underneath: no Foundation `Process`).
public enum ProcessRunner {
    /// Runs `executable` (a path or a name in PATH) with `arguments` and the current environment plus
    /// `environment`, capturing both outputs. The tool is killed after `timeoutSeconds`; its status is then
    /// 128 + SIGKILL.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:],
        timeoutSeconds: Double = 120
    ) throws -> ProcessResult {
        var env = ChildProcess.currentEnvironment()
        env.merge(environment) { _, new in new }
        let child = try ChildProcess(
            executable, arguments, environment: env, standardOutput: .pipe, standardError: .pipe)
        var buffers: [Int32: [UInt8]] = [:]
        var open = [child.standardOutput, child.standardError].compactMap { $0 }
        let deadline = ChildProcess.now() + timeoutSeconds
        var killedAt: Double?
        var termination: ChildProcess.Termination?
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty || termination == nil {
            let now = ChildProcess.now()
            if termination == nil, killedAt == nil, now >= deadline {
                child.kill(SIGKILL)
                killedAt = now
            }
            // After the tool ended, a grandchild that inherited the pipes could hold them open for ever.
            if let killedAt, now - killedAt > 10 { break }
            if termination != nil, open.isEmpty { break }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            _ = Glibc.poll(&fds, nfds_t(fds.count), 20)
            for entry in fds where entry.revents != 0 {
                let n = chunk.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    buffers[entry.fd, default: []].append(contentsOf: chunk[0..<n])
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    open.removeAll { $0 == entry.fd }
                }
            }
            if termination == nil, let ended = child.poll() {
                termination = ended
                killedAt = killedAt ?? ChildProcess.now()  // from here, the pipes get 10 s to reach EOF
            }
        }
        guard let termination else {
            throw ProcessRunnerError(
                description: "\(executable) \(arguments.joined(separator: " ")): did not end after SIGKILL")
        }
        if !open.isEmpty {
            throw ProcessRunnerError(
                description:
                    "\(executable) \(arguments.joined(separator: " ")): its output pipes stayed open after it ended")
        }
        let status: Int32 =
            switch termination {
            case .exited(let code): code
            case .signaled(let signal): 128 + signal
            }
        return ProcessResult(
            status: status,
            stdout: String(decoding: child.standardOutput.flatMap { buffers[$0] } ?? [], as: UTF8.self),
            stderr: String(decoding: child.standardError.flatMap { buffers[$0] } ?? [], as: UTF8.self))
    }

    /// The `vigil` executable built next to the test bundle (.build/<config>/vigil).
    public static var vigilExecutable: String {
        let candidates = [
            Bundle.main.bundleURL.appendingPathComponent("vigil").path,
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("vigil").path,
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vigil")
                .path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    /// A fresh temporary directory, removed by the caller.
    public static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
