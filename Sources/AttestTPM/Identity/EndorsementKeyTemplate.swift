public import Attest

/// The TCG EK Credential Profile for TPM 2.0 (version 2.5, Annex B) templates, their certificate NV
/// indices, and the persistent handles Vigil keeps the EKs at (TCG TPM v2.0 Provisioning Guidance §7.8).
///
/// The EK is the manufacturer-certified key of the **endorsement hierarchy**: recreating it from the
/// same template yields the same key, whose certificate the manufacturer wrote to NV. (EVE creates its
/// "EK" under the owner hierarchy, so it can never be chained to a vendor CA; Vigil does not.)
public enum EndorsementKeyTemplate: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    /// Template L-1: RSA 2048, AES-128-CFB, PolicyA (SHA-256). Certificate at NV 0x01C00002.
    case rsa2048
    /// Template L-2: ECC NIST P-256, AES-128-CFB, PolicyA (SHA-256). Certificate at NV 0x01C0000A.
    case eccNISTP256
    /// Template H-3: ECC NIST P-384, AES-256-CFB, PolicyB (SHA-384), userWithAuth. Certificate at NV 0x01C00016.
    case eccNISTP384

    public var description: String {
        switch self {
        case .rsa2048: "RSA-2048 (L-1)"
        case .eccNISTP256: "ECC NIST P-256 (L-2)"
        case .eccNISTP384: "ECC NIST P-384 (H-3)"
        }
    }

    /// PolicyA_SHA256 = PolicySecret(TPM_RH_ENDORSEMENT) — EK Credential Profile §B.6.
    static let policyASHA256 = Hex.decode("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa") ?? []
    /// PolicyB_SHA384 = PolicyOR(PolicyA, PolicyC) — EK Credential Profile §B.6.
    static let policyBSHA384 =
        Hex.decode("b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12")
        ?? []

    /// The EK template (TPMT_PUBLIC) for TPM2_CreatePrimary in the endorsement hierarchy.
    public var template: TPMTPublic {
        let low: TPMAObject = [.fixedTPM, .fixedParent, .sensitiveDataOrigin, .adminWithPolicy, .restricted, .decrypt]
        switch self {
        case .rsa2048:
            return TPMTPublic(
                nameAlg: .sha256, objectAttributes: low, authPolicy: Self.policyASHA256,
                parameters: .rsa(
                    .init(
                        symmetric: .aes128CFB, scheme: .null, keyBits: 2048, exponent: 0,
                        modulus: [UInt8](repeating: 0, count: 256))))
        case .eccNISTP256:
            return TPMTPublic(
                nameAlg: .sha256, objectAttributes: low, authPolicy: Self.policyASHA256,
                parameters: .ecc(
                    .init(
                        symmetric: .aes128CFB, scheme: .null, curve: .nistP256, kdf: .null,
                        x: [UInt8](repeating: 0, count: 32), y: [UInt8](repeating: 0, count: 32))))
        case .eccNISTP384:
            return TPMTPublic(
                nameAlg: .sha384, objectAttributes: low.union(.userWithAuth), authPolicy: Self.policyBSHA384,
                parameters: .ecc(
                    .init(symmetric: .aes256CFB, scheme: .null, curve: .nistP384, kdf: .null, x: [], y: [])))
        }
    }

    /// Where the manufacturer stores this EK's certificate (EK Credential Profile §2.2.1.4).
    public var certificateNVIndex: TPMHandle {
        switch self {
        case .rsa2048: TPMHandle(0x01C0_0002)
        case .eccNISTP256: TPMHandle(0x01C0_000A)
        case .eccNISTP384: TPMHandle(0x01C0_0016)
        }
    }

    /// Where Vigil keeps the EK persistent (0x81010001/0x81010002 per the Provisioning Guidance;
    /// 0x81010016 for P-384, where swtpm_setup puts it).
    public var persistentHandle: TPMHandle {
        switch self {
        case .rsa2048: TPMHandle(0x8101_0001)
        case .eccNISTP256: TPMHandle(0x8101_0002)
        case .eccNISTP384: TPMHandle(0x8101_0016)
        }
    }

    /// Where a manufacturer may store an EK nonce and a replacement template for this EK (EK Credential
    /// Profile §2.2.1.4–5): RSA 0x01C00003/0x01C00004, ECC P-256 0x01C0000B/0x01C0000C. High-range EKs have none.
    public var nonceNVIndex: TPMHandle? {
        switch self {
        case .rsa2048: TPMHandle(0x01C0_0003)
        case .eccNISTP256: TPMHandle(0x01C0_000B)
        case .eccNISTP384: nil
        }
    }

    public var templateNVIndex: TPMHandle? {
        switch self {
        case .rsa2048: TPMHandle(0x01C0_0004)
        case .eccNISTP256: TPMHandle(0x01C0_000C)
        case .eccNISTP384: nil
        }
    }

    /// The template with a manufacturer's EK nonce applied (§2.2.1.5.1): the nonce fills the first bytes of
    /// the RSA modulus or of the ECC x coordinate, the rest stays zero.
    public func template(nonce: [UInt8]) -> TPMTPublic {
        var t = template
        switch t.parameters {
        case .rsa(var p):
            let n = min(nonce.count, p.modulus.count)
            p.modulus.replaceSubrange(0..<n, with: nonce.prefix(n))
            t.parameters = .rsa(p)
        case .ecc(var p):
            let n = min(nonce.count, p.x.count)
            p.x.replaceSubrange(0..<n, with: nonce.prefix(n))
            t.parameters = .ecc(p)
        default: break
        }
        return t
    }

    /// The template this TPM's manufacturer asks for: an NV template replaces the default, an NV nonce is
    /// applied to it, else the default (what `vigil tpm provision` derives the EK from).
    public func effectiveTemplate(_ tpm: TPM) async throws(TPMError) -> TPMTPublic {
        if let index = templateNVIndex, let bytes = try await Self.readOptional(tpm, index) {
            do { return try TPMTPublic(tpmtPublicBytes: bytes) } catch {
                throw TPMError(
                    code: .invalidResponse, reason: "EK template at NV \(index) is not a TPMT_PUBLIC: \(error)")
            }
        }
        if let index = nonceNVIndex, let nonce = try await Self.readOptional(tpm, index) {
            return template(nonce: nonce)
        }
        return template
    }

    static func readOptional(_ tpm: TPM, _ index: TPMHandle) async throws(TPMError) -> [UInt8]? {
        guard let pub = try await tpm.nvReadPublic(index), pub.attributes.contains(.written) else { return nil }
        let authorization: NVAuthorization = pub.attributes.contains(.ownerRead) ? .owner : .index(nil)
        return try await tpm.nvRead(index, size: Int(pub.dataSize), authorization: authorization)
    }

    /// Low-range EKs are always provisioned; high-range ones only when the manufacturer wrote a certificate.
    public var isLowRange: Bool { self != .eccNISTP384 }

    /// Whether `publicArea` has this template's shape: every field but the unique (key) field must match.
    public func matchesTemplate(_ publicArea: TPMTPublic) -> Bool {
        sameShape(publicArea, template)
    }
}

/// True when two public areas agree on everything but the key material (the `unique` field).
func sameShape(_ a: TPMTPublic, _ b: TPMTPublic) -> Bool {
    guard a.nameAlg == b.nameAlg, a.objectAttributes == b.objectAttributes, a.authPolicy == b.authPolicy else {
        return false
    }
    switch (a.parameters, b.parameters) {
    case (.rsa(let x), .rsa(let y)):
        return x.symmetric == y.symmetric && x.scheme == y.scheme && x.keyBits == y.keyBits
            && x.effectiveExponent == y.effectiveExponent
    case (.ecc(let x), .ecc(let y)):
        return x.symmetric == y.symmetric && x.scheme == y.scheme && x.curve == y.curve && x.kdf == y.kdf
    case (.keyedHash(let x, _), .keyedHash(let y, _)):
        return x == y
    case (.symCipher(let x, _), .symCipher(let y, _)):
        return x == y
    default:
        return false
    }
}
