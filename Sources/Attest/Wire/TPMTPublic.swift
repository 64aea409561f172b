import Crypto

/// TPMT_PUBLIC — TPM 2.0 Part 2 §12.2.4: the public area of a TPM object.
///
/// Decoded from untrusted bytes with ``init(parsing:)`` (RSA, ECC, keyed-hash and symmetric objects),
/// and marshalled back with ``marshal()`` to build templates for `TPM2_CreatePrimary`/`TPM2_Create`.
/// The object Name (Part 1 §16) is `nameAlg || H_nameAlg(TPMT_PUBLIC)`, see ``name()``.
public struct TPMTPublic: Hashable, Sendable {
    /// Largest RSA modulus accepted (4096-bit keys).
    public static let maxRSAModulusSize = 512
    /// Largest ECC coordinate accepted (P-521 is 66 bytes; some encoders pad).
    public static let maxECCCoordinateSize = 128
    /// Largest digest (authPolicy, keyed-hash unique) accepted.
    public static let maxDigestSize = 64

    /// TPMS_RSA_PARMS — TPM 2.0 Part 2 §12.2.3.5, with the TPM2B_PUBLIC_KEY_RSA unique field.
    public struct RSAParameters: Hashable, Sendable {
        /// TPMT_SYM_DEF_OBJECT: the symmetric algorithm of a storage (parent) key, `.null` otherwise.
        public var symmetric: TPMTSymDefObject
        /// TPMT_RSA_SCHEME: the signing or decryption scheme, `.null` when unrestricted.
        public var scheme: TPMTScheme
        /// TPMI_RSA_KEY_BITS: the modulus size in bits (e.g. 2048).
        public var keyBits: UInt16
        /// The exponent as stored; 0 means the default 65537.
        public var exponent: UInt32
        /// TPM2B_PUBLIC_KEY_RSA: the modulus (empty in a template).
        public var modulus: [UInt8]

        /// Builds RSA parameters; an `exponent` of 0 means the default 65537.
        public init(
            symmetric: TPMTSymDefObject, scheme: TPMTScheme, keyBits: UInt16, exponent: UInt32 = 0, modulus: [UInt8]
        ) {
            self.symmetric = symmetric
            self.scheme = scheme
            self.keyBits = keyBits
            self.exponent = exponent
            self.modulus = modulus
        }

        /// The effective public exponent.
        public var effectiveExponent: UInt32 { exponent == 0 ? 65537 : exponent }
    }

    /// TPMS_ECC_PARMS — TPM 2.0 Part 2 §12.2.3.6, with the TPMS_ECC_POINT unique field.
    public struct ECCParameters: Hashable, Sendable {
        /// TPMT_SYM_DEF_OBJECT: the symmetric algorithm of a storage (parent) key, `.null` otherwise.
        public var symmetric: TPMTSymDefObject
        /// TPMT_ECC_SCHEME: the signing or key-exchange scheme, `.null` when unrestricted.
        public var scheme: TPMTScheme
        /// TPMI_ECC_CURVE: the curve of the key.
        public var curve: TPMECCCurve
        /// TPMT_KDF_SCHEME: the key derivation function, usually `.null`.
        public var kdf: TPMTScheme
        /// TPMS_ECC_POINT: x and y (empty in most templates).
        public var x: [UInt8]
        /// The y coordinate, big-endian (empty in most templates).
        public var y: [UInt8]

        /// Builds ECC parameters; `x` and `y` are the public point (empty in a template).
        public init(
            symmetric: TPMTSymDefObject, scheme: TPMTScheme, curve: TPMECCCurve, kdf: TPMTScheme = .null, x: [UInt8],
            y: [UInt8]
        ) {
            self.symmetric = symmetric
            self.scheme = scheme
            self.curve = curve
            self.kdf = kdf
            self.x = x
            self.y = y
        }
    }

    /// TPMU_PUBLIC_PARMS with TPMU_PUBLIC_ID — TPM 2.0 Part 2 §12.2.3.7 and §12.2.3.2, selected by ``type``.
    public enum Parameters: Hashable, Sendable {
        /// TPM_ALG_RSA: an RSA key.
        case rsa(RSAParameters)
        /// TPM_ALG_ECC: an ECC key.
        case ecc(ECCParameters)
        /// TPMS_KEYEDHASH_PARMS with its unique digest (sealed data objects and HMAC keys).
        case keyedHash(scheme: TPMTScheme, unique: [UInt8])
        /// TPMS_SYMCIPHER_PARMS with its unique digest.
        case symCipher(symmetric: TPMTSymDefObject, unique: [UInt8])
    }

    /// TPMI_ALG_HASH: the hash algorithm for the object's Name (a hash or `.null`; anything else is rejected).
    public var nameAlg: TPMAlgorithmID
    /// TPMA_OBJECT: the object's attributes.
    public var objectAttributes: TPMAObject
    /// TPM2B_DIGEST: the policy that authorizes use of the object (empty for none).
    public var authPolicy: [UInt8]
    /// The type-specific parameters and unique field.
    public var parameters: Parameters

    /// Builds a public area, e.g. a template for TPM2_CreatePrimary or TPM2_Create.
    public init(nameAlg: TPMAlgorithmID, objectAttributes: TPMAObject, authPolicy: [UInt8] = [], parameters: Parameters)
    {
        self.nameAlg = nameAlg
        self.objectAttributes = objectAttributes
        self.authPolicy = authPolicy
        self.parameters = parameters
    }

    /// The TPMI_ALG_PUBLIC type selector.
    public var type: TPMAlgorithmID {
        switch parameters {
        case .rsa: .rsa
        case .ecc: .ecc
        case .keyedHash: .keyedHash
        case .symCipher: .symCipher
        }
    }

    /// Decodes a TPMT_PUBLIC. The reader must be positioned at the `type` field.
    public init(parsing reader: inout ByteReader) throws(AttestError) {
        let at = reader.offset
        let type = TPMAlgorithmID(try reader.readUInt16("TPMT_PUBLIC.type", .big))
        let nameAt = reader.offset
        nameAlg = TPMAlgorithmID(try reader.readUInt16("TPMT_PUBLIC.nameAlg", .big))
        guard nameAlg == .null || nameAlg.isHash else {
            throw .unknownAlgorithm("TPMT_PUBLIC.nameAlg", nameAlg.rawValue, at: nameAt)
        }
        objectAttributes = TPMAObject(rawValue: try reader.readUInt32("TPMT_PUBLIC.objectAttributes", .big))
        authPolicy = try reader.readTPM2B("TPMT_PUBLIC.authPolicy", maxSize: Self.maxDigestSize)
        switch type {
        case .rsa:
            let symmetric = try TPMTSymDefObject(parsing: &reader)
            let scheme = try TPMTScheme(
                parsing: &reader, field: "TPMS_RSA_PARMS.scheme", allowed: TPMTScheme.rsaSchemes)
            let keyBits = try reader.readUInt16("TPMS_RSA_PARMS.keyBits", .big)
            let exponent = try reader.readUInt32("TPMS_RSA_PARMS.exponent", .big)
            let modulus = try reader.readTPM2B("TPM2B_PUBLIC_KEY_RSA", maxSize: Self.maxRSAModulusSize)
            parameters = .rsa(
                RSAParameters(
                    symmetric: symmetric, scheme: scheme, keyBits: keyBits, exponent: exponent, modulus: modulus))
        case .ecc:
            let symmetric = try TPMTSymDefObject(parsing: &reader)
            let scheme = try TPMTScheme(
                parsing: &reader, field: "TPMS_ECC_PARMS.scheme", allowed: TPMTScheme.eccSchemes)
            let curve = TPMECCCurve(rawValue: try reader.readUInt16("TPMS_ECC_PARMS.curveID", .big))
            let kdf = try TPMTScheme(parsing: &reader, field: "TPMS_ECC_PARMS.kdf", allowed: TPMTScheme.kdfSchemes)
            let x = try reader.readTPM2B("TPMS_ECC_POINT.x", maxSize: Self.maxECCCoordinateSize)
            let y = try reader.readTPM2B("TPMS_ECC_POINT.y", maxSize: Self.maxECCCoordinateSize)
            parameters = .ecc(ECCParameters(symmetric: symmetric, scheme: scheme, curve: curve, kdf: kdf, x: x, y: y))
        case .keyedHash:
            let scheme = try TPMTScheme(
                parsing: &reader, field: "TPMS_KEYEDHASH_PARMS.scheme", allowed: TPMTScheme.keyedHashSchemes)
            let unique = try reader.readTPM2B("TPM2B_DIGEST (keyedHash unique)", maxSize: Self.maxDigestSize)
            parameters = .keyedHash(scheme: scheme, unique: unique)
        case .symCipher:
            let symmetric = try TPMTSymDefObject(parsing: &reader)
            let unique = try reader.readTPM2B("TPM2B_DIGEST (symCipher unique)", maxSize: Self.maxDigestSize)
            parameters = .symCipher(symmetric: symmetric, unique: unique)
        default:
            throw .unknownAlgorithm("TPMT_PUBLIC.type", type.rawValue, at: at)
        }
    }

    /// Decodes a whole TPMT_PUBLIC; trailing bytes are an error.
    public init(tpmtPublicBytes bytes: [UInt8]) throws(AttestError) {
        var reader = ByteReader(bytes)
        self = try TPMTPublic(parsing: &reader)
        try reader.expectEnd("TPMT_PUBLIC")
    }

    /// Decodes a whole TPM2B_PUBLIC (UINT16 size, then exactly that many bytes of TPMT_PUBLIC).
    public init(tpm2bPublicBytes bytes: [UInt8]) throws(AttestError) {
        var reader = ByteReader(bytes)
        let size = Int(try reader.readUInt16("TPM2B_PUBLIC.size", .big))
        var inner = try reader.readSubReader("TPM2B_PUBLIC.publicArea", count: size)
        try reader.expectEnd("TPM2B_PUBLIC")
        self = try TPMTPublic(parsing: &inner)
        try inner.expectEnd("TPM2B_PUBLIC.publicArea")
    }

    /// Decodes either encoding: a TPM2B_PUBLIC when the first two bytes equal the remaining length,
    /// otherwise a bare TPMT_PUBLIC.
    public init(tpmPublicBytes bytes: [UInt8]) throws(AttestError) {
        if bytes.count >= 2, Int(bytes[0]) << 8 | Int(bytes[1]) == bytes.count - 2 {
            self = try TPMTPublic(tpm2bPublicBytes: bytes)
        } else {
            self = try TPMTPublic(tpmtPublicBytes: bytes)
        }
    }

    /// The TPMT_PUBLIC encoding.
    public func marshal() -> [UInt8] {
        var w = ByteWriter()
        marshal(into: &w)
        return w.bytes
    }

    /// The TPM2B_PUBLIC encoding.
    public func marshalTPM2B() -> [UInt8] {
        var w = ByteWriter()
        w.appendTPM2B(marshal())
        return w.bytes
    }

    /// Appends the TPMT_PUBLIC encoding to `w`.
    public func marshal(into w: inout ByteWriter) {
        w.append(type.rawValue)
        w.append(nameAlg.rawValue)
        w.append(objectAttributes.rawValue)
        w.appendTPM2B(authPolicy)
        switch parameters {
        case .rsa(let p):
            p.symmetric.marshal(into: &w)
            p.scheme.marshal(into: &w)
            w.append(p.keyBits)
            w.append(p.exponent)
            w.appendTPM2B(p.modulus)
        case .ecc(let p):
            p.symmetric.marshal(into: &w)
            p.scheme.marshal(into: &w)
            w.append(p.curve.rawValue)
            p.kdf.marshal(into: &w)
            w.appendTPM2B(p.x)
            w.appendTPM2B(p.y)
        case .keyedHash(let scheme, let unique):
            scheme.marshal(into: &w)
            w.appendTPM2B(unique)
        case .symCipher(let symmetric, let unique):
            symmetric.marshal(into: &w)
            w.appendTPM2B(unique)
        }
    }

    /// The object's Name: `nameAlg || H_nameAlg(TPMT_PUBLIC)` (TPM 2.0 Part 1 §16).
    public func name() throws(AttestError) -> TPMName {
        let digest = try TPMDigest.hash(nameAlg, marshal())
        var w = ByteWriter()
        w.append(nameAlg.rawValue)
        w.append(bytes: digest)
        return TPMName(bytes: w.bytes)
    }
}

/// TPM2B_NAME contents — TPM 2.0 Part 2 §10.5.3: an algorithm-tagged digest (objects) or a handle.
public struct TPMName: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The Name bytes: nameAlg (big-endian UInt16) followed by the digest, or a 4-byte handle.
    public let bytes: [UInt8]
    /// Wraps Name bytes as given; nothing is checked.
    public init(bytes: [UInt8]) { self.bytes = bytes }
    /// The Name as lowercase hex.
    public var description: String { Hex.encode(bytes) }
    /// Decodes a Name from a hex JSON string.
    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let b = Hex.decode(s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not hex"))
        }
        bytes = b
    }
    /// Encodes the Name as a lowercase hex JSON string.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
