import Attest
import AttestTPM
import Crypto
import Foundation
import Testing
import VigilTestSupport

/// Policy sessions, sealing and unsealing: PolicyPCR, PolicyAuthorize (signed policies), PolicySecret,
/// salted sessions with parameter encryption; and that software-computed policy digests equal the TPM's.
@Suite(.enabled(if: SoftwareTPM.canRun, "swtpm is not installed (apt-get install swtpm swtpm-tools)"))
struct SealingAndPolicyTests {
    static let selection = TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: [0, 7, 16])])
    static let secret: [UInt8] = Array("vault key: 32 bytes of entropy!!".utf8)

    /// A sealed data object: keyed-hash, no sensitiveDataOrigin (the data is ours), policy-only.
    static func sealedTemplate(authPolicy: [UInt8]) -> TPMTPublic {
        TPMTPublic(
            nameAlg: .sha256, objectAttributes: [.fixedTPM, .fixedParent, .noDA], authPolicy: authPolicy,
            parameters: .keyedHash(scheme: .null, unique: []))
    }

    @Test func softwarePolicyPCRDigestEqualsTheTPMsTrialDigest() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let selection = Self.selection
            let trial = try await tpm.withPolicySession(trial: true) { tpm, session throws(TPMError) in
                try tpm.policyPCR(session, selection: selection)
                return try tpm.policyGetDigest(session)
            }
            let (values, _) = try await tpm.pcrRead(selection)
            var software = try TPMPolicyDigest()
            try software.policyPCR(selection: selection, values: values)
            #expect(software.digest == trial)
        }
    }

    @Test func unsealSucceedsUnderThePolicyAndFailsWithPolicyFailAfterAPCRExtend() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let selection = Self.selection
            let secret = Self.secret
            let policy = try await tpm.withPolicySession(trial: true) { tpm, session throws(TPMError) in
                try tpm.policyPCR(session, selection: selection)
                return try tpm.policyGetDigest(session)
            }
            let blob = try await tpm.withPrimary(.owner, template: IdentityKeyTemplates.srk) {
                tpm, srk throws(TPMError) in
                try tpm.create(
                    parent: srk, template: Self.sealedTemplate(authPolicy: policy), sealedData: SecretBytes(secret))
            }
            func unseal() async throws -> [UInt8] {
                try await tpm.withPrimary(.owner, template: IdentityKeyTemplates.srk) { tpm, srk throws(TPMError) in
                    try tpm.withLoaded(parent: srk, blob) { tpm, item throws(TPMError) in
                        // Salted by the SRK: the secret crosses the TPM interface encrypted.
                        try tpm.withPolicySession(salt: srk) { tpm, session throws(TPMError) in
                            try tpm.policyPCR(session, selection: selection)
                            return try tpm.unseal(item, session: session).unsafeCopy()
                        }
                    }
                }
            }
            #expect(try await unseal() == secret)
            try await tpm.pcrExtend(
                16,
                digests: [
                    .sha256: Array(SHA256.hash(data: [1])), .sha1: Array(Insecure.SHA1.hash(data: [1])),
                    .sha384: Array(SHA384.hash(data: [1])),
                ])
            let error = await #expect(throws: TPMError.self) { try await unseal() }
            #expect(error?.isTPM(.policyFail) == true, "\(String(describing: error))")
            #expect(error?.reason.hasPrefix("Esys_Unseal: tpm:session(1):") == true, "\(String(describing: error))")
            #expect(error?.tss2?.decoded.contains("policy") == true, "\(String(describing: error))")
        }
    }

    @Test func policyAuthorizeLetsASignedPolicyForNewPCRValuesOpenTheSameObject() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let selection = Self.selection
            let secret = Self.secret
            // The authority's key (the security team's, held by the controller).
            let authority = P256.Signing.PrivateKey()
            let raw = Array(authority.publicKey.rawRepresentation)
            let authorityPublic = TPMTPublic(
                nameAlg: .sha256, objectAttributes: [.sign, .userWithAuth],
                parameters: .ecc(
                    .init(
                        symmetric: .null, scheme: TPMTScheme(.ecdsa, hashAlg: .sha256), curve: .nistP256,
                        x: Array(raw[0..<32]), y: Array(raw[32..<64]))))
            let authorityName = try authorityPublic.name()
            let policyRef = Array("vigil-vault".utf8)
            var authorizePolicy = try TPMPolicyDigest()
            try authorizePolicy.policyAuthorize(keySign: authorityName, policyRef: policyRef)
            let objectPolicy = authorizePolicy.digest

            let blob = try await tpm.withPrimary(.owner, template: IdentityKeyTemplates.srk) {
                tpm, srk throws(TPMError) in
                try tpm.create(
                    parent: srk, template: Self.sealedTemplate(authPolicy: objectPolicy),
                    sealedData: SecretBytes(secret))
            }
            /// Signs "PCRs must be what they are now" and unseals with it.
            func approveCurrentPCRsAndUnseal() async throws -> [UInt8] {
                let (values, _) = try await tpm.pcrRead(selection)
                var approved = try TPMPolicyDigest()
                try approved.policyPCR(selection: selection, values: values)
                let aHash = try TPMPolicyDigest.approvalDigest(approvedPolicy: approved.digest, policyRef: policyRef)
                // ECDSA-SHA256 over approvedPolicy || policyRef is a signature over aHash.
                let sig = try authority.signature(for: approved.digest + policyRef)
                let rawSig = Array(sig.rawRepresentation)
                let signature = TPMTSignature(
                    algorithm: .ecdsa, hashAlg: .sha256, body: .ecc(r: Array(rawSig[0..<32]), s: Array(rawSig[32..<64]))
                )
                let approvedDigest = approved.digest
                // Loaded in the owner hierarchy: a key in the null hierarchy yields a null ticket.
                let ticket = try await tpm.withExternalPublic(authorityPublic, hierarchy: .owner) {
                    tpm, key throws(TPMError) in
                    try tpm.verifySignature(key, digest: aHash, signature: signature)
                }
                return try await tpm.withPrimary(.owner, template: IdentityKeyTemplates.srk) {
                    tpm, srk throws(TPMError) in
                    try tpm.withLoaded(parent: srk, blob) { tpm, item throws(TPMError) in
                        try tpm.withPolicySession(salt: srk) { tpm, session throws(TPMError) in
                            try tpm.policyPCR(session, selection: selection)
                            try tpm.policyAuthorize(
                                session, approvedPolicy: approvedDigest, policyRef: policyRef,
                                keySign: authorityName, ticket: ticket)
                            return try tpm.unseal(item, session: session).unsafeCopy()
                        }
                    }
                }
            }
            #expect(try await approveCurrentPCRsAndUnseal() == secret)
            // An "approved update": the PCRs change, a new approval is signed, the same object opens.
            try await tpm.pcrExtend(
                16,
                digests: [
                    .sha256: Array(SHA256.hash(data: [2])), .sha1: Array(Insecure.SHA1.hash(data: [2])),
                    .sha384: Array(SHA384.hash(data: [2])),
                ])
            #expect(try await approveCurrentPCRsAndUnseal() == secret)
        }
    }

    @Test func softwarePolicySecretDigestMatchesTheTCGEKPolicy() throws {
        var policy = try TPMPolicyDigest()
        try policy.policySecret(authObjectName: [0x40, 0x00, 0x00, 0x0B])  // TPM_RH_ENDORSEMENT
        #expect(Hex.encode(policy.digest) == "837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa")
    }
}

/// Salted HMAC sessions with parameter encryption, and RSA-PSS signatures checked by the verifier.
@Suite(.enabled(if: SoftwareTPM.canRun, "swtpm is not installed (apt-get install swtpm swtpm-tools)"))
struct SessionAndSchemeTests {
    @Test func unsealThroughASaltedHMACSessionWithParameterEncryption() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let secret = Array("sealed under an auth value".utf8)
            let template = TPMTPublic(
                nameAlg: .sha256, objectAttributes: [.fixedTPM, .fixedParent, .userWithAuth, .noDA],
                parameters: .keyedHash(scheme: .null, unique: []))
            let out = try await tpm.withPrimary(.owner, template: IdentityKeyTemplates.srk) {
                tpm, srk throws(TPMError) in
                let blob = try tpm.create(
                    parent: srk, template: template, authValue: SecretBytes(utf8: "pin-1234"),
                    sealedData: SecretBytes(secret))
                return try tpm.withLoaded(parent: srk, blob, authValue: SecretBytes(utf8: "pin-1234")) {
                    tpm, item throws(TPMError) in
                    try tpm.withHMACSession(salt: srk, encryptParameters: true) { tpm, session throws(TPMError) in
                        try tpm.unseal(item, session: session).unsafeCopy()
                    }
                }
            }
            #expect(out == secret)
            // The same session type with a wrong auth value fails: the session really authorizes.
            let error = await #expect(throws: TPMError.self) {
                try await tpm.withPrimary(.owner, template: IdentityKeyTemplates.srk) { tpm, srk throws(TPMError) in
                    let blob = try tpm.create(
                        parent: srk, template: template, authValue: SecretBytes(utf8: "pin-1234"),
                        sealedData: SecretBytes(secret))
                    return try tpm.withLoaded(parent: srk, blob, authValue: SecretBytes(utf8: "pin-0000")) {
                        tpm, item throws(TPMError) in
                        try tpm.withHMACSession(salt: srk, encryptParameters: true) { tpm, session throws(TPMError) in
                            try tpm.unseal(item, session: session).count
                        }
                    }
                }
            }
            #expect(error?.isTPM(.badAuth) == true, "\(String(describing: error))")
        }
    }

    @Test(arguments: [TPMAlgorithmID.rsassa, .rsapss])
    func rsaSignaturesFromTheTPMVerifyInTheVerifier(_ scheme: TPMAlgorithmID) async throws {
        try await SoftwareTPM.with { tpm, _ in
            let template = TPMTPublic(
                nameAlg: .sha256,
                objectAttributes: [.fixedTPM, .fixedParent, .sensitiveDataOrigin, .userWithAuth, .noDA, .sign],
                parameters: .rsa(
                    .init(symmetric: .null, scheme: TPMTScheme(scheme, hashAlg: .sha256), keyBits: 2048, modulus: [])))
            let message = Array("quote-like payload".utf8)
            let digest = Array(SHA256.hash(data: message))
            let (sig, key) = try await tpm.withPrimary(.owner, template: template) { tpm, k throws(TPMError) in
                (try tpm.sign(k, digest: digest, scheme: scheme, hashAlg: .sha256), k.publicArea)
            }
            let ak = try AKPublic(signingKey: try #require(key))
            #expect(sig.algorithm == scheme)
            #expect(ak.isValidSignature(sig, for: message))
            #expect(!ak.isValidSignature(sig, for: message + [0]))
        }
    }
}
