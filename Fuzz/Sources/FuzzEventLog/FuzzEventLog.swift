import Attest

/// Event log parser, replay and payload decoding on arbitrary bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let log = try? UnverifiedEventLog(bytes: bytes) else { return 0 }
    let replay = EventLogReplay(log)
    for e in log.events { _ = DecodedEventData(e).summary }
    _ = BootFacts(events: log.events)
    // Verify against the log's own replay (must match), and against values that differ in one PCR.
    let own = UnsignedEvidence(eventLog: log)
    precondition(own.isConsistent, "a log must match its own replay")
    var other = own.pcrs
    if let bank = other.banks.keys.first, let pcr = other.banks[bank]?.keys.first, let size = bank.digestSize {
        other[bank, pcr] = [UInt8](repeating: 0xA5, count: size)
        _ = UnsignedEvidence(eventLog: log, claimedPCRs: other)
    }
    return 0
}
