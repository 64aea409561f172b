import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a system tool (`ip`, `nft`) by absolute path with a bounded output, and fails with its exit status and
/// standard error. Arguments are passed as a vector, never through a shell.
enum SystemTool {
    /// `tool`'s absolute path, looked up in the system directories only (not `PATH`).
    static func path(_ tool: String) -> String? {
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        where FileManager.default.isExecutableFile(atPath: dir + "/" + tool) {
            return dir + "/" + tool
        }
        return nil
    }

    /// Runs `argv` (argv[0] looked up with ``path(_:)``), writing `input` to its standard input; returns stdout.
    /// Killed after `timeout` seconds (a hung `ip` or `nft` must not hold the gate's closing for ever).
    @discardableResult
    static func run(_ argv: [String], input: String? = nil, timeout: Double = 30) throws -> String {
        guard let first = argv.first, let executable = path(first) else {
            throw NodeError("\(argv.first ?? "?"): not installed (looked in /usr/sbin, /sbin, /usr/bin, /bin)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(argv.dropFirst())
        let out = Pipe()
        let err = Pipe()
        let inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inPipe
        try process.run()
        let watchdog = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        defer { watchdog.cancel() }
        if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try? inPipe.fileHandleForWriting.close()
        // Standard error is drained on its own thread, so a tool that fills one pipe cannot block on it.
        let errors = Mutex(Data())
        let drained = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let data = err.fileHandleForReading.readDataToEndOfFile()
            errors.withLock { $0 = data }
            drained.signal()
        }
        let output = out.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        process.waitUntilExit()
        let errorText = errors.withLock { $0 }
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errorText.prefix(2048), as: UTF8.self).trimmingCharacters(
                in: .whitespacesAndNewlines)
            throw NodeError(
                "\(argv.joined(separator: " ").prefix(200)): exit \(process.terminationStatus): \(text)")
        }
        return String(decoding: output.prefix(1 << 20), as: UTF8.self)
    }
}
