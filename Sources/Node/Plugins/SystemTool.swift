import Foundation

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
    @discardableResult
    static func run(_ argv: [String], input: String? = nil) throws -> String {
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
        if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try? inPipe.fileHandleForWriting.close()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.prefix(2048), as: UTF8.self).trimmingCharacters(
                in: .whitespacesAndNewlines)
            throw NodeError(
                "\(argv.joined(separator: " ").prefix(200)): exit \(process.terminationStatus): \(text)")
        }
        return String(decoding: output.prefix(1 << 20), as: UTF8.self)
    }
}
