import Crypto
public import Foundation

/// Hashing by TPM algorithm id, with the swift-crypto implementations.
public enum TPMDigest {
    /// H_alg(bytes). SHA-1 is supported because PCR banks and old logs use it.
    public static func hash(_ alg: TPMAlgorithmID, _ bytes: some DataProtocol) throws(AttestError) -> [UInt8] {
        switch alg {
        case .sha1: return Array(Insecure.SHA1.hash(data: bytes))
        case .sha256: return Array(SHA256.hash(data: bytes))
        case .sha384: return Array(SHA384.hash(data: bytes))
        case .sha512: return Array(SHA512.hash(data: bytes))
        case .sm3_256: return SM3.hash(bytes)
        default:
            throw AttestError(
                code: .unknownAlgorithm, reason: "hash algorithm \(alg) is not supported by this verifier")
        }
    }

    /// H_alg(a || b) without building the concatenation: the PCR extend operation.
    public static func extend(_ alg: TPMAlgorithmID, _ a: [UInt8], _ b: [UInt8]) throws(AttestError) -> [UInt8] {
        func run<H: HashFunction>(_ h: inout H) -> [UInt8] {
            h.update(data: a)
            h.update(data: b)
            return Array(h.finalize())
        }
        switch alg {
        case .sha1:
            var h = Insecure.SHA1()
            return run(&h)
        case .sha256:
            var h = SHA256()
            return run(&h)
        case .sha384:
            var h = SHA384()
            return run(&h)
        case .sha512:
            var h = SHA512()
            return run(&h)
        case .sm3_256:
            var h = SM3Hasher()
            return run(&h)
        default:
            throw AttestError(
                code: .unknownAlgorithm, reason: "hash algorithm \(alg) is not supported by this verifier")
        }
    }

    /// True when ``hash(_:_:)`` can compute `alg`.
    public static func isSupported(_ alg: TPMAlgorithmID) -> Bool {
        [.sha1, .sha256, .sha384, .sha512, .sm3_256].contains(alg)
    }
}

/// Lowercase hexadecimal encoding helpers.
public enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Encodes `bytes` as lowercase hex without a prefix.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes hex, accepting an optional "0x" prefix, upper or lower case. Nil on odd length or a non-hex digit.
    public static func decode(_ text: String) -> [UInt8]? {
        var s = Substring(text)
        if s.hasPrefix("0x") || s.hasPrefix("0X") { s = s.dropFirst(2) }
        let utf8 = Array(s.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// An incremental hash by TPM algorithm id (for PCR digests without concatenating the values).
struct PCRDigestHasher {
    private enum State {
        case sha1(Insecure.SHA1), sha256(SHA256), sha384(SHA384), sha512(SHA512)
    }
    private var state: State

    init(_ alg: TPMAlgorithmID) throws(AttestError) {
        switch alg {
        case .sha1: state = .sha1(Insecure.SHA1())
        case .sha256: state = .sha256(SHA256())
        case .sha384: state = .sha384(SHA384())
        case .sha512: state = .sha512(SHA512())
        default:
            throw AttestError(
                code: .unknownAlgorithm, reason: "hash algorithm \(alg) is not supported by this verifier")
        }
    }

    mutating func update(_ bytes: [UInt8]) {
        switch state {
        case .sha1(var h):
            h.update(data: bytes)
            state = .sha1(h)
        case .sha256(var h):
            h.update(data: bytes)
            state = .sha256(h)
        case .sha384(var h):
            h.update(data: bytes)
            state = .sha384(h)
        case .sha512(var h):
            h.update(data: bytes)
            state = .sha512(h)
        }
    }

    func finalize() -> [UInt8] {
        switch state {
        case .sha1(let h): Array(h.finalize())
        case .sha256(let h): Array(h.finalize())
        case .sha384(let h): Array(h.finalize())
        case .sha512(let h): Array(h.finalize())
        }
    }
}
