/// One event of a TCG PC Client event log, as parsed: nothing about it is verified.
///
/// Its digests are what firmware claims it extended; only replay against a verified quote makes an event
/// trustworthy (see ``VerifiedEventLog``). Its ``type`` is never covered by any digest.
public struct EventLogEvent: Hashable, Sendable {
    /// Position in the log, from 0 (the Spec ID event of a crypto-agile log is event 0).
    public let index: Int
    /// Byte offset of the event in the log.
    public let offset: Int
    /// PCR index as logged: may be ≥ 24 (Windows uses 0xFFFFFFFF for EV_NO_ACTION trust points).
    public let pcrIndex: UInt32
    /// - Warning: Untrusted: the type is not part of the measurement.
    public let type: TCGEventType
    /// Digests by bank, in log order.
    public let digests: [Digest]
    /// The event data (payload). Its hash need not equal the digest (PFP allows digests of other data).
    public let data: [UInt8]

    public struct Digest: Hashable, Sendable {
        public let algorithm: TPMAlgorithmID
        public let value: [UInt8]
    }

    public func digest(_ bank: TPMAlgorithmID) -> [UInt8]? {
        digests.first { $0.algorithm == bank }?.value
    }

    /// Whether replay extends this event into a PCR: not EV_NO_ACTION, and a PCR index below 24.
    public var isExtended: Bool { type != .noAction && pcrIndex < 24 }

    /// PCR index as an Int when it is a real PCR (0–23).
    public var pcr: Int? { pcrIndex < 24 ? Int(pcrIndex) : nil }
}
