import Attest
import Crypto
import Foundation
import ProcessSupport
import Testing
import X509

/// The verifier's half of credential activation without a TPM: the KDF against the TCG reference vector,
/// the layout of what `CredentialChallenge.make` produces, and everything it must refuse. That the TPM
/// accepts the result is `AttestTPMTests/CredentialActivationTests`.
@Suite struct CredentialActivationChallengeTests {
    static let ekAttributes: TPMAObject = [
        .fixedTPM, .fixedParent, .sensitiveDataOrigin, .adminWithPolicy, .restricted, .decrypt,
    ]
    /// A SHA-256 object Name (alg 0x000B, 32-byte digest).
    static let akName = TPMName(bytes: [0x00, 0x0B] + [UInt8](repeating: 0xA5, count: 32))

    /// The swtpm fixture's RSA EK (TCG template L-1) with the modulus of its certificate.
    static func rsaEK() throws -> TPMTPublic {
        let cert = try EKCertificate(bytes: Fixture.bytes("ekcerts/swtpm-ek-rsa2048.der"))
        let modulus = try #require(_RSAKey(cert.certificate.publicKey))
        return TPMTPublic(
            nameAlg: .sha256, objectAttributes: ekAttributes, authPolicy: [],
            parameters: .rsa(.init(symmetric: .aes128CFB, scheme: .null, keyBits: 2048, exponent: 0, modulus: modulus)))
    }

    /// An ECC EK with a software key: template L-2 (P-256) or H-3 (P-384).
    static func eccEK(_ curve: TPMECCCurve) -> TPMTPublic {
        let raw =
            curve == .nistP256
            ? Array(P256.KeyAgreement.PrivateKey().publicKey.rawRepresentation)
            : Array(P384.KeyAgreement.PrivateKey().publicKey.rawRepresentation)
        let half = raw.count / 2
        return TPMTPublic(
            nameAlg: curve == .nistP256 ? .sha256 : .sha384, objectAttributes: ekAttributes, authPolicy: [],
            parameters: .ecc(
                .init(
                    symmetric: curve == .nistP256 ? .aes128CFB : .aes256CFB, scheme: .null, curve: curve,
                    x: Array(raw.prefix(half)), y: Array(raw.suffix(half)))))
    }

    // MARK: KDF

    /// The KDFa self-test vector of the TCG reference implementation (TPM 2.0 Part 4, `KdfTestData.h`):
    /// key, label "KDFSELFTESTLABEL" (NUL included), both contexts, 160 bits, for each hash it builds with.
    @Test(arguments: [
        (TPMAlgorithmID.sha256, "bb0259e1c8ba607e6a2cd704b69a902e9ade84c4"),
        (.sha384, "1dce70c9113eb2dba47bd9cfc72bf46f45b09312"),
        (.sha512, "8be2c1b85b78569b9fa759f5857c56d684810fd3"),
    ])
    func kdfaMatchesTheTCGReferenceSelfTestVector(_ hashAlg: TPMAlgorithmID, _ expected: String) throws {
        let key = try #require(Hex.decode("271fa08bbdc5060ec3dfa928ff9b73123a12da0c"))
        let out = try TPMKDF.kdfa(
            hashAlg, key: key, label: "KDFSELFTESTLABEL",
            contextU: try #require(Hex.decode("ce244f395dca7391")),
            contextV: try #require(Hex.decode("da504031ddf12e83")), bits: 160)
        #expect(Hex.encode(out) == expected)
    }

    @Test func kdfRefusesOutputSizesThatAreNotWholeBytesAndUnsupportedHashes() {
        #expect(
            errorCode { try TPMKDF.kdfa(.sha256, key: [1], label: "STORAGE", contextU: [], contextV: [], bits: 7) }
                == .invalidValue)
        #expect(
            errorCode { try TPMKDF.kdfa(.sha256, key: [1], label: "STORAGE", contextU: [], contextV: [], bits: 0) }
                == .invalidValue)
        #expect(
            errorCode {
                try TPMKDF.kdfe(.sha256, z: [1], label: "IDENTITY", partyUInfo: [], partyVInfo: [], bits: 1 << 20)
            } == .invalidValue)
        #expect(
            errorCode { try TPMKDF.kdfa(.sha256, key: [1], label: "STOR\0AGE", contextU: [], contextV: [], bits: 128) }
                == .invalidValue)
        #expect(
            errorCode { try TPMKDF.kdfa(.sha1, key: [1], label: "STORAGE", contextU: [], contextV: [], bits: 128) }
                == .unknownAlgorithm)
        #expect(
            errorCode {
                try TPMKDF.kdfe(.sm3_256, z: [1], label: "IDENTITY", partyUInfo: [], partyVInfo: [], bits: 256)
            } == .unknownAlgorithm)
    }

    // MARK: Layout

    @Test func anRSAChallengeIsAnIDObjectAndAModulusSizedCiphertext() throws {
        let secret = [UInt8](repeating: 0x42, count: 20)
        let challenge = try CredentialChallenge.make(ekPublic: Self.rsaEK(), akName: Self.akName, secret: secret)
        // TPMS_ID_OBJECT: TPM2B_DIGEST(integrityHMAC, 32 bytes) || encIdentity (a CFB encryption of TPM2B_DIGEST(secret)).
        #expect(challenge.credentialBlob.count == 2 + 32 + 2 + secret.count)
        #expect(Array(challenge.credentialBlob.prefix(2)) == [0x00, 0x20])
        #expect(challenge.encryptedSecret.count == 256)
        #expect(
            challenge.credentialBlobTPM2B == [0x00, UInt8(challenge.credentialBlob.count)] + challenge.credentialBlob)
        #expect(challenge.encryptedSecretTPM2B == [0x01, 0x00] + challenge.encryptedSecret)
        #expect(challenge.akName == Self.akName)
    }

    @Test(arguments: [TPMECCCurve.nistP256, .nistP384])
    func anECCChallengeCarriesAnEphemeralPointOnTheEKsCurve(_ curve: TPMECCCurve) throws {
        let ek = Self.eccEK(curve)
        let size = try #require(curve.coordinateSize)
        let challenge = try CredentialChallenge.make(ekPublic: ek, akName: Self.akName, secret: [1, 2, 3])
        var reader = ByteReader(challenge.encryptedSecret)
        let x = try reader.readTPM2B("TPMS_ECC_POINT.x", maxSize: 66)
        let y = try reader.readTPM2B("TPMS_ECC_POINT.y", maxSize: 66)
        try reader.expectEnd("TPMS_ECC_POINT")
        #expect(x.count == size && y.count == size)
        if curve == .nistP256 {
            _ = try P256.KeyAgreement.PublicKey(x963Representation: [0x04] + x + y)
        } else {
            _ = try P384.KeyAgreement.PublicKey(x963Representation: [0x04] + x + y)
        }
        // The HMAC is the EK nameAlg's size (SHA-384 for P-384).
        #expect(challenge.credentialBlob.count == 2 + size + 2 + 3)
    }

    @Test func everyChallengeHasAFreshSeed() throws {
        for ek in [try Self.rsaEK(), Self.eccEK(.nistP256)] {
            let a = try CredentialChallenge.make(ekPublic: ek, akName: Self.akName, secret: [7])
            let b = try CredentialChallenge.make(ekPublic: ek, akName: Self.akName, secret: [7])
            #expect(a.encryptedSecret != b.encryptedSecret)
            #expect(a.credentialBlob != b.credentialBlob)
        }
    }

    @Test func theSameRandomNumbersMakeTheSameChallenge() throws {
        for ek in [try Self.rsaEK(), Self.eccEK(.nistP384)] {
            var first = SplitMix64(seed: 9)
            var second = SplitMix64(seed: 9)
            let a = try CredentialChallenge.make(ekPublic: ek, akName: Self.akName, secret: [7], using: &first)
            let b = try CredentialChallenge.make(ekPublic: ek, akName: Self.akName, secret: [7], using: &second)
            #expect(a == b)
        }
    }

    // MARK: Refusals

    @Test func refusesAnEKThatIsNotAFixedTPMRestrictedDecryptionKey() throws {
        let good = try Self.rsaEK()
        for attributes: TPMAObject in [
            [.fixedTPM, .restricted, .sign], [.fixedTPM, .decrypt], [.restricted, .decrypt],
            [.fixedTPM, .restricted, .decrypt, .sign],
        ] {
            var ek = good
            ek.objectAttributes = attributes
            let error = #expect(throws: AttestError.self) {
                try CredentialChallenge.make(ekPublic: ek, akName: Self.akName, secret: [1])
            }
            #expect(error?.code == .invalidValue, "\(attributes)")
            #expect(error?.reason.contains("restricted decryption") == true)
        }
    }

    @Test(arguments: [
        TPMTSymDefObject.null, TPMTSymDefObject(algorithm: .aes, keyBits: 128, mode: .ctr),
        TPMTSymDefObject(algorithm: .aes, keyBits: 192, mode: .cfb),
        TPMTSymDefObject(algorithm: .sm4, keyBits: 128, mode: .cfb),
    ])
    func refusesAnEKWhoseSymmetricIsNotAESCFB(_ symmetric: TPMTSymDefObject) throws {
        guard case .rsa(var p) = try Self.rsaEK().parameters else {
            Issue.record("not RSA")
            return
        }
        p.symmetric = symmetric
        let ek = TPMTPublic(nameAlg: .sha256, objectAttributes: Self.ekAttributes, parameters: .rsa(p))
        let error = #expect(throws: AttestError.self) {
            try CredentialChallenge.make(ekPublic: ek, akName: Self.akName, secret: [1])
        }
        #expect(error?.code == .unknownAlgorithm)
        #expect(error?.reason.contains("AES-128-CFB") == true)
    }

    @Test func refusesSecretsLongerThanTheNameAlgDigestAndEmptySecrets() throws {
        let rsa = try Self.rsaEK()
        let tooLong = #expect(throws: AttestError.self) {
            try CredentialChallenge.make(ekPublic: rsa, akName: Self.akName, secret: [UInt8](repeating: 1, count: 33))
        }
        #expect(tooLong?.code == .sizeLimitExceeded)
        // SHA-384 EK: 48 bytes are allowed, 49 are not.
        let p384 = Self.eccEK(.nistP384)
        _ = try CredentialChallenge.make(ekPublic: p384, akName: Self.akName, secret: [UInt8](repeating: 1, count: 48))
        let tooLong384 = #expect(throws: AttestError.self) {
            try CredentialChallenge.make(ekPublic: p384, akName: Self.akName, secret: [UInt8](repeating: 1, count: 49))
        }
        #expect(tooLong384?.code == .sizeLimitExceeded)
        let empty = #expect(throws: AttestError.self) {
            try CredentialChallenge.make(ekPublic: rsa, akName: Self.akName, secret: [])
        }
        #expect(empty?.code == .invalidValue)
    }

    @Test func refusesUnsupportedCurvesNameAlgsAndKeyTypes() throws {
        var p521 = Self.eccEK(.nistP256)
        guard case .ecc(var p) = p521.parameters else {
            Issue.record("not ECC")
            return
        }
        p.curve = .nistP521
        p521.parameters = .ecc(p)
        p.curve = .bnP256
        let bn = TPMTPublic(nameAlg: .sha256, objectAttributes: Self.ekAttributes, parameters: .ecc(p))
        var sha1 = try Self.rsaEK()
        sha1.nameAlg = .sha1
        var sm3 = Self.eccEK(.nistP256)
        sm3.nameAlg = .sm3_256
        for ek in [p521, bn, sha1, sm3] {
            let error = #expect(throws: AttestError.self) {
                try CredentialChallenge.make(ekPublic: ek, akName: Self.akName, secret: [1])
            }
            #expect(error?.code == .unknownAlgorithm, "\(ek.nameAlg) \(ek.parameters)")
        }
        let keyedHash = TPMTPublic(
            nameAlg: .sha256, objectAttributes: Self.ekAttributes, parameters: .keyedHash(scheme: .null, unique: []))
        let error = #expect(throws: AttestError.self) {
            try CredentialChallenge.make(ekPublic: keyedHash, akName: Self.akName, secret: [1])
        }
        #expect(error?.code == .unsupportedStructure)
    }

    @Test func refusesBadRSAAndECCPublicKeys() throws {
        guard case .rsa(let good) = try Self.rsaEK().parameters else {
            Issue.record("not RSA")
            return
        }
        var small = good
        small.modulus = Array(good.modulus.prefix(128))
        small.keyBits = 1024
        var even = good
        even.modulus[even.modulus.count - 1] &= 0xFE
        var exponent = good
        exponent.exponent = 1
        for (p, code) in [
            (small, AttestError.Code.unsupportedStructure), (even, .invalidValue), (exponent, .invalidValue),
        ] {
            let ek = TPMTPublic(nameAlg: .sha256, objectAttributes: Self.ekAttributes, parameters: .rsa(p))
            let error = #expect(throws: AttestError.self) {
                try CredentialChallenge.make(ekPublic: ek, akName: Self.akName, secret: [1])
            }
            #expect(error?.code == code)
        }
        var offCurve = Self.eccEK(.nistP256)
        guard case .ecc(var q) = offCurve.parameters else {
            Issue.record("not ECC")
            return
        }
        q.y[q.y.count - 1] ^= 0x01
        offCurve.parameters = .ecc(q)
        let error = #expect(throws: AttestError.self) {
            try CredentialChallenge.make(ekPublic: offCurve, akName: Self.akName, secret: [1])
        }
        #expect(error?.code == .cryptography)
    }

    @Test(
        arguments: [
            ([0x40, 0x00, 0x00, 0x01], AttestError.Code.unknownAlgorithm),  // a handle's Name (TPM_RH_OWNER)
            ([0x00, 0x0B] + [UInt8](repeating: 1, count: 31), .invalidValue),  // SHA-256 Name one byte short
            ([0x00, 0x0C] + [UInt8](repeating: 1, count: 32), .invalidValue),  // SHA-384 tag, SHA-256-sized digest
            ([0x00, 0x99] + [UInt8](repeating: 1, count: 32), .unknownAlgorithm),  // unknown hash algorithm
            ([0x00], .truncated),  // truncated algorithm id
        ] as [([UInt8], AttestError.Code)])
    func refusesAnAKNameThatIsNotAnObjectName(_ bytes: [UInt8], _ code: AttestError.Code) throws {
        let ek = try Self.rsaEK()
        #expect(
            errorCode { try CredentialChallenge.make(ekPublic: ek, akName: TPMName(bytes: bytes), secret: [1]) } == code
        )
    }

    // MARK: Checking the answer

    @Test func theAnswerMustBeTheWholeSecret() throws {
        let secret: [UInt8] = Array(0..<32)
        #expect(CredentialChallenge.verify(response: secret, expected: secret))
        #expect(!CredentialChallenge.verify(response: Array(secret.prefix(31)), expected: secret))
        #expect(!CredentialChallenge.verify(response: secret + [0], expected: secret))
        #expect(!CredentialChallenge.verify(response: [0xFF] + secret.dropFirst(), expected: secret))
        #expect(!CredentialChallenge.verify(response: [], expected: []))
    }

    @Test func aBindingIsMadeOnlyFromTheRightAnswer() throws {
        let ek = try Self.rsaEK()
        let secret: [UInt8] = Array(0..<32)
        let challenge = try CredentialChallenge.make(ekPublic: ek, akName: Self.akName, secret: secret)
        let wrong = #expect(throws: AttestError.self) {
            try challenge.binding(response: Array(secret.reversed()), expected: secret)
        }
        #expect(wrong?.code == .akNotBound)
        let at = Date(timeIntervalSince1970: 1_700_000_000)
        let binding = try challenge.binding(response: secret, expected: secret, activatedAt: at)
        #expect(binding.akName == Self.akName)
        #expect(binding.activatedAt == at)
        // The fingerprint is the certificate's key's: the binding names the EK the certificate certifies.
        let cert = try EKCertificate(bytes: Fixture.bytes("ekcerts/swtpm-ek-rsa2048.der"))
        #expect(binding.ekPublicKeySHA256 == (try AKBinding.fingerprint(of: cert.certificate.publicKey)))
        #expect(binding.ekPublicKeySHA256 == (try AKBinding.fingerprint(ofEK: ek)))
    }
}

/// The code of the AttestError `body` throws, or nil.
private func errorCode<R>(_ body: () throws -> R) -> AttestError.Code? {
    do {
        _ = try body()
        return nil
    } catch let error as AttestError {
        return error.code
    } catch {
        return nil
    }
}
