public import Attest
public import AttestTPM
import Crypto
import Foundation

/// The TPM-resident key that opens a vault's escrow: ECC P-256, decrypt only (TPM2_ECDH_ZGen), created under the
/// SRK with fixedTPM and fixedParent, so its private part never leaves this TPM and its blob loads nowhere else.
/// It carries no PCR policy on purpose: it is what opens the vault when the PCRs changed, and the gate on it is the
/// controller's, which hands the escrow back only after a fresh passing attestation.
public struct EscrowKey: Codable, Sendable, Hashable {
    /// TPM2B_PRIVATE of the key (base64).
    public var privateArea: String
    /// TPMT_PUBLIC of the key (base64).
    public var publicArea: String
    /// The key's Name (hex): what an escrow names as its recipient.
    public var name: String

    /// The template: ECC P-256, decrypt, ECDH, noDA (a wrong guess is not possible: there is no auth to guess).
    public static let template = TPMTPublic(
        nameAlg: .sha256,
        objectAttributes: [.fixedTPM, .fixedParent, .sensitiveDataOrigin, .userWithAuth, .noDA, .decrypt],
        parameters: .ecc(
            .init(symmetric: .null, scheme: TPMTScheme(.ecdh, hashAlg: .sha256), curve: .nistP256, x: [], y: [])))

    /// Creates a new escrow key in the TPM (TPM2_Create under the SRK).
    public static func create(tpm: TPM) async throws(VaultError) -> EscrowKey {
        let blob: TPMKeyBlob
        do {
            blob = try await tpm.withPersistent(IdentityKeyTemplates.srkHandle) { tpm, srk throws(TPMError) in
                try tpm.create(parent: srk, template: template)
            }
        } catch { throw VaultError(reason: "vault: creating the escrow key failed: \(error.reason)", tpm: error) }
        let publicArea: TPMTPublic
        let name: TPMName
        do {
            publicArea = try TPMTPublic(tpmtPublicBytes: blob.publicArea)
            name = try publicArea.name()
        } catch { throw VaultError(reason: "vault: the TPM returned an escrow key that does not parse: \(error)") }
        return EscrowKey(
            privateArea: Data(blob.privateArea).base64EncodedString(),
            publicArea: Data(blob.publicArea).base64EncodedString(), name: Hex.encode(name.bytes))
    }

    /// The public point as a swift-crypto key (for sealing without the TPM).
    func agreementPublicKey() throws(VaultError) -> P256.KeyAgreement.PublicKey {
        guard let bytes = Data(base64Encoded: publicArea), let area = try? TPMTPublic(tpmtPublicBytes: Array(bytes)),
            case .ecc(let ecc) = area.parameters, ecc.curve == .nistP256, ecc.x.count <= 32, ecc.y.count <= 32,
            area.objectAttributes.contains(.decrypt), !area.objectAttributes.contains(.sign),
            (try? Hex.encode(area.name().bytes)) == name
        else {
            throw VaultError(
                reason: "vault: the escrow key's public area is not a P-256 decryption key named \(name.prefix(20))…")
        }
        let x = [UInt8](repeating: 0, count: 32 - ecc.x.count) + ecc.x
        let y = [UInt8](repeating: 0, count: 32 - ecc.y.count) + ecc.y
        guard let key = try? P256.KeyAgreement.PublicKey(rawRepresentation: x + y) else {
            throw VaultError(reason: "vault: the escrow key's public point is not on P-256")
        }
        return key
    }

    /// Z = d·Q for the peer's point, computed by the TPM (TPM2_ECDH_ZGen, Part 3 §14.5).
    func sharedSecret(tpm: TPM, peerX: [UInt8], peerY: [UInt8]) async throws(VaultError) -> SecretBytes {
        guard let priv = Data(base64Encoded: privateArea), let pub = Data(base64Encoded: publicArea) else {
            throw VaultError(reason: "vault: the escrow key's blob is not base64")
        }
        let blob = TPMKeyBlob(privateArea: Array(priv), publicArea: Array(pub))
        do {
            return try await tpm.withPersistent(IdentityKeyTemplates.srkHandle) { tpm, srk throws(TPMError) in
                try tpm.withLoaded(parent: srk, blob) { tpm, key throws(TPMError) in
                    // Salted by the SRK with parameter encryption: Z crosses the bus encrypted.
                    try tpm.withHMACSession(salt: srk) { tpm, session throws(TPMError) in
                        try tpm.ecdhZGen(key, peerX: peerX, peerY: peerY, session: session)
                    }
                }
            }
        } catch {
            throw VaultError(
                reason:
                    "vault: the TPM could not open the escrow (TPM2_ECDH_ZGen: \(error.reason)); was it made on another TPM?",
                tpm: error)
        }
    }
}
