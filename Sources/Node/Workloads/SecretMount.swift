import AttestTPM
import ControllerProtocol
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A workload's secrets as files: a tmpfs of its own (nosuid, nodev, noexec, sized to its secrets), owned by the
/// workload's user with mode 0500, each secret a 0400 file named after it, plus `.attestation-result.jwt` (a
/// name no secret can have: secret names start with a letter or digit). In memory only; overwritten with zeros
/// and unmounted when the gate closes, or at once if making it fails half-way. The mount point is recorded
/// first, so a killed node's next run unmounts it.
struct SecretMount: Sendable {
    /// The mount point.
    let path: String

    /// The result's file name.
    static let resultName = ".attestation-result.jwt"

    /// Mounts a tmpfs at `path` for `owner` (uid, gid) and writes `secrets` and the result into it.
    static func create(
        at path: String, secrets: [SecretName: SecretBytes], result: String, owner: (uid: UInt32, gid: UInt32),
        runtime: RuntimeRecord
    ) async throws -> SecretMount {
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try await runtime.willMount(path)
        _ = RuntimeRecord.unmount(path)  // a stale mount of a crashed run (its next start unmounts it too)
        let flags = UInt(MS_NOSUID) | UInt(MS_NODEV) | UInt(MS_NOEXEC)
        // A page per file at least, plus room for the result and the directory.
        let size = secrets.values.reduce(64 * 1024) { $0 + ($1.count + 4095) / 4096 * 4096 + 4096 } + result.utf8.count
        let options = "mode=0700,size=\(size),uid=0,gid=0"
        guard mount("vigil-secrets", path, "tmpfs", flags, options) == 0 else {
            throw NodeError("mount tmpfs at \(path): \(String(cString: strerror(errno))) (needs root)")
        }
        let m = SecretMount(path: path)
        do {
            for (name, bytes) in secrets {
                try bytes.withUnsafeBytes { raw in try m.write(name.rawValue, raw, owner: owner) }
            }
            try Array(result.utf8).withUnsafeBytes { raw in try m.write(Self.resultName, raw, owner: owner) }
            guard chown(path, owner.uid, owner.gid) == 0, chmod(path, 0o500) == 0 else {
                throw NodeError("secret mount \(path): chown/chmod: \(String(cString: strerror(errno)))")
            }
        } catch {
            await m.remove(runtime: runtime)
            throw error
        }
        return m
    }

    func write(_ name: String, _ bytes: UnsafeRawBufferPointer, owner: (uid: UInt32, gid: UInt32)) throws {
        let fd = open(path + "/" + name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o400)
        guard fd >= 0 else { throw NodeError("secret file \(name): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fchown(fd, owner.uid, owner.gid) == 0 else {
            throw NodeError("secret file \(name): fchown: \(String(cString: strerror(errno)))")
        }
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
            guard n > 0 else { throw NodeError("secret file \(name): \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    /// Overwrites every file with zeros, unmounts, and forgets the mount.
    func remove(runtime: RuntimeRecord) async {
        chmod(path, 0o700)
        for file in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            let fd = open(path + "/" + file, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            let size = lseek(fd, 0, SEEK_END)
            if size > 0, size <= 1 << 20, lseek(fd, 0, SEEK_SET) == 0 {
                let zeros = [UInt8](repeating: 0, count: Int(size))
                _ = zeros.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                fsync(fd)
            }
            close(fd)
        }
        if RuntimeRecord.unmount(path) { try? await runtime.unmounted(path) }
        rmdir(path)
    }
}
