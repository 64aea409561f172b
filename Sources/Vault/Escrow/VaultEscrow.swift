import Attest
public import AttestTPM
import Crypto
import Foundation

/// A vault key in escrow: AES-256-GCM under a key that only this device's TPM can reproduce, deposited at the
/// controller, which stores it without being able to read it and hands it back only after a fresh passing
/// attestation (its secret release). This is what opens a vault whose PCRs no longer match the sealing.
///
/// The key agreement is ECIES-like with the TPM as the holder of the static key (TPM 2.0 Part 3 §14.5
/// TPM2_ECDH_ZGen): at escrow time Vigil draws an ephemeral P-256 key in software, computes Z with the TPM-resident
/// ``EscrowKey``'s public point and forgets the ephemeral private key; to open, the TPM computes the same Z from
/// the ephemeral public point. Z goes through HKDF-SHA256 (info: a context, the ephemeral point and the escrow
/// key's Name), never used as a key directly. The additional data binds the format version, the device, the vault
/// and the escrow key's Name, so an escrow cannot be passed off as another device's or another vault's.
public struct VaultEscrow: Codable, Sendable, Hashable {
    /// The escrow format.
    public static let currentFormat = 1
    /// The largest escrow document accepted (parsing is size-capped before decoding).
    public static let maximumSize = 16 * 1024

    /// ``currentFormat``.
    public var format: Int
    /// The device's id (`vd-…`), bound in the additional data.
    public var deviceID: String
    /// The vault's id, bound in the additional data.
    public var vaultID: String
    /// The TPM escrow key's Name (hex): which TPM key opens it.
    public var escrowKeyName: String
    /// The ephemeral public point, x ‖ y (hex, 64 bytes).
    public var ephemeral: String
    /// AES-256-GCM nonce ‖ ciphertext ‖ tag (base64).
    public var sealed: String
    /// The sealing policy at escrow time (authenticated in the additional data): a recovery reseals to this, never
    /// to what the metadata on the device says, which whoever holds the disk can edit.
    public var policy: SealingPolicy

    /// The parameters of a sealing that decide who can unseal: the PCRs, and the approval authority if any.
    public struct SealingPolicy: Codable, Sendable, Hashable {
        /// The sealed (or approval-pinned) SHA-256 PCRs.
        public var pcrs: [Int]
        /// The approval authority, for a vault sealed to approvals.
        public var authorization: AuthorizedSealing?

        /// The canonical bytes bound in the additional data.
        func canonical() -> [UInt8] {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return (try? Array(encoder.encode(self))) ?? []
        }
    }

    enum CodingKeys: String, CodingKey {
        case format, deviceID = "deviceId", vaultID = "vaultId", escrowKeyName, ephemeral, sealed, policy
    }

    /// The additional data: a context and each bound field, NUL-separated, then the policy's canonical JSON.
    static func additionalData(
        format: Int, deviceID: String, vaultID: String, escrowKeyName: String, policy: SealingPolicy
    ) -> [UInt8] {
        Array(
            ["vigil-vault-escrow", String(format), deviceID, vaultID, escrowKeyName].joined(separator: "\u{0}").utf8)
            + [0] + policy.canonical()
    }

    static func aeadKey(z: UnsafeRawBufferPointer, ephemeral: [UInt8], escrowKeyName: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: z),
            info: Array("vigil-vault-escrow-key-v1\u{0}".utf8) + ephemeral + Array(escrowKeyName.utf8),
            outputByteCount: 32)
    }

    /// Escrows `key` to `escrowKey`'s public point (no TPM command: anyone could, only the TPM can open it).
    public static func seal(
        _ key: SecretBytes, to escrowKey: EscrowKey, deviceID: String, vaultID: String, policy: SealingPolicy
    ) throws(VaultError) -> VaultEscrow {
        let recipient: P256.KeyAgreement.PublicKey
        do { recipient = try escrowKey.agreementPublicKey() } catch { throw error }
        let ephemeralKey = P256.KeyAgreement.PrivateKey()
        let ephemeral = Array(ephemeralKey.publicKey.rawRepresentation)
        let name = escrowKey.name
        do {
            let shared = try ephemeralKey.sharedSecretFromKeyAgreement(with: recipient)
            let aead = shared.withUnsafeBytes { aeadKey(z: $0, ephemeral: ephemeral, escrowKeyName: name) }
            let box = try key.withUnsafeBytes { plaintext in
                try AES.GCM.seal(
                    plaintext, using: aead,
                    authenticating: additionalData(
                        format: currentFormat, deviceID: deviceID, vaultID: vaultID, escrowKeyName: name,
                        policy: policy))
            }
            guard let combined = box.combined else { throw VaultError(reason: "vault: AES-GCM gave no output") }
            return VaultEscrow(
                format: currentFormat, deviceID: deviceID, vaultID: vaultID, escrowKeyName: name,
                ephemeral: Hex.encode(ephemeral), sealed: combined.base64EncodedString(), policy: policy)
        } catch let e as VaultError {
            throw e
        } catch {
            throw VaultError(reason: "vault: escrow sealing failed: \(error)")
        }
    }

    /// Opens the escrow with the TPM (TPM2_ECDH_ZGen with ``EscrowKey``), checking that it is for this device and
    /// vault. Refused, naming the field, when it was made for another device, vault or TPM key, or was altered.
    public func open(tpm: TPM, escrowKey: EscrowKey, deviceID expectedDevice: String, vaultID expectedVault: String)
        async throws(VaultError) -> SecretBytes
    {
        guard format == Self.currentFormat else {
            throw VaultError(reason: "vault: escrow format \(format) is not \(Self.currentFormat)")
        }
        guard deviceID == expectedDevice else {
            throw VaultError(reason: "vault: the escrow is for device \(deviceID.prefix(40)), not \(expectedDevice)")
        }
        guard vaultID == expectedVault else {
            throw VaultError(reason: "vault: the escrow is for vault \(vaultID.prefix(40)), not \(expectedVault)")
        }
        guard escrowKeyName == escrowKey.name else {
            throw VaultError(
                reason: "vault: the escrow is sealed to another TPM escrow key (\(escrowKeyName.prefix(20))…)")
        }
        guard let point = Hex.decode(ephemeral), point.count == 64,
            (try? P256.KeyAgreement.PublicKey(rawRepresentation: point)) != nil
        else { throw VaultError(reason: "vault: the escrow's ephemeral point is not a P-256 point") }
        guard let combined = Data(base64Encoded: sealed), combined.count >= 12 + 16,
            let box = try? AES.GCM.SealedBox(combined: combined)
        else { throw VaultError(reason: "vault: the escrow's sealed field is not AES-GCM nonce ‖ ciphertext ‖ tag") }
        let z = try await escrowKey.sharedSecret(tpm: tpm, peerX: Array(point[0..<32]), peerY: Array(point[32...]))
        let aead = z.withUnsafeBytes { Self.aeadKey(z: $0, ephemeral: point, escrowKeyName: escrowKeyName) }
        guard
            var plain = try? AES.GCM.open(
                box, using: aead,
                authenticating: Self.additionalData(
                    format: format, deviceID: deviceID, vaultID: vaultID, escrowKeyName: escrowKeyName,
                    policy: policy))
        else {
            throw VaultError(
                reason:
                    "vault: the escrow does not open: altered, or its device, vault, key or policy fields were changed")
        }
        defer { plain.resetBytes(in: 0..<plain.count) }
        return plain.withUnsafeBytes { SecretBytes(copying: $0) }
    }

    /// The escrow as JSON bytes (what is deposited at the controller).
    public func json() throws(VaultError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { return Array(try encoder.encode(self)) } catch {
            throw VaultError(reason: "vault: cannot encode the escrow: \(error)")
        }
    }

    /// Parses an escrow document (untrusted: it came back from the controller), size-capped.
    public init(json bytes: some Collection<UInt8>) throws(VaultError) {
        guard bytes.count <= Self.maximumSize else {
            throw VaultError(reason: "vault: escrow document of \(bytes.count) bytes exceeds \(Self.maximumSize)")
        }
        do { self = try JSONDecoder().decode(VaultEscrow.self, from: Data(bytes)) } catch {
            throw VaultError(reason: "vault: the escrow document is not valid: \(error)")
        }
    }

    init(
        format: Int, deviceID: String, vaultID: String, escrowKeyName: String, ephemeral: String, sealed: String,
        policy: SealingPolicy
    ) {
        self.policy = policy
        self.format = format
        self.deviceID = deviceID
        self.vaultID = vaultID
        self.escrowKeyName = escrowKeyName
        self.ephemeral = ephemeral
        self.sealed = sealed
    }
}
