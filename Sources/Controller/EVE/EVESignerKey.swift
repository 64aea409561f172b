import ControllerProtocol
import Crypto
import Foundation
import X509
import _CryptoExtras

/// The public key of an EVE sender certificate (device, onboarding), checking `AuthContainer.signatureHash` over
/// SHA-256 of the payload in the forms EVE's Go code produces (OBJECT-SIGNING.md; EVE `pkg/pillar/zedcloud/authen.go`):
/// - ECDSA P-256 or P-384: the raw concatenation r‖s the document requires, or ASN.1 DER (what Go's
///   `ecdsa.SignASN1` and a TPM-backed `crypto.Signer` return);
/// - RSA (2048 bits or more): PKCS #1 v1.5 with SHA-256.
struct EVESignerKey: Sendable {
    enum Backing: Sendable {
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case rsa(_RSA.Signing.PublicKey)
    }

    let backing: Backing

    /// The key of `certificate`; refuses other algorithms and RSA below 2048 bits.
    init(_ certificate: Certificate, role: String) throws(ControllerError) {
        if let k = P256.Signing.PublicKey(certificate.publicKey) {
            backing = .p256(k)
        } else if let k = P384.Signing.PublicKey(certificate.publicKey) {
            backing = .p384(k)
        } else if let k = _RSA.Signing.PublicKey(certificate.publicKey) {
            guard k.keySizeInBits >= 2048 else {
                throw .unprocessable("\(role) certificate: an RSA key of \(k.keySizeInBits) bits (at least 2048)")
            }
            backing = .rsa(k)
        } else {
            throw .unprocessable(
                "\(role) certificate: its key is not ECDSA P-256, P-384 or RSA, which EVE's object signing uses")
        }
    }

    /// Whether `signature` signs SHA-256(`payload`) with this key, in any of the accepted forms.
    func isValidSignature(_ signature: [UInt8], over payload: [UInt8]) -> Bool {
        let digest = SHA256.hash(data: payload)
        switch backing {
        case .p256(let key):
            if signature.count == 64, let s = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
                key.isValidSignature(s, for: digest)
            {
                return true
            }
            if let s = try? P256.Signing.ECDSASignature(derRepresentation: signature) {
                return key.isValidSignature(s, for: digest)
            }
            return false
        case .p384(let key):
            if signature.count == 96, let s = try? P384.Signing.ECDSASignature(rawRepresentation: signature),
                key.isValidSignature(s, for: digest)
            {
                return true
            }
            if let s = try? P384.Signing.ECDSASignature(derRepresentation: signature) {
                return key.isValidSignature(s, for: digest)
            }
            return false
        case .rsa(let key):
            return key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: digest, padding: .insecurePKCS1v1_5)
        }
    }

    /// The key's RFC 7638 JWK thumbprint: the attestation result's `cnf.jkt` for an EVE device.
    var thumbprint: String {
        switch backing {
        case .p256(let k): return AttestationResult.thumbprint(k)
        case .p384(let k): return AttestationResult.thumbprint(k)
        case .rsa(let k):
            let (n, e) = Self.rsaComponents(k)
            return AttestationResult.thumbprint(rsaModulus: n, exponent: e)
        }
    }

    /// The modulus and exponent of an RSA public key, from its PKCS #1 DER (RFC 8017 A.1.1).
    static func rsaComponents(_ key: _RSA.Signing.PublicKey) -> (n: [UInt8], e: [UInt8]) {
        let der = Array(key.pkcs1DERRepresentation)
        var reader = DERReader(der)
        guard reader.enter(tag: 0x30), let n = reader.read(tag: 0x02), let e = reader.read(tag: 0x02) else {
            return ([], [])
        }
        return (n, e)
    }

    /// Just enough DER to read a PKCS #1 RSAPublicKey that swift-crypto wrote.
    struct DERReader {
        var bytes: [UInt8]
        var at = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        mutating func header(tag: UInt8) -> Int? {
            guard at + 2 <= bytes.count, bytes[at] == tag else { return nil }
            var length = Int(bytes[at + 1])
            at += 2
            if length & 0x80 != 0 {
                let count = length & 0x7f
                guard count <= 4, at + count <= bytes.count else { return nil }
                length = 0
                for _ in 0..<count {
                    length = length << 8 | Int(bytes[at])
                    at += 1
                }
            }
            guard length <= bytes.count - at else { return nil }
            return length
        }

        mutating func enter(tag: UInt8) -> Bool { header(tag: tag) != nil }

        mutating func read(tag: UInt8) -> [UInt8]? {
            guard let length = header(tag: tag) else { return nil }
            defer { at += length }
            return Array(bytes[at..<at + length])
        }
    }
}
