public import AttestTPM

/// The one public error type of `Vault`: what failed, where, and the TPM's or the kernel's error behind it.
public struct VaultError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What failed and where.
    public let reason: String
    /// The TPM error behind it, if any.
    public let tpm: TPMError?
    /// The kernel's errno behind it, if any.
    public let errno: Int32?

    /// An error.
    public init(reason: String, tpm: TPMError? = nil, errno: Int32? = nil) {
        self.reason = reason
        self.tpm = tpm
        self.errno = errno
    }

    /// The reason.
    public var description: String { reason }
}
