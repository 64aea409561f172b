/// A quote whose signature, origin, nonce, PCR selection and PCR digest have been checked by
/// ``QuoteVerifier``. Only the verifier constructs one.
public struct VerifiedQuote: Hashable, Sendable {
    /// The decoded TPMS_ATTEST (its ``TPMSAttest/rawBytes`` are what was signed).
    public let attest: TPMSAttest
    /// The quoted selection, in the TPM's order.
    public let selection: TPMLPCRSelection
    /// The PCR values the signature vouches for: exactly the quoted PCRs.
    public let pcrs: PCRValues
    /// The signed digest over ``pcrs``.
    public let pcrDigest: [UInt8]
    /// What the TPM's clock and counters say compared with the previous accepted quote.
    public let clockFindings: [ClockFinding]

    init(attest: TPMSAttest, selection: TPMLPCRSelection, pcrs: PCRValues, pcrDigest: [UInt8], clockFindings: [ClockFinding]) {
        self.attest = attest
        self.selection = selection
        self.pcrs = pcrs
        self.pcrDigest = pcrDigest
        self.clockFindings = clockFindings
    }

    /// - Warning: For tests and replaying stored verdicts only: builds a `VerifiedQuote` without checking anything.
    public init(uncheckedAttest attest: TPMSAttest, selection: TPMLPCRSelection, pcrs: PCRValues) {
        self.init(attest: attest, selection: selection, pcrs: pcrs, pcrDigest: [], clockFindings: [])
    }

    /// - Warning: Not a quote: PCR values nobody signed (an event log's own replay), for authoring
    /// policies from a bare log. Verdicts built on it must say the evidence was unsigned.
    public static func uncheckedReplay(selection: TPMLPCRSelection, pcrs: PCRValues) -> VerifiedQuote {
        let attest = TPMSAttest(rawBytes: [], type: TPMSAttest.typeQuote, qualifiedSigner: TPMName(bytes: []), extraData: [],
                                clockInfo: TPMSClockInfo(clock: 0, resetCount: 0, restartCount: 0, safe: true), firmwareVersion: 0,
                                attested: .quote(pcrSelect: selection, pcrDigest: []))
        return VerifiedQuote(attest: attest, selection: selection, pcrs: pcrs, pcrDigest: [], clockFindings: [])
    }

    public var clockInfo: TPMSClockInfo { attest.clockInfo }
    public var firmwareVersion: UInt64 { attest.firmwareVersion }
}

/// A comparison of a quote's TPMS_CLOCK_INFO and firmware version with the device's previous accepted quote.
/// Findings are facts for policy, not verification failures.
public enum ClockFinding: Hashable, Sendable, CustomStringConvertible {
    /// resetCount increased: the machine rebooted (TPM reset) since the previous quote.
    case rebooted(from: UInt32, to: UInt32)
    /// restartCount increased with the same resetCount: resumed from hibernation (TPM restart).
    case restarted(from: UInt32, to: UInt32)
    /// resetCount or restartCount decreased: the TPM was cleared, or the quote is older than the previous one.
    case countersWentBackwards
    /// Same reset and restart count, but the clock is lower: a replay of an older quote, or a TPM clock reset.
    case clockWentBackwards(from: UInt64, to: UInt64)
    /// `safe` is NO: the TPM may have reported a higher clock before (missed orderly shutdown).
    case clockNotSafe
    /// The firmware version differs from the previous quote's.
    case firmwareChanged(from: UInt64, to: UInt64)

    public var description: String {
        switch self {
        case .rebooted(let a, let b): "rebooted (resetCount \(a) → \(b))"
        case .restarted(let a, let b): "resumed (restartCount \(a) → \(b))"
        case .countersWentBackwards: "TPM reset/restart counters went backwards (TPM cleared, or an old quote)"
        case .clockWentBackwards(let a, let b): "TPM clock went backwards (\(a) → \(b) ms) without a reset"
        case .clockNotSafe: "TPM clock not safe (a shutdown was missed; the clock may have been higher before)"
        case .firmwareChanged(let a, let b): "TPM firmware changed (0x\(String(a, radix: 16)) → 0x\(String(b, radix: 16)))"
        }
    }
}
