/// SM3, the Chinese national cryptographic hash of GB/T 32905-2016 ("Information security techniques — SM3
/// cryptographic hash algorithm"), in pure Swift: a 256-bit digest of 64-byte blocks in a Merkle–Damgård chain.
///
/// TPM 2.0 names it TPM_ALG_SM3_256 (0x0012, TPM 2.0 Part 2 §6.3, ``TPMAlgorithmID/sm3_256``): PCR banks,
/// object Names and quotes of TPMs certified for the Chinese market may use it, and swift-crypto does not have it.
///
/// Usage: ``hash(_:)`` for a message in memory, or ``init()``, ``update(_:)`` / ``update(bufferPointer:)`` as
/// often as needed, and ``finalize()``. A value type: copying a hasher forks the computation, and nothing here
/// allocates except the digest array that ``finalize()`` returns.
///
/// Section references are to GB/T 32905-2016: §4.1 initial value, §4.2 constants T_j, §4.3 Boolean functions
/// FF_j and GG_j, §4.4 permutations P0 and P1, §5.2 padding, §5.3.1 iteration, §5.3.2 message expansion,
/// §5.3.3 compression function, §5.4 hash value, Appendix A examples.
public struct SM3: Sendable {
    /// Digest length in bytes: 256 bits (GB/T 32905-2016 §5.4; TPM 2.0 Part 2 §6.3, TPM_ALG_SM3_256).
    public static let digestByteCount = 32

    /// Message block length in bytes: 512 bits (GB/T 32905-2016 §5.3.1).
    public static let blockByteCount = 64

    /// The chaining value V_i: eight 32-bit words A…H (GB/T 32905-2016 §5.3.1, §5.3.3).
    private struct State: Sendable {
        var a: UInt32 = 0x7380_166F, b: UInt32 = 0x4914_B2B9, c: UInt32 = 0x1724_42D7, d: UInt32 = 0xDA8A_0600
        var e: UInt32 = 0xA96F_30BC, f: UInt32 = 0x1631_38AA, g: UInt32 = 0xE38D_EE4D, h: UInt32 = 0xB0FB_0E4E
    }

    /// V_i, starting from the IV of §4.1.
    private var state = State()
    /// The bytes of an incomplete block (64 bytes of inline storage, no heap): the first `pendingCount` are data.
    private var pending: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    /// How many bytes of `pending` hold data, 0..<64.
    private var pendingCount = 0
    /// Message length so far in bytes; §5.2 appends the length in bits (`&<< 3`) as a 64-bit big-endian field.
    private var messageByteCount: UInt64 = 0

    /// A hasher at the initial value IV of GB/T 32905-2016 §4.1, with no message absorbed.
    public init() {}

    /// Absorbs `bytes` (GB/T 32905-2016 §5.3.1: each complete 64-byte block goes through the compression function
    /// of §5.3.3 at once; a trailing partial block waits for more data or for ``finalize()``).
    ///
    /// Contiguous collections (`[UInt8]`, `ArraySlice`, `UnsafeRawBufferPointer`, …) take the
    /// ``update(bufferPointer:)`` path; other sequences are gathered into 64-byte blocks on the stack.
    public mutating func update(_ bytes: some Sequence<UInt8>) {
        let fastPath: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            update(bufferPointer: UnsafeRawBufferPointer(buffer))
        }
        guard fastPath == nil else { return }
        var chunk: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            withUnsafeMutableBytes(of: &chunk) { $0[count] = byte }
            count &+= 1
            if count == Self.blockByteCount {
                withUnsafeBytes(of: &chunk) { update(bufferPointer: $0) }
                count = 0
            }
        }
        if count > 0 {
            withUnsafeBytes(of: &chunk) { update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
    }

    /// Absorbs the bytes of `bufferPointer`, the fast path of ``update(_:)`` (GB/T 32905-2016 §5.3.1 iteration
    /// over 64-byte blocks, read straight from the buffer; §5.3.3 compression function).
    public mutating func update(bufferPointer: UnsafeRawBufferPointer) {
        var input = bufferPointer
        guard input.count > 0 else { return }
        messageByteCount &+= UInt64(truncatingIfNeeded: input.count)
        let blockSize = Self.blockByteCount

        if pendingCount > 0 {
            let take = min(blockSize &- pendingCount, input.count)
            let start = pendingCount
            withUnsafeMutableBytes(of: &pending) { block in
                UnsafeMutableRawBufferPointer(rebasing: block[start..<(start &+ take)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: input[0..<take]))
                if start &+ take == blockSize {
                    Self.compress(&state, blocks: UnsafeRawBufferPointer(block))
                }
            }
            pendingCount = (start &+ take) & (blockSize &- 1)
            input = UnsafeRawBufferPointer(rebasing: input[take...])
            if pendingCount > 0 { return }
        }

        let whole = input.count & ~(blockSize &- 1)
        if whole > 0 {
            Self.compress(&state, blocks: UnsafeRawBufferPointer(rebasing: input[0..<whole]))
        }
        let rest = input.count &- whole
        if rest > 0 {
            withUnsafeMutableBytes(of: &pending) { block in
                UnsafeMutableRawBufferPointer(rebasing: block[0..<rest])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: input[whole...]))
            }
            pendingCount = rest
        }
    }

    /// The 32-byte digest of everything absorbed so far: GB/T 32905-2016 §5.2 padding (a 1 bit, zeros to 448
    /// mod 512 bits, the 64-bit big-endian message length in bits), the last one or two §5.3.3 compressions,
    /// and §5.4 output of A…H big-endian. Works on a copy, so the hasher can keep absorbing afterwards.
    public func finalize() -> [UInt8] {
        var state = self.state
        var block = self.pending
        let count = self.pendingCount
        let bitLength = messageByteCount &<< 3
        withUnsafeMutableBytes(of: &block) { block in
            block[count] = 0x80
            var used = count &+ 1
            if used > 56 {
                for i in used..<64 { block[i] = 0 }
                Self.compress(&state, blocks: UnsafeRawBufferPointer(block))
                used = 0
            }
            for i in used..<56 { block[i] = 0 }
            block.storeBytes(of: bitLength.bigEndian, toByteOffset: 56, as: UInt64.self)
            Self.compress(&state, blocks: UnsafeRawBufferPointer(block))
        }
        // §5.4: the digest is the final V_n = A…H, each word big-endian.
        return [UInt8](unsafeUninitializedCapacity: Self.digestByteCount) { digest, initialized in
            let raw = UnsafeMutableRawBufferPointer(digest)
            raw.storeBytes(of: state.a.bigEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: state.b.bigEndian, toByteOffset: 4, as: UInt32.self)
            raw.storeBytes(of: state.c.bigEndian, toByteOffset: 8, as: UInt32.self)
            raw.storeBytes(of: state.d.bigEndian, toByteOffset: 12, as: UInt32.self)
            raw.storeBytes(of: state.e.bigEndian, toByteOffset: 16, as: UInt32.self)
            raw.storeBytes(of: state.f.bigEndian, toByteOffset: 20, as: UInt32.self)
            raw.storeBytes(of: state.g.bigEndian, toByteOffset: 24, as: UInt32.self)
            raw.storeBytes(of: state.h.bigEndian, toByteOffset: 28, as: UInt32.self)
            initialized = Self.digestByteCount
        }
    }

    /// SM3(bytes): the 32-byte GB/T 32905-2016 digest (§5.2 padding, §5.3 iteration, §5.4 output) of a whole
    /// message, as TPM 2.0 computes H_SM3_256 (TPM 2.0 Part 2 §6.3, TPM_ALG_SM3_256).
    public static func hash(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var hasher = SM3()
        hasher.update(bytes)
        return hasher.finalize()
    }

    // MARK: - The compression function

    /// x <<< n, the 32-bit circular left shift of GB/T 32905-2016 §3 (symbols); n = 0 gives x.
    @inline(__always)
    private static func rotl(_ x: UInt32, _ n: UInt32) -> UInt32 {
        (x &<< n) | (x &>> (32 &- n))
    }

    /// P0(X) = X ⊕ (X <<< 9) ⊕ (X <<< 17), GB/T 32905-2016 §4.4.
    @inline(__always)
    private static func p0(_ x: UInt32) -> UInt32 {
        x ^ rotl(x, 9) ^ rotl(x, 17)
    }

    /// P1(X) = X ⊕ (X <<< 15) ⊕ (X <<< 23), GB/T 32905-2016 §4.4.
    @inline(__always)
    private static func p1(_ x: UInt32) -> UInt32 {
        x ^ rotl(x, 15) ^ rotl(x, 23)
    }

    /// Runs CF (GB/T 32905-2016 §5.3.3) over each 64-byte block of `blocks` (a multiple of 64 bytes):
    /// V_(i+1) = CF(V_i, B_i). The expanded words W_0…W_67 (§5.3.2) live in one stack allocation per call.
    private static func compress(_ v: inout State, blocks: UnsafeRawBufferPointer) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 68) { w in
            var offset = 0
            while offset &+ blockByteCount <= blocks.count {
                // §5.3.2 a): the block as sixteen big-endian words W_0…W_15.
                for j in 0..<16 {
                    w[j] = UInt32(bigEndian: blocks.loadUnaligned(fromByteOffset: offset &+ j &* 4, as: UInt32.self))
                }
                // §5.3.2 b): W_j = P1(W_(j-16) ⊕ W_(j-9) ⊕ (W_(j-3) <<< 15)) ⊕ (W_(j-13) <<< 7) ⊕ W_(j-6).
                for j in 16..<68 {
                    w[j] = p1(w[j &- 16] ^ w[j &- 9] ^ rotl(w[j &- 3], 15)) ^ rotl(w[j &- 13], 7) ^ w[j &- 6]
                }
                var a = v.a, b = v.b, c = v.c, d = v.d, e = v.e, f = v.f, g = v.g, h = v.h
                // T_j <<< (j mod 32) (§4.2, §5.3.3), advanced by one bit per round instead of a table.
                var t: UInt32 = 0x79CC_4519
                // Rounds 0…15: FF_j = GG_j = X ⊕ Y ⊕ Z (§4.3).
                for j in 0..<16 {
                    let a12 = rotl(a, 12)
                    let ss1 = rotl(a12 &+ e &+ t, 7)
                    let ss2 = ss1 ^ a12
                    // W'_j = W_j ⊕ W_(j+4) (§5.3.2 c).
                    let tt1 = (a ^ b ^ c) &+ d &+ ss2 &+ (w[j] ^ w[j &+ 4])
                    let tt2 = (e ^ f ^ g) &+ h &+ ss1 &+ w[j]
                    d = c
                    c = rotl(b, 9)
                    b = a
                    a = tt1
                    h = g
                    g = rotl(f, 19)
                    f = e
                    e = p0(tt2)
                    t = rotl(t, 1)
                }
                // Rounds 16…63: T_j = 7A879D8A, FF_j majority, GG_j choice (§4.2, §4.3); 16 mod 32 = 16.
                t = rotl(0x7A87_9D8A, 16)
                for j in 16..<64 {
                    let a12 = rotl(a, 12)
                    let ss1 = rotl(a12 &+ e &+ t, 7)
                    let ss2 = ss1 ^ a12
                    let ff = (a & b) | (a & c) | (b & c)
                    let gg = (e & f) | (~e & g)
                    let tt1 = ff &+ d &+ ss2 &+ (w[j] ^ w[j &+ 4])
                    let tt2 = gg &+ h &+ ss1 &+ w[j]
                    d = c
                    c = rotl(b, 9)
                    b = a
                    a = tt1
                    h = g
                    g = rotl(f, 19)
                    f = e
                    e = p0(tt2)
                    t = rotl(t, 1)
                }
                // V_(i+1) = ABCDEFGH ⊕ V_i (§5.3.3).
                v.a ^= a
                v.b ^= b
                v.c ^= c
                v.d ^= d
                v.e ^= e
                v.f ^= f
                v.g ^= g
                v.h ^= h
                offset &+= blockByteCount
            }
        }
    }
}
