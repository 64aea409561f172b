import Crypto
public import Foundation
import _CryptoExtras

/// An attestation key's public part, prepared once for verifying many signatures (go-attestation's
/// `AKPublic`): the swift-crypto key is built and validated at init, not per signature.
///
/// Only a key the TPM itself generated and keeps is an attestation key (TPM 2.0 Part 2 §8.3, TPMA_OBJECT;
/// Part 1 §25.2 "Attestation keys"): `restricted` and `sign` (it signs only TPM-generated structures, so it
/// cannot sign a forged TPMS_ATTEST), not `decrypt`, and `fixedTPM`, `fixedParent`, `sensitiveDataOrigin`
/// (it was created in this TPM and can never leave it). A key without them is refused at init, whatever signs with it.
public struct AKPublic: Sendable {
    /// TPMT_PUBLIC of the key (for a bare PEM key, one rebuilt from the key alone).
    public let publicArea: TPMTPublic
    /// The key's Name (`nameAlg || H(TPMT_PUBLIC)`, Part 1 §16): what credential activation binds. Nil for a
    /// bare public key (``init(bareSigningKeyPEM:)``), whose TPM public area is unknown.
    public let name: TPMName?
    /// The signing scheme the TPM enforces for this key (`.null` when the caller chooses per quote).
    public let scheme: TPMTScheme
    let key: PreparedKey

    /// The attributes every attestation key must have, and the one it must not.
    public static let requiredAttributes: TPMAObject = [
        .restricted, .sign, .fixedTPM, .fixedParent, .sensitiveDataOrigin,
    ]

    enum PreparedKey: Sendable {
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case p521(P521.Signing.PublicKey)
        case rsa(_RSA.Signing.PublicKey)
    }

    /// Prepares an attestation key from its TPM public area. Throws unless it has ``requiredAttributes`` and not
    /// `decrypt`, is an RSA or ECC key, and swift-crypto accepts the public key.
    public init(_ publicArea: TPMTPublic) throws(AttestError) {
        self.publicArea = publicArea
        let missing = Self.requiredAttributes.subtracting(publicArea.objectAttributes)
        guard missing.isEmpty else {
            throw AttestError(
                code: .akAttributes,
                reason:
                    "AK: not a TPM-resident attestation key: objectAttributes lack \(missing) (have \(publicArea.objectAttributes))"
            )
        }
        guard !publicArea.objectAttributes.contains(.decrypt) else {
            throw AttestError(
                code: .akAttributes,
                reason: "AK: a restricted decryption key (decrypt is set): a storage key, not an attestation key")
        }
        switch publicArea.parameters {
        case .ecc(let p): scheme = p.scheme
        case .rsa(let p): scheme = p.scheme
        default: throw AttestError(code: .unsupportedStructure, reason: "AK: a \(publicArea.type) object cannot sign")
        }
        name = try publicArea.name()
        key = try Self.prepare(publicArea)
    }

    /// A bare public key (SubjectPublicKeyInfo PEM, as `tpm2_checkquote -u` takes it): the signature can be
    /// checked, but not the key's TPM attributes, scheme or Name, so nothing says it is a TPM's key.
    /// Evidence bundles carry the TPM2B_PUBLIC and never use this.
    public init(bareSigningKeyPEM pem: String) throws(AttestError) {
        publicArea = try TPMTPublic(signingKeyPEM: pem)
        name = nil
        scheme = TPMTScheme(.null)
        key = try Self.prepare(publicArea)
    }

    /// Any TPM signing key, for checking TPM2_Sign results (never quotes): attributes, scheme and Name are not
    /// checked, as for a bare public key.
    public init(signingKey publicArea: TPMTPublic) throws(AttestError) {
        self.publicArea = publicArea
        name = nil
        scheme = TPMTScheme(.null)
        key = try Self.prepare(publicArea)
    }

    /// Whether the TPM attributes and Name were checked (false for a bare public key).
    public var isTPMPublicArea: Bool { name != nil }

    private static func prepare(_ publicArea: TPMTPublic) throws(AttestError) -> PreparedKey {
        let key: PreparedKey
        do {
            switch publicArea.parameters {
            case .ecc(let p):
                let point = [0x04] + p.x + p.y
                switch p.curve {
                case .nistP256: key = .p256(try P256.Signing.PublicKey(x963Representation: point))
                case .nistP384: key = .p384(try P384.Signing.PublicKey(x963Representation: point))
                case .nistP521: key = .p521(try P521.Signing.PublicKey(x963Representation: point))
                default: throw AttestError(code: .unknownAlgorithm, reason: "AK: ECC curve \(p.curve) is not supported")
                }
            case .rsa(let p):
                var e = ByteWriter()
                e.append(p.effectiveExponent)
                key = .rsa(try _RSA.Signing.PublicKey(n: p.modulus, e: Array(e.bytes.drop { $0 == 0 })))
            default:
                throw AttestError(code: .unsupportedStructure, reason: "AK: a \(publicArea.type) object cannot sign")
            }
        } catch let error as AttestError {
            throw error
        } catch {
            throw AttestError(code: .cryptography, reason: "AK: the public key is not valid: \(error)")
        }
        return key
    }

    /// Checks that a signature uses the scheme and hash the key is bound to (TPMS_RSA_PARMS/TPMS_ECC_PARMS.scheme,
    /// Part 2 §12.2.3.5); for a key without a scheme (`TPM_ALG_NULL`), a scheme of its key type with SHA-256 or stronger.
    public func checkScheme(of signature: TPMTSignature) throws(AttestError) {
        if scheme.scheme != .null {
            guard signature.algorithm == scheme.scheme, signature.hashAlg == scheme.hashAlg else {
                throw AttestError(
                    code: .signatureSchemeMismatch,
                    reason:
                        "quote: signed with \(signature.algorithm)/\(signature.hashAlg), but the attestation key is bound to \(scheme.scheme)/\(scheme.hashAlg)"
                )
            }
            return
        }
        guard [.sha256, .sha384, .sha512].contains(signature.hashAlg) else {
            throw AttestError(
                code: .signatureSchemeMismatch,
                reason:
                    "quote: signed with \(signature.algorithm)/\(signature.hashAlg); a key without a fixed scheme must sign with SHA-256 or stronger"
            )
        }
    }

    /// Checks a TPMT_SIGNATURE over `message` (hashed with the signature's own hash algorithm).
    public func isValidSignature(_ signature: TPMTSignature, for message: some DataProtocol) -> Bool {
        func pad(_ b: [UInt8], _ n: Int) -> [UInt8]? {
            b.count <= n ? [UInt8](repeating: 0, count: n - b.count) + b : nil
        }
        switch (key, signature.body) {
        case (.p256(let k), .ecc(let r, let s)):
            guard signature.algorithm == .ecdsa, let r = pad(r, 32), let s = pad(s, 32),
                let sig = try? P256.Signing.ECDSASignature(rawRepresentation: r + s)
            else { return false }
            return digest(signature.hashAlg, message) { k.isValidSignature(sig, for: $0) }
        case (.p384(let k), .ecc(let r, let s)):
            guard signature.algorithm == .ecdsa, let r = pad(r, 48), let s = pad(s, 48),
                let sig = try? P384.Signing.ECDSASignature(rawRepresentation: r + s)
            else { return false }
            return digest(signature.hashAlg, message) { k.isValidSignature(sig, for: $0) }
        case (.p521(let k), .ecc(let r, let s)):
            guard signature.algorithm == .ecdsa, let r = pad(r, 66), let s = pad(s, 66),
                let sig = try? P521.Signing.ECDSASignature(rawRepresentation: r + s)
            else { return false }
            return digest(signature.hashAlg, message) { k.isValidSignature(sig, for: $0) }
        case (.rsa(let k), .rsa(let bytes)):
            let padding: _RSA.Signing.Padding
            switch signature.algorithm {
            case .rsassa: padding = .insecurePKCS1v1_5
            case .rsapss: padding = .PSS
            default: return false
            }
            let sig = _RSA.Signing.RSASignature(rawRepresentation: bytes)
            return digest(signature.hashAlg, message) { k.isValidSignature(sig, for: $0, padding: padding) }
        default:
            return false
        }
    }

    private func digest(_ alg: TPMAlgorithmID, _ message: some DataProtocol, _ check: (any Digest) -> Bool) -> Bool {
        switch alg {
        case .sha1: check(Insecure.SHA1.hash(data: message))
        case .sha256: check(SHA256.hash(data: message))
        case .sha384: check(SHA384.hash(data: message))
        case .sha512: check(SHA512.hash(data: message))
        default: false
        }
    }
}
