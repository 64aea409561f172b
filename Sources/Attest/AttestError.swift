/// The one error type of the `Attest` module: malformed or untrusted evidence.
///
/// Shaped like `ASN1Error`: an extensible ``Code``, a human reason that says what is wrong and where,
/// and the source location that raised it. Equality looks at the code only, so tests assert on `.code`.
public struct AttestError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added without breaking clients.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: Hashable, Sendable {
            case truncated, trailingBytes, unknownAlgorithm, badMagic, unsupportedStructure
            case sizeLimitExceeded, invalidValue, cryptography
            case signatureInvalid, notAQuote, nonceMismatch, pcrSelectionMismatch, pcrDigestMismatch, pcrValuesMissing
            case eventLogMismatch
            case nonceMissing, akAttributes, signatureSchemeMismatch, qualifiedSignerMismatch, akNotBound, previousQuote
        }
        fileprivate let backing: Backing
        /// The input ended before a field could be read.
        public static let truncated = Code(backing: .truncated)
        /// Bytes were left after a structure that must consume its whole input.
        public static let trailingBytes = Code(backing: .trailingBytes)
        /// An algorithm identifier or union selector is not one this verifier knows.
        public static let unknownAlgorithm = Code(backing: .unknownAlgorithm)
        /// A magic value (for example `TPM_GENERATED_VALUE`) is wrong.
        public static let badMagic = Code(backing: .badMagic)
        /// A structure is well formed but of a kind Vigil does not handle.
        public static let unsupportedStructure = Code(backing: .unsupportedStructure)
        /// A declared size or count exceeds a fixed cap.
        public static let sizeLimitExceeded = Code(backing: .sizeLimitExceeded)
        /// A field holds a value that is not allowed there.
        public static let invalidValue = Code(backing: .invalidValue)
        /// A key or signature could not be used with the crypto library.
        public static let cryptography = Code(backing: .cryptography)

        /// The signature does not verify with the attestation key.
        public static let signatureInvalid = Code(backing: .signatureInvalid)
        /// The signed structure is not a TPM-generated quote.
        public static let notAQuote = Code(backing: .notAQuote)
        /// The quote's qualifyingData is not the verifier's nonce.
        public static let nonceMismatch = Code(backing: .nonceMismatch)
        /// The quote covers other PCRs than were asked for (or supplied).
        public static let pcrSelectionMismatch = Code(backing: .pcrSelectionMismatch)
        /// The supplied PCR values do not hash to the signed PCR digest.
        public static let pcrDigestMismatch = Code(backing: .pcrDigestMismatch)
        /// A quoted PCR has no supplied value.
        public static let pcrValuesMissing = Code(backing: .pcrValuesMissing)
        /// The event log does not replay to the quoted PCRs.
        public static let eventLogMismatch = Code(backing: .eventLogMismatch)

        /// The verifier was given no nonce (it must issue one; it is never taken from the evidence).
        public static let nonceMissing = Code(backing: .nonceMissing)
        /// The attestation key is not a restricted, TPM-resident signing key (TPMA_OBJECT, Part 2 §8.3).
        public static let akAttributes = Code(backing: .akAttributes)
        /// The quote's signature scheme or hash is not the one the attestation key is bound to.
        public static let signatureSchemeMismatch = Code(backing: .signatureSchemeMismatch)
        /// The quote's qualifiedSigner does not name the attestation key (Part 1 §16, Qualified Name).
        public static let qualifiedSignerMismatch = Code(backing: .qualifiedSignerMismatch)
        /// The attestation key or EK is not the one the verifier bound by credential activation.
        public static let akNotBound = Code(backing: .akNotBound)
        /// The previous accepted quote the verifier supplied cannot be used (another key, unreadable).
        public static let previousQuote = Code(backing: .previousQuote)

        /// The code's name ("truncated", "nonceMismatch").
        public var description: String { "\(backing)" }
    }

    /// What kind of failure this is; compare on this.
    public let code: Code
    /// What is wrong and where (structure, field, byte offset).
    public let reason: String
    /// The `#fileID` of the code that raised the error.
    public let file: String
    /// The line of the code that raised the error.
    public let line: Int

    /// Creates an error; `file` and `line` default to the caller's location.
    @inline(never)
    public init(code: Code, reason: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    /// The ``reason``.
    public var description: String { reason }

    /// Compares codes only (reasons and locations differ between throw sites).
    public static func == (lhs: AttestError, rhs: AttestError) -> Bool { lhs.code == rhs.code }
    /// Hashes the code only, consistent with `==`.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    @inline(never)
    static func truncated(
        _ field: String, at offset: Int, needed: Int, available: Int,
        file: String = #fileID, line: Int = #line
    ) -> AttestError {
        AttestError(
            code: .truncated,
            reason: "\(field): truncated at byte \(offset): needs \(needed) bytes, \(available) left",
            file: file, line: line)
    }

    @inline(never)
    static func trailingBytes(
        _ structure: String, count: Int, at offset: Int,
        file: String = #fileID, line: Int = #line
    ) -> AttestError {
        AttestError(
            code: .trailingBytes,
            reason: "\(structure): \(count) trailing byte(s) at byte \(offset)", file: file, line: line)
    }

    @inline(never)
    static func unknownAlgorithm(
        _ field: String, _ value: UInt16, at offset: Int,
        file: String = #fileID, line: Int = #line
    ) -> AttestError {
        AttestError(
            code: .unknownAlgorithm,
            reason: "\(field): unknown or unsupported algorithm 0x\(hex4(value)) at byte \(offset)",
            file: file, line: line)
    }

    @inline(never)
    static func invalid(_ reason: String, file: String = #fileID, line: Int = #line) -> AttestError {
        AttestError(code: .invalidValue, reason: reason, file: file, line: line)
    }

    @inline(never)
    static func tooLarge(
        _ field: String, size: Int, limit: Int, at offset: Int,
        file: String = #fileID, line: Int = #line
    ) -> AttestError {
        AttestError(
            code: .sizeLimitExceeded,
            reason: "\(field): size \(size) exceeds the limit of \(limit) at byte \(offset)",
            file: file, line: line)
    }
}

func hex4(_ v: UInt16) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 4 - s.count)) + s
}
