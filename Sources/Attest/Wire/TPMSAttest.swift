/// TPMS_CLOCK_INFO — TPM 2.0 Part 2 §10.11.1.
public struct TPMSClockInfo: Hashable, Sendable, Codable {
    /// Milliseconds the TPM has been powered since it was last cleared.
    public var clock: UInt64
    /// TPM resets (reboots) since the last TPM2_Clear.
    public var resetCount: UInt32
    /// TPM2_Shutdown(STATE)/Startup(STATE) cycles since the last reset.
    public var restartCount: UInt32
    /// NO when the clock may have been reported lower before (an orderly shutdown was missed).
    public var safe: Bool

    /// Builds clock info from its fields (tests and fixtures).
    public init(clock: UInt64, resetCount: UInt32, restartCount: UInt32, safe: Bool) {
        self.clock = clock
        self.resetCount = resetCount
        self.restartCount = restartCount
        self.safe = safe
    }

    init(parsing reader: inout ByteReader) throws(AttestError) {
        clock = try reader.readUInt64("TPMS_CLOCK_INFO.clock", .big)
        resetCount = try reader.readUInt32("TPMS_CLOCK_INFO.resetCount", .big)
        restartCount = try reader.readUInt32("TPMS_CLOCK_INFO.restartCount", .big)
        let at = reader.offset
        let safe = try reader.readUInt8("TPMS_CLOCK_INFO.safe")
        guard safe <= 1 else {
            throw .invalid("TPMS_CLOCK_INFO.safe: value \(safe) is not a TPMI_YES_NO at byte \(at)")
        }
        self.safe = safe == 1
    }
}

/// TPMS_ATTEST — TPM 2.0 Part 2 §10.12.12: the structure a TPM signs for TPM2_Quote and TPM2_Certify.
///
/// Decoding checks structure only: the `magic` must be TPM_GENERATED_VALUE and the type one Vigil handles.
/// Nothing here is trusted until the signature over ``rawBytes`` has been verified.
public struct TPMSAttest: Hashable, Sendable {
    /// TPM_GENERATED_VALUE — Part 2 §6.2.
    public static let generatedValue: UInt32 = 0xFF54_4347
    /// Cap on the whole structure (a quote is a few hundred bytes).
    public static let maxSize = 4096

    /// TPMU_ATTEST — the part that depends on the attestation type.
    public enum Attested: Hashable, Sendable {
        /// TPMS_QUOTE_INFO (TPM_ST_ATTEST_QUOTE 0x8018).
        case quote(pcrSelect: TPMLPCRSelection, pcrDigest: [UInt8])
        /// TPMS_CERTIFY_INFO (TPM_ST_ATTEST_CERTIFY 0x8017).
        case certify(name: TPMName, qualifiedName: TPMName)
    }

    /// TPM_ST_ATTEST_CERTIFY (0x8017) — Part 2 §6.9: the ``type`` of a TPM2_Certify result.
    public static let typeCertify: UInt16 = 0x8017
    /// TPM_ST_ATTEST_QUOTE (0x8018) — Part 2 §6.9: the ``type`` of a TPM2_Quote result.
    public static let typeQuote: UInt16 = 0x8018

    /// The exact bytes that were decoded (and that the signature covers).
    public let rawBytes: [UInt8]
    /// TPMI_ST_ATTEST: ``typeQuote`` or ``typeCertify`` (other types are rejected when decoding).
    public let type: UInt16
    /// TPM2B_NAME: the Name of the key that signed, as the TPM claims it (untrusted until the signature checks out).
    public let qualifiedSigner: TPMName
    /// The caller's qualifyingData: the verifier's nonce.
    public let extraData: [UInt8]
    /// The TPM's clock, reset and restart counters at signing time.
    public let clockInfo: TPMSClockInfo
    /// TPM vendor firmware version (untrusted until the signature checks out).
    public let firmwareVersion: UInt64
    /// The type-specific part: PCR selection and digest for a quote, Names for a certify.
    public let attested: Attested

    init(
        rawBytes: [UInt8], type: UInt16, qualifiedSigner: TPMName, extraData: [UInt8], clockInfo: TPMSClockInfo,
        firmwareVersion: UInt64, attested: Attested
    ) {
        self.rawBytes = rawBytes
        self.type = type
        self.qualifiedSigner = qualifiedSigner
        self.extraData = extraData
        self.clockInfo = clockInfo
        self.firmwareVersion = firmwareVersion
        self.attested = attested
    }

    /// Decodes a whole TPMS_ATTEST; trailing bytes are an error.
    public init(bytes: [UInt8]) throws(AttestError) {
        guard bytes.count <= Self.maxSize else {
            throw .tooLarge("TPMS_ATTEST", size: bytes.count, limit: Self.maxSize, at: 0)
        }
        var reader = ByteReader(bytes)
        try self.init(parsing: &reader)
        try reader.expectEnd("TPMS_ATTEST")
    }

    /// Decodes a TPM2B_ATTEST (UINT16 size then TPMS_ATTEST); trailing bytes are an error.
    public init(tpm2bBytes bytes: [UInt8]) throws(AttestError) {
        var reader = ByteReader(bytes)
        let inner = try reader.readTPM2B("TPM2B_ATTEST", maxSize: Self.maxSize)
        try reader.expectEnd("TPM2B_ATTEST")
        try self.init(bytes: inner)
    }

    /// Decodes a TPMS_ATTEST at the reader's position: checks the magic and type, and keeps ``rawBytes``.
    public init(parsing reader: inout ByteReader) throws(AttestError) {
        let start = reader.offset
        let magic = try reader.readUInt32("TPMS_ATTEST.magic", .big)
        guard magic == Self.generatedValue else {
            throw AttestError(
                code: .badMagic,
                reason:
                    "TPMS_ATTEST.magic: 0x\(String(magic, radix: 16)) is not TPM_GENERATED_VALUE (0xff544347) at byte \(start)"
            )
        }
        let typeAt = reader.offset
        type = try reader.readUInt16("TPMS_ATTEST.type", .big)
        qualifiedSigner = TPMName(bytes: try reader.readTPM2B("TPMS_ATTEST.qualifiedSigner", maxSize: 2 + 64))
        extraData = try reader.readTPM2B("TPMS_ATTEST.extraData", maxSize: 64)
        clockInfo = try TPMSClockInfo(parsing: &reader)
        firmwareVersion = try reader.readUInt64("TPMS_ATTEST.firmwareVersion", .big)
        switch type {
        case Self.typeQuote:
            let selection = try TPMLPCRSelection(parsing: &reader)
            let digest = try reader.readTPM2B("TPMS_QUOTE_INFO.pcrDigest", maxSize: 64)
            attested = .quote(pcrSelect: selection, pcrDigest: digest)
        case Self.typeCertify:
            let name = try reader.readTPM2B("TPMS_CERTIFY_INFO.name", maxSize: 2 + 64)
            let qualified = try reader.readTPM2B("TPMS_CERTIFY_INFO.qualifiedName", maxSize: 2 + 64)
            attested = .certify(name: TPMName(bytes: name), qualifiedName: TPMName(bytes: qualified))
        default:
            throw AttestError(
                code: .unsupportedStructure,
                reason:
                    "TPMS_ATTEST.type: 0x\(hex4(type)) is not a quote (0x8018) or certify (0x8017) at byte \(typeAt)")
        }
        rawBytes = reader.bytesConsumed(since: start)
    }
}
