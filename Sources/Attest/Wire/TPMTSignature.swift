/// TPMT_SIGNATURE — TPM 2.0 Part 2 §11.3.4: a signature with its scheme and hash.
public struct TPMTSignature: Hashable, Sendable {
    /// Largest encoded TPMT_SIGNATURE accepted, in bytes.
    public static let maxSize = 1024

    /// TPMU_SIGNATURE — TPM 2.0 Part 2 §11.3.3: the signature value, selected by ``algorithm``.
    public enum Body: Hashable, Sendable {
        /// TPMS_SIGNATURE_RSA (RSASSA-PKCS1-v1_5 or RSA-PSS).
        case rsa(signature: [UInt8])
        /// TPMS_SIGNATURE_ECC: r and s as big-endian integers.
        case ecc(r: [UInt8], s: [UInt8])
        /// TPMT_HA (HMAC).
        case hmac(digest: [UInt8])
    }

    /// TPMI_ALG_SIG_SCHEME: RSASSA, RSAPSS, ECDSA, ECSCHNORR, SM2, ECDAA or HMAC.
    public let algorithm: TPMAlgorithmID
    /// The hash the signature was computed with.
    public let hashAlg: TPMAlgorithmID
    /// The signature value.
    public let body: Body

    /// Builds a signature from its parts; nothing is checked.
    public init(algorithm: TPMAlgorithmID, hashAlg: TPMAlgorithmID, body: Body) {
        self.algorithm = algorithm
        self.hashAlg = hashAlg
        self.body = body
    }

    /// Decodes a whole TPMT_SIGNATURE; trailing bytes are an error.
    public init(bytes: [UInt8]) throws(AttestError) {
        guard bytes.count <= Self.maxSize else {
            throw .tooLarge("TPMT_SIGNATURE", size: bytes.count, limit: Self.maxSize, at: 0)
        }
        var reader = ByteReader(bytes)
        try self.init(parsing: &reader)
        try reader.expectEnd("TPMT_SIGNATURE")
    }

    /// Decodes a TPMT_SIGNATURE; an unknown scheme or hash is an error.
    public init(parsing reader: inout ByteReader) throws(AttestError) {
        let at = reader.offset
        algorithm = TPMAlgorithmID(try reader.readUInt16("TPMT_SIGNATURE.sigAlg", .big))
        let hashAt = reader.offset
        switch algorithm {
        case .rsassa, .rsapss:
            hashAlg = TPMAlgorithmID(try reader.readUInt16("TPMS_SIGNATURE_RSA.hash", .big))
            guard hashAlg.isHash else {
                throw .unknownAlgorithm("TPMS_SIGNATURE_RSA.hash", hashAlg.rawValue, at: hashAt)
            }
            body = .rsa(
                signature: try reader.readTPM2B("TPMS_SIGNATURE_RSA.sig", maxSize: TPMTPublic.maxRSAModulusSize))
        case .ecdsa, .ecschnorr, .sm2, .ecdaa:
            hashAlg = TPMAlgorithmID(try reader.readUInt16("TPMS_SIGNATURE_ECC.hash", .big))
            guard hashAlg.isHash else {
                throw .unknownAlgorithm("TPMS_SIGNATURE_ECC.hash", hashAlg.rawValue, at: hashAt)
            }
            let r = try reader.readTPM2B("TPMS_SIGNATURE_ECC.signatureR", maxSize: TPMTPublic.maxECCCoordinateSize)
            let s = try reader.readTPM2B("TPMS_SIGNATURE_ECC.signatureS", maxSize: TPMTPublic.maxECCCoordinateSize)
            body = .ecc(r: r, s: s)
        case .hmac:
            hashAlg = TPMAlgorithmID(try reader.readUInt16("TPMT_HA.hashAlg", .big))
            guard let size = hashAlg.digestSize else {
                throw .unknownAlgorithm("TPMT_HA.hashAlg", hashAlg.rawValue, at: hashAt)
            }
            body = .hmac(digest: try reader.readBytes("TPMT_HA.digest", count: size))
        default:
            throw .unknownAlgorithm("TPMT_SIGNATURE.sigAlg", algorithm.rawValue, at: at)
        }
    }

    /// The TPMT_SIGNATURE encoding.
    public func marshal() -> [UInt8] {
        var w = ByteWriter()
        w.append(algorithm.rawValue)
        w.append(hashAlg.rawValue)
        switch body {
        case .rsa(let sig): w.appendTPM2B(sig)
        case .ecc(let r, let s):
            w.appendTPM2B(r)
            w.appendTPM2B(s)
        case .hmac(let d): w.append(bytes: d)
        }
        return w.bytes
    }
}
