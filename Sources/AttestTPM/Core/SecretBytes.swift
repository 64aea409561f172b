#if canImport(Glibc)
    import Glibc
#endif

/// Secret material (auth values, unsealed data, vault keys) in memory that it owns: its own anonymous mapping,
/// locked with mlock(2) so it is never swapped, marked MADV_DONTDUMP so it is left out of core dumps, and zeroed
/// with explicit_bzero before it is unmapped. It is not `Codable`, prints as `<redacted>`, and hands out its bytes
/// only inside a closure. Like swift-crypto's `SecureBytes`.
///
/// When the mapping or the lock cannot be had (RLIMIT_MEMLOCK reached), the bytes still live in memory of their own
/// that is zeroed on release; ``isLocked`` tells which.
public final class SecretBytes: @unchecked Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    // @unchecked Sendable: the bytes are written only while being initialised (before the object is shared)
    // and wiped only in deinit, when no other reference exists; every other access is a read.
    private let base: UnsafeMutableRawPointer
    private let mapped: Int  // bytes mapped with mmap(2), 0 when allocated with malloc
    /// The number of secret bytes.
    public let count: Int
    /// Whether the pages are locked in RAM (mlock) and excluded from core dumps.
    public let isLocked: Bool

    /// `count` bytes, written by `initialize` straight into the locked memory (no intermediate copy).
    public init(count: Int, initializingWith initialize: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        let size = max(count, 0)
        self.count = size
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let length = page > 0 ? max(1, (size + page - 1) / page) * page : 0
        if length > 0,
            let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            p != MAP_FAILED
        {
            base = p
            mapped = length
            _ = madvise(p, length, Int32(MADV_DONTDUMP))
            isLocked = mlock(p, length) == 0
        } else {
            // No mapping to be had: memory of its own all the same (a failed allocation traps, as Swift's own do).
            base = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 16)
            base.initializeMemory(as: UInt8.self, repeating: 0, count: max(size, 1))
            mapped = 0
            isLocked = false
        }
        // If `initialize` throws, deinit runs (every stored property is set) and releases the memory once.
        try initialize(UnsafeMutableRawBufferPointer(start: base, count: size))
    }

    /// A copy of `bytes`; the caller wipes its own array.
    public convenience init(_ bytes: [UInt8]) {
        self.init(count: bytes.count) { buffer in bytes.withUnsafeBytes { buffer.copyMemory(from: $0) } }
    }

    /// A copy of the bytes `source` lends.
    public convenience init(copying source: UnsafeRawBufferPointer) {
        self.init(count: source.count) { buffer in buffer.copyMemory(from: source) }
    }

    /// The UTF-8 bytes of `string` (a passphrase typed by a person).
    public convenience init(utf8 string: String) { self.init(Array(string.utf8)) }

    public var isEmpty: Bool { count == 0 }

    /// Lends the bytes; do not let them escape the closure.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// A copy of the bytes, for an API that needs an array. The caller owns wiping it.
    public func unsafeCopy() -> [UInt8] { withUnsafeBytes { Array($0) } }

    /// Constant-time comparison.
    public func constantTimeEquals(_ other: some Collection<UInt8>) -> Bool {
        guard other.count == count else { return false }
        var diff: UInt8 = 0
        withUnsafeBytes { mine in
            for (i, b) in other.enumerated() { diff |= mine[i] ^ b }
        }
        return diff == 0
    }

    /// Constant-time comparison with another secret.
    public func constantTimeEquals(_ other: SecretBytes) -> Bool {
        other.withUnsafeBytes { constantTimeEquals($0) }
    }

    deinit { Self.release(base, count: count, mapped: mapped) }

    private static func release(_ base: UnsafeMutableRawPointer, count: Int, mapped: Int) {
        if mapped > 0 {
            explicit_bzero(base, mapped)
            _ = munlock(base, mapped)
            _ = munmap(base, mapped)
        } else {
            explicit_bzero(base, max(count, 1))
            base.deallocate()
        }
    }

    public var description: String { "<redacted \(count) bytes>" }
    public var debugDescription: String { description }
}
