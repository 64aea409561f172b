public import Attest
public import Foundation
import X509

/// Everything the engine may look at, all of it already verified (or explicitly marked unsigned).
/// Build it with ``verified(quote:eventLog:…)`` or, for authoring, ``unsigned(eventLog:)``.
public struct PolicyEvidence: Sendable {
    /// The verified quote; nil only for unsigned authoring evidence.
    public let quote: VerifiedQuote?
    /// The PCR values the engine checks: the quoted ones, or the log's replay when unsigned.
    public let pcrs: PCRValues
    /// Banks the PCR values cover.
    public let quotedBanks: Set<String>
    /// The event log verified against the quote (or replayed when unsigned).
    public let eventLog: VerifiedEventLog?
    public let replay: EventLogReplay?
    /// The attestation key's public area.
    public let akPublic: TPMTPublic?
    public let ekCertificate: EKCertificate?
    /// The EK chain result against the policy's CA folder (validated by ``PolicyEvidencePreparer``).
    public let ekChain: EKCertificateVerifier.Result?
    public let nonceIssuedAt: Date?
    public let checkedAt: Date
    /// True when nothing was signed: authoring with a bare event log.
    public let unsigned: Bool
    /// Boot facts per single trusted bank, decoded once when the evidence is prepared (decoding payloads
    /// is the expensive part; evaluation then only checks rules).
    let factsByBank: [String: BootFacts]

    public init(quote: VerifiedQuote?, pcrs: PCRValues, eventLog: VerifiedEventLog?, replay: EventLogReplay?, akPublic: TPMTPublic?,
                ekCertificate: EKCertificate?, ekChain: EKCertificateVerifier.Result?, nonceIssuedAt: Date?, checkedAt: Date, unsigned: Bool) {
        self.quote = quote
        self.pcrs = pcrs
        self.quotedBanks = Set(pcrs.banks.keys.map(\.name))
        self.eventLog = eventLog
        self.replay = replay
        self.akPublic = akPublic
        self.ekCertificate = ekCertificate
        self.ekChain = ekChain
        self.nonceIssuedAt = nonceIssuedAt
        self.checkedAt = checkedAt
        self.unsigned = unsigned
        var byBank: [String: BootFacts] = [:]
        if let eventLog {
            for bank in Set(eventLog.events.flatMap(\.banks)) {
                byBank[bank.name] = BootFacts(events: eventLog.events.filter { $0.banks.contains(bank) }.map(\.event))
            }
        }
        self.factsByBank = byBank
    }

    /// Authoring evidence from a bare log: its replay is taken as the PCR values and every replayed
    /// event counts as verified. Verdicts say the evidence was unsigned.
    public static func unsigned(eventLog log: UnverifiedEventLog, at time: Date = Date()) -> PolicyEvidence {
        let replay = EventLogReplay(log)
        let selection = TPMLPCRSelection(replay.values.banks.keys.sorted().map { TPMSPCRSelection(hash: $0, pcrs: replay.values.banks[$0]?.keys.sorted() ?? []) })
        // The replay stands in for a quote, only to select the events that replay; never signed.
        let verified = EventLogVerifier.verify(log, against: VerifiedQuote.uncheckedReplay(selection: selection, pcrs: replay.values))
        return PolicyEvidence(quote: nil, pcrs: replay.values, eventLog: verified, replay: replay, akPublic: nil, ekCertificate: nil,
                              ekChain: nil, nonceIssuedAt: nil, checkedAt: time, unsigned: true)
    }

    /// Evidence from a verified quote and, optionally, a log verified against it.
    public static func verified(quote: VerifiedQuote, eventLog: UnverifiedEventLog?, akPublic: TPMTPublic, ekCertificate: EKCertificate?,
                                ekChain: EKCertificateVerifier.Result?, nonceIssuedAt: Date?, checkedAt: Date = Date()) -> PolicyEvidence {
        let verified = eventLog.map { EventLogVerifier.verify($0, against: quote) }
        return PolicyEvidence(quote: quote, pcrs: quote.pcrs, eventLog: verified, replay: verified?.replay, akPublic: akPublic,
                              ekCertificate: ekCertificate, ekChain: ekChain, nonceIssuedAt: nonceIssuedAt, checkedAt: checkedAt, unsigned: false)
    }

    /// Boot facts from events verified in the given banks only.
    public func facts(trustedBanks: Set<String>) -> BootFacts? {
        guard let log = eventLog else { return nil }
        if trustedBanks.count == 1, let bank = trustedBanks.first {
            return factsByBank[bank] ?? BootFacts(events: [])
        }
        let events = log.events.filter { !Set($0.banks.map(\.name)).isDisjoint(with: trustedBanks) }.map(\.event)
        return BootFacts(events: events)
    }
}
