import Crypto

/// What a device sends back for an onboarding credential challenge: HMAC-SHA256 keyed with the secret
/// TPM2_ActivateCredential recovered, over a context string and the challenge id — never the secret itself.
///
/// Every MakeCredential to the same EK for the same AK Name looks alike to the TPM. If the device returned the
/// raw secret, whoever could show it another MakeCredential blob as an onboarding challenge (a secret envelope's,
/// say) would get that blob's secret back. Returned as this proof, the secret answers only the challenge it
/// was made for; secret envelopes derive their key with another context (``SecretEnvelope/key(activated:releaseNonce:)``).
public enum OnboardingProof {
    /// The domain-separation context.
    public static let context = "vigil-onboard-proof-v1"

    /// The proof for `challengeID`, from the activated `secret`.
    public static func expected(secret: [UInt8], challengeID: String) -> [UInt8] {
        Array(
            HMAC<SHA256>.authenticationCode(
                for: Array((context + "\u{0}" + challengeID).utf8), using: SymmetricKey(data: secret)))
    }
}
