/// A TCG PC Client firmware event log (`/sys/kernel/security/tpm0/binary_bios_measurements`), parsed but
/// not verified: the SHA-1 format of TCG 1.2 logs, or the crypto-agile format (PFP §10.2) when the first
/// event is a complete Spec ID Event03.
///
/// Every length is checked against the remaining bytes before anything is allocated, counts and sizes are
/// capped, and trailing or truncated bytes are errors naming the event and offset.
public struct UnverifiedEventLog: Hashable, Sendable {
    /// The log format, decided by whether the first event is a Spec ID Event03.
    public enum Format: String, Hashable, Sendable, Codable {
        /// TCG 1.2 style: one SHA-1 digest per event.
        case sha1
        /// TCG 2.0 crypto-agile: the banks the Spec ID event declares.
        case cryptoAgile = "crypto-agile"
    }

    /// Largest log accepted.
    public static let maxLogSize = 64 * 1024 * 1024
    /// Most events accepted.
    public static let maxEvents = 200_000
    /// Largest single event payload accepted.
    public static let maxEventDataSize = 16 * 1024 * 1024

    /// SHA-1 (TCG 1.2) or crypto-agile format.
    public let format: Format
    /// The Spec ID event of a crypto-agile log.
    public let specID: SpecIDEvent?
    /// Every event, including EV_NO_ACTION ones (and the Spec ID event itself as event 0).
    public let events: [EventLogEvent]
    /// Bytes of trailing zero padding after the last event (some firmware pads the log area).
    public let trailingPadding: Int

    /// The banks whose digests every event carries: the Spec ID algorithms, or SHA-1.
    public var banks: [TPMAlgorithmID] {
        specID?.algorithms.map(\.id) ?? [.sha1]
    }

    /// Parses a whole log (`binary_bios_measurements`); oversized, truncated or malformed input is an error.
    public init(bytes: [UInt8]) throws(AttestError) {
        guard bytes.count <= Self.maxLogSize else {
            throw .tooLarge("event log", size: bytes.count, limit: Self.maxLogSize, at: 0)
        }
        guard !bytes.isEmpty else { throw AttestError(code: .truncated, reason: "event log: empty") }
        var reader = ByteReader(bytes)
        let first = try Self.parseSHA1Event(&reader, index: 0)
        var specID: SpecIDEvent?
        if first.type == .noAction, first.pcrIndex == 0, first.digests.first?.value.allSatisfy({ $0 == 0 }) == true {
            specID = try SpecIDEvent(eventData: first.data)
        }
        var events = [first]
        var padding = 0
        while !reader.isAtEnd {
            // Zero padding after the last event: accepted only if it is all zeros to the end.
            if Self.isZeroTail(bytes, from: reader.offset) {
                padding = reader.remaining
                break
            }
            guard events.count < Self.maxEvents else {
                throw .tooLarge(
                    "event log: number of events", size: events.count + 1, limit: Self.maxEvents, at: reader.offset)
            }
            let event =
                if let specID {
                    try Self.parseCryptoAgileEvent(&reader, index: events.count, specID: specID)
                } else {
                    try Self.parseSHA1Event(&reader, index: events.count)
                }
            events.append(event)
        }
        self.format = specID == nil ? .sha1 : .cryptoAgile
        self.specID = specID
        self.events = events
        self.trailingPadding = padding
    }

    /// Shortest zero tail taken as padding: a shorter one is a truncated event (PCR 0's index is zeros).
    static let minimumPadding = 32

    private static func isZeroTail(_ bytes: [UInt8], from offset: Int) -> Bool {
        // Firmware log areas read raw from memory are zero-filled after the last event. An event of
        // PCR 0, type 0 (EV_PREBOOT_CERT, deprecated) with zero digests would look the same: such a log
        // is not accepted as padding only when the zeros are too short to be one.
        guard bytes.count - offset >= minimumPadding else { return false }
        var i = offset
        while i < bytes.count {
            if bytes[i] != 0 { return false }
            i += 1
        }
        return true
    }

    /// TCG_PCClientPCREvent — PFP §10.2.1: pcrIndex, eventType, SHA-1 digest, eventSize, event.
    static func parseSHA1Event(_ r: inout ByteReader, index: Int) throws(AttestError) -> EventLogEvent {
        let offset = r.offset
        let pcr = try r.readUInt32("event \(index) (SHA-1 format): pcrIndex", .little)
        let type = TCGEventType(try r.readUInt32("event \(index): eventType", .little))
        let digest = try r.readSlice("event \(index): SHA-1 digest", count: 20)
        let data = try readEventData(&r, index: index)
        return EventLogEvent(
            index: index, offset: offset, pcrIndex: pcr, type: type,
            digests: [.init(algorithm: .sha1, bytes: digest)], dataBytes: data)
    }

    /// TCG_PCR_EVENT2 — PFP §10.2.2: pcrIndex, eventType, TPML_DIGEST_VALUES (little-endian), eventSize, event.
    static func parseCryptoAgileEvent(_ r: inout ByteReader, index: Int, specID: SpecIDEvent) throws(AttestError)
        -> EventLogEvent
    {
        let offset = r.offset
        let pcr = try r.readUInt32("event \(index): pcrIndex", .little)
        let type = TCGEventType(try r.readUInt32("event \(index): eventType", .little))
        let countAt = r.offset
        let count = Int(try r.readUInt32("event \(index): digest count", .little))
        guard count <= specID.algorithms.count else {
            throw AttestError(
                code: .sizeLimitExceeded,
                reason:
                    "event \(index): \(count) digests at byte \(countAt), but the Spec ID event declares \(specID.algorithms.count) banks"
            )
        }
        var digests: [EventLogEvent.Digest] = []
        digests.reserveCapacity(count)
        for _ in 0..<count {
            let algAt = r.offset
            let alg = TPMAlgorithmID(try r.readUInt16("event \(index): digest algorithm", .little))
            guard let declared = specID.algorithms.first(where: { $0.id == alg }) else {
                throw .unknownAlgorithm(
                    "event \(index): digest algorithm (not declared by the Spec ID event)", alg.rawValue, at: algAt)
            }
            guard !digests.contains(where: { $0.algorithm == alg }) else {
                throw AttestError.invalid("event \(index): two \(alg) digests at byte \(algAt)")
            }
            digests.append(
                .init(
                    algorithm: alg, bytes: try r.readSlice("event \(index): \(alg) digest", count: declared.digestSize))
            )
        }
        let data = try readEventData(&r, index: index)
        return EventLogEvent(index: index, offset: offset, pcrIndex: pcr, type: type, digests: digests, dataBytes: data)
    }

    private static func readEventData(_ r: inout ByteReader, index: Int) throws(AttestError) -> ArraySlice<UInt8> {
        let sizeAt = r.offset
        let size = Int(try r.readUInt32("event \(index): eventSize", .little))
        guard size <= maxEventDataSize else {
            throw .tooLarge("event \(index): eventSize", size: size, limit: maxEventDataSize, at: sizeAt)
        }
        guard size <= r.remaining else {
            throw .truncated(
                "event \(index): event data (eventSize at byte \(sizeAt))", at: r.offset, needed: size,
                available: r.remaining)
        }
        return try r.readSlice("event \(index): event data", count: size)
    }
}
