import AttestTPM
import ControllerProtocol
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A workload's secrets as files: a tmpfs of its own (mode 0700, nosuid, nodev, noexec, 1 MiB), each secret a
/// 0600 file named after it, plus `attestation-result.jwt`. In memory only; overwritten with zeros and unmounted
/// when the gate closes. The mount point is recorded first, so a killed node's next run unmounts it.
struct SecretMount: Sendable {
    /// The mount point.
    let path: String

    /// Mounts a tmpfs at `path` and writes `secrets` and the result into it.
    static func create(
        at path: String, secrets: [SecretName: SecretBytes], result: String, runtime: RuntimeRecord
    ) async throws -> SecretMount {
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try await runtime.willMount(path)
        if RuntimeRecord.isMountPoint(path) { _ = umount2(path, Int32(MNT_DETACH)) }
        let flags = UInt(MS_NOSUID) | UInt(MS_NODEV) | UInt(MS_NOEXEC)
        guard mount("vigil-secrets", path, "tmpfs", flags, "mode=0700,size=1m") == 0 else {
            throw NodeError("mount tmpfs at \(path): \(String(cString: strerror(errno))) (needs root)")
        }
        let m = SecretMount(path: path)
        for (name, bytes) in secrets {
            try bytes.withUnsafeBytes { raw in try m.write(name.rawValue, raw) }
        }
        try Array(result.utf8).withUnsafeBytes { raw in try m.write("attestation-result.jwt", raw) }
        return m
    }

    func write(_ name: String, _ bytes: UnsafeRawBufferPointer) throws {
        let fd = open(path + "/" + name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw NodeError("secret file \(name): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
            guard n > 0 else { throw NodeError("secret file \(name): \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    /// Overwrites every file with zeros, unmounts, and forgets the mount.
    func remove(runtime: RuntimeRecord) async {
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
        if umount2(path, Int32(MNT_DETACH)) == 0 || !RuntimeRecord.isMountPoint(path) {
            try? await runtime.unmounted(path)
        }
        rmdir(path)
    }
}
