import Attest
public import AttestTPM
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
    /// added to the keyring, and the (empty) directory encrypted with it. The vault is left unlocked.
    public func create(tpm: TPM, pcrs: [Int] = PCRSealedKey.defaultPCRs) async throws(VaultError) -> Metadata {
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
        let key = try await PCRSealedKey.generateKey(tpm: tpm, size: FSCryptDirectory.masterKeySize)
        let sealing = try await PCRSealedKey.seal(key, tpm: tpm, pcrs: pcrs)
        // The identifier is the kernel's derivation of the key: add it first (nothing is encrypted yet).
        let identifier = try directory.addKey(key)
        let metadata = Metadata(
            format: Self.currentFormat, backend: "fscrypt", keyIdentifier: Hex.encode(identifier), sealing: sealing,
            createdAt: Date())
        try write(metadata)
        try directory.setPolicy(identifier: identifier)
        return metadata
    }

    /// `vigil vault unlock PATH`: unseals the key (the PCRs must be those at seal time) and adds it to the keyring.
    public func unlock(tpm: TPM) async throws(VaultError) {
        let metadata = try read()
        let key = try await metadata.sealing.unseal(tpm: tpm)
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
        /// `fscrypt`.
        public var backend: String
        /// `locked`, `unlocked` or `locking` (removal pending on open files).
        public var state: String
        /// The sealing policy: bank and PCRs.
        public var sealedTo: String
        /// PCRs that differ now from seal time (the vault will not unlock offline while any does).
        public var changedPCRs: [Int]

        enum CodingKeys: String, CodingKey {
            case backend, state, sealedTo, changedPCRs = "changedPcrs"
        }
    }

    /// The vault's state, and which sealed PCRs differ now.
    public func status(tpm: TPM) async throws(VaultError) -> Status {
        let metadata = try read()
        let state: String
        switch try directory.keyStatus(identifier: Hex.decode(metadata.keyIdentifier) ?? []) {
        case .absent: state = "locked"
        case .present: state = "unlocked"
        case .incompletelyRemoved: state = "locking"
        }
        let changed = try await metadata.sealing.changedPCRs(tpm: tpm).map(\.pcr)
        return Status(
            backend: metadata.backend, state: state,
            sealedTo: "\(metadata.sealing.bank):\(metadata.sealing.pcrs.map(String.init).joined(separator: ","))",
            changedPCRs: changed)
    }

    func read() throws(VaultError) -> Metadata {
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
