public import Attest
public import AttestTPM

/// `vigil tpm activate-credential`: answers a verifier's credential challenge (TPM2_ActivateCredential,
/// Part 3 §12.5) with the TPM's EK and AK, proving to the verifier that this TPM holds both.
///
/// The challenge names the EK (its public area) and the AK (its Name). Only the EK at one of Vigil's EK
/// handles whose public area is exactly the challenge's, and the AK at its handle whose Name is the
/// challenge's, are used: a challenge for other keys is refused here, before the TPM is asked.
public enum CredentialActivation {
    public static func answer(_ challenge: CredentialChallenge, tpm: TPM) async throws(TPMError) -> SecretBytes {
        var ekHandle: TPMHandle?
        for template in EndorsementKeyTemplate.allCases {
            if let ek = try await tpm.readPublic(template.persistentHandle), ek.publicArea == challenge.ekPublic {
                ekHandle = template.persistentHandle
                break
            }
        }
        guard let ekHandle else {
            throw TPMError(
                code: .invalidArgument,
                reason: "the challenge is for an EK this TPM does not hold at Vigil's EK handles")
        }
        guard let ak = try await tpm.readPublic(IdentityKeyTemplates.akHandle), ak.name == challenge.akName else {
            throw TPMError(
                code: .invalidArgument,
                reason:
                    "the challenge is for AK \(challenge.akName), not this TPM's AK at \(IdentityKeyTemplates.akHandle)"
            )
        }
        return try await tpm.withPersistent(ekHandle) { tpm, ekObject throws(TPMError) in
            try tpm.withPersistent(IdentityKeyTemplates.akHandle) { tpm, akObject throws(TPMError) in
                try tpm.activateCredential(
                    activating: akObject, endorsementKey: ekObject,
                    credentialBlob: challenge.credentialBlob, encryptedSecret: challenge.encryptedSecret)
            }
        }
    }
}
