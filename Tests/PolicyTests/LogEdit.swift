import Attest

/// Edits of a real TCG event log's bytes, to build forgeries from genuine evidence: an event removed, its
/// data changed in place, its type changed. Offsets come from the parsed log (event data shares the log's indices).
enum LogEdit {
    /// The byte range of `event` in `bytes`: from its offset to the next event's (or the end).
    static func range(of event: EventLogEvent, in log: UnverifiedEventLog, count: Int) -> Range<Int> {
        let next = log.events.first { $0.offset > event.offset }?.offset ?? count
        return event.offset..<next
    }

    static func removing(_ event: EventLogEvent, from bytes: [UInt8], _ log: UnverifiedEventLog) -> [UInt8] {
        var out = bytes
        out.removeSubrange(range(of: event, in: log, count: bytes.count))
        return out
    }

    /// Replaces the event's data with bytes of the same length (the digests stay as they were).
    static func replacingData(of event: EventLogEvent, in bytes: [UInt8], with data: [UInt8]) -> [UInt8] {
        precondition(data.count == event.dataBytes.count, "test edit must keep the data's length")
        var out = bytes
        out.replaceSubrange(event.dataBytes.startIndex..<event.dataBytes.endIndex, with: data)
        return out
    }

    /// Changes the event's (unattested) type field (TCG_PCR_EVENT2.eventType, little-endian at offset + 4).
    static func retyping(_ event: EventLogEvent, in bytes: [UInt8], to type: TCGEventType) -> [UInt8] {
        var out = bytes
        for i in 0..<4 { out[event.offset + 4 + i] = UInt8(truncatingIfNeeded: type.rawValue >> (8 * UInt32(i))) }
        return out
    }
}
