public import Foundation

/// What a node agent (`vigil node run`) tells the controller about itself (`POST /v1/node/report`, signed by the
/// device key), and what it hears back. The report is the device's own account, shown next to the controller's
/// verdicts on the device record; the controller never decides anything from it. The answer carries what the
/// controller knows: a revoked device is refused (403 `device_revoked`), which closes the node's gate.
public enum NodeReport {
    /// The largest report body.
    public static let maximumBody = 16 * 1024

    /// The node's state.
    public struct State: Codable, Sendable, Hashable {
        /// The agent's phase (`attesting`, `open`, `closed`, …).
        public var phase: String
        /// Whether the gate is open (plugins running on a passing attestation).
        public var gateOpen: Bool
        /// Why the gate is what it is (the failed rules, the unreachable controller, …).
        public var reason: String
        /// Each plugin's state, by name (`running`, `stopped`, `failed: …`).
        public var plugins: [String: String]
        /// When the node will next attest.
        public var nextAttestation: Date?
        /// The attestation id (the result's nonce) the gate was opened on.
        public var attestation: String?
        /// The fields a report may carry.
        public static let knownKeys: Set<String> = [
            "phase", "gate_open", "reason", "plugins", "next_attestation", "attestation",
        ]

        /// A report.
        public init(
            phase: String, gateOpen: Bool, reason: String, plugins: [String: String], nextAttestation: Date?,
            attestation: String?
        ) {
            self.phase = phase
            self.gateOpen = gateOpen
            self.reason = reason
            self.plugins = plugins
            self.nextAttestation = nextAttestation
            self.attestation = attestation
        }

        /// The phases a node reports (``phase`` must be one).
        public static let phases: Set<String> = [
            "recovering", "connecting", "attesting", "unlocking", "releasing", "starting", "open", "closing", "waiting",
            "stopped",
        ]

        /// Refuses what does not fit on a device record (long strings, many plugins), an unknown phase, and
        /// control characters (which would reach an operator's terminal as escape sequences).
        public func validate() throws(ControllerProtocolError) {
            guard Self.phases.contains(phase) else {
                throw ControllerProtocolError(
                    .invalid, "node report: unknown phase \(phase.prefix(32).debugDescription)")
            }
            let texts = [reason, attestation ?? ""] + plugins.keys + plugins.values
            guard
                texts.allSatisfy({
                    $0.unicodeScalars.allSatisfy {
                        $0.value >= 0x20 && $0.value != 0x7F && !(0x80...0x9F).contains($0.value)
                    }
                })
            else {
                throw ControllerProtocolError(.invalid, "node report: a field contains control characters")
            }
            guard phase.utf8.count <= 32, reason.utf8.count <= 2048, plugins.count <= 32,
                plugins.allSatisfy({ $0.key.utf8.count <= 64 && $0.value.utf8.count <= 512 }),
                (attestation?.utf8.count ?? 0) <= 128
            else {
                throw ControllerProtocolError(
                    .tooLarge, "node report: a field is too long (phase ≤ 32, reason ≤ 2048 bytes, ≤ 32 plugins)")
            }
        }
    }

    /// The controller's answer.
    public struct Directive: Codable, Sendable, Hashable {
        /// The device's status at the controller (`active`; a revoked device gets 403 instead).
        public var status: String
        /// Whether the device's latest attestation at the controller is a pass that has not expired. False tells
        /// the node that the controller no longer stands behind its gate (a verdict it did not see, an expiry).
        public var latestPass: Bool
        /// When that result expires.
        public var latestExpires: Date?
        /// A directive.
        public init(status: String, latestPass: Bool, latestExpires: Date?) {
            self.status = status
            self.latestPass = latestPass
            self.latestExpires = latestExpires
        }
    }
}
