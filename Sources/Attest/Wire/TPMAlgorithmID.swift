/// TPM_ALG_ID — TPM 2.0 Part 2 §6.3 (and the TCG Algorithm Registry).
public struct TPMAlgorithmID: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    /// The 16-bit TPM_ALG_ID value.
    public let rawValue: UInt16
    /// Wraps any TPM_ALG_ID value; unknown identifiers are kept, not rejected.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// Wraps any TPM_ALG_ID value; unknown identifiers are kept, not rejected.
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    /// TPM_ALG_RSA (0x0001).
    public static let rsa = TPMAlgorithmID(0x0001)
    /// TPM_ALG_SHA1 (0x0004).
    public static let sha1 = TPMAlgorithmID(0x0004)
    /// TPM_ALG_HMAC (0x0005).
    public static let hmac = TPMAlgorithmID(0x0005)
    /// TPM_ALG_AES (0x0006).
    public static let aes = TPMAlgorithmID(0x0006)
    /// TPM_ALG_KEYEDHASH (0x0008).
    public static let keyedHash = TPMAlgorithmID(0x0008)
    /// TPM_ALG_XOR (0x000A).
    public static let xor = TPMAlgorithmID(0x000A)
    /// TPM_ALG_SHA256 (0x000B).
    public static let sha256 = TPMAlgorithmID(0x000B)
    /// TPM_ALG_SHA384 (0x000C).
    public static let sha384 = TPMAlgorithmID(0x000C)
    /// TPM_ALG_SHA512 (0x000D).
    public static let sha512 = TPMAlgorithmID(0x000D)
    /// TPM_ALG_NULL (0x0010).
    public static let null = TPMAlgorithmID(0x0010)
    /// TPM_ALG_SM3_256 (0x0012).
    public static let sm3_256 = TPMAlgorithmID(0x0012)
    /// TPM_ALG_SM4 (0x0013).
    public static let sm4 = TPMAlgorithmID(0x0013)
    /// TPM_ALG_RSASSA (0x0014).
    public static let rsassa = TPMAlgorithmID(0x0014)
    /// TPM_ALG_RSAES (0x0015).
    public static let rsaes = TPMAlgorithmID(0x0015)
    /// TPM_ALG_RSAPSS (0x0016).
    public static let rsapss = TPMAlgorithmID(0x0016)
    /// TPM_ALG_OAEP (0x0017).
    public static let oaep = TPMAlgorithmID(0x0017)
    /// TPM_ALG_ECDSA (0x0018).
    public static let ecdsa = TPMAlgorithmID(0x0018)
    /// TPM_ALG_ECDH (0x0019).
    public static let ecdh = TPMAlgorithmID(0x0019)
    /// TPM_ALG_ECDAA (0x001A).
    public static let ecdaa = TPMAlgorithmID(0x001A)
    /// TPM_ALG_SM2 (0x001B).
    public static let sm2 = TPMAlgorithmID(0x001B)
    /// TPM_ALG_ECSCHNORR (0x001C).
    public static let ecschnorr = TPMAlgorithmID(0x001C)
    /// TPM_ALG_ECMQV (0x001D).
    public static let ecmqv = TPMAlgorithmID(0x001D)
    /// TPM_ALG_KDF1_SP800_56A (0x0020).
    public static let kdf1_sp800_56a = TPMAlgorithmID(0x0020)
    /// TPM_ALG_KDF2 (0x0021).
    public static let kdf2 = TPMAlgorithmID(0x0021)
    /// TPM_ALG_KDF1_SP800_108 (0x0022).
    public static let kdf1_sp800_108 = TPMAlgorithmID(0x0022)
    /// TPM_ALG_ECC (0x0023).
    public static let ecc = TPMAlgorithmID(0x0023)
    /// TPM_ALG_SYMCIPHER (0x0025).
    public static let symCipher = TPMAlgorithmID(0x0025)
    /// TPM_ALG_CAMELLIA (0x0026).
    public static let camellia = TPMAlgorithmID(0x0026)
    /// TPM_ALG_SHA3_256 (0x0027).
    public static let sha3_256 = TPMAlgorithmID(0x0027)
    /// TPM_ALG_SHA3_384 (0x0028).
    public static let sha3_384 = TPMAlgorithmID(0x0028)
    /// TPM_ALG_SHA3_512 (0x0029).
    public static let sha3_512 = TPMAlgorithmID(0x0029)
    /// TPM_ALG_CTR (0x0040).
    public static let ctr = TPMAlgorithmID(0x0040)
    /// TPM_ALG_OFB (0x0041).
    public static let ofb = TPMAlgorithmID(0x0041)
    /// TPM_ALG_CBC (0x0042).
    public static let cbc = TPMAlgorithmID(0x0042)
    /// TPM_ALG_CFB (0x0043).
    public static let cfb = TPMAlgorithmID(0x0043)
    /// TPM_ALG_ECB (0x0044).
    public static let ecb = TPMAlgorithmID(0x0044)
    /// TPM_ALG_MGF1 (0x0007).
    public static let mgf1 = TPMAlgorithmID(0x0007)

    /// Digest size in bytes when this is a hash algorithm the TCG registry defines, else nil.
    public var digestSize: Int? {
        switch self {
        case .sha1: 20
        case .sha256, .sm3_256, .sha3_256: 32
        case .sha384, .sha3_384: 48
        case .sha512, .sha3_512: 64
        default: nil
        }
    }

    /// True for the hash algorithms whose digest size is known (see ``digestSize``).
    public var isHash: Bool { digestSize != nil }

    /// The lowercase name tpm2-tools and Vigil use for PCR banks and algorithms ("sha256", "sm3_256").
    public var name: String {
        switch self {
        case .rsa: "rsa"
        case .sha1: "sha1"
        case .hmac: "hmac"
        case .aes: "aes"
        case .keyedHash: "keyedhash"
        case .xor: "xor"
        case .sha256: "sha256"
        case .sha384: "sha384"
        case .sha512: "sha512"
        case .null: "null"
        case .sm3_256: "sm3_256"
        case .sm4: "sm4"
        case .rsassa: "rsassa"
        case .rsaes: "rsaes"
        case .rsapss: "rsapss"
        case .oaep: "oaep"
        case .ecdsa: "ecdsa"
        case .ecdh: "ecdh"
        case .ecdaa: "ecdaa"
        case .sm2: "sm2"
        case .ecschnorr: "ecschnorr"
        case .ecmqv: "ecmqv"
        case .kdf1_sp800_56a: "kdf1_sp800_56a"
        case .kdf2: "kdf2"
        case .kdf1_sp800_108: "kdf1_sp800_108"
        case .ecc: "ecc"
        case .symCipher: "symcipher"
        case .camellia: "camellia"
        case .sha3_256: "sha3_256"
        case .sha3_384: "sha3_384"
        case .sha3_512: "sha3_512"
        case .ctr: "ctr"
        case .ofb: "ofb"
        case .cbc: "cbc"
        case .cfb: "cfb"
        case .ecb: "ecb"
        case .mgf1: "mgf1"
        default: "0x" + hex4(rawValue)
        }
    }

    /// Parses a bank or algorithm name ("sha256", "SHA-256", "0x000b").
    public init?(name: String) {
        let n = String(name.lowercased().filter { $0 != "-" })
        if n.hasPrefix("0x"), let v = UInt16(n.dropFirst(2), radix: 16) {
            self.init(v)
            return
        }
        let known: [TPMAlgorithmID] = [
            .sha1, .sha256, .sha384, .sha512, .sm3_256, .sha3_256, .sha3_384, .sha3_512,
            .rsa, .ecc, .rsassa, .rsapss, .ecdsa, .hmac, .aes, .keyedHash, .null,
        ]
        guard let hit = known.first(where: { $0.name == n }) else { return nil }
        self = hit
    }

    /// The lowercase ``name``, or "0x…" hex for an unnamed identifier.
    public var description: String { name }
    /// Orders by the numeric TPM_ALG_ID value.
    public static func < (a: TPMAlgorithmID, b: TPMAlgorithmID) -> Bool { a.rawValue < b.rawValue }

    /// Decodes the identifier from a single UInt16 value (JSON number).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        self.init(try c.decode(UInt16.self))
    }
    /// Encodes the identifier as a single UInt16 value.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// TPM_ECC_CURVE — TPM 2.0 Part 2 §6.4.
public struct TPMECCCurve: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 16-bit TPM_ECC_CURVE value.
    public let rawValue: UInt16
    /// Wraps any TPM_ECC_CURVE value; unknown curves are kept, not rejected.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// TPM_ECC_NIST_P256 (0x0003).
    public static let nistP256 = TPMECCCurve(rawValue: 0x0003)
    /// TPM_ECC_NIST_P384 (0x0004).
    public static let nistP384 = TPMECCCurve(rawValue: 0x0004)
    /// TPM_ECC_NIST_P521 (0x0005).
    public static let nistP521 = TPMECCCurve(rawValue: 0x0005)
    /// TPM_ECC_BN_P256 (0x0010).
    public static let bnP256 = TPMECCCurve(rawValue: 0x0010)
    /// TPM_ECC_SM2_P256 (0x0020).
    public static let sm2P256 = TPMECCCurve(rawValue: 0x0020)

    /// Coordinate size in bytes.
    public var coordinateSize: Int? {
        switch self {
        case .nistP256, .bnP256, .sm2P256: 32
        case .nistP384: 48
        case .nistP521: 66
        default: nil
        }
    }

    /// The curve's display name ("NIST P-256"), or "curve 0x…" for an unnamed value.
    public var description: String {
        switch self {
        case .nistP256: "NIST P-256"
        case .nistP384: "NIST P-384"
        case .nistP521: "NIST P-521"
        case .bnP256: "BN P-256"
        case .sm2P256: "SM2 P-256"
        default: "curve 0x" + hex4(rawValue)
        }
    }
}
