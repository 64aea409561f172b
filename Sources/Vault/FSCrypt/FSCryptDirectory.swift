public import AttestTPM
import CVigilSystem
import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An fscrypt v2 encrypted directory on a filesystem that supports it (ext4 with the `encrypt` feature, f2fs),
/// driven through the kernel's ioctls (linux/fscrypt.h; Documentation/filesystems/fscrypt.rst):
/// FS_IOC_ADD_ENCRYPTION_KEY, FS_IOC_SET_ENCRYPTION_POLICY with a v2 policy, FS_IOC_GET_ENCRYPTION_POLICY_EX,
/// FS_IOC_REMOVE_ENCRYPTION_KEY and FS_IOC_GET_ENCRYPTION_KEY_STATUS.
///
/// The policy is AES-256-XTS for contents and AES-256-CTS for file names, 32-byte name padding. The master key
/// (64 bytes) is given to the kernel's filesystem keyring only; the kernel derives the key identifier from it
/// (HKDF-SHA512), which the policy names. Locking removes the key from the keyring: the directory's files and names
/// are then unreadable until the key is added again.
public struct FSCryptDirectory: Sendable {
    /// The directory.
    public let path: String

    /// The master key size Vigil uses (AES-256-XTS needs 64 bytes of key).
    public static let masterKeySize = 64

    /// Where the key is, as the kernel reports it.
    public enum KeyStatus: Sendable, Hashable {
        /// Not in the keyring: the directory is locked.
        case absent
        /// In the keyring: the directory is unlocked.
        case present
        /// Removed, but files still open keep it in use.
        case incompletelyRemoved
    }

    /// A directory at `path` (which must exist, in an unencrypted directory of its filesystem).
    public init(path: String) { self.path = path }

    /// Where the keyring ioctls are issued: the parent directory, on the same filesystem. Issued on the vault
    /// directory itself, the open descriptor would hold its inode and the kernel would report the key as still
    /// in use by files (FSCRYPT_KEY_REMOVAL_STATUS_FLAG_FILES_BUSY).
    var keyringPath: String { (path as NSString).deletingLastPathComponent }

    // MARK: ioctl numbers (_IOR/_IOWR('f', n, size), x86-64 and aarch64 encoding)
    static func iowr(_ nr: UInt, _ size: UInt) -> UInt { (3 << 30) | (size << 16) | (0x66 << 8) | nr }
    static func ior(_ nr: UInt, _ size: UInt) -> UInt { (2 << 30) | (size << 16) | (0x66 << 8) | nr }
    static let setPolicy = ior(19, 12)  // FS_IOC_SET_ENCRYPTION_POLICY (struct fscrypt_policy_v1 in the number)
    static let getPolicyEx = iowr(22, 9)  // FS_IOC_GET_ENCRYPTION_POLICY_EX
    static let addKey = iowr(23, 80)  // FS_IOC_ADD_ENCRYPTION_KEY
    static let removeKey = iowr(24, 64)  // FS_IOC_REMOVE_ENCRYPTION_KEY
    static let keyStatus = iowr(26, 128)  // FS_IOC_GET_ENCRYPTION_KEY_STATUS

    static let keySpecTypeIdentifier: UInt32 = 2  // FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER
    static let policyV2: UInt8 = 2
    static let modeAES256XTS: UInt8 = 1
    static let modeAES256CTS: UInt8 = 4
    static let flagsPad32: UInt8 = 0x03

    /// Adds `key` to the filesystem's keyring and returns the key identifier the kernel derived (16 bytes).
    public func addKey(_ key: SecretBytes) throws(VaultError) -> [UInt8] {
        guard key.count == Self.masterKeySize else {
            throw VaultError(reason: "fscrypt: the master key must be \(Self.masterKeySize) bytes, not \(key.count)")
        }
        // struct fscrypt_add_key_arg { key_spec (40), raw_size u32, key_id u32, __reserved[8] u32, raw[] }
        // Built in locked memory of its own (SecretBytes): the key is never copied into an array.
        var failure: VaultError?
        var identifier: [UInt8] = []
        let keyring = keyringPath
        let request = Self.addKey
        _ = SecretBytes(count: 80 + key.count) { arg in
            var header = [UInt8](repeating: 0, count: 80)
            Self.put(Self.keySpecTypeIdentifier, into: &header, at: 0)
            Self.put(UInt32(key.count), into: &header, at: 40)
            arg.copyBytes(from: header)
            key.withUnsafeBytes { raw in
                UnsafeMutableRawBufferPointer(rebasing: arg[80...]).copyMemory(from: raw)
            }
            do throws(VaultError) {
                try Self.ioctl(on: keyring, request, arg.baseAddress, "FS_IOC_ADD_ENCRYPTION_KEY")
                identifier = Array(arg[8..<24])
            } catch { failure = error }
        }
        if let failure { throw failure }
        return identifier
    }

    /// The key identifier fscrypt derives from a v2 master key, computed as the kernel does
    /// (fs/crypto/keyring.c, hkdf.c): HKDF-SHA512 with an empty salt, info `"fscrypt\0"` ‖ HKDF_CONTEXT_KEY_IDENTIFIER
    /// (1), 16 bytes. Lets a recovered key be checked before it goes near the kernel.
    public static func keyIdentifier(of key: SecretBytes) -> [UInt8] {
        key.withUnsafeBytes { raw in
            HKDF<SHA512>.deriveKey(
                inputKeyMaterial: SymmetricKey(data: raw), info: Array("fscrypt\u{0}".utf8) + [1], outputByteCount: 16
            ).withUnsafeBytes { Array($0) }
        }
    }

    /// Sets a v2 policy naming `identifier` on the (empty) directory: everything created in it is encrypted.
    public func setPolicy(identifier: [UInt8]) throws(VaultError) {
        guard identifier.count == 16 else { throw VaultError(reason: "fscrypt: a key identifier is 16 bytes") }
        // struct fscrypt_policy_v2 { version, contents mode, filenames mode, flags, log2_data_unit_size,
        // __reserved[3], master_key_identifier[16] }
        var policy: [UInt8] = [Self.policyV2, Self.modeAES256XTS, Self.modeAES256CTS, Self.flagsPad32, 0, 0, 0, 0]
        policy += identifier
        try ioctl(on: path, Self.setPolicy, &policy, "FS_IOC_SET_ENCRYPTION_POLICY")
    }

    /// The directory's v2 policy key identifier, or nil when it is not encrypted.
    public func policyIdentifier() throws(VaultError) -> [UInt8]? {
        // struct fscrypt_get_policy_ex_arg { u64 policy_size (in: buffer size; out: policy size), policy[24] }
        var arg = [UInt8](repeating: 0, count: 8 + 24)
        Self.put(UInt64(24), into: &arg, at: 0)
        do {
            try ioctl(on: path, Self.getPolicyEx, &arg, "FS_IOC_GET_ENCRYPTION_POLICY_EX")
        } catch {
            if error.errno == ENODATA { return nil }
            throw error
        }
        guard arg[8] == Self.policyV2 else {
            throw VaultError(reason: "fscrypt: \(path) has a v\(arg[8]) policy; Vigil uses v2 only")
        }
        return Array(arg[16..<32])
    }

    /// Removes the key from the keyring (locks the directory). Returns false when files still held open keep
    /// it in use (the kernel then finishes the removal when they are closed).
    @discardableResult
    public func removeKey(identifier: [UInt8]) throws(VaultError) -> Bool {
        // struct fscrypt_remove_key_arg { key_spec (40), removal_status_flags u32 (out), __reserved[5] u32 }
        var arg = [UInt8](repeating: 0, count: 64)
        Self.put(Self.keySpecTypeIdentifier, into: &arg, at: 0)
        for (i, b) in identifier.prefix(16).enumerated() { arg[8 + i] = b }
        try ioctl(on: keyringPath, Self.removeKey, &arg, "FS_IOC_REMOVE_ENCRYPTION_KEY")
        let flags = UInt32(arg[40]) | UInt32(arg[41]) << 8 | UInt32(arg[42]) << 16 | UInt32(arg[43]) << 24
        return flags & 0x1 == 0  // FSCRYPT_KEY_REMOVAL_STATUS_FLAG_FILES_BUSY
    }

    /// Whether the key with `identifier` is in the keyring.
    public func keyStatus(identifier: [UInt8]) throws(VaultError) -> KeyStatus {
        // struct fscrypt_get_key_status_arg { key_spec (40), __reserved[6] u32, status u32 (out), … } = 128 bytes
        var arg = [UInt8](repeating: 0, count: 128)
        Self.put(Self.keySpecTypeIdentifier, into: &arg, at: 0)
        for (i, b) in identifier.prefix(16).enumerated() { arg[8 + i] = b }
        try ioctl(on: keyringPath, Self.keyStatus, &arg, "FS_IOC_GET_ENCRYPTION_KEY_STATUS")
        switch UInt32(arg[64]) | UInt32(arg[65]) << 8 {
        case 1: return .absent
        case 2: return .present
        case 3: return .incompletelyRemoved
        case let other: throw VaultError(reason: "fscrypt: the kernel reported key status \(other)")
        }
    }

    // MARK: Plumbing

    func ioctl(on directory: String, _ request: UInt, _ arg: inout [UInt8], _ name: String) throws(VaultError) {
        var failure: VaultError?
        arg.withUnsafeMutableBytes { buf in
            do throws(VaultError) { try Self.ioctl(on: directory, request, buf.baseAddress, name) } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }

    static func ioctl(on directory: String, _ request: UInt, _ arg: UnsafeMutableRawPointer?, _ name: String)
        throws(VaultError)
    {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw VaultError(
                reason: "fscrypt: cannot open \(directory): \(String(cString: strerror(errno)))", errno: errno)
        }
        defer { close(fd) }
        let result = vigil_ioctl_pointer(fd, request, arg)
        guard result == 0 else {
            let e = errno
            let hint =
                e == EOPNOTSUPP || e == ENOTTY
                ? " (the filesystem does not support encryption: ext4 needs `tune2fs -O encrypt`)" : ""
            throw VaultError(
                reason: "fscrypt: \(name) on \(directory): \(String(cString: strerror(e)))\(hint)", errno: e)
        }
    }

    static func put(_ v: UInt32, into a: inout [UInt8], at o: Int) {
        for i in 0..<4 { a[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }

    static func put(_ v: UInt64, into a: inout [UInt8], at o: Int) {
        for i in 0..<8 { a[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }
}
