public import Attest

/// A TPM object usable inside the ``TPM`` actor: a transient key loaded by a scoped call, or a
/// persistent key or NV index opened by one. Holds the ESAPI reference (`ESYS_TR`, an index into the
/// actor's ESAPI context), which means nothing outside the actor and nothing after its scope ends:
/// a stale reference makes ESAPI answer TSS2_ESYS_RC_BAD_TR, never touches freed memory. It is
/// `Sendable` only so that nested scoped calls can capture it.
public struct TPMObject: Sendable {
    let tr: UInt32
    /// The object's Name (nameAlg || H(TPMT_PUBLIC)), as the TPM computed it.
    public let name: TPMName
    /// The public area the TPM returned (nil for NV indices).
    public let publicArea: TPMTPublic?
    /// The persistent handle, for persistent objects.
    public let handle: TPMHandle?
}

/// An authorization session inside the ``TPM`` actor (TPM2_StartAuthSession), flushed by the scoped
/// call that started it. Like ``TPMObject``, a stale reference fails with TSS2_ESYS_RC_BAD_TR.
public struct TPMSession: Sendable {
    let tr: UInt32
    public let kind: Kind

    public enum Kind: Sendable {
        /// TPM_SE_HMAC, optionally salted, with AES-128-CFB parameter encryption.
        case hmac
        /// TPM_SE_POLICY.
        case policy
        /// TPM_SE_TRIAL: computes a policy digest without authorizing anything.
        case trial
    }
}

/// The sensitive and public parts of an object created by TPM2_Create, to be loaded later.
/// The private part is encrypted by the parent (TPM2B_PRIVATE) and useless outside that TPM.
public struct TPMKeyBlob: Hashable, Sendable, Codable {
    /// TPM2B_PRIVATE payload.
    public let privateArea: [UInt8]
    /// TPMT_PUBLIC encoding.
    public let publicArea: [UInt8]

    public init(privateArea: [UInt8], publicArea: [UInt8]) {
        self.privateArea = privateArea
        self.publicArea = publicArea
    }

    public func decodedPublic() throws(AttestError) -> TPMTPublic { try TPMTPublic(tpmtPublicBytes: publicArea) }
}
