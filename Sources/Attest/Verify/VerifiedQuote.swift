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
    /// Whether the verifier supplied a previous accepted quote to compare with (without one, nothing is
    /// known about reboots or replays since the last attestation).
    public let comparedWithPrevious: Bool
    /// The hierarchy of which the attestation key is a primary, from qualifiedSigner (nil: not a primary).
    public let signerHierarchy: TPMHierarchy?

    init(
        attest: TPMSAttest, selection: TPMLPCRSelection, pcrs: PCRValues, pcrDigest: [UInt8],
        clockFindings: [ClockFinding],
        comparedWithPrevious: Bool, signerHierarchy: TPMHierarchy?
    ) {
        self.attest = attest
        self.selection = selection
        self.pcrs = pcrs
        self.pcrDigest = pcrDigest
        self.clockFindings = clockFindings
        self.comparedWithPrevious = comparedWithPrevious
        self.signerHierarchy = signerHierarchy
    }

    /// - Warning: For the module's own tests only (`@testable`): builds a `VerifiedQuote` without checking anything.
    init(uncheckedAttest attest: TPMSAttest, selection: TPMLPCRSelection, pcrs: PCRValues) {
        self.init(
            attest: attest, selection: selection, pcrs: pcrs, pcrDigest: [], clockFindings: [],
            comparedWithPrevious: false,
            signerHierarchy: nil)
    }

    /// The TPM's clock and reset/restart counters, from the signed TPMS_ATTEST.
    public var clockInfo: TPMSClockInfo { attest.clockInfo }
    /// The TPM firmware version, from the signed TPMS_ATTEST.
    public var firmwareVersion: UInt64 { attest.firmwareVersion }
}

/// The permanent hierarchies (TPM 2.0 Part 2 §7.4, TPM_RH): the root of a primary key's qualified name.
public enum TPMHierarchy: UInt32, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    // Declared in the order qualifiedSigner is tried: Vigil's AKs are endorsement primaries (one hash per quote).
    /// TPM_RH_ENDORSEMENT (0x4000000B): the endorsement hierarchy (EKs).
    case endorsement = 0x4000_000B
    /// TPM_RH_OWNER (0x40000001): the storage hierarchy.
    case owner = 0x4000_0001
    /// TPM_RH_PLATFORM (0x4000000C): the platform firmware's hierarchy.
    case platform = 0x4000_000C
    /// TPM_RH_NULL (0x40000007): the null hierarchy (keys lost at every reset).
    case null = 0x4000_0007

    /// The hierarchy's name ("owner", "endorsement", …).
    public var description: String {
        switch self {
        case .owner: "owner"
        case .null: "null"
        case .endorsement: "endorsement"
        case .platform: "platform"
        }
    }
}

/// The device's previous accepted quote, as the verifier stored it (never taken from the evidence): what
/// clock, counter and firmware findings compare with (TPMS_CLOCK_INFO, Part 2 §10.11.1).
public struct PreviousQuote: Hashable, Sendable {
    /// The clock and counters of the previous accepted quote.
    public let clockInfo: TPMSClockInfo
    /// The TPM firmware version of the previous accepted quote.
    public let firmwareVersion: UInt64

    /// Records a previous quote from stored values.
    public init(clockInfo: TPMSClockInfo, firmwareVersion: UInt64) {
        self.clockInfo = clockInfo
        self.firmwareVersion = firmwareVersion
    }

    /// The record of a quote this verifier accepted.
    public init(_ quote: VerifiedQuote) {
        self.init(clockInfo: quote.clockInfo, firmwareVersion: quote.firmwareVersion)
    }
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

    /// One line for reports ("rebooted (resetCount 4 → 5)").
    public var description: String {
        switch self {
        case .rebooted(let a, let b): "rebooted (resetCount \(a) → \(b))"
        case .restarted(let a, let b): "resumed (restartCount \(a) → \(b))"
        case .countersWentBackwards: "TPM reset/restart counters went backwards (TPM cleared, or an old quote)"
        case .clockWentBackwards(let a, let b): "TPM clock went backwards (\(a) → \(b) ms) without a reset"
        case .clockNotSafe: "TPM clock not safe (a shutdown was missed; the clock may have been higher before)"
        case .firmwareChanged(let a, let b):
            "TPM firmware changed (0x\(String(a, radix: 16)) → 0x\(String(b, radix: 16)))"
        }
    }
}
