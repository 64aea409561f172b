import AttestTPM
public import Foundation

/// Where a vault's escrow was deposited: the controller's secret name and version, and which TPM key opens it.
/// Recorded in the vault's metadata (never the escrow itself: kept on the device, it would let anyone with this
/// TPM open the vault without the controller's consent).
public struct EscrowRecord: Codable, Sendable, Hashable {
    /// The controller's secret name (`escrow.<vault id>`).
    public var name: String
    /// The version the controller stored.
    public var version: Int
    /// The escrow key's Name (hex).
    public var escrowKeyName: String
    /// When it was deposited.
    public var depositedAt: Date

    /// A record.
    public init(name: String, version: Int, escrowKeyName: String, depositedAt: Date) {
        self.name = name
        self.version = version
        self.escrowKeyName = escrowKeyName
        self.depositedAt = depositedAt
    }
}

/// Seals a vault key into a ``VaultEscrow`` for this device and hands it to `upload` (the controller's
/// `POST /v1/escrow/{name}`, supplied by the node), which returns the version stored.
public struct EscrowDepositor: Sendable {
    /// This device's id (`vd-…`), bound in the escrow.
    public let deviceID: String
    /// Deposits `blob` as secret `name` and returns the stored version.
    public let upload: @Sendable (_ name: String, _ blob: [UInt8]) async throws -> Int

    /// A depositor.
    public init(deviceID: String, upload: @escaping @Sendable (_ name: String, _ blob: [UInt8]) async throws -> Int) {
        self.deviceID = deviceID
        self.upload = upload
    }

    /// The controller's secret name for a vault's escrow.
    public static func secretName(vaultID: String) -> String { "escrow.\(vaultID)" }

    func deposit(_ key: SecretBytes, escrowKey: EscrowKey, vaultID: String, sealing: PCRSealedKey)
        async throws(VaultError) -> EscrowRecord
    {
        let escrow = try VaultEscrow.seal(
            key, to: escrowKey, deviceID: deviceID, vaultID: vaultID,
            policy: VaultEscrow.SealingPolicy(pcrs: sealing.pcrs, authorization: sealing.authorization))
        let name = Self.secretName(vaultID: vaultID)
        let version: Int
        do { version = try await upload(name, try escrow.json()) } catch let e as VaultError { throw e } catch {
            throw VaultError(reason: "vault: depositing the escrow at the controller failed: \(error)")
        }
        return EscrowRecord(name: name, version: version, escrowKeyName: escrowKey.name, depositedAt: Date())
    }
}
