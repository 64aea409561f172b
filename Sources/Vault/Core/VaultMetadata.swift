import Attest
public import Foundation

/// What a vault stores (beside an fscrypt directory, or in a LUKS2 token): the key's identity, the sealing,
/// the escrow record and the boot record, never the key.
public struct VaultMetadata: Codable, Sendable, Hashable {
    /// A new vault id: 16 random bytes, hex.
    static func newVaultID() -> String { Hex.encode((0..<16).map { _ in UInt8.random(in: .min ... .max) }) }

    /// ``currentFormat``.
    public var format: Int
    /// `fscrypt`.
    public var backend: String
    /// The fscrypt key identifier (hex), as the kernel derived it.
    public var keyIdentifier: String
    /// The sealed key.
    public var sealing: PCRSealedKey
    /// When the vault was created.
    public var createdAt: Date
    /// The vault's id (random, hex): bound in its escrow. Absent in vaults made before escrow existed.
    public var vaultID: String?
    /// The TPM key that opens this vault's escrow.
    public var escrowKey: EscrowKey?
    /// Where the escrow was deposited, if it was.
    public var escrow: EscrowRecord?
    /// The sealed PCRs' events at seal time (when an event log was given).
    public var bootRecord: SealedBootRecord?

    enum CodingKeys: String, CodingKey {
        case format, backend, keyIdentifier, sealing, createdAt, vaultID = "vaultId", escrowKey, escrow, bootRecord
    }
}
