internal import CTSS2

extension TPM {
    /// Random bytes from the TPM's RNG. Asks repeatedly, since a TPM returns at most one digest's worth per call.
    ///
    /// Corresponding ESAPI call: `Esys_GetRandom` (TPM2_GetRandom, Part 3 §16.1).
    public func getRandom(_ count: Int) throws(TPMError) -> [UInt8] {
        guard (0...4096).contains(count) else {
            throw TPMError.invalidArgument("getRandom: \(count) bytes is out of range 0…4096")
        }
        let ctx = context.raw
        var out: [UInt8] = []
        while out.count < count {
            var random: UnsafeMutablePointer<TPM2B_DIGEST>? = nil
            try tss2Call("Esys_GetRandom", logger: logger) {
                Esys_GetRandom(ctx, ESYS.none, ESYS.none, ESYS.none, UInt16(min(count - out.count, 48)), &random)
            }
            defer { Esys_Free(random) }
            guard let random else { throw TPMError.invalidResponse("Esys_GetRandom returned no data") }
            let chunk = try MU.payload(random.pointee, Tss2_MU_TPM2B_DIGEST_Marshal, "TPM2B_DIGEST")
            guard !chunk.isEmpty else { throw TPMError.invalidResponse("TPM2_GetRandom returned 0 bytes") }
            out.append(contentsOf: chunk.prefix(count - out.count))
        }
        return out
    }
}
