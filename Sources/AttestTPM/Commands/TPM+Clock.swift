public import Attest
internal import CTSS2

extension TPM {
    /// The TPM's clock and its reset and restart counters: a node watches them to notice a TPM that was reset or
    /// restarted under it (its PCRs are then no longer those of the attested boot).
    ///
    /// Corresponding ESAPI call: `Esys_ReadClock` (TPM2_ReadClock, Part 3 §29.1; TPMS_TIME_INFO, Part 2 §10.11.6).
    public func readClock() throws(TPMError) -> TPMSClockInfo {
        let ctx = context.raw
        var info: UnsafeMutablePointer<TPMS_TIME_INFO>? = nil
        try tss2Call("Esys_ReadClock", logger: logger) {
            Esys_ReadClock(ctx, ESYS.none, ESYS.none, ESYS.none, &info)
        }
        defer { Esys_Free(info) }
        guard let clock = info?.pointee.clockInfo else {
            throw TPMError.invalidResponse("Esys_ReadClock returned no data")
        }
        return TPMSClockInfo(
            clock: clock.clock, resetCount: clock.resetCount, restartCount: clock.restartCount, safe: clock.safe != 0)
    }
}
