public import AttestTPM
public import ControllerProtocol
public import Foundation
import Synchronization

/// A plugin of the node agent: something of value (workloads, a network) that runs only while the gate is open,
/// that is, while the device's latest attestation passed, its vaults are unlocked and its secrets released.
///
/// The core calls ``start(_:)`` when the gate opens and ``stop(deadline:)`` when it closes (a failed or expired
/// verdict, a revocation, a TPM reset, shutdown). A plugin cannot start itself: the only way to get a
/// ``PluginContext``, and with it the secrets, vault paths and networks it declared, is to be started by the core.
///
/// ```swift
/// struct Heartbeat: NodePlugin {
///     let name = "heartbeat"
///     var requirements: PluginRequirements { PluginRequirements(secrets: [SecretName("api-token")!]) }
///     func start(_ context: PluginContext) async throws {
///         let token = context.secrets[SecretName("api-token")!]   // released to this TPM, for this gate only
///         …
///     }
///     func stop(deadline: Duration) async { … }
///     func state() async -> String { "running" }
/// }
/// ```
public protocol NodePlugin: Sendable {
    /// A short unique name (`workloads`, `network`).
    var name: String { get }
    /// What the plugin needs from the core.
    var requirements: PluginRequirements { get }
    /// The networks this plugin provides to later plugins (name → network namespace).
    var providedNetworks: [String: String] { get }
    /// Starts, with what the core hands over. Throwing closes the gate (every plugin is stopped).
    func start(_ context: PluginContext) async throws
    /// Stops: gracefully, then forcibly once `deadline` has passed. Must leave nothing running.
    func stop(deadline: Duration) async
    /// A one-line state for `vigil node status` (`running: 2 workloads`, `stopped`).
    func state() async -> String
}

extension NodePlugin {
    /// None, unless the plugin says otherwise.
    public var providedNetworks: [String: String] { [:] }
}

/// What a plugin declares it needs; the core hands over exactly this and nothing else.
public struct PluginRequirements: Sendable, Hashable {
    /// Vault paths that must be unlocked.
    public var vaults: [String]
    /// Secrets the controller must release to this device's TPM.
    public var secrets: [SecretName]
    /// Networks (by manifest name) another plugin must provide first.
    public var networks: [String]

    /// Requirements.
    public init(vaults: [String] = [], secrets: [SecretName] = [], networks: [String] = []) {
        self.vaults = vaults
        self.secrets = secrets
        self.networks = networks
    }
}

/// The gate a context was issued for: closed by the core when the gate closes, so a plugin (or anything it
/// handed the context to) can tell that its secrets and result are no longer current.
public final class GateTicket: Sendable {
    private let open = Mutex(true)
    init() {}
    /// Whether the gate this context was issued for is still open.
    public var isOpen: Bool { open.withLock { $0 } }
    func close() { open.withLock { $0 = false } }
}

/// What the core hands a plugin when the gate opens. Only the core builds one (the initialiser is internal).
public struct PluginContext: Sendable {
    /// The signed attestation result the gate was opened on (an EAR JWT, ES256), and its checked claims.
    public let attestation: GateAttestation
    /// The secrets the plugin declared, released by the controller to this TPM for this gate.
    public let secrets: [SecretName: SecretBytes]
    /// The unlocked vault paths the plugin declared.
    public let vaults: [String]
    /// The networks the plugin declared: manifest name → network namespace.
    public let networks: [String: String]
    /// The node's state directory (for the plugin's own runtime files).
    public let stateDirectory: String
    /// Whether this gate is still open.
    public let ticket: GateTicket
    /// Records what the plugin creates, so a run killed with SIGKILL is cleaned up on the next start.
    public let runtime: RuntimeRecord

    init(
        attestation: GateAttestation, secrets: [SecretName: SecretBytes], vaults: [String],
        networks: [String: String], stateDirectory: String, ticket: GateTicket, runtime: RuntimeRecord
    ) {
        self.attestation = attestation
        self.secrets = secrets
        self.vaults = vaults
        self.networks = networks
        self.stateDirectory = stateDirectory
        self.ticket = ticket
        self.runtime = runtime
    }
}

/// The passing attestation a gate is open on.
public struct GateAttestation: Sendable, Hashable {
    /// The signed result (JWT), verified by the node with the controller's result key.
    public var token: String
    /// The policy that passed the device, `name@version`.
    public var policy: String
    /// The nonce the quote answered (hex): the attestation's id.
    public var nonce: String
    /// When the result expires.
    public var expires: Date
    /// Until when the gate may stay open without reaching the controller (nil: it may not).
    public var offlineUntil: Date?
}
