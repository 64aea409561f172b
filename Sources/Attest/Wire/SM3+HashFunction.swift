import Crypto

/// ``SM3`` as a swift-crypto `HashFunction`, so PCR replay and the quote's PCR digest run the same generic
/// code for SM3-256 banks (TPM_ALG_SM3_256, Part 2 §6.3) as for the SHA banks.
struct SM3Hasher: HashFunction {
    static let blockByteCount = SM3.blockByteCount
    private var state = SM3()

    init() {}

    mutating func update(bufferPointer: UnsafeRawBufferPointer) {
        state.update(bufferPointer: bufferPointer)
    }

    func finalize() -> SM3Digest {
        SM3Digest(bytes: state.finalize())
    }
}

/// A 32-byte SM3 digest (GB/T 32905-2016 §5.4).
struct SM3Digest: Digest, CustomStringConvertible {
    static let byteCount = SM3.digestByteCount
    let bytes: [UInt8]

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes(body)
    }

    func makeIterator() -> Array<UInt8>.Iterator { bytes.makeIterator() }

    var description: String { "SM3 digest: " + Hex.encode(bytes) }
}
