public import Foundation
import SystemSupport

/// What `vigil node status` shows: the agent writes it (write, fsync, rename) at every change of phase and at
/// every watch, in `<state-dir>/status.json`.
public struct NodeStatus: Codable, Sendable {
    /// The agent's process id.
    public var pid: Int32
    /// The device.
    public var deviceID: String?
    /// The phase (``NodeStateMachine/Phase``).
    public var phase: String
    /// Whether the gate is open.
    public var gateOpen: Bool
    /// Why the gate is as it is.
    public var reason: String
    /// When the status was written.
    public var updatedAt: Date
    /// The last verdict.
    public var lastVerdict: Verdict?
    /// When the next attestation is due.
    public var nextAttestation: Date?
    /// Each plugin's state.
    public var plugins: [String: String]
    /// How long opening took on this run.
    public var timings: Timings
    /// What the start-up recovery undid.
    public var recovered: [String]

    enum CodingKeys: String, CodingKey {
        case pid, deviceID = "deviceId", phase, gateOpen, reason, updatedAt, lastVerdict, nextAttestation, plugins
        case timings, recovered
    }

    /// A verdict as the node saw it.
    public struct Verdict: Codable, Sendable {
        /// Pass or fail.
        public var pass: Bool
        /// The policy (`name@version`), when known.
        public var policy: String?
        /// The failed rules, or the refusal.
        public var failures: [String]
        /// When.
        public var at: Date
        /// When the result expires (a pass).
        public var expires: Date?
    }

    /// Timings of this run.
    public struct Timings: Codable, Sendable {
        /// When `vigil node run` started.
        public var startedAt: Date
        /// From start to the gate's first opening, milliseconds.
        public var startToGateMs: Double?
        /// From start to the first workload process spawned, milliseconds.
        public var startToFirstWorkloadMs: Double?
        /// TPM commands sent from start to the gate's first opening.
        public var tpmCommandsToGate: Int?
        /// From the last failed re-attestation to every plugin stopped and the vaults locked, milliseconds.
        public var lastCloseMs: Double?
    }

    /// The status file in `stateDirectory`.
    public static func path(_ stateDirectory: String) -> String { stateDirectory + "/status.json" }

    /// Reads it (size-capped).
    public static func read(stateDirectory: String) throws(NodeError) -> NodeStatus {
        let path = path(stateDirectory)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NodeError("no node status at \(path): has `vigil node run --state-dir \(stateDirectory)` run?")
        }
        do { return try decode(Array(data)) } catch { throw NodeError("\(path): \(error)") }
    }

    /// Decodes a status file's bytes (at most 1 MiB).
    public static func decode(_ bytes: [UInt8]) throws(NodeError) -> NodeStatus {
        guard bytes.count <= 1 << 20 else { throw NodeError("a node status is at most 1 MiB") }
        do { return try decoder.decode(NodeStatus.self, from: Data(bytes)) } catch {
            throw NodeError("not a node status: \(error)")
        }
    }

    func write(stateDirectory: String) throws {
        try AtomicFile.write(Array(try Self.encoder.encode(self)), to: URL(fileURLWithPath: Self.path(stateDirectory)))
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }()
    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        d.dateDecodingStrategy = .iso8601
        return d
    }()
}
