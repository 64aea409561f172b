import Attest

/// Event log parser, replay and payload decoding on arbitrary bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let log = try? UnverifiedEventLog(bytes: bytes) else { return 0 }
    let replay = EventLogReplay(log)
    for e in log.events { _ = DecodedEventData(e).summary }
    _ = BootFacts(events: log.events)
    // Verify against a quote whose PCRs are the replay itself, and against one that differs.
    let selection = TPMLPCRSelection(replay.values.banks.keys.sorted().map { TPMSPCRSelection(hash: $0, pcrs: replay.values.banks[$0]?.keys.sorted() ?? []) })
    let verified = EventLogVerifier.verify(log, against: VerifiedQuote.uncheckedReplay(selection: selection, pcrs: replay.values))
    precondition(verified.isConsistent, "a log must match its own replay")
    var other = replay.values
    if let bank = other.banks.keys.first, let pcr = other.banks[bank]?.keys.first, let size = bank.digestSize {
        other[bank, pcr] = [UInt8](repeating: 0xA5, count: size)
        _ = EventLogVerifier.verify(log, against: VerifiedQuote.uncheckedReplay(selection: selection, pcrs: other))
    }
    return 0
}
