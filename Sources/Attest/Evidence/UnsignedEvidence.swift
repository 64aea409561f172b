public import Foundation

/// A bare event log for authoring policies (`vigil policy test P --eventlog LOG`, golden capture): its own
/// replay stands in for PCR values nobody signed. Nothing in it is proved; verdicts on it say the evidence
/// was unsigned, and a controller never evaluates one.
public struct UnsignedEvidence: Sendable {
    /// The log's replay (or the values given), as PCR values. Unsigned.
    public let pcrs: PCRValues
    /// The log compared with ``pcrs`` (trivially consistent when they are its own replay). Internal: values nobody
    /// signed must not leave as a `VerifiedEventLog`.
    package let eventLog: VerifiedEventLog

    /// Whether the log reproduces every given PCR value.
    public var isConsistent: Bool { eventLog.isConsistent }
    /// Where the log and the given values disagree (bank, PCR, first event the values do not account for).
    public var mismatches: [VerifiedEventLog.Mismatch] { eventLog.mismatches }
    /// Boot facts per replayed bank, with the same data-binding rules as for verified evidence.
    public let facts: [TPMAlgorithmID: BootFacts]
    /// When the evidence was built (`at`).
    public let checkedAt: Date

    /// Evidence from a log alone: its replay is taken as the PCR values.
    public init(eventLog log: UnverifiedEventLog, at time: Date = Date()) {
        // Every PCR of every replayed bank, those without events at their start values, as a quote of all
        // 24 PCRs would show them.
        let replay = EventLogReplay(log)
        var values = PCRValues()
        for bank in replay.values.banks.keys {
            for pcr in 0..<24 { if let v = replay.value(bank, pcr) { values[bank, pcr] = v } }
        }
        self.init(eventLog: log, claimedPCRs: values, at: time)
    }

    /// Evidence from a log and PCR values someone read off a machine (for example with `tpm2_pcrread`): does
    /// the log explain these values? Unsigned: the values prove nothing.
    public init(eventLog log: UnverifiedEventLog, claimedPCRs: PCRValues, at time: Date = Date()) {
        pcrs = claimedPCRs
        eventLog = EventLogVerifier.verify(log, values: claimedPCRs)
        facts = VerifiedEvidence.factsByBank(eventLog)
        checkedAt = time
    }
}
