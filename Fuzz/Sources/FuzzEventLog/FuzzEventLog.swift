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
    if let attest = try? TPMSAttest(bytes: [0xFF, 0x54, 0x43, 0x47, 0x80, 0x18, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 25) + [0, 0, 0, 0, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 0]) {
        _ = EventLogVerifier.verify(log, against: VerifiedQuote(uncheckedAttest: attest, selection: selection, pcrs: replay.values))
    }
    return 0
}
