import Crypto

/// KDFa and KDFe — TPM 2.0 Part 1 §11.4.10: the key derivation functions the TPM uses to turn a seed
/// (credential protection, duplication, salted sessions) into symmetric and HMAC keys.
///
/// Only the hashes a verifier needs for credential protection are supported (SHA-256, SHA-384, SHA-512);
/// anything else throws ``AttestError/Code/unknownAlgorithm``.
public enum TPMKDF {
    /// The largest output either function produces (a bound on the loop, far above any key size).
    public static let maxOutputBits = 8 * 1024

    /// Whether `alg` can be used with ``kdfa(_:key:label:contextU:contextV:bits:)``, ``kdfe(_:z:label:partyUInfo:partyVInfo:bits:)`` and ``hmac(_:key:_:)``.
    public static func isSupported(_ alg: TPMAlgorithmID) -> Bool {
        [.sha256, .sha384, .sha512].contains(alg)
    }

    /// KDFa — Part 1 §11.4.10.2: the SP800-108 counter-mode KDF with HMAC-`hashAlg` keyed with `key`.
    ///
    /// Each block is `HMAC(key, [i]₃₂ || label || 0x00 || contextU || contextV || [bits]₃₂)` for
    /// i = 1, 2, …, all integers big-endian; the concatenation is truncated to `bits` (a multiple of 8).
    /// `label` is given without its terminating NUL: exactly one 0x00 follows it, as in the reference
    /// implementation's `CryptKDFa`.
    public static func kdfa(
        _ hashAlg: TPMAlgorithmID, key: [UInt8], label: String, contextU: [UInt8], contextV: [UInt8],
        bits: Int
    ) throws(AttestError) -> [UInt8] {
        let byteCount = try outputByteCount(bits, "KDFa")
        let labelBytes = try nulTerminated(label, "KDFa")
        var bitsField = ByteWriter()
        bitsField.append(UInt32(truncatingIfNeeded: bits))
        var out: [UInt8] = []
        var counter: UInt32 = 1
        while out.count < byteCount {
            var counterField = ByteWriter()
            counterField.append(counter)
            out += try hmac(hashAlg, key: key, [counterField.bytes, labelBytes, contextU, contextV, bitsField.bytes])
            counter += 1  // at most maxOutputBits / 8 blocks: cannot overflow
        }
        return Array(out.prefix(byteCount))
    }

    /// KDFe — Part 1 §11.4.10.3: the SP800-56A concatenation KDF for ECDH.
    ///
    /// Each block is `H_hashAlg([i]₃₂ || Z || label || 0x00 || partyUInfo || partyVInfo)` for i = 1, 2, …
    /// (big-endian counter); the concatenation is truncated to `bits` (a multiple of 8). `label` is
    /// given without its terminating NUL, which is hashed as part of it (the reference implementation's
    /// labels are NUL-terminated `TPM2B`s). `z` is the x-coordinate of the shared point.
    public static func kdfe(
        _ hashAlg: TPMAlgorithmID, z: [UInt8], label: String, partyUInfo: [UInt8], partyVInfo: [UInt8],
        bits: Int
    ) throws(AttestError) -> [UInt8] {
        let byteCount = try outputByteCount(bits, "KDFe")
        let labelBytes = try nulTerminated(label, "KDFe")
        guard isSupported(hashAlg) else { throw unsupported(hashAlg, "KDFe") }
        var out: [UInt8] = []
        var counter: UInt32 = 1
        while out.count < byteCount {
            var counterField = ByteWriter()
            counterField.append(counter)
            var block = counterField.bytes
            block += z
            block += labelBytes
            block += partyUInfo
            block += partyVInfo
            out += try TPMDigest.hash(hashAlg, block)
            counter += 1  // at most maxOutputBits / 8 blocks: cannot overflow
        }
        return Array(out.prefix(byteCount))
    }

    /// HMAC-`hashAlg`(key, parts[0] || parts[1] || …) — Part 1 §11.4.3.
    public static func hmac(_ hashAlg: TPMAlgorithmID, key: [UInt8], _ parts: [[UInt8]]) throws(AttestError) -> [UInt8]
    {
        func run<H: HashFunction>(_: H.Type) -> [UInt8] {
            var mac = HMAC<H>(key: SymmetricKey(data: key))
            for part in parts { mac.update(data: part) }
            return Array(mac.finalize())
        }
        switch hashAlg {
        case .sha256: return run(SHA256.self)
        case .sha384: return run(SHA384.self)
        case .sha512: return run(SHA512.self)
        default: throw unsupported(hashAlg, "HMAC")
        }
    }

    private static func outputByteCount(_ bits: Int, _ function: String) throws(AttestError) -> Int {
        guard bits > 0, bits <= maxOutputBits, bits % 8 == 0 else {
            throw AttestError.invalid(
                "\(function): \(bits) output bits is not a positive multiple of 8 up to \(maxOutputBits)")
        }
        return bits / 8
    }

    private static func nulTerminated(_ label: String, _ function: String) throws(AttestError) -> [UInt8] {
        let bytes = Array(label.utf8)
        guard !bytes.contains(0) else { throw AttestError.invalid("\(function): the label contains a NUL byte") }
        return bytes + [0]
    }

    private static func unsupported(_ alg: TPMAlgorithmID, _ function: String) -> AttestError {
        AttestError(
            code: .unknownAlgorithm,
            reason: "\(function): hash algorithm \(alg) is not supported (SHA-256, SHA-384 or SHA-512)")
    }
}
