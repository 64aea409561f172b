public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Crash-safe file writes: write a temporary file in the same folder, fsync it, rename it over the
/// target, fsync the folder. A reader sees the old file or the new one, never a torn one.
public enum AtomicFile {
    public struct WriteError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Writes `bytes` to `url` with `mode` (use 0o600 for anything secret).
    public static func write(_ bytes: [UInt8], to url: URL, mode: mode_t = 0o644) throws {
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/.\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw WriteError(description: "\(url.path): cannot create: \(String(cString: strerror(errno)))")
        }
        var ok = false
        defer {
            if !ok { unlink(temporary) }
        }
        do {
            defer { close(fd) }
            var written = 0
            try bytes.withUnsafeBytes { buf in
                while written < buf.count {
                    let n = Glibc.write(fd, buf.baseAddress.map { $0 + written }, buf.count - written)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else {
                        throw WriteError(description: "\(url.path): write failed: \(String(cString: strerror(errno)))")
                    }
                    written += n
                }
            }
            guard fchmod(fd, mode) == 0, fsync(fd) == 0 else {
                throw WriteError(description: "\(url.path): fsync failed: \(String(cString: strerror(errno)))")
            }
        }
        CrashPoint.reached("atomic-file.written")
        guard rename(temporary, url.path) == 0 else {
            throw WriteError(description: "\(url.path): rename failed: \(String(cString: strerror(errno)))")
        }
        ok = true
        CrashPoint.reached("atomic-file.renamed")
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    public static func write(_ text: String, to url: URL, mode: mode_t = 0o644) throws {
        try write(Array(text.utf8), to: url, mode: mode)
    }
}
