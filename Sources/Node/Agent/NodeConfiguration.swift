public import AttestTPM
import Foundation

/// How `vigil node run` runs.
public struct NodeConfiguration: Sendable {
    /// The controller's URL (`https://HOST:PORT`).
    public var controllerURL: String
    /// The controller's CA (PEM): the only CA trusted.
    public var caPEM: String
    /// Where the TPM is.
    public var tcti: TCTIConfiguration
    /// The node's state directory (status, runtime record, pinned result key, workload logs): 0700.
    public var stateDirectory: String
    /// The event log sent with every quote (default: the kernel's).
    public var eventLogPath: String?
    /// An enrollment token for the first onboarding.
    public var enrollToken: String?
    /// Vaults to unlock when the gate opens and lock when it closes.
    public var vaults: [String]
    /// Seconds between re-attestations.
    public var interval: Double = 300
    /// Fraction of the interval taken off at random (0…0.5), so a fleet does not attest in lockstep.
    public var jitter: Double = 0.1
    /// Seconds between watches (TPM counters, result expiry, the controller's view and revocation).
    public var watchInterval: Double = 2
    /// The first backoff after a failure, seconds (doubles each time, with jitter).
    public var backoffBase: Double = 1
    /// The longest backoff, seconds.
    public var backoffMax: Double = 60
    /// Seconds a request to the controller may go unanswered before it counts as unreachable.
    public var requestTimeout: Double = 15
    /// How long plugins get to stop before they are killed.
    public var stopDeadline: Duration = .seconds(10)

    /// A configuration.
    public init(
        controllerURL: String, caPEM: String, tcti: TCTIConfiguration, stateDirectory: String, eventLogPath: String?,
        enrollToken: String?, vaults: [String]
    ) {
        self.controllerURL = controllerURL
        self.caPEM = caPEM
        self.tcti = tcti
        self.stateDirectory = stateDirectory
        self.eventLogPath = eventLogPath
        self.enrollToken = enrollToken
        self.vaults = vaults
    }

    /// The delay for `delay`, with jitter from `random` (0..<1).
    public func seconds(for delay: NodeStateMachine.Delay, random: Double) -> Double {
        switch delay {
        case .now: return 0
        case .interval: return interval * (1 - min(max(jitter, 0), 0.5) * random)
        case .backoff(let attempt):
            let exponent = Double(max(0, min(attempt - 1, 30)))
            return min(backoffMax, backoffBase * pow(2, exponent)) * (0.5 + 0.5 * random)
        }
    }
}
