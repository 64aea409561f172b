public import AttestTPM

/// The one public error type of `Vault`.
///
/// The vault (TPM-sealed disk keys for fscrypt and LUKS2, escrow) is roadmap item 5; this module
/// is laid out now so the package shape is stable. It depends only on the device side (`AttestTPM`).
public struct VaultError: Error, Hashable, Sendable, CustomStringConvertible {
    public let reason: String
    public let tpm: TPMError?
    public init(reason: String, tpm: TPMError? = nil) {
        self.reason = reason
        self.tpm = tpm
    }
    public var description: String { reason }
}
