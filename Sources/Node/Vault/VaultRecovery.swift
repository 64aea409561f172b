import Attest
import AttestTPM
public import ControllerProtocol
import Foundation
public import Vault

/// The vault's side of the controller: depositing a vault's escrow, and recovering a vault whose PCRs no longer
/// match its sealing (`vigil vault recover`): attest with a fresh nonce; only on a pass does the controller hand the
/// escrow back (its secret release, wrapped to this TPM); the TPM opens it (TPM2_ECDH_ZGen); the key is checked
/// against the vault, resealed to the current PCRs and installed.
public enum VaultRecovery {
    /// A depositor that uploads through `agent` (device-signed `POST /v1/escrow/{name}`).
    public static func depositor(agent: DeviceAgent) async throws -> EscrowDepositor {
        let id = try await agent.deviceID()
        return EscrowDepositor(deviceID: id.rawValue) { name, blob in
            try await agent.depositEscrow(name: name, blob: blob)
        }
    }

    /// What a recovery did.
    public struct Outcome: Sendable {
        /// The attestation that allowed it.
        public var attestation: ControllerProtocol.Attestation.Outcome
        /// The vault's metadata after the reseal.
        public var metadata: VaultMetadata
    }

    /// Recovers `vault`: attests (sending `eventLog`), fetches the escrow on a pass, opens it with the TPM,
    /// reseals to the current PCRs and unlocks. Refused, with the failed rules, when the attestation fails.
    public static func recover(_ vault: some SealedVault, agent: DeviceAgent, eventLog: [UInt8]?) async throws
        -> Outcome
    {
        let metadata = try vault.read()
        guard let record = metadata.escrow else {
            throw VaultError(
                reason:
                    "vault: \(vault.location) has no escrow at a controller (create it with --controller, or run vigil vault escrow)"
            )
        }
        guard let name = SecretName(record.name) else {
            throw VaultError(reason: "vault: the recorded escrow name \(record.name.prefix(80)) is not valid")
        }
        let bootLog = try eventLog.map { bytes throws(AttestError) in try UnverifiedEventLog(bytes: bytes) }
        let attestation = try await agent.attest(eventLog: eventLog)
        guard attestation.pass else {
            throw VaultError(
                reason:
                    "vault: recovery refused: the attestation failed (\(attestation.findings.joined(separator: "; ")))\(Self.failedRules(attestation.verdict))"
            )
        }
        let secret = try await agent.fetchSecret(name)
        let escrow = try secret.withUnsafeBytes { raw throws(VaultError) in try VaultEscrow(json: raw) }
        let stored = try await vault.recover(
            tpm: agent.tpm, escrow: escrow, deviceID: try await agent.deviceID().rawValue, bootLog: bootLog)
        return Outcome(attestation: attestation, metadata: stored)
    }

    static func failedRules(_ verdictJSON: String) -> String {
        let lines = failedRuleList(verdictJSON)
        return lines.isEmpty ? "" : ": " + lines.joined(separator: "; ")
    }

    /// Each failed rule of a verdict (JSON), with its PCR, expected and found values and event.
    static func failedRuleList(_ verdictJSON: String) -> [String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(verdictJSON.utf8)) as? [String: Any],
            let results = object["results"] as? [[String: Any]]
        else { return [] }
        return results.compactMap { r in
            guard r["status"] as? String == "failed" else { return nil }
            var line = r["rule"] as? String ?? "?"
            if let pcr = r["pcr"] as? Int { line += " (PCR \(pcr))" }
            if let expected = r["expected"] as? String, let actual = r["actual"] as? String {
                line += ": expected \(expected.prefix(120)), found \(actual.prefix(120))"
            }
            if let event = r["event"] as? Int { line += " (event \(event))" }
            return line
        }
    }
}
