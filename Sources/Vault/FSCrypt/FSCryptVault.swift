public import Attest
public import AttestTPM
public import Crypto
public import Foundation
import SystemSupport

/// A vault directory: fscrypt v2 under a 64-byte key sealed in the TPM to PCR values (``PCRSealedKey``).
///
/// The metadata lives beside the directory, in `.<name>.vigil-vault.json` (0600, written with fsync and
/// rename): the key identifier, and the sealing (blob, PCRs, policy digest, values at seal time), never the key.
/// Creation is ordered so a kill at any step leaves either nothing or a vault that opens: the sealed key is on
/// disk before the kernel sees it, and the directory is encrypted (policy set) only once the key opens.
public struct FSCryptVault: Sendable {
    /// The metadata format.
    public static let currentFormat = 1

    /// What is stored beside the directory.
    public struct Metadata: Codable, Sendable, Hashable {
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

    /// The vault directory.
    public let directory: FSCryptDirectory

    /// The vault at `path`.
    public init(path: String) { directory = FSCryptDirectory(path: path) }

    /// The metadata file's path.
    public var metadataPath: String {
        let url = URL(fileURLWithPath: directory.path)
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).vigil-vault.json")
            .path
    }

    /// `vigil vault create --backend fscrypt PATH`: a fresh key from the TPM and OS RNGs, sealed to `pcrs`,
    /// escrowed (when `escrow` is given) to a new TPM escrow key and deposited before anything is encrypted with it,
    /// added to the keyring, and the (empty) directory encrypted with it. The vault is left unlocked.
    ///
    /// Crash-ordered: the metadata (sealing, escrow record) is on disk before the directory is encrypted, so a kill
    /// at any step leaves either a plain empty directory (create again: an interrupted creation is redone) or a vault
    /// that opens.
    public func create(
        tpm: TPM, pcrs: [Int] = PCRSealedKey.defaultPCRs, bootLog: UnverifiedEventLog? = nil,
        escrow: EscrowDepositor? = nil, authority: P256.Signing.PublicKey? = nil
    ) async throws(VaultError) -> Metadata {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue
        else { throw VaultError(reason: "vault: \(directory.path) is not a directory") }
        guard (try? FileManager.default.contentsOfDirectory(atPath: directory.path))?.isEmpty == true else {
            throw VaultError(
                reason: "vault: \(directory.path) is not empty: a vault is encrypted before anything is written in it")
        }
        if try directory.policyIdentifier() != nil {
            throw VaultError(reason: "vault: \(directory.path) is already encrypted")
        }
        var authorization: AuthorizedSealing?
        if let authority {
            authorization = try AuthorizedSealing(
                authority: authority, counter: try await ApprovalCounter.ensure(tpm: tpm))
        }
        let key = try await PCRSealedKey.generateKey(tpm: tpm, size: FSCryptDirectory.masterKeySize)
        let sealing = try await PCRSealedKey.seal(key, tpm: tpm, pcrs: pcrs, authorization: authorization)
        let escrowKey = try await EscrowKey.create(tpm: tpm)
        let vaultID = Hex.encode((0..<16).map { _ in UInt8.random(in: .min ... .max) })
        // The identifier is the kernel's derivation of the key: add it first (nothing is encrypted yet).
        let identifier = try directory.addKey(key)
        var metadata = Metadata(
            format: Self.currentFormat, backend: "fscrypt", keyIdentifier: Hex.encode(identifier), sealing: sealing,
            createdAt: Date(), vaultID: vaultID, escrowKey: escrowKey, escrow: nil,
            bootRecord: bootLog.map { SealedBootRecord(log: $0, pcrs: pcrs) })
        if let escrow {
            metadata.escrow = try await escrow.deposit(key, escrowKey: escrowKey, vaultID: vaultID)
        }
        try write(metadata)
        try directory.setPolicy(identifier: identifier)
        return metadata
    }

    /// `vigil vault escrow PATH`: escrows the key of an unlockable vault (one made without a controller, or whose
    /// escrow is to be deposited again). The key comes from the current sealing.
    public func depositEscrow(tpm: TPM, _ escrow: EscrowDepositor, approvals: [PCRApproval] = [])
        async throws(VaultError) -> Metadata
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
        let vaultID = metadata.vaultID ?? Hex.encode((0..<16).map { _ in UInt8.random(in: .min ... .max) })
        metadata.escrowKey = escrowKey
        metadata.vaultID = vaultID
        metadata.escrow = try await escrow.deposit(key, escrowKey: escrowKey, vaultID: vaultID)
        try write(metadata)
        return metadata
    }

    /// `vigil vault reseal PATH`: unseals with the current sealing and seals the same key again to the current
    /// values of `pcrs` (default: the PCRs sealed to now). The metadata is replaced atomically: a kill leaves the
    /// old or the new sealing, both of which hold the same key.
    public func reseal(
        tpm: TPM, pcrs: [Int]? = nil, bootLog: UnverifiedEventLog? = nil, approvals: [PCRApproval] = []
    ) async throws(VaultError) -> Metadata {
        var metadata = try read()
        let key = try await unsealKey(metadata, tpm: tpm, approvals: approvals)
        try checkKey(key, metadata)
        return try await resealAndStore(key, &metadata, tpm: tpm, pcrs: pcrs ?? metadata.sealing.pcrs, bootLog: bootLog)
    }

    /// Recovery: opens `escrow` (handed back by the controller after a fresh pass) with the TPM, checks that it
    /// holds this directory's key, reseals it to the current PCRs and unlocks. `deviceID` is this device's id,
    /// which the escrow must name.
    public func recover(tpm: TPM, escrow: VaultEscrow, deviceID: String, bootLog: UnverifiedEventLog? = nil)
        async throws(VaultError) -> Metadata
    {
        var metadata = try read()
        guard let escrowKey = metadata.escrowKey, let vaultID = metadata.vaultID else {
            throw VaultError(reason: "vault: \(directory.path) was never escrowed: there is nothing to recover with")
        }
        let key = try await escrow.open(tpm: tpm, escrowKey: escrowKey, deviceID: deviceID, vaultID: vaultID)
        try checkKey(key, metadata)
        let stored = try await resealAndStore(
            key, &metadata, tpm: tpm, pcrs: metadata.sealing.pcrs, bootLog: bootLog)
        _ = try directory.addKey(key)
        return stored
    }

    func resealAndStore(
        _ key: SecretBytes, _ metadata: inout Metadata, tpm: TPM, pcrs: [Int], bootLog: UnverifiedEventLog?
    ) async throws(VaultError) -> Metadata {
        metadata.sealing = try await PCRSealedKey.seal(
            key, tpm: tpm, pcrs: pcrs, authorization: metadata.sealing.authorization)
        if let bootLog {
            metadata.bootRecord = SealedBootRecord(log: bootLog, pcrs: pcrs)
        } else {
            metadata.bootRecord = nil
        }
        try write(metadata)
        return metadata
    }

    /// The key, from the PCR sealing, or from an authorized sealing with one of `approvals`.
    func unsealKey(_ metadata: Metadata, tpm: TPM, approvals: [PCRApproval]) async throws(VaultError) -> SecretBytes {
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
            throw VaultError(reason: "vault: \(directory.path) is sealed to PCRs, not to signed approvals")
        }
        return try await ApprovalCounter.revoke(tpm: tpm).epoch
    }

    /// Refuses a key that is not this directory's: the kernel's identifier of it must be the recorded one. The
    /// identifier is computed without adding the key (HKDF-SHA512 as fscrypt does: FSCryptDirectory).
    func checkKey(_ key: SecretBytes, _ metadata: Metadata) throws(VaultError) {
        guard Hex.encode(FSCryptDirectory.keyIdentifier(of: key)) == metadata.keyIdentifier else {
            throw VaultError(reason: "vault: the key is not this directory's key (its fscrypt identifier differs)")
        }
    }

    /// `vigil vault unlock PATH`: unseals the key (the PCRs must be those at seal time) and adds it to the keyring.
    public func unlock(tpm: TPM, approvals: [PCRApproval] = []) async throws(VaultError) {
        let metadata = try read()
        let key = try await unsealKey(metadata, tpm: tpm, approvals: approvals)
        try checkKey(key, metadata)
        let identifier = try directory.addKey(key)
        guard Hex.encode(identifier) == metadata.keyIdentifier else {
            _ = try? directory.removeKey(identifier: identifier)
            throw VaultError(reason: "vault: the unsealed key is not this directory's key (its identifier differs)")
        }
    }

    /// `vigil vault lock PATH`: removes the key from the keyring. False when open files still hold it (the
    /// kernel completes the removal when they close).
    @discardableResult
    public func lock() throws(VaultError) -> Bool {
        let metadata = try read()
        return try directory.removeKey(identifier: Hex.decode(metadata.keyIdentifier) ?? [])
    }

    /// What `vigil vault status` reports.
    public struct Status: Codable, Sendable {
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

    /// The vault's state, which sealed PCRs differ now, and (given the current event log) which events changed.
    public func status(tpm: TPM, bootLog: UnverifiedEventLog? = nil) async throws(VaultError) -> Status {
        let metadata = try read()
        let state: String
        switch try directory.keyStatus(identifier: Hex.decode(metadata.keyIdentifier) ?? []) {
        case .absent: state = "locked"
        case .present: state = "unlocked"
        case .incompletelyRemoved: state = "locking"
        }
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
            return Status.PCRChange(pcr: c.pcr, sealed: c.sealed, now: c.now, events: events)
        }
        var approval: ApprovalDescriptor?
        if let authorization = metadata.sealing.authorization, let vaultID = metadata.vaultID {
            let counter = try await ApprovalCounter.read(tpm: tpm)
            approval = ApprovalDescriptor(
                vaultID: vaultID, pcrs: metadata.sealing.pcrs, epoch: counter.epoch, counterName: counter.name,
                authorityName: authorization.authorityName)
        }
        return Status(
            backend: metadata.backend, state: state,
            sealedTo: "\(metadata.sealing.bank):\(metadata.sealing.pcrs.map(String.init).joined(separator: ","))",
            policyDigest: metadata.sealing.policyDigest, changedPCRs: changed.map(\.pcr), changes: changes,
            vaultID: metadata.vaultID, escrowed: metadata.escrow != nil, escrow: metadata.escrow,
            sealing: metadata.sealing.authorization == nil ? "pcr" : "authorized", approval: approval)
    }

    public func read() throws(VaultError) -> Metadata {
        guard let data = FileManager.default.contents(atPath: metadataPath), data.count <= 1 << 20 else {
            throw VaultError(reason: "vault: no vault metadata at \(metadataPath) (not a Vigil vault?)")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let m = try? decoder.decode(Metadata.self, from: data), m.format == Self.currentFormat,
            m.backend == "fscrypt"
        else { throw VaultError(reason: "vault: \(metadataPath) is not format-\(Self.currentFormat) fscrypt metadata") }
        return m
    }

    func write(_ metadata: Metadata) throws(VaultError) {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try AtomicFile.write(
                Array(try encoder.encode(metadata)), to: URL(fileURLWithPath: metadataPath), mode: 0o600)
        } catch {
            throw VaultError(reason: "vault: cannot write \(metadataPath): \(error)")
        }
    }
}
