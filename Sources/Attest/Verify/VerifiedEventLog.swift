/// An event log checked against a ``VerifiedQuote``: per bank, which PCRs replay to the quoted values,
/// and the events that policy may rely on — only those whose PCR replayed to a quoted value in some bank.
/// Only ``EventLogVerifier`` constructs one.
public struct VerifiedEventLog: Hashable, Sendable {
    /// An event whose PCR, in ``banks``, replays to the value the TPM signed.
    public struct Event: Hashable, Sendable {
        public let event: EventLogEvent
        /// The quoted banks in which this event's PCR replayed correctly.
        public let banks: Set<TPMAlgorithmID>
    }

    /// A quoted PCR the log extends but does not reproduce.
    public struct Mismatch: Hashable, Sendable, CustomStringConvertible {
        public let bank: TPMAlgorithmID
        public let pcr: Int
        public let quoted: [UInt8]
        public let replayed: [UInt8]
        /// The first event the TPM did not see, when a prefix of the log reproduces the quoted value;
        /// else the last event of this PCR.
        public let eventIndex: Int?
        public let explanation: String

        public var description: String {
            "\(bank.name) PCR \(pcr): quoted \(Hex.encode(quoted)), log replays to \(Hex.encode(replayed)); \(explanation)"
        }
    }

    public let format: UnverifiedEventLog.Format
    /// Events policy may rely on, in log order. EV_NO_ACTION events are never included.
    public let events: [Event]
    /// (bank, PCR) pairs that were quoted, extended by the log, and reproduced.
    public let matched: [TPMAlgorithmID: [Int]]
    public let mismatches: [Mismatch]
    /// Banks the log declares that Vigil cannot replay.
    public let uncomputableBanks: [TPMAlgorithmID: String]
    /// Workarounds needed for the log to match (empty for a clean log).
    public let workarounds: [EventLogWorkaround]
    /// The full replay, for reporting.
    public let replay: EventLogReplay
    /// PCRs (0–23) that at least one event of the log extends.
    public let extendedPCRs: Set<Int>

    /// True when every quoted PCR that the log extends, in every computable quoted bank, matches.
    public var isConsistent: Bool { mismatches.isEmpty }
}

/// Replays a log against a verified quote, applying named workarounds only when a plain replay fails.
public enum EventLogVerifier {
    public static func verify(_ log: UnverifiedEventLog, against quote: VerifiedQuote) -> VerifiedEventLog {
        let plain = compare(log, quote, workarounds: [])
        guard !plain.mismatches.isEmpty else { return plain }
        let badPCRs = Set(plain.mismatches.map(\.pcr))
        for workaround in EventLogWorkaround.all where badPCRs.isSubset(of: workaround.pcrs) {
            let attempt = compare(log, quote, workarounds: [workaround])
            if attempt.mismatches.isEmpty { return attempt }
        }
        return plain
    }

    /// Verifies a log against the verified PCRs of several quotes (one per bank, as some platforms quote).
    public static func verify(_ log: UnverifiedEventLog, against quotes: [VerifiedQuote]) -> VerifiedEventLog {
        var merged = PCRValues()
        var selections: [TPMSPCRSelection] = []
        for q in quotes {
            for (bank, values) in q.pcrs.banks { for (pcr, v) in values { merged[bank, pcr] = v } }
            selections.append(contentsOf: q.selection.selections)
        }
        guard let first = quotes.first else {
            return VerifiedEventLog(format: log.format, events: [], matched: [:], mismatches: [], uncomputableBanks: [:],
                                    workarounds: [], replay: EventLogReplay(log), extendedPCRs: [])
        }
        return verify(log, against: VerifiedQuote(attest: first.attest, selection: TPMLPCRSelection(selections), pcrs: merged,
                                                  pcrDigest: first.pcrDigest, clockFindings: first.clockFindings))
    }

    static func compare(_ log: UnverifiedEventLog, _ quote: VerifiedQuote, workarounds: [EventLogWorkaround]) -> VerifiedEventLog {
        let replay = EventLogReplay(log, workarounds: workarounds)
        let events = workarounds.reduce(log.events) { $1.apply(to: $0, banks: log.banks) }
        let extended = Set(events.filter(\.isExtended).compactMap(\.pcr))
        var matched: [TPMAlgorithmID: [Int]] = [:]
        var mismatches: [VerifiedEventLog.Mismatch] = []
        for (bank, quotedValues) in quote.pcrs.banks.sorted(by: { $0.key < $1.key }) where log.banks.contains(bank) && replay.uncomputableBanks[bank] == nil {
            for (pcr, quotedValue) in quotedValues.sorted(by: { $0.key < $1.key }) where extended.contains(pcr) {
                let replayed = replay.values[bank, pcr] ?? []
                if replayed == quotedValue {
                    matched[bank, default: []].append(pcr)
                } else {
                    mismatches.append(diagnose(events, replay: replay, bank: bank, pcr: pcr, quoted: quotedValue, replayed: replayed))
                }
            }
        }
        var verified: [VerifiedEventLog.Event] = []
        for e in events where e.isExtended {
            guard let pcr = e.pcr else { continue }
            let banks = Set(matched.filter { $0.value.contains(pcr) }.map(\.key))
            if !banks.isEmpty { verified.append(.init(event: e, banks: banks)) }
        }
        return VerifiedEventLog(format: log.format, events: verified, matched: matched, mismatches: mismatches,
                                uncomputableBanks: replay.uncomputableBanks, workarounds: workarounds, replay: replay, extendedPCRs: extended)
    }

    /// Finds where the log and the TPM part ways for one PCR: if the quoted value equals the replay after
    /// some prefix of this PCR's events, the first event after that prefix is one the TPM never saw.
    static func diagnose(_ events: [EventLogEvent], replay: EventLogReplay, bank: TPMAlgorithmID, pcr: Int,
                         quoted: [UInt8], replayed: [UInt8]) -> VerifiedEventLog.Mismatch {
        let forPCR = events.filter { $0.isExtended && $0.pcr == pcr }
        guard let size = bank.digestSize else {
            return .init(bank: bank, pcr: pcr, quoted: quoted, replayed: replayed, eventIndex: nil, explanation: "bank cannot be computed")
        }
        var value = [UInt8](repeating: (17...22).contains(pcr) ? 0xFF : 0, count: size)
        if pcr == 0 {
            if replay.hcrtm { value[size - 1] = 4 } else if let l = replay.startupLocality { value[size - 1] = l }
        }
        if value == quoted, let first = forPCR.first {
            return .init(bank: bank, pcr: pcr, quoted: quoted, replayed: replayed, eventIndex: first.index,
                         explanation: "the TPM holds the initial value: no event from event \(first.index) (\(first.type)) on was measured")
        }
        for (i, e) in forPCR.enumerated() {
            guard let d = e.digest(bank), let next = try? TPMDigest.hash(bank, value + d) else { break }
            value = next
            if value == quoted, i + 1 < forPCR.count {
                let culprit = forPCR[i + 1]
                return .init(bank: bank, pcr: pcr, quoted: quoted, replayed: replayed, eventIndex: culprit.index,
                             explanation: "the log matches up to event \(e.index); event \(culprit.index) (\(culprit.type)) and later were not measured into the TPM")
            }
        }
        let last = forPCR.last
        return .init(bank: bank, pcr: pcr, quoted: quoted, replayed: replayed, eventIndex: last?.index,
                     explanation: "no prefix of the \(forPCR.count) events logged for this PCR reproduces the quoted value (events \(forPCR.first?.index ?? 0)–\(last?.index ?? 0)): an event was altered, removed or added")
    }
}

