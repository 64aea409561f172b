/// A cursor over untrusted bytes that never traps.
///
/// Every read checks the remaining length first and throws ``AttestError/Code/truncated`` naming the
/// field and byte offset; the byte order is named at every multi-byte read (TPM structures are
/// big-endian, the TCG event log is little-endian). Shaped like NIO's `ByteBuffer.readInteger` and
/// swift-asn1's `popFirst`.
public struct ByteReader: Sendable {
    /// The byte order of a multi-byte read.
    public enum Endianness: Sendable { case big, little }

    @usableFromInline let bytes: [UInt8]
    /// Absolute offset of the next byte in `bytes`.
    public private(set) var offset: Int
    /// End (exclusive) of the readable window.
    @usableFromInline let end: Int

    /// Creates a reader over `bytes`, starting at offset 0.
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
        self.end = bytes.count
    }

    /// Creates a reader over a copy of `bytes`.
    public init<S: Sequence>(bytes: S) where S.Element == UInt8 {
        self.init(Array(bytes))
    }

    private init(bytes: [UInt8], offset: Int, end: Int) {
        self.bytes = bytes
        self.offset = offset
        self.end = end
    }

    /// Bytes left before the end of the readable window.
    public var remaining: Int { end - offset }
    /// True when no bytes are left.
    public var isAtEnd: Bool { offset >= end }

    /// Reads one byte, or throws ``AttestError/Code/truncated``.
    public mutating func readUInt8(_ field: @autoclosure () -> String) throws(AttestError) -> UInt8 {
        guard remaining >= 1 else { throw .truncated(field(), at: offset, needed: 1, available: remaining) }
        let value = bytes[offset]
        offset += 1
        return value
    }

    /// Reads a UInt16 in the given byte order, or throws ``AttestError/Code/truncated``.
    public mutating func readUInt16(_ field: @autoclosure () -> String, _ order: Endianness) throws(AttestError)
        -> UInt16
    {
        let raw = try readFixed(field(), count: 2)
        return order == .big ? (UInt16(raw.0) << 8 | UInt16(raw.1)) : (UInt16(raw.1) << 8 | UInt16(raw.0))
    }

    /// Reads a UInt32 in the given byte order, or throws ``AttestError/Code/truncated``.
    public mutating func readUInt32(_ field: @autoclosure () -> String, _ order: Endianness) throws(AttestError)
        -> UInt32
    {
        guard remaining >= 4 else { throw .truncated(field(), at: offset, needed: 4, available: remaining) }
        var value: UInt32 = 0
        for i in 0..<4 {
            let b = UInt32(bytes[offset + (order == .big ? i : 3 - i)])
            value = value << 8 | b
        }
        offset += 4
        return value
    }

    /// Reads a UInt64 in the given byte order, or throws ``AttestError/Code/truncated``.
    public mutating func readUInt64(_ field: @autoclosure () -> String, _ order: Endianness) throws(AttestError)
        -> UInt64
    {
        guard remaining >= 8 else { throw .truncated(field(), at: offset, needed: 8, available: remaining) }
        var value: UInt64 = 0
        for i in 0..<8 {
            let b = UInt64(bytes[offset + (order == .big ? i : 7 - i)])
            value = value << 8 | b
        }
        offset += 8
        return value
    }

    /// Reads exactly `count` bytes. `count` is checked against the remaining input before anything is copied.
    public mutating func readBytes(_ field: @autoclosure () -> String, count: Int) throws(AttestError) -> [UInt8] {
        guard count >= 0 else { throw .invalid("\(field()): negative length at byte \(offset)") }
        guard remaining >= count else {
            throw .truncated(field(), at: offset, needed: count, available: remaining)
        }
        let out = Array(bytes[offset..<(offset + count)])
        offset += count
        return out
    }

    /// Returns the next `count` bytes as a slice sharing the reader's storage (no copy).
    public mutating func readSlice(_ field: @autoclosure () -> String, count: Int) throws(AttestError) -> ArraySlice<
        UInt8
    > {
        guard count >= 0, remaining >= count else {
            throw .truncated(field(), at: offset, needed: count, available: remaining)
        }
        let out = bytes[offset..<(offset + count)]
        offset += count
        return out
    }

    /// Skips `count` bytes.
    public mutating func skip(_ field: @autoclosure () -> String, count: Int) throws(AttestError) {
        guard count >= 0, remaining >= count else {
            throw .truncated(field(), at: offset, needed: count, available: remaining)
        }
        offset += count
    }

    /// Reads a TPM2B: a big-endian UINT16 size, then that many bytes, at most `maxSize`.
    public mutating func readTPM2B(_ field: @autoclosure () -> String, maxSize: Int) throws(AttestError) -> [UInt8] {
        let at = offset
        let size = Int(try readUInt16("\(field()).size", .big))
        guard size <= maxSize else { throw .tooLarge(field(), size: size, limit: maxSize, at: at) }
        return try readBytes(field(), count: size)
    }

    /// Splits off a sub-reader over the next `count` bytes (a sized structure) and advances past them.
    /// Offsets in errors raised by the sub-reader stay absolute.
    public mutating func readSubReader(_ field: @autoclosure () -> String, count: Int) throws(AttestError) -> ByteReader
    {
        guard count >= 0, remaining >= count else {
            throw .truncated(field(), at: offset, needed: count, available: remaining)
        }
        let sub = ByteReader(bytes: bytes, offset: offset, end: offset + count)
        offset += count
        return sub
    }

    /// Throws ``AttestError/Code/trailingBytes`` unless every byte was consumed.
    public func expectEnd(_ structure: String) throws(AttestError) {
        guard isAtEnd else { throw .trailingBytes(structure, count: remaining, at: offset) }
    }

    /// The bytes from `start` (an absolute offset previously read from ``offset``) up to the cursor.
    public func bytesConsumed(since start: Int) -> [UInt8] {
        guard start >= 0, start <= offset else { return [] }
        return Array(bytes[start..<offset])
    }

    private mutating func readFixed(_ field: @autoclosure () -> String, count: Int) throws(AttestError) -> (
        UInt8, UInt8
    ) {
        guard remaining >= count else { throw .truncated(field(), at: offset, needed: count, available: remaining) }
        let pair = (bytes[offset], bytes[offset + 1])
        offset += count
        return pair
    }
}
