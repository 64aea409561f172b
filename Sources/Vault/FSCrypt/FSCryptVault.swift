public import Attest
public import AttestTPM
public import Crypto
import Foundation
import SystemSupport

/// A vault directory: fscrypt v2 under a 64-byte key sealed in the TPM to PCR values (``PCRSealedKey``).
///
/// The metadata lives beside the directory, in `.<name>.vigil-vault.json` (0600, written with fsync and
/// rename): the key identifier, and the sealing (blob, PCRs, policy digest, values at seal time), never the key.
/// Creation is ordered so a kill at any step leaves either nothing or a vault that opens: the sealed key is on
/// disk before the kernel sees it, and the directory is encrypted (policy set) only once the key opens.
public struct FSCryptVault: SealedVault {
    /// The metadata format.
    public static let currentFormat = 1

    /// What is stored beside the directory.
    public typealias Metadata = VaultMetadata

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
        try PCRSealedKey.checkPCRSet(pcrs)
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
        let vaultID = VaultMetadata.newVaultID()
        var authorization: AuthorizedSealing?
        if let authority {
            authorization = try AuthorizedSealing(
                authority: authority, counter: try await ApprovalCounter.ensure(tpm: tpm), vaultID: vaultID)
        }
        let key = try await PCRSealedKey.generateKey(tpm: tpm, size: FSCryptDirectory.masterKeySize)
        let sealing = try await PCRSealedKey.seal(key, tpm: tpm, pcrs: pcrs, authorization: authorization)
        let escrowKey = try await EscrowKey.create(tpm: tpm)
        CrashPoint.reached("vault.create.sealed")
        // The identifier is the kernel's derivation of the key: add it first (nothing is encrypted yet).
        let identifier = try directory.addKey(key)
        CrashPoint.reached("vault.create.key-added")
        var metadata = Metadata(
            format: Self.currentFormat, backend: "fscrypt", keyIdentifier: Hex.encode(identifier), sealing: sealing,
            createdAt: Date(), vaultID: vaultID, escrowKey: escrowKey, escrow: nil,
            bootRecord: bootLog.map { SealedBootRecord(log: $0, pcrs: pcrs) })
        if let escrow {
            metadata.escrow = try await escrow.deposit(key, escrowKey: escrowKey, vaultID: vaultID, sealing: sealing)
            CrashPoint.reached("vault.create.escrowed")
        }
        try write(metadata)
        CrashPoint.reached("vault.create.metadata-written")
        try directory.setPolicy(identifier: identifier)
        return metadata
    }

    /// Refuses a key that is not this directory's: the kernel's identifier of it must be the recorded one. The
    /// identifier is computed without adding the key (HKDF-SHA512 as fscrypt does: FSCryptDirectory).
    public func checkKey(_ key: SecretBytes, _ metadata: Metadata) throws(VaultError) {
        guard Hex.encode(FSCryptDirectory.keyIdentifier(of: key)) == metadata.keyIdentifier else {
            throw VaultError(reason: "vault: the key is not this directory's key (its fscrypt identifier differs)")
        }
    }

    /// Adds the key to the filesystem keyring (the unlock itself), checking the kernel's identifier of it.
    public func install(_ key: SecretBytes, _ metadata: VaultMetadata) throws(VaultError) {
        let identifier = try directory.addKey(key)
        guard Hex.encode(identifier) == metadata.keyIdentifier else {
            _ = try? directory.removeKey(identifier: identifier)
            throw VaultError(reason: "vault: the unsealed key is not this directory's key (its identifier differs)")
        }
    }

    /// The vault's path.
    public var location: String { directory.path }

    /// `locked`, `unlocked` or `locking` (removal pending on open files).
    public func state(_ metadata: VaultMetadata) throws(VaultError) -> String {
        switch try directory.keyStatus(identifier: Hex.decode(metadata.keyIdentifier) ?? []) {
        case .absent: "locked"
        case .present: "unlocked"
        case .incompletelyRemoved: "locking"
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
    public typealias Status = VaultStatus

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

    public func write(_ metadata: Metadata) throws(VaultError) {
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
