/// TPMT_SYM_DEF_OBJECT — TPM 2.0 Part 2 §11.1.7: the symmetric algorithm of a storage key.
public struct TPMTSymDefObject: Hashable, Sendable {
    /// TPMI_ALG_SYM_OBJECT: AES, SM4, Camellia, XOR or `.null`.
    public var algorithm: TPMAlgorithmID
    /// Key size in bits (0 for `.null` and XOR).
    public var keyBits: UInt16
    /// TPMI_ALG_SYM_MODE (CFB for storage keys); for XOR this holds the hash algorithm instead.
    public var mode: TPMAlgorithmID

    /// Builds a symmetric definition; for XOR pass the hash algorithm as `mode`.
    public init(algorithm: TPMAlgorithmID, keyBits: UInt16, mode: TPMAlgorithmID) {
        self.algorithm = algorithm
        self.keyBits = keyBits
        self.mode = mode
    }

    /// TPM_ALG_NULL: no symmetric algorithm (signing and non-storage keys).
    public static let null = TPMTSymDefObject(algorithm: .null, keyBits: 0, mode: .null)
    /// AES-128 in CFB mode, the usual storage-key choice.
    public static let aes128CFB = TPMTSymDefObject(algorithm: .aes, keyBits: 128, mode: .cfb)
    /// AES-256 in CFB mode.
    public static let aes256CFB = TPMTSymDefObject(algorithm: .aes, keyBits: 256, mode: .cfb)

    /// Decodes a TPMT_SYM_DEF_OBJECT; an algorithm other than AES, SM4, Camellia, XOR or NULL is an error.
    public init(parsing reader: inout ByteReader) throws(AttestError) {
        let at = reader.offset
        algorithm = TPMAlgorithmID(try reader.readUInt16("TPMT_SYM_DEF_OBJECT.algorithm", .big))
        switch algorithm {
        case .null:
            keyBits = 0
            mode = .null
        case .aes, .sm4, .camellia:
            keyBits = try reader.readUInt16("TPMT_SYM_DEF_OBJECT.keyBits", .big)
            mode = TPMAlgorithmID(try reader.readUInt16("TPMT_SYM_DEF_OBJECT.mode", .big))
        case .xor:
            keyBits = 0
            mode = TPMAlgorithmID(try reader.readUInt16("TPMT_SYM_DEF_OBJECT.hashAlg", .big))
        default:
            throw .unknownAlgorithm("TPMT_SYM_DEF_OBJECT.algorithm", algorithm.rawValue, at: at)
        }
    }

    /// Appends the TPMT_SYM_DEF_OBJECT encoding to `w`.
    public func marshal(into w: inout ByteWriter) {
        w.append(algorithm.rawValue)
        switch algorithm {
        case .null: break
        case .xor: w.append(mode.rawValue)
        default:
            w.append(keyBits)
            w.append(mode.rawValue)
        }
    }
}

/// TPMT_ASYM_SCHEME / TPMT_RSA_SCHEME / TPMT_ECC_SCHEME / TPMT_SIG_SCHEME / TPMT_KDF_SCHEME /
/// TPMT_KEYEDHASH_SCHEME — TPM 2.0 Part 2 §11.2: an algorithm selector and the hash that details it.
public struct TPMTScheme: Hashable, Sendable {
    /// The scheme's TPM_ALG_ID (`.null` for none).
    public var scheme: TPMAlgorithmID
    /// The scheme's hash (`.null` when the scheme has no details).
    public var hashAlg: TPMAlgorithmID
    /// ECDAA's commit count, XOR's KDF: the extra detail field where the union has one.
    public var extra: UInt16

    /// Builds a scheme; `extra` is ECDAA's count or XOR's KDF, and is ignored for other schemes.
    public init(_ scheme: TPMAlgorithmID, hashAlg: TPMAlgorithmID = .null, extra: UInt16 = 0) {
        self.scheme = scheme
        self.hashAlg = hashAlg
        self.extra = extra
    }

    /// TPM_ALG_NULL: no scheme.
    public static let null = TPMTScheme(.null)

    /// - Parameter allowed: the schemes valid for this union (anything else is rejected).
    init(parsing reader: inout ByteReader, field: String, allowed: Set<TPMAlgorithmID>) throws(AttestError) {
        let at = reader.offset
        scheme = TPMAlgorithmID(try reader.readUInt16("\(field).scheme", .big))
        guard scheme == .null || allowed.contains(scheme) else {
            throw .unknownAlgorithm("\(field).scheme", scheme.rawValue, at: at)
        }
        switch scheme {
        case .null, .rsaes:
            hashAlg = .null
            extra = 0
        case .ecdaa:
            hashAlg = TPMAlgorithmID(try reader.readUInt16("\(field).hashAlg", .big))
            extra = try reader.readUInt16("\(field).count", .big)
        case .xor:
            hashAlg = TPMAlgorithmID(try reader.readUInt16("\(field).hashAlg", .big))
            extra = try reader.readUInt16("\(field).kdf", .big)
        default:
            hashAlg = TPMAlgorithmID(try reader.readUInt16("\(field).hashAlg", .big))
            extra = 0
        }
    }

    func marshal(into w: inout ByteWriter) {
        w.append(scheme.rawValue)
        switch scheme {
        case .null, .rsaes: break
        case .ecdaa, .xor:
            w.append(hashAlg.rawValue)
            w.append(extra)
        default:
            w.append(hashAlg.rawValue)
        }
    }

    static let rsaSchemes: Set<TPMAlgorithmID> = [.rsassa, .rsaes, .rsapss, .oaep]
    static let eccSchemes: Set<TPMAlgorithmID> = [.ecdsa, .ecdh, .ecdaa, .sm2, .ecschnorr, .ecmqv]
    static let kdfSchemes: Set<TPMAlgorithmID> = [.mgf1, .kdf1_sp800_56a, .kdf2, .kdf1_sp800_108]
    static let keyedHashSchemes: Set<TPMAlgorithmID> = [.hmac, .xor]
}
