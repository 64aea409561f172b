import Crypto
public import Foundation
import _CryptoExtras

/// A credential encrypted to an endorsement key for one attestation key — TPM 2.0 Part 1 §24 "Credential
/// Protection", made as TPM2_MakeCredential does (Part 3 §12.6), in software: the verifier needs no TPM.
///
/// The device passes ``credentialBlob`` and ``encryptedSecret`` to TPM2_ActivateCredential (Part 3 §12.5)
/// with the AK as `activateHandle` and the EK as `keyHandle`. The TPM releases the secret only if it holds
/// the EK's private key *and* a loaded object whose Name is ``akName``: a correct answer proves the AK lives
/// in the TPM that holds the EK. The verifier keeps the secret to itself, compares the answer with
/// ``verify(response:expected:)`` and records the result with ``binding(response:expected:activatedAt:)``.
///
/// What this does not check: that the EK is genuine (validate its certificate, ``EKCertificateVerifier``) and
/// that the AK is a restricted, fixedTPM signing key (``AKPublic``). Check both before trusting a binding.
public struct CredentialChallenge: Hashable, Sendable {
    /// TPM2B_ID_OBJECT contents (Part 2 §12.4.3, without the size): `TPM2B_DIGEST(integrityHMAC) || encIdentity`.
    /// Exactly what `TPM.activateCredential(…, credentialBlob:, …)` takes; ``credentialBlobTPM2B`` is the
    /// size-prefixed wire form.
    public let credentialBlob: [UInt8]
    /// TPM2B_ENCRYPTED_SECRET contents (Part 2 §11.4.33, without the size): the seed encrypted to the EK.
    /// RSA: the RSA-OAEP ciphertext; ECC: a TPMS_ECC_POINT (the ephemeral public key). Exactly what
    /// `TPM.activateCredential(…, encryptedSecret:)` takes; ``encryptedSecretTPM2B`` is the wire form.
    public let encryptedSecret: [UInt8]
    /// The Name of the key the credential is for (TPM2_ActivateCredential's `activateHandle`).
    public let akName: TPMName
    /// The EK the seed is encrypted to (TPM2_ActivateCredential's `keyHandle`).
    public let ekPublic: TPMTPublic

    /// TPM2B_ID_OBJECT: UINT16 size, then ``credentialBlob``.
    public var credentialBlobTPM2B: [UInt8] {
        var w = ByteWriter()
        w.appendTPM2B(credentialBlob)
        return w.bytes
    }

    /// TPM2B_ENCRYPTED_SECRET: UINT16 size, then ``encryptedSecret``.
    public var encryptedSecretTPM2B: [UInt8] {
        var w = ByteWriter()
        w.appendTPM2B(encryptedSecret)
        return w.bytes
    }

    /// Labels of Part 1 §24.4 and §24.5 (the TPM appends the NUL; ``TPMKDF`` does the same).
    static let identityLabel = "IDENTITY"
    static let storageLabel = "STORAGE"
    static let integrityLabel = "INTEGRITY"

    /// Makes a challenge for `akName` with the system's random number generator.
    /// See ``make(ekPublic:akName:secret:using:)``.
    public static func make(ekPublic: TPMTPublic, akName: TPMName, secret: [UInt8]) throws(AttestError)
        -> CredentialChallenge
    {
        var rng = SystemRandomNumberGenerator()
        return try make(ekPublic: ekPublic, akName: akName, secret: secret, using: &rng)
    }

    /// TPM2_MakeCredential (Part 3 §12.6) in software: encrypts `secret` to `ekPublic` for the key named `akName`.
    ///
    /// 1. A seed protected by the EK (Part 1 §24.4, Annex B.10.3 and C.6.4): for an RSA EK, nameAlg-size
    ///    random bytes under RSA-OAEP (hash and MGF1 = nameAlg, label "IDENTITY\0"); for an ECC EK (NIST P-256,
    ///    P-384), ECDH with a fresh ephemeral key, seed = KDFe(nameAlg, Z, "IDENTITY", ephemeral.x, EK.x).
    /// 2. symKey = KDFa(nameAlg, seed, "STORAGE", akName, ∅, EK symmetric key bits) and
    ///    encIdentity = AES-CFB(symKey, IV = 0, TPM2B_DIGEST(secret)) (Part 1 §24.4).
    /// 3. hmacKey = KDFa(nameAlg, seed, "INTEGRITY", ∅, ∅, digest bits) and
    ///    integrityHMAC = HMAC-nameAlg(hmacKey, encIdentity || akName) (Part 1 §24.5).
    ///
    /// - Parameters:
    ///   - ekPublic: the EK's public area: a fixedTPM, restricted decryption key (no signing) with an AES-CFB
    ///     symmetric of 128 bits (the low-range TCG templates) or 256 bits (the high-range ones), an RSA
    ///     (2048 to 4096 bits) or NIST P-256/P-384 key, and a SHA-256, SHA-384 or SHA-512 nameAlg.
    ///   - akName: the Name of the key to activate (`nameAlg || digest`, as `TPMTPublic.name()` makes it).
    ///   - secret: 1 to digest-size bytes (the EK's nameAlg), kept by the caller to check the answer.
    ///   - rng: the source of the seed (RSA) or ephemeral key (ECC). Must be cryptographically secure.
    /// - Throws: ``AttestError`` naming what is unsuitable: `.invalidValue` (EK attributes, Name, empty secret), `.unknownAlgorithm` (nameAlg, curve, symmetric),
    ///   `.sizeLimitExceeded` (secret too long), `.unsupportedStructure` (key type, RSA size),
    ///   `.cryptography` (a public key that is not on its curve).
    public static func make(
        ekPublic: TPMTPublic, akName: TPMName, secret: [UInt8],
        using rng: inout some RandomNumberGenerator
    ) throws(AttestError) -> CredentialChallenge {
        let nameAlg = ekPublic.nameAlg
        guard TPMKDF.isSupported(nameAlg), let digestSize = nameAlg.digestSize else {
            throw AttestError(
                code: .unknownAlgorithm,
                reason: "MakeCredential: the EK's nameAlg \(nameAlg) is not supported (SHA-256, SHA-384 or SHA-512)")
        }
        let symmetric = try checkEndorsementKey(ekPublic)
        try checkName(akName)
        guard !secret.isEmpty else { throw AttestError.invalid("MakeCredential: the secret is empty") }
        guard secret.count <= digestSize else {
            throw AttestError(
                code: .sizeLimitExceeded,
                reason:
                    "MakeCredential: a \(secret.count)-byte secret exceeds the \(digestSize)-byte digest of the EK's nameAlg \(nameAlg) (TPM_RC_SIZE)"
            )
        }

        // 1. The seed, and how the EK's TPM recovers it (Part 1 §24.4; Annex B.10.3 RSA, C.6.4 ECC).
        let seed: [UInt8]
        let encryptedSecret: [UInt8]
        switch ekPublic.parameters {
        case .rsa(let p):
            seed = randomBytes(digestSize, using: &rng)
            encryptedSecret = try RSAOAEP.encrypt(
                seed, label: Array(identityLabel.utf8) + [0], hashAlg: nameAlg,
                modulus: p.modulus, exponent: p.effectiveExponent,
                oaepSeed: randomBytes(digestSize, using: &rng))
        case .ecc(let p):
            let agreement = try ephemeralAgreement(curve: p.curve, ekX: p.x, ekY: p.y, using: &rng)
            seed = try TPMKDF.kdfe(
                nameAlg, z: agreement.z, label: identityLabel, partyUInfo: agreement.x, partyVInfo: p.x,
                bits: digestSize * 8)
            var point = ByteWriter()  // TPMS_ECC_POINT, Part 2 §11.2.5.2
            point.appendTPM2B(agreement.x)
            point.appendTPM2B(agreement.y)
            encryptedSecret = point.bytes
        case .keyedHash, .symCipher:
            throw AttestError(
                code: .unsupportedStructure, reason: "MakeCredential: a \(ekPublic.type) object cannot be an EK")
        }

        // 2. encIdentity: the secret as a TPM2B_DIGEST under the storage key (Part 1 §24.4).
        let symKey = try TPMKDF.kdfa(
            nameAlg, key: seed, label: storageLabel, contextU: akName.bytes, contextV: [],
            bits: Int(symmetric.keyBits))
        var plaintext = ByteWriter()
        plaintext.appendTPM2B(secret)
        let encIdentity: [UInt8]
        do {
            let iv = try AES._CFB.IV(ivBytes: [UInt8](repeating: 0, count: 16))
            encIdentity = Array(try AES._CFB.encrypt(plaintext.bytes, using: SymmetricKey(data: symKey), iv: iv))
        } catch {
            throw AttestError(code: .cryptography, reason: "MakeCredential: AES-CFB: \(error)")
        }

        // 3. The outer HMAC over encIdentity and the Name (Part 1 §24.5).
        let hmacKey = try TPMKDF.kdfa(
            nameAlg, key: seed, label: integrityLabel, contextU: [], contextV: [], bits: digestSize * 8)
        let integrity = try TPMKDF.hmac(nameAlg, key: hmacKey, [encIdentity, akName.bytes])

        var blob = ByteWriter()  // TPMS_ID_OBJECT, Part 2 §12.4.2
        blob.appendTPM2B(integrity)
        blob.append(bytes: encIdentity)
        return CredentialChallenge(
            credentialBlob: blob.bytes, encryptedSecret: encryptedSecret, akName: akName, ekPublic: ekPublic)
    }

    /// Whether the secret the device returned is the one the challenge was made with, compared in constant time.
    /// An empty `expected` never matches.
    public static func verify(response: [UInt8], expected: [UInt8]) -> Bool {
        !expected.isEmpty && constantTimeEquals(response, expected)
    }

    /// The record of a successful activation: ``akName`` bound to the SHA-256 of the EK's SubjectPublicKeyInfo.
    ///
    /// - Throws: ``AttestError/Code/akNotBound`` when `response` is not `expected` (the device's TPM does not
    ///   hold both keys, or the answer was tampered with); ``AttestError/Code/cryptography`` when the EK's key
    ///   cannot be encoded.
    public func binding(response: [UInt8], expected: [UInt8], activatedAt: Date = Date()) throws(AttestError)
        -> AKBinding
    {
        guard Self.verify(response: response, expected: expected) else {
            throw AttestError(
                code: .akNotBound,
                reason: "credential activation: the device's answer is not the secret made for AK \(akName)")
        }
        return AKBinding(
            akName: akName, ekPublicKeySHA256: try AKBinding.fingerprint(ofEK: ekPublic), activatedAt: activatedAt)
    }

    // MARK: Checks

    /// A storage key in the sense of Part 1 §24.2 (the TPM's own TPM_RC_TYPE/TPM_RC_KEY checks in
    /// TPM2_MakeCredential and TPM2_ActivateCredential), plus fixedTPM: an EK that can leave its TPM proves nothing.
    /// Returns the symmetric definition the credential is encrypted with.
    static func checkEndorsementKey(_ ek: TPMTPublic) throws(AttestError) -> TPMTSymDefObject {
        let required: TPMAObject = [.fixedTPM, .restricted, .decrypt]
        guard ek.objectAttributes.isSuperset(of: required), !ek.objectAttributes.contains(.sign) else {
            throw AttestError.invalid(
                "MakeCredential: the EK must be a fixedTPM restricted decryption key without sign; its attributes are \(ek.objectAttributes)"
            )
        }
        let symmetric: TPMTSymDefObject
        switch ek.parameters {
        case .rsa(let p): symmetric = p.symmetric
        case .ecc(let p): symmetric = p.symmetric
        case .keyedHash, .symCipher:
            throw AttestError(
                code: .unsupportedStructure,
                reason: "MakeCredential: a \(ek.type) object cannot be an EK (RSA or ECC only)")
        }
        guard symmetric.algorithm == .aes, symmetric.mode == .cfb, symmetric.keyBits == 128 || symmetric.keyBits == 256
        else {
            throw AttestError(
                code: .unknownAlgorithm,
                reason:
                    "MakeCredential: the EK's symmetric algorithm is \(symmetric.algorithm)-\(symmetric.keyBits)-\(symmetric.mode), not AES-128-CFB or AES-256-CFB"
            )
        }
        return symmetric
    }

    /// An object Name: a supported hash algorithm identifier followed by a digest of its size (Part 1 §16).
    static func checkName(_ name: TPMName) throws(AttestError) {
        var reader = ByteReader(name.bytes)
        let alg = TPMAlgorithmID(try reader.readUInt16("TPM2B_NAME.hashAlg", .big))
        guard TPMDigest.isSupported(alg), let size = alg.digestSize else {
            throw AttestError(
                code: .unknownAlgorithm,
                reason: "MakeCredential: the AK Name \(name) does not start with a supported hash algorithm")
        }
        guard reader.remaining == size else {
            throw AttestError.invalid(
                "MakeCredential: the AK Name \(name) has a \(reader.remaining)-byte digest, \(alg) needs \(size)")
        }
    }

    // MARK: Randomness and ECDH

    static func randomBytes(_ count: Int, using rng: inout some RandomNumberGenerator) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            var word = rng.next()
            for _ in 0..<8 where out.count < count {
                out.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return out
    }

    /// Z and the ephemeral public point of an ECDH with the EK (one-pass Diffie-Hellman, C(1, 1, ECC CDH),
    /// Part 1 Annex C.6.4). The ephemeral scalar is drawn from `rng`; a draw that is not a valid scalar is
    /// drawn again.
    static func ephemeralAgreement(
        curve: TPMECCCurve, ekX: [UInt8], ekY: [UInt8],
        using rng: inout some RandomNumberGenerator
    ) throws(AttestError) -> (z: [UInt8], x: [UInt8], y: [UInt8]) {
        guard let size = curve.coordinateSize, curve == .nistP256 || curve == .nistP384 else {
            throw AttestError(
                code: .unknownAlgorithm,
                reason: "MakeCredential: ECC curve \(curve) is not supported (NIST P-256 or P-384)")
        }
        let x = try fixedWidth(ekX, size, "x")
        let y = try fixedWidth(ekY, size, "y")
        let point = [0x04] + x + y
        do {
            for _ in 0..<64 {
                let scalar = randomBytes(size, using: &rng)
                let shared: SharedSecret
                let ephemeral: [UInt8]
                if curve == .nistP256 {
                    let ek = try P256.KeyAgreement.PublicKey(x963Representation: point)
                    guard let key = try? P256.KeyAgreement.PrivateKey(rawRepresentation: scalar) else { continue }
                    shared = try key.sharedSecretFromKeyAgreement(with: ek)
                    ephemeral = Array(key.publicKey.rawRepresentation)
                } else {
                    let ek = try P384.KeyAgreement.PublicKey(x963Representation: point)
                    guard let key = try? P384.KeyAgreement.PrivateKey(rawRepresentation: scalar) else { continue }
                    shared = try key.sharedSecretFromKeyAgreement(with: ek)
                    ephemeral = Array(key.publicKey.rawRepresentation)
                }
                let z = shared.withUnsafeBytes { Array($0) }
                guard z.count == size, ephemeral.count == 2 * size else {
                    throw AttestError(code: .cryptography, reason: "MakeCredential: ECDH returned an unexpected size")
                }
                return (z, Array(ephemeral.prefix(size)), Array(ephemeral.suffix(size)))
            }
        } catch let error as AttestError {
            throw error
        } catch {
            throw AttestError(
                code: .cryptography, reason: "MakeCredential: the EK's public point is not valid on \(curve): \(error)")
        }
        throw AttestError(
            code: .cryptography,
            reason: "MakeCredential: the random number generator gave no valid \(curve) scalar in 64 draws")
    }

    /// A coordinate as exactly `size` bytes: leading zero bytes added or removed, never significant ones.
    static func fixedWidth(_ coordinate: [UInt8], _ size: Int, _ field: String) throws(AttestError) -> [UInt8] {
        let significant = Array(coordinate.drop { $0 == 0 })
        guard significant.count <= size else {
            throw AttestError.invalid(
                "MakeCredential: the EK's \(field) coordinate is \(coordinate.count) bytes, more than the curve's \(size)"
            )
        }
        return [UInt8](repeating: 0, count: size - significant.count) + significant
    }
}
