import Foundation

/// What `vigil vault status` reports.
public struct VaultStatus: Codable, Sendable {
    /// One sealed PCR that differs from seal time, and why, as far as the event logs tell.
    public struct PCRChange: Codable, Sendable, Hashable {
        /// The PCR.
        public var pcr: Int
        /// Its SHA-256 value at seal time (hex).
        public var sealed: String
        /// Its value now (hex).
        public var now: String
        /// The events that changed (removed, added, altered), given an event log; or why they cannot be told.
        public var events: [String]
    }

    /// `fscrypt`.
    public var backend: String
    /// `locked`, `unlocked` or `locking` (removal pending on open files).
    public var state: String
    /// The sealing policy: bank and PCRs.
    public var sealedTo: String
    /// The policy digest the key is sealed under (hex).
    public var policyDigest: String
    /// PCRs that differ now from seal time (the vault will not unlock offline while any does).
    public var changedPCRs: [Int]
    /// Each changed PCR, its values and the events behind the change.
    public var changes: [PCRChange]
    /// The vault's id.
    public var vaultID: String?
    /// Whether the key is escrowed at a controller.
    public var escrowed: Bool
    /// Where it is escrowed.
    public var escrow: EscrowRecord?
    /// `pcr` (PolicyPCR) or `authorized` (PolicyAuthorize: signed approvals open it).
    public var sealing: String
    /// For an authorized vault: what a security team needs to sign approvals (`vigil vault approve-pcrs`).
    public var approval: ApprovalDescriptor?

    enum CodingKeys: String, CodingKey {
        case backend, state, sealedTo, policyDigest, changedPCRs = "changedPcrs", changes, vaultID = "vaultId",
            escrowed, escrow, sealing, approval
    }
}
