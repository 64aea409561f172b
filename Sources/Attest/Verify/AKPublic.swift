import Crypto
import _CryptoExtras
public import Foundation

/// An attestation key's public part, prepared once for verifying many signatures (go-attestation's
/// `AKPublic`): the swift-crypto key is built and validated at init, not per signature.
public struct AKPublic: Sendable {
    public let publicArea: TPMTPublic
    let key: PreparedKey

    enum PreparedKey: Sendable {
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case p521(P521.Signing.PublicKey)
        case rsa(_RSA.Signing.PublicKey)
    }

    public init(_ publicArea: TPMTPublic) throws(AttestError) {
        self.publicArea = publicArea
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
    }

    /// Checks a TPMT_SIGNATURE over `message` (hashed with the signature's own hash algorithm).
    public func isValidSignature(_ signature: TPMTSignature, for message: some DataProtocol) -> Bool {
        func pad(_ b: [UInt8], _ n: Int) -> [UInt8]? { b.count <= n ? [UInt8](repeating: 0, count: n - b.count) + b : nil }
        switch (key, signature.body) {
        case (.p256(let k), .ecc(let r, let s)):
            guard signature.algorithm == .ecdsa, let r = pad(r, 32), let s = pad(s, 32),
                  let sig = try? P256.Signing.ECDSASignature(rawRepresentation: r + s) else { return false }
            return digest(signature.hashAlg, message) { k.isValidSignature(sig, for: $0) }
        case (.p384(let k), .ecc(let r, let s)):
            guard signature.algorithm == .ecdsa, let r = pad(r, 48), let s = pad(s, 48),
                  let sig = try? P384.Signing.ECDSASignature(rawRepresentation: r + s) else { return false }
            return digest(signature.hashAlg, message) { k.isValidSignature(sig, for: $0) }
        case (.p521(let k), .ecc(let r, let s)):
            guard signature.algorithm == .ecdsa, let r = pad(r, 66), let s = pad(s, 66),
                  let sig = try? P521.Signing.ECDSASignature(rawRepresentation: r + s) else { return false }
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
