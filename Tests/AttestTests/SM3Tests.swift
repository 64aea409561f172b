import Attest
import Testing

/// SM3 (GB/T 32905-2016; TPM_ALG_SM3_256): the standard's Appendix A examples, padding boundaries, and
/// incremental hashing. None of these tests needs OpenSSL: the extra digests were computed with it once and are
/// hard-coded below.
@Suite struct SM3Tests {
    /// `n` bytes of ASCII "a": the fixed pattern of the padding-boundary tests.
    static func letterA(_ n: Int) -> [UInt8] { [UInt8](repeating: UInt8(ascii: "a"), count: n) }

    /// Bytes 0x00, 0x01, …, 0xFF, 0x00, … (`i % 256`): a pattern whose bytes differ within every word.
    static func counting(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0) } }

    @Test func sizesMatchTheStandardAndTPMAlgorithmID() {
        #expect(SM3.digestByteCount == 32)
        #expect(SM3.blockByteCount == 64)
        #expect(TPMAlgorithmID.sm3_256.digestSize == SM3.digestByteCount)
        #expect(SM3.hash(Array("abc".utf8)).count == SM3.digestByteCount)
    }

    @Test func appendixAExample1() {
        // GB/T 32905-2016 Appendix A.1: "abc" (24 bits, one block after padding).
        #expect(
            Hex.encode(SM3.hash(Array("abc".utf8)))
                == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
    }

    @Test func appendixAExample2() {
        // GB/T 32905-2016 Appendix A.2: "abcd" × 16 (512 bits, two blocks after padding).
        #expect(
            Hex.encode(SM3.hash(Array(String(repeating: "abcd", count: 16).utf8)))
                == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732")
    }

    @Test func emptyMessage() {
        // printf '' | openssl dgst -sm3   (OpenSSL 3.0.19)
        #expect(
            Hex.encode(SM3.hash([UInt8]()))
                == "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b")
        #expect(Hex.encode(SM3().finalize()) == Hex.encode(SM3.hash([UInt8]())))
    }

    /// Lengths around the §5.2 padding boundaries (55: the length field still fits; 56: it needs a second block;
    /// 63, 64, 65: the block boundary; 119, 120: the same one block later) and a long message.
    /// Expected digests computed on the development machine with OpenSSL 3.0.19:
    ///     head -c N /dev/zero | tr '\0' 'a' | openssl dgst -sm3
    static let letterADigests: [(Int, String)] = [
        (55, "288337eef51eec62e7544d7270424c8dbe656254c99852870a73b2453a6a7fb1"),
        (56, "ba00ebedaab54065a5fd4f9f56326016203166bcee3eed44ea868d59d67aa3c8"),
        (63, "587308543551881ebd70d27ad358ff5dcdf24ac54822e2f7b7c3edce0985d21b"),
        (64, "616ec433c359e7c2b19f360e2b8f2a1b6e9ed76b8dc1a7d207b31a5341c611e9"),
        (65, "3d1d94afa238ec3e2bbc20ad504702b24c16f2889c94973f2f8da3526c44e4bc"),
        (119, "53282a90724e9eb79b18d06b5b8f7f02d046e18b29247dcdb064a136d5c4459a"),
        (120, "4c9f0fe9f36ffe0191af73560c4afb1b671be02ba2d0e0c161b1e03488c2a45c"),
        (1000, "f4bedca973227d45c5b822551d2e762d4cfb0e9af70b241452545727b5fb046f"),
    ]

    @Test(arguments: letterADigests)
    func paddingBoundaryLengths(_ length: Int, _ expected: String) {
        #expect(Hex.encode(SM3.hash(Self.letterA(length))) == expected)
    }

    /// Expected digest computed with OpenSSL 3.0.19:
    ///     python3 -c 'import sys; sys.stdout.buffer.write(bytes(i % 256 for i in range(1000)))' | openssl dgst -sm3
    static let counting1000Digest = "e1043d6f7910a57e49c10eb042760c060d07ea26866cb067cc5eecb42f9056a3"

    @Test func countingPattern1000Bytes() {
        #expect(Hex.encode(SM3.hash(Self.counting(1000))) == Self.counting1000Digest)
    }

    @Test func incrementalUnevenChunksEqualOneShot() {
        let message = Self.counting(1000)
        // Chunks that start mid-block, fill a block exactly, cross several blocks, and are empty.
        let chunkSizes = [1, 0, 2, 61, 64, 3, 127, 0, 65, 5, 200, 63, 1, 129]
        var hasher = SM3()
        var offset = 0
        var index = 0
        while offset < message.count {
            let size = min(chunkSizes[index % chunkSizes.count], message.count - offset)
            // Alternate the two update paths: a contiguous slice, and a raw buffer pointer.
            if index % 2 == 0 {
                hasher.update(message[offset..<(offset + size)])
            } else {
                message[offset..<(offset + size)].withUnsafeBytes { hasher.update(bufferPointer: $0) }
            }
            offset += size
            index += 1
        }
        #expect(Hex.encode(hasher.finalize()) == Self.counting1000Digest)
        #expect(hasher.finalize() == SM3.hash(message))
    }

    @Test func byteAtATimeAndNonContiguousSequencesEqualOneShot() {
        for (length, expected) in Self.letterADigests {
            var hasher = SM3()
            for byte in Self.letterA(length) { hasher.update(CollectionOfOne(byte)) }
            #expect(Hex.encode(hasher.finalize()) == expected, "byte at a time, \(length) bytes")
            // A lazy map has no contiguous storage: the gathering path of update(_:).
            let lazy = Self.letterA(length).lazy.map { $0 }
            #expect(Hex.encode(SM3.hash(lazy)) == expected, "non-contiguous sequence, \(length) bytes")
        }
    }

    @Test func finalizeLeavesTheHasherUsable() {
        let message = Self.counting(1000)
        var hasher = SM3()
        hasher.update(message[0..<300])
        let prefixDigest = hasher.finalize()
        #expect(prefixDigest == SM3.hash(message[0..<300]))
        let fork = hasher
        hasher.update(message[300...])
        #expect(Hex.encode(hasher.finalize()) == Self.counting1000Digest)
        #expect(fork.finalize() == prefixDigest)
    }
}
