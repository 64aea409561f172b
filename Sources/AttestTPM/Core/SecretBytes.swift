#if canImport(Glibc)
    import Glibc
#endif

/// Secret material (auth values, unsealed data, volume keys) that is wiped from memory when released,
/// is not `Codable`, and prints as `<redacted>`. Like swift-crypto's `SecureBytes`.
public final class SecretBytes: @unchecked Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    // @unchecked Sendable: `storage` is written only in init and wiped only in deinit, when no other
    // reference exists; every other access is a read.
    private var storage: [UInt8]

    public init(_ bytes: [UInt8]) { storage = bytes }
    public convenience init(utf8 string: String) { self.init(Array(string.utf8)) }

    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }

    /// Lends the bytes; do not let them escape the closure.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes(body)
    }

    /// A copy of the bytes, for handing to an API that needs an array. The caller owns wiping it.
    public func unsafeCopy() -> [UInt8] { storage }

    /// Constant-time comparison.
    public func constantTimeEquals(_ other: [UInt8]) -> Bool {
        guard other.count == storage.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<storage.count { diff |= storage[i] ^ other[i] }
        return diff == 0
    }

    deinit {
        storage.withUnsafeMutableBytes { buf in
            if let base = buf.baseAddress { explicit_bzero(base, buf.count) }
        }
    }

    public var description: String { "<redacted \(storage.count) bytes>" }
    public var debugDescription: String { description }
}
