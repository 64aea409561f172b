import Attest
import AttestTPM
import Crypto
import Foundation
import ProcessSupport
import Testing
import VigilTestSupport
import X509

/// Credential activation across the verifier/device split: `CredentialChallenge.make` (pure Swift, no TPM)
/// on one side, TPM2_ActivateCredential on a private swtpm on the other (TPM 2.0 Part 1 §24, Part 3 §12.5–12.6).
/// The TPM is the oracle: it releases the secret only when every KDF label, the OAEP label, the ECDH
/// derivation, the CFB encryption and the integrity HMAC are exactly as the specification says.
@Suite(.enabled(if: SoftwareTPM.canRun, "swtpm is not installed"))
struct CredentialActivationTests {
    /// Every EK the fixture TPM gets from `IdentityProvisioner`: RSA-2048 and P-256 (low range, AES-128-CFB,
    /// SHA-256) and P-384 (high range H-3, AES-256-CFB, SHA-384; the fixture has its certificate).
    static let endorsementKeys: [EndorsementKeyTemplate] = [.rsa2048, .eccNISTP256, .eccNISTP384]

    /// TPM_RC_INTEGRITY (Part 2 §6.6.3): the outer HMAC of the credential blob does not verify.
    static let integrity = TPMResponseCode(rawValue: 0x09F)

    @Test(arguments: endorsementKeys)
    func theTPMReleasesTheSecretOfAChallengeVigilMadeForItsAK(_ ekTemplate: EndorsementKeyTemplate) async throws {
        try await SoftwareTPM.with { tpm, _ in
            let (ek, ak) = try await Self.identity(tpm, ekTemplate)
            let digestSize = try #require(ek.nameAlg.digestSize)
            // The largest secret the EK's nameAlg allows, and the smallest.
            for size in [digestSize, 1] {
                let secret = try await tpm.getRandom(size)
                let challenge = try CredentialChallenge.make(ekPublic: ek, akName: ak.name, secret: secret)
                let recovered = try await Self.activate(tpm, ekTemplate, challenge)
                #expect(recovered == secret, "EK \(ekTemplate), \(size)-byte secret")
                #expect(CredentialChallenge.verify(response: recovered, expected: secret))

                let binding = try challenge.binding(
                    response: recovered, expected: secret, activatedAt: Date(timeIntervalSince1970: 0))
                #expect(binding.akName == ak.name)
                #expect(binding.ekPublicKeySHA256 == (try AKBinding.fingerprint(ofEK: ek)))
                // The fingerprint names the same key as the manufacturer's certificate, where there is one.
                if let certificate = try await IdentityProvisioner.readEKCertificate(tpm, ekTemplate) {
                    #expect(
                        binding.ekPublicKeySHA256 == (try AKBinding.fingerprint(of: certificate.certificate.publicKey)))
                }
            }
        }
    }

    @Test(arguments: endorsementKeys)
    func aChallengeMadeForAnotherKeysNameIsRefusedByTheTPM(_ ekTemplate: EndorsementKeyTemplate) async throws {
        try await SoftwareTPM.with { tpm, _ in
            let (ek, _) = try await Self.identity(tpm, ekTemplate)
            // The device identity key is in the same TPM, but it is not the key being activated.
            let device = try #require(try await tpm.readPublic(IdentityKeyTemplates.deviceKeyHandle))
            let secret = try await tpm.getRandom(32)
            let challenge = try CredentialChallenge.make(ekPublic: ek, akName: device.name, secret: secret)
            let error = await #expect(throws: TPMError.self) { try await Self.activate(tpm, ekTemplate, challenge) }
            #expect(error?.isTPM(Self.integrity) == true, "\(String(describing: error))")
        }
    }

    @Test(arguments: endorsementKeys)
    func aChallengeEncryptedToAnotherTPMsEKIsRefused(_ ekTemplate: EndorsementKeyTemplate) async throws {
        // A second, freshly manufactured swtpm (empty state: its own endorsement seed, so its own EKs).
        let emptyState = try ProcessRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: emptyState) }
        let other = try SoftwareTPM(state: emptyState)
        defer { other.stop() }
        let otherTPM = try await other.open()
        let otherEK = try await otherTPM.withPrimary(.endorsement, template: ekTemplate.template) {
            _, key throws(TPMError) in
            guard let publicArea = key.publicArea else {
                throw TPMError.invalidResponse("CreatePrimary returned no public area")
            }
            return publicArea
        }

        try await SoftwareTPM.with { tpm, _ in
            let (ek, ak) = try await Self.identity(tpm, ekTemplate)
            #expect(otherEK != ek, "the second TPM must have another EK")
            let secret = try await tpm.getRandom(32)
            let challenge = try CredentialChallenge.make(ekPublic: otherEK, akName: ak.name, secret: secret)
            let error = await #expect(throws: TPMError.self) { try await Self.activate(tpm, ekTemplate, challenge) }
            // swtpm answers TPM_RC_FAILURE for an RSA seed it cannot decrypt (libtpms's OpenSSL OAEP path; the
            // reference implementation says TPM_RC_VALUE) and TPM_RC_INTEGRITY for an ECC one (another seed).
            #expect(error?.code == .tss2 && error?.tss2?.isTPMLayer == true, "\(String(describing: error))")
            // The refusal is about the EK, not a TPM that stopped working: the same secret for this TPM's EK activates.
            let own = try CredentialChallenge.make(ekPublic: ek, akName: ak.name, secret: secret)
            #expect(try await Self.activate(tpm, ekTemplate, own) == secret)
        }
    }

    @Test(arguments: endorsementKeys)
    func aFlippedByteInTheEncryptedSecretIsRefusedByTheTPM(_ ekTemplate: EndorsementKeyTemplate) async throws {
        try await SoftwareTPM.with { tpm, _ in
            let (ek, ak) = try await Self.identity(tpm, ekTemplate)
            let secret = try await tpm.getRandom(32)
            let good = try CredentialChallenge.make(ekPublic: ek, akName: ak.name, secret: secret)
            // Last byte: the end of the RSA ciphertext, or of the ephemeral point's y coordinate.
            var encrypted = good.encryptedSecret
            encrypted[encrypted.count - 1] ^= 0x01
            let error = await #expect(throws: TPMError.self) {
                try await Self.activate(
                    tpm, ekTemplate, credentialBlob: good.credentialBlob, encryptedSecret: encrypted)
            }
            // swtpm: TPM_RC_FAILURE for the RSA ciphertext (see above), TPM_RC_ECC_POINT for a point off the curve.
            #expect(error?.code == .tss2 && error?.tss2?.isTPMLayer == true, "\(String(describing: error))")
            // The untouched challenge still activates: the failure was the flipped byte.
            #expect(try await Self.activate(tpm, ekTemplate, good) == secret)
        }
    }

    @Test(arguments: endorsementKeys)
    func aFlippedByteInTheCredentialBlobFailsTheTPMsIntegrityCheck(_ ekTemplate: EndorsementKeyTemplate) async throws {
        try await SoftwareTPM.with { tpm, _ in
            let (ek, ak) = try await Self.identity(tpm, ekTemplate)
            let secret = try await tpm.getRandom(32)
            let good = try CredentialChallenge.make(ekPublic: ek, akName: ak.name, secret: secret)
            // Byte 2 is the first byte of the integrity HMAC, the last byte is in encIdentity.
            for index in [2, good.credentialBlob.count - 1] {
                var blob = good.credentialBlob
                blob[index] ^= 0x80
                let error = await #expect(throws: TPMError.self) {
                    try await Self.activate(
                        tpm, ekTemplate, credentialBlob: blob, encryptedSecret: good.encryptedSecret)
                }
                #expect(error?.isTPM(Self.integrity) == true, "byte \(index): \(String(describing: error))")
            }
            #expect(try await Self.activate(tpm, ekTemplate, good) == secret)
        }
    }

    /// tpm2-tools randomises the seed, so the two blobs never match byte for byte: the comparison is that
    /// the TPM activates both, for the same EK, Name and secret, and that they have the same structure.
    @Test(.enabled(if: SoftwareTPM.canRunTPM2Tools, "tpm2-tools is not installed"), arguments: endorsementKeys)
    func theTPMActivatesBothTPM2MakecredentialsBlobAndVigilsForTheSameInputs(_ ekTemplate: EndorsementKeyTemplate)
        async throws
    {
        try await SoftwareTPM.with { tpm, _ in
            let (ek, ak) = try await Self.identity(tpm, ekTemplate)
            let dir = try ProcessRunner.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let secret = try await tpm.getRandom(32)

            let (toolsBlob, toolsEncrypted) = try AttestationTests.makeCredential(
                ekPublic: ek, name: ak.name, secret: secret, dir: dir)
            let vigil = try CredentialChallenge.make(ekPublic: ek, akName: ak.name, secret: secret)
            #expect(
                try await Self.activate(tpm, ekTemplate, credentialBlob: toolsBlob, encryptedSecret: toolsEncrypted)
                    == secret,
                "tpm2_makecredential, EK \(ekTemplate)")
            #expect(try await Self.activate(tpm, ekTemplate, vigil) == secret, "Vigil, EK \(ekTemplate)")
            #expect(vigil.credentialBlob.count == toolsBlob.count)
            // RSA: one OAEP block of the modulus size. ECC: the ephemeral point, two TPM2B_ECC_PARAMETERs. OpenSSL
            // drops a coordinate's leading zero bytes (1 run in 128 has one), Vigil writes the curve's full width;
            // the TPM takes both, so the comparison is of the shape, not of the byte count.
            switch ek.parameters {
            case .ecc(let ecc):
                let width = try #require(ecc.curve.coordinateSize)
                let vigilPoint = try #require(Self.pointCoordinateSizes(vigil.encryptedSecret), "Vigil's point")
                let toolsPoint = try #require(Self.pointCoordinateSizes(toolsEncrypted), "tpm2-tools' point")
                #expect(vigilPoint == [width, width], "Vigil writes both coordinates at the curve's width")
                #expect(toolsPoint.allSatisfy { $0 > 0 && $0 <= width }, "\(toolsPoint)")
            default:
                #expect(vigil.encryptedSecret.count == toolsEncrypted.count)
            }
            // Both start with the same TPM2B_DIGEST size (the nameAlg's digest size).
            #expect(vigil.credentialBlob.prefix(2) == toolsBlob.prefix(2))
        }
    }

    // MARK: Helpers

    /// The sizes of x and y in an ECC encrypted seed, a TPMS_ECC_POINT (two TPM2B_ECC_PARAMETERs, Part 2
    /// §11.2.5.2), as TPM2_ActivateCredential reads it; nil when the bytes are not exactly that.
    static func pointCoordinateSizes(_ bytes: [UInt8]) -> [Int]? {
        var sizes: [Int] = []
        var offset = 0
        while offset < bytes.count, sizes.count < 2 {
            guard offset + 2 <= bytes.count else { return nil }
            let size = Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
            offset += 2
            guard offset + size <= bytes.count else { return nil }
            offset += size
            sizes.append(size)
        }
        return sizes.count == 2 && offset == bytes.count ? sizes : nil
    }

    /// Provisions the identity and returns the EK's and the AK's public areas as the TPM reports them.
    static func identity(_ tpm: TPM, _ ekTemplate: EndorsementKeyTemplate) async throws -> (
        ek: TPMTPublic, ak: (publicArea: TPMTPublic, name: TPMName)
    ) {
        _ = try await IdentityProvisioner(tpm: tpm).provision()
        let ek = try #require(
            try await tpm.readPublic(ekTemplate.persistentHandle), "EK \(ekTemplate) was not provisioned")
        let ak = try #require(try await tpm.readPublic(IdentityKeyTemplates.akHandle))
        return (ek.publicArea, ak)
    }

    static func activate(_ tpm: TPM, _ ekTemplate: EndorsementKeyTemplate, _ challenge: CredentialChallenge)
        async throws(TPMError) -> [UInt8]
    {
        try await activate(
            tpm, ekTemplate, credentialBlob: challenge.credentialBlob, encryptedSecret: challenge.encryptedSecret)
    }

    /// TPM2_ActivateCredential with the AK as the object to activate and the persistent EK as the decryption key.
    static func activate(
        _ tpm: TPM, _ ekTemplate: EndorsementKeyTemplate, credentialBlob: [UInt8],
        encryptedSecret: [UInt8]
    ) async throws(TPMError) -> [UInt8] {
        try await tpm.withPersistent(ekTemplate.persistentHandle) { tpm, ekObject throws(TPMError) in
            try tpm.withPersistent(IdentityKeyTemplates.akHandle) { tpm, akObject throws(TPMError) in
                try tpm.activateCredential(
                    activating: akObject, endorsementKey: ekObject,
                    credentialBlob: credentialBlob, encryptedSecret: encryptedSecret
                ).unsafeCopy()
            }
        }
    }
}
