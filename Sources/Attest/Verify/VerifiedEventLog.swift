/// An event log checked against a ``VerifiedQuote``: per bank, which quoted PCRs replay to the values the
/// TPM signed, and the events that policy may rely on — only those whose PCR replayed in some bank, each
/// with whether its data is bound to its digest (``EventDataBinding``). Every quoted PCR is compared,
/// also those the log never extends (they must hold their ``PCRStartValue``; for PCRs 0–7 anything else is a
/// mismatch), so a PCR cannot be hidden by leaving its events out. Only ``EventLogVerifier`` constructs one.
public struct VerifiedEventLog: Hashable, Sendable {
    /// An event whose PCR, in ``banks``, replays to the value the TPM signed.
    public struct Event: Hashable, Sendable {
        /// The event as logged. Its digests replayed; its type is still a claim, and its data is only as good
        /// as ``binding``.
        public let event: EventLogEvent
        /// The quoted banks in which this event's PCR replayed correctly.
        public let banks: Set<TPMAlgorithmID>
        /// Whether the event's data is what its digest measured, checked in every bank of ``banks``.
        public let binding: EventDataBinding
    }

    /// A quoted PCR the log does not reproduce.
    public struct Mismatch: Hashable, Sendable, CustomStringConvertible {
        /// The bank the mismatch is in.
        public let bank: TPMAlgorithmID
        /// The PCR index (0–23).
        public let pcr: Int
        /// The value the TPM signed in the quote.
        public let quoted: [UInt8]
        /// The value the log replays to.
        public let replayed: [UInt8]
        /// The first event the TPM did not see, when a prefix of the log reproduces the quoted value;
        /// else the last event of this PCR (nil when the log has no event for it).
        public let eventIndex: Int?
        /// Why the values differ, in a sentence for reports.
        public let explanation: String

        /// One line for reports: bank, PCR, both values and the explanation.
        public var description: String {
            "\(bank.name) PCR \(pcr): quoted \(Hex.encode(quoted)), log replays to \(Hex.encode(replayed)); \(explanation)"
        }
    }

    /// The log's format (SHA-1 or crypto-agile).
    public let format: UnverifiedEventLog.Format
    /// Events policy may rely on, in log order. EV_NO_ACTION events are never included.
    public let events: [Event]
    /// Quoted (bank, PCR) pairs whose value the log reproduces (extended by events or at their start value).
    public let matched: [TPMAlgorithmID: [Int]]
    /// Quoted PCRs the log does not reproduce, with a diagnosis of each. Any entry fails verification.
    public let mismatches: [Mismatch]
    /// Banks the log declares that Vigil cannot replay.
    public let uncomputableBanks: [TPMAlgorithmID: String]
    /// Quoted banks the log has no digests for: their PCRs are not verified by the log.
    public let banksNotInLog: [TPMAlgorithmID]
    /// Quoted PCRs from 8 up that this log never extends and that do not hold their start value: measured by
    /// someone whose log this is not (the OS: IMA, systemd). Not verified; rules that need them fail. PCRs 0–7
    /// are always recorded by firmware (PFP §3.3.4), so there the same finding is a ``Mismatch``.
    public let notCovered: [TPMAlgorithmID: [Int]]
    /// Workarounds needed for the log to match (empty for a clean log).
    public let workarounds: [EventLogWorkaround]
    /// The full replay, for reporting.
    public let replay: EventLogReplay
    /// PCRs (0–23) that at least one event of the log extends.
    public let extendedPCRs: Set<Int>

    /// True when every quoted PCR, in every computable quoted bank the log declares, matches.
    public var isConsistent: Bool { mismatches.isEmpty }

    /// Whether `pcr` replayed to its quoted value in `bank`.
    public func isVerified(_ bank: TPMAlgorithmID, _ pcr: Int) -> Bool { matched[bank]?.contains(pcr) ?? false }

    /// Events whose data should hash to their digest and does not, in log order (found once, at verification).
    public let unboundEvents: [Event]

    /// Every event as the device sent it, in log order, attested or not (EV_NO_ACTION included): for showing a
    /// log, never for a decision. What is attested is ``events``.
    public let loggedEvents: [EventLogEvent]

    init(
        format: UnverifiedEventLog.Format, events: [Event], loggedEvents: [EventLogEvent],
        matched: [TPMAlgorithmID: [Int]], mismatches: [Mismatch],
        uncomputableBanks: [TPMAlgorithmID: String], banksNotInLog: [TPMAlgorithmID],
        notCovered: [TPMAlgorithmID: [Int]],
        workarounds: [EventLogWorkaround], replay: EventLogReplay, extendedPCRs: Set<Int>
    ) {
        self.format = format
        self.events = events
        self.loggedEvents = loggedEvents
        self.matched = matched
        self.mismatches = mismatches
        self.uncomputableBanks = uncomputableBanks
        self.banksNotInLog = banksNotInLog
        self.notCovered = notCovered
        self.workarounds = workarounds
        self.replay = replay
        self.extendedPCRs = extendedPCRs
        unboundEvents = events.filter { if case .unbound = $0.binding { true } else { false } }
    }
}

/// Replays a log against a verified quote, applying named workarounds only when a plain replay fails.
public enum EventLogVerifier {
    /// Replays `log` against the PCR values of `quote`, trying each ``EventLogWorkaround`` only if a plain replay
    /// mismatches (and only on the PCRs it names).
    public static func verify(_ log: UnverifiedEventLog, against quote: VerifiedQuote) -> VerifiedEventLog {
        verify(log, values: quote.pcrs)
    }

    /// Compares the log with PCR values: from a verified quote, or (unsigned authoring only, see
    /// ``UnsignedEvidence``) with values nobody signed.
    static func verify(_ log: UnverifiedEventLog, values: PCRValues) -> VerifiedEventLog {
        let plain = compare(log, values, workarounds: [])
        guard !plain.mismatches.isEmpty else { return plain }
        let badPCRs = Set(plain.mismatches.map(\.pcr))
        for workaround in EventLogWorkaround.all where badPCRs.isSubset(of: workaround.pcrs) {
            let attempt = compare(log, values, workarounds: [workaround])
            if attempt.mismatches.isEmpty { return attempt }
        }
        return plain
    }

    static func compare(_ log: UnverifiedEventLog, _ quoted: PCRValues, workarounds: [EventLogWorkaround])
        -> VerifiedEventLog
    {
        let replay = EventLogReplay(log, workarounds: workarounds)
        let events = workarounds.reduce(log.events) { $1.apply(to: $0, banks: log.banks) }
        let extended = Set(events.filter(\.isExtended).compactMap(\.pcr))
        var matched: [TPMAlgorithmID: [Int]] = [:]
        var mismatches: [VerifiedEventLog.Mismatch] = []
        var notInLog: [TPMAlgorithmID] = []
        var notCovered: [TPMAlgorithmID: [Int]] = [:]
        for (bank, quotedValues) in quoted.banks.sorted(by: { $0.key < $1.key }) {
            guard log.banks.contains(bank) else {
                notInLog.append(bank)
                continue
            }
            guard replay.uncomputableBanks[bank] == nil else { continue }
            for (pcr, quotedValue) in quotedValues.sorted(by: { $0.key < $1.key }) where pcr < 24 {
                // A PCR without events must still hold its start value: leaving all of a PCR's events out
                // of the log does not make it unverified, it makes it a mismatch.
                let replayed = replay.value(bank, pcr) ?? []
                if replayed == quotedValue {
                    matched[bank, default: []].append(pcr)
                } else if !extended.contains(pcr) && pcr >= 8 {
                    // PCRs 8 and up are also extended after boot by the OS (IMA's PCR 10, systemd's 11 and 15),
                    // whose measurements live in other logs: not a forgery, but nothing this log verifies.
                    notCovered[bank, default: []].append(pcr)
                } else {
                    mismatches.append(
                        diagnose(events, replay: replay, bank: bank, pcr: pcr, quoted: quotedValue, replayed: replayed))
                }
            }
        }
        var pcrBanks = [Set<TPMAlgorithmID>](repeating: [], count: 24)
        for (bank, pcrs) in matched { for pcr in pcrs { pcrBanks[pcr].insert(bank) } }
        var verified: [VerifiedEventLog.Event] = []
        for e in events where e.isExtended {
            guard let pcr = e.pcr, !pcrBanks[pcr].isEmpty else { continue }
            let banks = pcrBanks[pcr]
            verified.append(.init(event: e, banks: banks, binding: EventDataBinding.check(e, banks: banks.sorted())))
        }
        return VerifiedEventLog(
            format: log.format, events: verified, loggedEvents: log.events, matched: matched, mismatches: mismatches,
            uncomputableBanks: replay.uncomputableBanks, banksNotInLog: notInLog, notCovered: notCovered,
            workarounds: workarounds,
            replay: replay, extendedPCRs: extended)
    }

    /// Finds where the log and the TPM part ways for one PCR: if the quoted value equals the replay after
    /// some prefix of this PCR's events, the first event after that prefix is one the TPM never saw.
    static func diagnose(
        _ events: [EventLogEvent], replay: EventLogReplay, bank: TPMAlgorithmID, pcr: Int,
        quoted: [UInt8], replayed: [UInt8]
    ) -> VerifiedEventLog.Mismatch {
        let forPCR = events.filter { $0.isExtended && $0.pcr == pcr }
        guard let size = bank.digestSize else {
            return .init(
                bank: bank, pcr: pcr, quoted: quoted, replayed: replayed, eventIndex: nil,
                explanation: "bank cannot be computed")
        }
        var value = replay.start.value(pcr: pcr, size: size)
        if forPCR.isEmpty {
            return .init(
                bank: bank, pcr: pcr, quoted: quoted, replayed: replayed, eventIndex: nil,
                explanation:
                    "the log has no event for this PCR, so it should hold its start value, but the TPM measured something into it: its events were left out of the log"
            )
        }
        if value == quoted, let first = forPCR.first {
            return .init(
                bank: bank, pcr: pcr, quoted: quoted, replayed: replayed, eventIndex: first.index,
                explanation:
                    "the TPM holds the initial value: no event from event \(first.index) (\(first.type)) on was measured"
            )
        }
        for (i, e) in forPCR.enumerated() {
            guard let d = e.digest(bank), let next = try? TPMDigest.hash(bank, value + d) else { break }
            value = next
            if value == quoted, i + 1 < forPCR.count {
                let culprit = forPCR[i + 1]
                return .init(
                    bank: bank, pcr: pcr, quoted: quoted, replayed: replayed, eventIndex: culprit.index,
                    explanation:
                        "the log matches up to event \(e.index); event \(culprit.index) (\(culprit.type)) and later were not measured into the TPM"
                )
            }
        }
        let last = forPCR.last
        return .init(
            bank: bank, pcr: pcr, quoted: quoted, replayed: replayed, eventIndex: last?.index,
            explanation:
                "no prefix of the \(forPCR.count) events logged for this PCR reproduces the quoted value (events \(forPCR.first?.index ?? 0)–\(last?.index ?? 0)): an event was altered, removed or added"
        )
    }
}
