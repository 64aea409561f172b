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
    /// The event data (payload), sharing the log's storage. Its hash need not equal the digest (PFP
    /// allows digests of other data).
    public let dataBytes: ArraySlice<UInt8>
    /// The event data as an array (a copy).
    public var data: [UInt8] { Array(dataBytes) }

    /// TPMT_HA — TPM 2.0 Part 2 §10.3.2: one bank's digest as logged.
    /// It is a claim until replay matches a verified quote.
    public struct Digest: Hashable, Sendable {
        /// The bank's hash algorithm.
        public let algorithm: TPMAlgorithmID
        /// The digest, sharing the log's storage.
        public let bytes: ArraySlice<UInt8>
        /// The digest as an array (a copy).
        public var value: [UInt8] { Array(bytes) }

        /// Builds a digest from its bank and value (tests and workarounds).
        public init(algorithm: TPMAlgorithmID, value: [UInt8]) {
            self.algorithm = algorithm
            self.bytes = value[...]
        }

        init(algorithm: TPMAlgorithmID, bytes: ArraySlice<UInt8>) {
            self.algorithm = algorithm
            self.bytes = bytes
        }
    }

    /// Builds an event from its fields (tests and workarounds); nothing is checked.
    public init(index: Int, offset: Int, pcrIndex: UInt32, type: TCGEventType, digests: [Digest], data: [UInt8]) {
        self.init(index: index, offset: offset, pcrIndex: pcrIndex, type: type, digests: digests, dataBytes: data[...])
    }

    init(index: Int, offset: Int, pcrIndex: UInt32, type: TCGEventType, digests: [Digest], dataBytes: ArraySlice<UInt8>)
    {
        self.index = index
        self.offset = offset
        self.pcrIndex = pcrIndex
        self.type = type
        self.digests = digests
        self.dataBytes = dataBytes
    }

    /// The digest of `bank` as logged (a copy), or nil when the event has none for that bank.
    public func digest(_ bank: TPMAlgorithmID) -> [UInt8]? {
        digestBytes(bank).map { Array($0) }
    }

    /// The digest of `bank` without copying it.
    public func digestBytes(_ bank: TPMAlgorithmID) -> ArraySlice<UInt8>? {
        for d in digests where d.algorithm == bank { return d.bytes }
        return nil
    }

    /// Whether replay extends this event into a PCR: not EV_NO_ACTION, and a PCR index below 24.
    public var isExtended: Bool { type != .noAction && pcrIndex < 24 }

    /// PCR index as an Int when it is a real PCR (0–23).
    public var pcr: Int? { pcrIndex < 24 ? Int(pcrIndex) : nil }
}
