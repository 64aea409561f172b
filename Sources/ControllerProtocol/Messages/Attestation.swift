public import Foundation

/// Attestation (`vigil device attest`): the device asks for a nonce (`POST /v1/attest/nonce`), quotes the PCRs
/// the controller names over it, and sends the evidence bundle (`POST /v1/attest`); both requests are signed
/// by the device key. The controller answers with the verdict and a signed attestation result.
public enum Attestation {
    /// The controller's answer to a nonce request.
    public struct NonceGrant: Codable, Sendable, Hashable {
        /// 32 random bytes, hex: single-use, bound to this device, expiring.
        public var nonce: String
        /// The PCRs the quote must cover, tpm2-tools syntax (`sha256:0,1,2+sha1:0`): what the device's policy judges.
        public var pcrSelection: String
        /// When the nonce expires.
        public var expiresAt: Date

        /// A grant.
        public init(nonce: String, pcrSelection: String, expiresAt: Date) {
            self.nonce = nonce
            self.pcrSelection = pcrSelection
            self.expiresAt = expiresAt
        }
    }

    /// The controller's answer to evidence that it could verify (whatever the verdict).
    public struct Outcome: Codable, Sendable, Hashable {
        /// The device.
        public var deviceID: DeviceID
        /// Whether the device's policy passed.
        public var pass: Bool
        /// The verdict (the `Policy` module's `Verdict` JSON), with every rule's outcome.
        public var verdict: String
        /// The signed attestation result (an EAR-style JWT, ES256), for relying parties to check offline.
        public var result: String
        /// Findings about the TPM's clock and counters since the last accepted quote (reboots, resets).
        public var findings: [String]

        /// An outcome.
        public init(deviceID: DeviceID, pass: Bool, verdict: String, result: String, findings: [String]) {
            self.deviceID = deviceID
            self.pass = pass
            self.verdict = verdict
            self.result = result
            self.findings = findings
        }

        enum CodingKeys: String, CodingKey {
            case deviceID = "deviceId", pass, verdict, result, findings
        }
    }
}

/// A vault escrow a device deposits at the controller (`POST /v1/escrow/{name}`): an AEAD blob under a key only
/// the device's TPM can reproduce, so the controller stores what it cannot read and only decides, by the
/// device's latest attestation, when to hand it back (through `POST /v1/secrets/{name}`).
public enum Escrow {
    /// Escrow names start with this, so a device's deposit can never replace a secret the security team put.
    public static let namePrefix = "escrow."

    /// The deposit.
    public struct Deposit: Codable, Sendable, Hashable {
        /// The escrow blob, base64 (at most ``SecretEnvelope/maximumSecretSize`` bytes).
        public var value: String
        /// The fields a request may carry.
        public static let knownKeys: Set<String> = ["value"]
        /// A deposit.
        public init(value: String) { self.value = value }
    }

    /// The controller's answer: the version stored.
    public struct Receipt: Codable, Sendable, Hashable {
        /// The secret's name.
        public var name: String
        /// Its version (each deposit makes a new one; earlier ones are kept).
        public var version: Int
        /// A receipt.
        public init(name: String, version: Int) {
            self.name = name
            self.version = version
        }
    }
}
