/// Appends TPM wire encodings (big-endian, TPM 2.0 Part 1 §18 "canonicalization").
public struct ByteWriter: Sendable {
    /// The encoded bytes so far.
    public private(set) var bytes: [UInt8] = []

    /// Creates an empty writer.
    public init() {}

    /// Appends one byte.
    public mutating func append(_ v: UInt8) { bytes.append(v) }
    /// Appends a UInt16, big-endian.
    public mutating func append(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }
    /// Appends a UInt32, big-endian.
    public mutating func append(_ v: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift)))
        }
    }
    /// Appends a UInt64, big-endian.
    public mutating func append(_ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift)))
        }
    }
    /// Appends the bytes as they are, with no size prefix.
    public mutating func append(bytes other: some Sequence<UInt8>) { bytes.append(contentsOf: other) }

    /// Appends a TPM2B: UINT16 size then the bytes.
    /// - Precondition: `other.count` fits in a UInt16 (callers build these from trusted, bounded values).
    public mutating func appendTPM2B(_ other: [UInt8]) {
        precondition(other.count <= Int(UInt16.max), "TPM2B larger than 65535 bytes")
        append(UInt16(other.count))
        bytes.append(contentsOf: other)
    }
}
