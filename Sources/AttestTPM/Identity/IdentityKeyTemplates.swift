public import Attest

/// Vigil's own identity keys: where they live and the templates they are made from.
///
/// | object | handle | made by |
/// |---|---|---|
/// | EK RSA-2048 / ECC P-256 / ECC P-384 | 0x81010001 / 0x81010002 / 0x81010016 | CreatePrimary(endorsement, EK template) |
/// | SRK (ECC P-256) | 0x81000001 | CreatePrimary(owner, TCG SRK template) |
/// | attestation key (AK) | 0x81000100 | CreatePrimary(endorsement): restricted signing, fixedTPM |
/// | device identity key | 0x81000101 | Create under the SRK: unrestricted signing, fixedTPM |
/// | device certificate (DER) | NV 0x01800100 | X.509, signed inside the TPM by the device key |
public enum IdentityKeyTemplates {
    /// Storage root key handle (TCG Provisioning Guidance §7.5).
    public static let srkHandle = TPMHandle(0x8100_0001)
    /// Attestation key handle (Vigil, owner range).
    public static let akHandle = TPMHandle(0x8100_0100)
    /// Device identity key handle (Vigil, owner range).
    public static let deviceKeyHandle = TPMHandle(0x8100_0101)
    /// Device certificate NV index (Vigil, owner range 0x01800000–0x01BFFFFF).
    public static let deviceCertificateIndex = TPMHandle(0x0180_0100)

    /// The TCG "SRK" template for ECC P-256 (Provisioning Guidance §7.5.1; what tpm2-tools and systemd use).
    public static let srk = TPMTPublic(
        nameAlg: .sha256,
        objectAttributes: [.fixedTPM, .fixedParent, .sensitiveDataOrigin, .userWithAuth, .noDA, .restricted, .decrypt],
        parameters: .ecc(
            .init(
                symmetric: .aes128CFB, scheme: .null, curve: .nistP256, kdf: .null,
                x: [UInt8](repeating: 0, count: 32), y: [UInt8](repeating: 0, count: 32))))

    /// Attestation key algorithms.
    public enum AKAlgorithm: String, Sendable, CaseIterable, Codable {
        case eccP256 = "ecc"
        case rsa2048 = "rsa"
    }

    /// A restricted signing key: it signs only TPM-generated structures (quotes, certify), never an
    /// arbitrary digest that could imitate one. fixedTPM|fixedParent|sensitiveDataOrigin: it cannot leave
    /// the TPM and was generated inside it.
    ///
    /// The AK is a primary key of the **endorsement** hierarchy: a TPM obfuscates resetCount,
    /// restartCount and firmwareVersion in quotes signed by keys of the owner hierarchy (TPM 2.0 Part 1
    /// §36.7), and the verifier needs them in the clear to detect reboots and firmware changes.
    public static func attestationKey(_ algorithm: AKAlgorithm) -> TPMTPublic {
        let attributes: TPMAObject = [
            .fixedTPM, .fixedParent, .sensitiveDataOrigin, .userWithAuth, .noDA, .restricted, .sign,
        ]
        switch algorithm {
        case .eccP256:
            return TPMTPublic(
                nameAlg: .sha256, objectAttributes: attributes,
                parameters: .ecc(
                    .init(
                        symmetric: .null, scheme: TPMTScheme(.ecdsa, hashAlg: .sha256),
                        curve: .nistP256, kdf: .null, x: [], y: [])))
        case .rsa2048:
            return TPMTPublic(
                nameAlg: .sha256, objectAttributes: attributes,
                parameters: .rsa(
                    .init(
                        symmetric: .null, scheme: TPMTScheme(.rsassa, hashAlg: .sha256),
                        keyBits: 2048, exponent: 0, modulus: [])))
        }
    }

    /// The device identity key: ECC P-256, generated in and bound to this TPM, unrestricted so it can sign
    /// its own X.509 certificate and TLS handshakes with the controller.
    public static let deviceKey = TPMTPublic(
        nameAlg: .sha256,
        objectAttributes: [.fixedTPM, .fixedParent, .sensitiveDataOrigin, .userWithAuth, .noDA, .sign],
        parameters: .ecc(
            .init(
                symmetric: .null, scheme: TPMTScheme(.ecdsa, hashAlg: .sha256),
                curve: .nistP256, kdf: .null, x: [], y: [])))

    /// Whether `publicArea` has the shape of an AK of any supported algorithm.
    public static func isAttestationKey(_ publicArea: TPMTPublic) -> AKAlgorithm? {
        AKAlgorithm.allCases.first { sameShape(publicArea, attestationKey($0)) }
    }
}
