public import Attest
public import AttestTPM
internal import CCryptsetup
public import Crypto
import Foundation
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A LUKS2 volume (an image file or a block device) through libcryptsetup, opened by a key sealed in the TPM.
///
/// - Format: LUKS2, AES-256-XTS (`aes-xts-plain64`, 512-bit volume key), 256 KiB of metadata.
/// - Keyslot 0: opened by the TPM-sealed 64-byte random key (PBKDF2 at its minimum: the key has full entropy, a
///   slow KDF would only slow unlocking).
/// - Keyslot 1: opened by a recovery passphrase shown once at creation (Argon2id, 4 passes, 64 MiB).
/// - Token: `{"type": "vigil-tpm2", "keyslots": ["0"], "vigil": VaultMetadata}`: the bank, PCRs or authorizing
///   key, policy digest, sealed blobs and escrow record, never the key. LUKS2 keeps two copies of its metadata
///   with a sequence number, so a token update is atomic.
/// - Unlock: the TPM unseals the key, the key opens keyslot 0 and yields the volume key
///   (`crypt_volume_key_get`), which activates a dm-crypt mapping `vigil-<vault id>`. Without device-mapper in
///   the kernel, everything up to the volume key works and activation says what is missing.
public struct LUKS2Vault: SealedVault {
    /// The LUKS2 token type Vigil writes.
    public static let tokenType = "vigil-tpm2"
    /// The LUKS2 metadata area (JSON and binary header) size.
    static let metadataSize: UInt64 = 256 * 1024
    /// The volume key size: AES-256-XTS takes two 256-bit keys.
    static let volumeKeySize = 64

    /// The LUKS2 label of a finished Vigil volume, and of one whose creation has not finished.
    static let label = "vigil"
    static let pendingLabel = "vigil-pending"

    /// The volume's LUKS2 label.
    func label() throws(VaultError) -> String {
        try withDevice(load: true) { cd throws(VaultError) in
            crypt_get_label(cd).map { String(cString: $0) } ?? ""
        }
    }

    /// The image file or block device.
    public let path: String

    /// The volume at `path`.
    public init(path: String) { self.path = path }

    public var location: String { path }

    /// Whether this kernel can map a volume (device-mapper present).
    /// (The kernel lists it in /proc/misc; /dev/mapper/control alone proves nothing: libdevmapper creates the node.)
    public static var deviceMapperAvailable: Bool {
        guard let misc = try? String(contentsOfFile: "/proc/misc", encoding: .utf8) else { return false }
        return misc.split(separator: "\n").contains { $0.hasSuffix(" device-mapper") }
    }

    /// Why activation cannot happen here, when it cannot.
    public static let deviceMapperMissing =
        "device-mapper is absent from this kernel (no device-mapper in /proc/misc: CONFIG_BLK_DEV_DM and dm-crypt are needed to map a LUKS2 volume)"

    /// Whether `path` holds a LUKS2 header (the CLI's backend detection).
    public static func isLUKS2(_ path: String) -> Bool {
        (try? LUKS2Vault(path: path).withDevice(load: true) { _ throws(VaultError) in }) != nil
    }

    /// What creation returns: the metadata, and the recovery passphrase (shown once, never stored).
    public struct Created: Sendable {
        /// The metadata written in the token.
        public var metadata: VaultMetadata
        /// The recovery passphrase for keyslot 1.
        public var recoveryPassphrase: SecretBytes
    }

    /// `vigil vault create --backend luks2 PATH`: formats the volume (an image file is created with `size` bytes
    /// when it does not exist), adds the TPM keyslot and the recovery keyslot, escrows the TPM key when `escrow`
    /// is given, and records the sealing in the token. Refuses a volume that already has a LUKS header.
    public func create(
        tpm: TPM, size: Int? = nil, pcrs: [Int] = PCRSealedKey.defaultPCRs, bootLog: UnverifiedEventLog? = nil,
        escrow: EscrowDepositor? = nil, authority: P256.Signing.PublicKey? = nil
    ) async throws(VaultError) -> Created {
        try PCRSealedKey.checkPCRSet(pcrs)
        if !FileManager.default.fileExists(atPath: path) {
            guard let size, size >= 16 << 20 else {
                throw VaultError(
                    reason: "luks2: \(path) does not exist (give --size, at least 16M, to create an image)")
            }
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0, ftruncate(fd, off_t(size)) == 0, fsync(fd) == 0 else {
                let e = errno
                if fd >= 0 { close(fd) }
                throw VaultError(reason: "luks2: cannot create \(path): \(String(cString: strerror(e)))", errno: e)
            }
            close(fd)
        }
        // A header labelled vigil-pending is a creation that was interrupted before it finished (no recovery
        // passphrase was shown, nothing was written in it): it is formatted again. Any other header is refused.
        if Self.isLUKS2(path), try label() != Self.pendingLabel {
            throw VaultError(reason: "luks2: \(path) already has a LUKS2 header (refusing to format over it)")
        }
        let vaultID = VaultMetadata.newVaultID()
        var authorization: AuthorizedSealing?
        if let authority {
            authorization = try AuthorizedSealing(
                authority: authority, counter: try await ApprovalCounter.ensure(tpm: tpm), vaultID: vaultID)
        }
        let key = try await PCRSealedKey.generateKey(tpm: tpm, size: 64)
        let sealing = try await PCRSealedKey.seal(key, tpm: tpm, pcrs: pcrs, authorization: authorization)
        let escrowKey = try await EscrowKey.create(tpm: tpm)
        let recovery = Self.recoveryPassphrase()
        let slot: Int32 = try withDevice(load: false) { cd throws(VaultError) in
            try check(crypt_set_metadata_size(cd, Self.metadataSize, 0), "crypt_set_metadata_size")
            let formatted = Self.pendingLabel.withCString { label in
                var params = crypt_params_luks2()
                params.sector_size = 4096
                params.label = label
                return crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", nil, nil, Self.volumeKeySize, &params)
            }
            try check(formatted, "crypt_format")
            CrashPoint.reached("luks2.create.formatted")
            try setPBKDF(cd, "pbkdf2", iterations: 1000, memoryKB: 0)
            let slot = key.withUnsafeBytes { k in
                crypt_keyslot_add_by_volume_key(
                    cd, CRYPT_ANY_SLOT, nil, 0, k.baseAddress?.assumingMemoryBound(to: CChar.self), k.count)
            }
            try check(slot, "crypt_keyslot_add_by_volume_key (TPM keyslot)")
            try setPBKDF(cd, "argon2id", iterations: 4, memoryKB: 65536)
            let recoverySlot = recovery.withUnsafeBytes { r in
                crypt_keyslot_add_by_volume_key(
                    cd, CRYPT_ANY_SLOT, nil, 0, r.baseAddress?.assumingMemoryBound(to: CChar.self), r.count)
            }
            try check(recoverySlot, "crypt_keyslot_add_by_volume_key (recovery keyslot)")
            CrashPoint.reached("luks2.create.keyslots")
            return slot
        }
        var metadata = VaultMetadata(
            format: FSCryptVault.currentFormat, backend: "luks2", keyIdentifier: "keyslot:\(slot)", sealing: sealing,
            createdAt: Date(), vaultID: vaultID, escrowKey: escrowKey, escrow: nil,
            bootRecord: bootLog.map { SealedBootRecord(log: $0, pcrs: pcrs) })
        if let escrow {
            metadata.escrow = try await escrow.deposit(key, escrowKey: escrowKey, vaultID: vaultID, sealing: sealing)
        }
        try write(metadata)
        CrashPoint.reached("luks2.create.token")
        try withDevice(load: true) { cd throws(VaultError) in
            try check(crypt_set_label(cd, Self.label, nil), "crypt_set_label")
        }
        return Created(metadata: metadata, recoveryPassphrase: recovery)
    }

    /// The keyslot the TPM-sealed key opens.
    func keyslot(_ metadata: VaultMetadata) throws(VaultError) -> Int32 {
        guard metadata.keyIdentifier.hasPrefix("keyslot:"), let n = Int32(metadata.keyIdentifier.dropFirst(8)),
            (0..<32).contains(n)
        else { throw VaultError(reason: "luks2: the token names no keyslot (\(metadata.keyIdentifier.prefix(40)))") }
        return n
    }

    /// Refuses a key that opens no keyslot of this volume (checked by libcryptsetup without activating). Any
    /// keyslot will do: after an interrupted rotation the escrow may hold the previous key, whose keyslot is kept
    /// until the new key is escrowed.
    public func checkKey(_ key: SecretBytes, _ metadata: VaultMetadata) throws(VaultError) {
        _ = try openedKeyslot(key)
    }

    /// The keyslot `key` opens.
    func openedKeyslot(_ key: SecretBytes) throws(VaultError) -> Int32 {
        try withDevice(load: true) { cd throws(VaultError) in
            let r = key.withUnsafeBytes { k in
                crypt_activate_by_passphrase(
                    cd, nil, CRYPT_ANY_SLOT, k.baseAddress?.assumingMemoryBound(to: CChar.self), k.count, 0)
            }
            guard r >= 0 else {
                throw VaultError(reason: "luks2: the key opens no keyslot of \(path): it is not this volume's key")
            }
            return r
        }
    }

    public func adopt(_ key: SecretBytes, _ metadata: inout VaultMetadata) throws(VaultError) {
        metadata.keyIdentifier = "keyslot:\(try openedKeyslot(key))"
    }

    /// `vigil vault rotate PATH`: a new TPM key in a new keyslot, sealed like the old one; the token switches to
    /// it, the escrow follows (an escrowed vault needs `escrow`), and only then is the old keyslot destroyed. A
    /// kill at any step leaves the old key or the new one opening the volume, locally and through the escrow.
    /// The volume key (and the data) is unchanged: rotation replaces what opens it.
    public func rotate(tpm: TPM, approvals: [PCRApproval] = [], escrow: EscrowDepositor?) async throws(VaultError)
        -> VaultMetadata
    {
        var metadata = try read()
        if metadata.escrow != nil, escrow == nil {
            throw VaultError(
                reason: "luks2: \(path) is escrowed: rotate with --controller so the escrow follows the key")
        }
        let oldKey = try await unsealKey(metadata, tpm: tpm, approvals: approvals)
        let oldSlot = try openedKeyslot(oldKey)
        let newKey = try await PCRSealedKey.generateKey(tpm: tpm, size: 64)
        let sealing = try await PCRSealedKey.seal(
            newKey, tpm: tpm, pcrs: metadata.sealing.pcrs, authorization: metadata.sealing.authorization)
        let newSlot: Int32 = try withDevice(load: true) { cd throws(VaultError) in
            try setPBKDF(cd, "pbkdf2", iterations: 1000, memoryKB: 0)
            let slot = oldKey.withUnsafeBytes { o in
                newKey.withUnsafeBytes { n in
                    crypt_keyslot_add_by_passphrase(
                        cd, CRYPT_ANY_SLOT, o.baseAddress?.assumingMemoryBound(to: CChar.self), o.count,
                        n.baseAddress?.assumingMemoryBound(to: CChar.self), n.count)
                }
            }
            try check(slot, "crypt_keyslot_add_by_passphrase (rotation)")
            return slot
        }
        CrashPoint.reached("luks2.rotate.keyslot-added")
        metadata.sealing = sealing
        metadata.keyIdentifier = "keyslot:\(newSlot)"
        try write(metadata)
        CrashPoint.reached("luks2.rotate.token-switched")
        if let escrow, let escrowKey = metadata.escrowKey, let vaultID = metadata.vaultID {
            metadata.escrow = try await escrow.deposit(newKey, escrowKey: escrowKey, vaultID: vaultID, sealing: sealing)
            try write(metadata)
            CrashPoint.reached("luks2.rotate.escrowed")
        }
        try withDevice(load: true) { cd throws(VaultError) in
            try check(crypt_keyslot_destroy(cd, oldSlot), "crypt_keyslot_destroy (keyslot \(oldSlot))")
        }
        return metadata
    }

    /// The volume key, obtained through the keyslot `passphrase` opens (the TPM key, or the recovery passphrase).
    public func volumeKey(passphrase: SecretBytes, keyslot: Int32 = -1) throws(VaultError) -> SecretBytes {
        try withDevice(load: true) { cd throws(VaultError) in
            var size = Self.volumeKeySize
            var status: Int32 = 0
            let volumeKey = SecretBytes(count: Self.volumeKeySize) { out in
                status = passphrase.withUnsafeBytes { p in
                    crypt_volume_key_get(
                        cd, keyslot, out.baseAddress?.assumingMemoryBound(to: CChar.self), &size,
                        p.baseAddress?.assumingMemoryBound(to: CChar.self), p.count)
                }
            }
            guard status >= 0, size == Self.volumeKeySize else {
                throw VaultError(reason: "luks2: the passphrase opens no keyslot of \(path) (\(Self.message(status)))")
            }
            return volumeKey
        }
    }

    /// Unlocks: the volume key through the TPM keyslot, then a dm-crypt mapping. Without device-mapper the error
    /// says the volume key was recovered and what the kernel lacks.
    public func install(_ key: SecretBytes, _ metadata: VaultMetadata) throws(VaultError) {
        let volumeKey = try volumeKey(passphrase: key)
        let slot = try keyslot(metadata)
        guard Self.deviceMapperAvailable else {
            throw VaultError(
                reason:
                    "luks2: volume key recovered through keyslot \(slot); not activated: \(Self.deviceMapperMissing)",
                errno: ENODEV)
        }
        let name = mappingName(metadata)
        try withDevice(load: true) { cd throws(VaultError) in
            let r = volumeKey.withUnsafeBytes { v in
                crypt_activate_by_volume_key(cd, name, v.baseAddress?.assumingMemoryBound(to: CChar.self), v.count, 0)
            }
            try check(r, "crypt_activate_by_volume_key (\(name))")
        }
    }

    /// `vigil vault lock PATH`: removes the mapping (no-op when it is not mapped).
    public func lock() throws(VaultError) {
        let metadata = try read()
        let name = mappingName(metadata)
        guard Self.deviceMapperAvailable else { return }
        try withDevice(load: true) { cd throws(VaultError) in
            if crypt_status(cd, name) == CRYPT_ACTIVE || crypt_status(cd, name) == CRYPT_BUSY {
                try check(crypt_deactivate(cd, name), "crypt_deactivate (\(name))")
            }
        }
    }

    public func state(_ metadata: VaultMetadata) throws(VaultError) -> String {
        guard Self.deviceMapperAvailable else { return "locked" }
        let name = mappingName(metadata)
        let status = crypt_status(nil, name)
        return status == CRYPT_ACTIVE || status == CRYPT_BUSY ? "unlocked (/dev/mapper/\(name))" : "locked"
    }

    func mappingName(_ metadata: VaultMetadata) -> String { "vigil-" + (metadata.vaultID ?? "volume").prefix(16) }

    /// Reads the Vigil token's metadata.
    public func read() throws(VaultError) -> VaultMetadata {
        try withDevice(load: true) { cd throws(VaultError) in
            guard let (_, json) = try Self.vigilToken(cd) else {
                throw VaultError(reason: "luks2: \(path) has no \(Self.tokenType) token (not a Vigil vault?)")
            }
            guard json.utf8.count <= Int(Self.metadataSize),
                let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                let inner = object["vigil"],
                let data = try? JSONSerialization.data(withJSONObject: inner)
            else { throw VaultError(reason: "luks2: the \(Self.tokenType) token of \(path) is not valid JSON") }
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            guard let m = try? decoder.decode(VaultMetadata.self, from: data), m.backend == "luks2",
                m.format == FSCryptVault.currentFormat
            else { throw VaultError(reason: "luks2: the \(Self.tokenType) token of \(path) is not format-1 metadata") }
            return m
        }
    }

    /// Writes the Vigil token (replacing the previous one in the same LUKS2 metadata update).
    public func write(_ metadata: VaultMetadata) throws(VaultError) {
        let slot = try keyslot(metadata)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        let inner: Any
        do { inner = try JSONSerialization.jsonObject(with: try encoder.encode(metadata)) } catch {
            throw VaultError(reason: "luks2: cannot encode the metadata: \(error)")
        }
        let token: [String: Any] = ["type": Self.tokenType, "keyslots": [String(slot)], "vigil": inner]
        guard let data = try? JSONSerialization.data(withJSONObject: token, options: [.sortedKeys]) else {
            throw VaultError(reason: "luks2: cannot encode the token")
        }
        let json = String(decoding: data, as: UTF8.self)
        try withDevice(load: true) { cd throws(VaultError) in
            let id = try Self.vigilToken(cd)?.id ?? CRYPT_ANY_TOKEN
            try check(crypt_token_json_set(cd, id, json), "crypt_token_json_set")
        }
    }

    static func vigilToken(_ cd: OpaquePointer) throws(VaultError) -> (id: Int32, json: String)? {
        for id in Int32(0)..<32 {
            var json: UnsafePointer<CChar>?
            guard crypt_token_json_get(cd, id, &json) >= 0, let json else { continue }
            let text = String(cString: json)
            if let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                object["type"] as? String == tokenType
            {
                return (id, text)
            }
        }
        return nil
    }

    func setPBKDF(_ cd: OpaquePointer, _ type: String, iterations: UInt32, memoryKB: UInt32) throws(VaultError) {
        let status = type.withCString { t in
            "sha256".withCString { h in
                // flags: CRYPT_PBKDF_NO_BENCHMARK (the parameters are the ones given).
                var pbkdf = crypt_pbkdf_type(
                    type: t, hash: h, time_ms: 0, iterations: iterations, max_memory_kb: memoryKB,
                    parallel_threads: memoryKB > 0 ? 1 : 0, flags: 1 << 1)
                return crypt_set_pbkdf_type(cd, &pbkdf)
            }
        }
        try check(status, "crypt_set_pbkdf_type (\(type))")
    }

    /// 32 characters from a 32-letter alphabet without look-alikes (160 bits), in groups of four.
    static func recoveryPassphrase() -> SecretBytes {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789".utf8)
        var rng = SystemRandomNumberGenerator()
        return SecretBytes(count: 39) { out in
            var o = 0
            for i in 0..<32 {
                if i > 0 && i % 4 == 0 {
                    out[o] = UInt8(ascii: "-")
                    o += 1
                }
                out[o] = alphabet[Int(UInt8.random(in: 0...31, using: &rng))]
                o += 1
            }
        }
    }

    func withDevice<R>(load: Bool, _ body: (OpaquePointer) throws(VaultError) -> R) throws(VaultError) -> R {
        Self.quietLibrary
        var cd: OpaquePointer?
        let r = crypt_init(&cd, path)
        guard r >= 0, let cd else {
            throw VaultError(reason: "luks2: cannot open \(path): \(Self.message(r))", errno: -r)
        }
        defer { crypt_free(cd) }
        if load {
            let loaded = crypt_load(cd, CRYPT_LUKS2, nil)
            guard loaded >= 0 else {
                throw VaultError(
                    reason: "luks2: \(path) is not a LUKS2 volume (\(Self.message(loaded)))", errno: -loaded)
            }
        }
        return try body(cd)
    }

    /// libcryptsetup logs to stderr by default; Vigil reports failures itself, with the call and the path.
    static let quietLibrary: Void = crypt_set_log_callback(nil, { _, _, _ in }, nil)

    func check(_ status: Int32, _ call: String) throws(VaultError) {
        guard status >= 0 else {
            throw VaultError(reason: "luks2: \(call) on \(path): \(Self.message(status))", errno: -status)
        }
    }

    static func message(_ status: Int32) -> String { status < 0 ? String(cString: strerror(-status)) : "ok" }
}
