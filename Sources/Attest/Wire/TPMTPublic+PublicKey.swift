import Crypto
public import Foundation
import SwiftASN1
public import X509
import _CryptoExtras

extension TPMTPublic {
    /// The public key as swift-certificates sees it (for comparing with an EK or device certificate,
    /// and for PEM export). Supports RSA and NIST P-256/P-384/P-521 ECC keys.
    public func certificatePublicKey() throws(AttestError) -> Certificate.PublicKey {
        do {
            switch parameters {
            case .rsa(let p):
                guard !p.modulus.isEmpty else { throw AttestError.invalid("TPMT_PUBLIC: RSA key has an empty modulus") }
                var e = ByteWriter()
                e.append(p.effectiveExponent)
                let exponent = Array(e.bytes.drop { $0 == 0 })
                return Certificate.PublicKey(try _RSA.Signing.PublicKey(n: p.modulus, e: exponent))
            case .ecc(let p):
                let point = [0x04] + p.x + p.y
                switch p.curve {
                case .nistP256: return Certificate.PublicKey(try P256.Signing.PublicKey(x963Representation: point))
                case .nistP384: return Certificate.PublicKey(try P384.Signing.PublicKey(x963Representation: point))
                case .nistP521: return Certificate.PublicKey(try P521.Signing.PublicKey(x963Representation: point))
                default:
                    throw AttestError(
                        code: .unknownAlgorithm, reason: "TPMT_PUBLIC: ECC curve \(p.curve) is not supported")
                }
            case .keyedHash, .symCipher:
                throw AttestError(
                    code: .unsupportedStructure, reason: "TPMT_PUBLIC: a \(type) object has no public key")
            }
        } catch let error as AttestError {
            throw error
        } catch {
            throw AttestError(code: .cryptography, reason: "TPMT_PUBLIC: the public key is not valid: \(error)")
        }
    }

    /// SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----"), as `tpm2_readpublic -f pem` writes it.
    public func pemRepresentation() throws(AttestError) -> String {
        let key = try certificatePublicKey()
        do {
            return try key.serializeAsPEM().pemString
        } catch {
            throw AttestError(code: .cryptography, reason: "TPMT_PUBLIC: cannot encode the key as PEM: \(error)")
        }
    }

    /// Checks a TPMT_SIGNATURE made by this key over `message` (hashed with the signature's hash).
    ///
    /// Supports ECDSA (P-256, P-384, P-521), RSASSA-PKCS1-v1_5 and RSA-PSS, each with SHA-1/256/384/512.
    /// Returns false for any mismatch of algorithm, curve or key type. To check many signatures with one
    /// key, prepare it once with ``AKPublic``.
    public func isValidSignature(_ signature: TPMTSignature, for message: some DataProtocol) -> Bool {
        guard let key = try? AKPublic(signingKey: self) else { return false }
        return key.isValidSignature(signature, for: message)
    }
}

extension TPMTPublic {
    /// A signing key's public area rebuilt from a SubjectPublicKeyInfo PEM (`tpm2_readpublic -f pem`,
    /// `ak.pem`), for verifying signatures when only the PEM is at hand. ECC P-256/P-384/P-521 keys get
    /// an ECDSA-SHA256 scheme and RSA keys RSASSA-SHA256; the signature's own hash is what verification
    /// uses. The Name of the result is not the original object's Name (attributes are unknown).
    public init(signingKeyPEM pem: String) throws(AttestError) {
        let key: Certificate.PublicKey
        do { key = try Certificate.PublicKey(pemEncoded: pem) } catch {
            throw AttestError(code: .invalidValue, reason: "public key PEM: \(error)")
        }
        let attributes: TPMAObject = [.sign, .userWithAuth]
        if let p256 = P256.Signing.PublicKey(key) {
            let raw = Array(p256.rawRepresentation)
            self.init(
                nameAlg: .sha256, objectAttributes: attributes,
                parameters: .ecc(
                    .init(
                        symmetric: .null, scheme: TPMTScheme(.ecdsa, hashAlg: .sha256), curve: .nistP256,
                        x: Array(raw[0..<32]), y: Array(raw[32...]))))
        } else if let p384 = P384.Signing.PublicKey(key) {
            let raw = Array(p384.rawRepresentation)
            self.init(
                nameAlg: .sha256, objectAttributes: attributes,
                parameters: .ecc(
                    .init(
                        symmetric: .null, scheme: TPMTScheme(.ecdsa, hashAlg: .sha384), curve: .nistP384,
                        x: Array(raw[0..<48]), y: Array(raw[48...]))))
        } else if let p521 = P521.Signing.PublicKey(key) {
            let raw = Array(p521.rawRepresentation)
            self.init(
                nameAlg: .sha256, objectAttributes: attributes,
                parameters: .ecc(
                    .init(
                        symmetric: .null, scheme: TPMTScheme(.ecdsa, hashAlg: .sha512), curve: .nistP521,
                        x: Array(raw[0..<66]), y: Array(raw[66...]))))
        } else if let rsa = _RSA.Signing.PublicKey(key) {
            let components: _RSA.Signing.PublicKey.Primitives
            do { components = try rsa.getKeyPrimitives() } catch {
                throw AttestError(code: .cryptography, reason: "public key PEM: \(error)")
            }
            let exponent = Array(components.publicExponent)
            var e: UInt32 = 0
            guard exponent.count <= 4 else {
                throw AttestError(code: .invalidValue, reason: "public key PEM: RSA exponent too large for a TPM key")
            }
            for b in exponent { e = e << 8 | UInt32(b) }
            let modulus = Array(components.modulus.drop { $0 == 0 })
            guard modulus.count <= Self.maxRSAModulusSize else {
                throw AttestError(code: .invalidValue, reason: "public key PEM: RSA modulus too large")
            }
            self.init(
                nameAlg: .sha256, objectAttributes: attributes,
                parameters: .rsa(
                    .init(
                        symmetric: .null, scheme: TPMTScheme(.rsassa, hashAlg: .sha256),
                        keyBits: UInt16(modulus.count * 8),
                        exponent: e == 65537 ? 0 : e, modulus: modulus)))
        } else {
            throw AttestError(code: .unknownAlgorithm, reason: "public key PEM: not an RSA or NIST ECC key")
        }
    }
}
