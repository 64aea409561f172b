public import Foundation
public import ProcessSupport

/// A private swtpm, a temporary folder and the `vigil` binary pointed at that simulator: what the
/// end-to-end CLI tests share. ``close()`` stops the simulator and deletes the folder.
public final class VigilCLISession: @unchecked Sendable {
    // @unchecked Sendable: every property is set once in init and only read afterwards.
    public let simulator: SoftwareTPM
    public let directory: URL

    public init() throws {
        simulator = try SoftwareTPM()
        directory = try ProcessRunner.temporaryDirectory()
    }

    /// Runs `vigil args…` with `VIGIL_TCTI` set to the simulator.
    public func vigil(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        try ProcessRunner.run(
            ProcessRunner.vigilExecutable, arguments,
            environment: environment.merging(["VIGIL_TCTI": simulator.tctiString]) { $1 })
    }

    /// A path inside the session folder.
    public func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    public func close() {
        simulator.stop()
        try? FileManager.default.removeItem(at: directory)
    }
}
