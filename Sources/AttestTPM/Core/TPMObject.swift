public import Attest

/// A TPM object usable inside the ``TPM`` actor: a transient key loaded by a scoped call, or a
/// persistent key or NV index opened by one. Holds the ESAPI reference (`ESYS_TR`), which never
/// leaves the actor; the type is deliberately not `Sendable`, so it cannot escape the scope that
/// flushes or closes it.
public struct TPMObject {
    let tr: UInt32
    /// The object's Name (nameAlg || H(TPMT_PUBLIC)), as the TPM computed it.
    public let name: TPMName
    /// The public area the TPM returned (nil for NV indices).
    public let publicArea: TPMTPublic?
    /// The persistent handle, for persistent objects.
    public let handle: TPMHandle?
}

@available(*, unavailable)
extension TPMObject: Sendable {}

/// An authorization session inside the ``TPM`` actor (TPM2_StartAuthSession), flushed by the scoped
/// call that started it. Not `Sendable`, like ``TPMObject``.
public struct TPMSession {
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

@available(*, unavailable)
extension TPMSession: Sendable {}

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
