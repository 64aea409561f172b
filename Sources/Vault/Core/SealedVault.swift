public import Attest
public import AttestTPM
import Foundation
import SystemSupport

/// A vault whatever holds its data (an fscrypt directory, a LUKS2 volume): where its metadata lives, how a key is
/// checked to be its key, and how a key is installed (unlocking). Everything else (unseal, reseal, escrow,
/// recovery, approvals, status) is the same for every backend and lives here.
public protocol SealedVault: Sendable {
    /// The vault's path (directory, image file or block device).
    var location: String { get }
    /// Reads the metadata (untrusted input: size-capped and validated).
    func read() throws(VaultError) -> VaultMetadata
    /// Stores the metadata crash-safely (old or new, never neither).
    func write(_ metadata: VaultMetadata) throws(VaultError)
    /// Refuses a key that is not this vault's key.
    func checkKey(_ key: SecretBytes, _ metadata: VaultMetadata) throws(VaultError)
    /// Unlocks with the key.
    func install(_ key: SecretBytes, _ metadata: VaultMetadata) throws(VaultError)
    /// `locked`, `unlocked`, or a backend's own state.
    func state(_ metadata: VaultMetadata) throws(VaultError) -> String
    /// Records in `metadata` what identifies `key` (a key that passed ``checkKey(_:_:)``); LUKS2: the keyslot
    /// it opens, which differs from the recorded one when a rotation was interrupted.
    func adopt(_ key: SecretBytes, _ metadata: inout VaultMetadata) throws(VaultError)
}

extension SealedVault {
    public func adopt(_ key: SecretBytes, _ metadata: inout VaultMetadata) throws(VaultError) {}

    /// `vigil vault unlock PATH`: unseals the key (the PCRs must be those at seal time, or an approval's) and
    /// installs it.
    public func unlock(tpm: TPM, approvals: [PCRApproval] = []) async throws(VaultError) {
        let metadata = try read()
        let key = try await unsealKey(metadata, tpm: tpm, approvals: approvals)
        try checkKey(key, metadata)
        try install(key, metadata)
    }

    /// `vigil vault escrow PATH`: escrows the key of an unlockable vault (one made without a controller, or whose
    /// escrow is to be deposited again). The key comes from the current sealing.
    public func depositEscrow(tpm: TPM, _ escrow: EscrowDepositor, approvals: [PCRApproval] = [])
        async throws(VaultError) -> VaultMetadata
    {
        var metadata = try read()
        let key = try await unsealKey(metadata, tpm: tpm, approvals: approvals)
        try checkKey(key, metadata)
        let escrowKey: EscrowKey
        if let existing = metadata.escrowKey {
            escrowKey = existing
        } else {
            escrowKey = try await EscrowKey.create(tpm: tpm)
        }
        let vaultID = metadata.vaultID ?? VaultMetadata.newVaultID()
        metadata.escrowKey = escrowKey
        metadata.vaultID = vaultID
        metadata.escrow = try await escrow.deposit(
            key, escrowKey: escrowKey, vaultID: vaultID, sealing: metadata.sealing)
        CrashPoint.reached("vault.escrow.deposited")
        try write(metadata)
        return metadata
    }

    /// `vigil vault reseal PATH`: unseals with the current sealing and seals the same key again to the current
    /// values of `pcrs` (default: the PCRs sealed to now). The metadata is replaced atomically: a kill leaves the
    /// old or the new sealing, both of which hold the same key.
    public func reseal(
        tpm: TPM, pcrs: [Int]? = nil, bootLog: UnverifiedEventLog? = nil, approvals: [PCRApproval] = []
    ) async throws(VaultError) -> VaultMetadata {
        var metadata = try read()
        let key = try await unsealKey(metadata, tpm: tpm, approvals: approvals)
        try checkKey(key, metadata)
        return try await resealAndStore(key, &metadata, tpm: tpm, pcrs: pcrs ?? metadata.sealing.pcrs, bootLog: bootLog)
    }

    /// Recovery: opens `escrow` (handed back by the controller after a fresh pass) with the TPM, checks that it
    /// holds this directory's key, reseals it to the current PCRs and unlocks. `deviceID` is this device's id,
    /// which the escrow must name.
    public func recover(tpm: TPM, escrow: VaultEscrow, deviceID: String, bootLog: UnverifiedEventLog? = nil)
        async throws(VaultError) -> VaultMetadata
    {
        var metadata = try read()
        guard let escrowKey = metadata.escrowKey, let vaultID = metadata.vaultID else {
            throw VaultError(reason: "vault: \(location) was never escrowed: there is nothing to recover with")
        }
        let key = try await escrow.open(tpm: tpm, escrowKey: escrowKey, deviceID: deviceID, vaultID: vaultID)
        try checkKey(key, metadata)
        try adopt(key, &metadata)
        CrashPoint.reached("vault.recover.opened")
        // Resealed to the policy authenticated in the escrow, never to the (editable) metadata's.
        metadata.sealing.authorization = escrow.policy.authorization
        let stored = try await resealAndStore(key, &metadata, tpm: tpm, pcrs: escrow.policy.pcrs, bootLog: bootLog)
        CrashPoint.reached("vault.recover.resealed")
        try install(key, stored)
        return stored
    }

    public func resealAndStore(
        _ key: SecretBytes, _ metadata: inout VaultMetadata, tpm: TPM, pcrs: [Int], bootLog: UnverifiedEventLog?
    ) async throws(VaultError) -> VaultMetadata {
        metadata.sealing = try await PCRSealedKey.seal(
            key, tpm: tpm, pcrs: pcrs, authorization: metadata.sealing.authorization)
        CrashPoint.reached("vault.reseal.sealed")
        if let bootLog {
            metadata.bootRecord = SealedBootRecord(log: bootLog, pcrs: pcrs)
        } else {
            metadata.bootRecord = nil
        }
        try write(metadata)
        return metadata
    }

    /// The key, from the PCR sealing, or from an authorized sealing with one of `approvals`.
    public func unsealKey(_ metadata: VaultMetadata, tpm: TPM, approvals: [PCRApproval]) async throws(VaultError)
        -> SecretBytes
    {
        guard metadata.sealing.authorization != nil else { return try await metadata.sealing.unseal(tpm: tpm) }
        guard let vaultID = metadata.vaultID else {
            throw VaultError(reason: "vault: an authorized vault without an id")
        }
        return try await metadata.sealing.unseal(tpm: tpm, approvals: approvals, vaultID: vaultID)
    }

    /// `vigil vault revoke-approvals PATH`: raises the device's approval counter; approvals signed for earlier
    /// epochs stop opening (in the TPM). Returns the new epoch.
    public func revokeApprovals(tpm: TPM) async throws(VaultError) -> UInt64 {
        let metadata = try read()
        guard metadata.sealing.authorization != nil else {
            throw VaultError(reason: "vault: \(location) is sealed to PCRs, not to signed approvals")
        }
        return try await ApprovalCounter.revoke(tpm: tpm).epoch
    }

    /// The vault's state, which sealed PCRs differ now, and (given the current event log) which events changed.
    public func status(tpm: TPM, bootLog: UnverifiedEventLog? = nil) async throws(VaultError) -> VaultStatus {
        let metadata = try read()
        let state = try state(metadata)
        let changed = try await metadata.sealing.changedPCRs(tpm: tpm)
        let nowRecord = bootLog.map { SealedBootRecord(log: $0, pcrs: metadata.sealing.pcrs) }
        let replay = bootLog.map { EventLogReplay($0) }
        let changes = changed.map { c in
            var events: [String] = []
            if let nowRecord, let replay {
                if let before = metadata.bootRecord {
                    events = before.changes(in: c.pcr, now: nowRecord)
                } else {
                    events = ["no event log was recorded at seal time: cannot tell which events changed"]
                }
                let replayed = replay.value(.sha256, c.pcr).map(Hex.encode) ?? ""
                if replayed != c.now {
                    events.append(
                        "the event log does not explain PCR \(c.pcr)'s value now (its replay gives \(replayed.prefix(16))…, the TPM has \(c.now.prefix(16))…): something extended it without a log entry"
                    )
                }
            } else {
                events = ["give the event log (--eventlog) to see which events changed"]
            }
            return VaultStatus.PCRChange(pcr: c.pcr, sealed: c.sealed, now: c.now, events: events)
        }
        var approval: ApprovalDescriptor?
        if let authorization = metadata.sealing.authorization, let vaultID = metadata.vaultID {
            let counter = try await ApprovalCounter.read(tpm: tpm)
            approval = ApprovalDescriptor(
                vaultID: vaultID, pcrs: metadata.sealing.pcrs, epoch: counter.epoch, counterName: counter.name,
                authorityName: authorization.authorityName)
        }
        return VaultStatus(
            backend: metadata.backend, state: state,
            sealedTo: "\(metadata.sealing.bank):\(metadata.sealing.pcrs.map(String.init).joined(separator: ","))",
            policyDigest: metadata.sealing.policyDigest, changedPCRs: changed.map(\.pcr), changes: changes,
            vaultID: metadata.vaultID, escrowed: metadata.escrow != nil, escrow: metadata.escrow,
            sealing: metadata.sealing.authorization == nil ? "pcr" : "authorized", approval: approval)
    }
}
