/// The PCR values a changed boot chain will produce: the event log replayed with the digests of replaced EFI
/// applications swapped for the Authenticode digests of their new images (`vigil vault predict`), so a security
/// team can sign approvals for an update before it is installed.
///
/// An application is named by its logged SHA-256 digest (or the Authenticode digest of its old image); every
/// EV_EFI_BOOT_SERVICES_APPLICATION event carrying it gets the new image's digest in every bank the log has
/// (TCG PC Client PFP §10.4.4: the firmware measures the Authenticode digest). The log is rewritten in memory
/// and replayed with the same code the verifier uses.
public struct BootChainPrediction: Sendable {
    /// One replacement: the old application's SHA-256 digest and the new image.
    public struct Replacement: Sendable {
        /// The SHA-256 digest the log carries for the old application.
        public var oldSHA256: [UInt8]
        /// The new image (a PE/COFF EFI application).
        public var newImage: [UInt8]

        /// A replacement.
        public init(oldSHA256: [UInt8], newImage: [UInt8]) {
            self.oldSHA256 = oldSHA256
            self.newImage = newImage
        }
    }

    /// An event whose digests were replaced.
    public struct Replaced: Sendable, Hashable {
        /// The event's index in the log.
        public var event: Int
        /// Its PCR.
        public var pcr: Int
        /// The old SHA-256 digest.
        public var old: [UInt8]
        /// The new SHA-256 digest.
        public var new: [UInt8]
    }

    /// The replay of the rewritten log.
    public let replay: EventLogReplay
    /// What was replaced.
    public let replaced: [Replaced]

    /// Predicts `log` with `replacements`. Throws when a replacement matches no boot application in the log (a
    /// prediction that changes nothing would be signed in good faith and never match).
    public init(log bytes: [UInt8], replacements: [Replacement]) throws(AttestError) {
        let log = try UnverifiedEventLog(bytes: bytes)
        guard let spec = log.specID else {
            throw AttestError(code: .invalidValue, reason: "predict: the log is not crypto-agile (no Spec ID event)")
        }
        var newDigests: [[TPMAlgorithmID: [UInt8]]] = []
        for r in replacements {
            var byBank: [TPMAlgorithmID: [UInt8]] = [:]
            for a in spec.algorithms { byBank[a.id] = try AuthenticodeDigest(image: r.newImage, hashAlg: a.id).digest }
            newDigests.append(byBank)
        }
        var rewritten = bytes
        var replaced: [Replaced] = []
        var used = Set<Int>()
        for event in log.events where event.type == .efiBootServicesApplication {
            guard let sha256 = event.digest(.sha256),
                let k = replacements.firstIndex(where: { $0.oldSHA256 == sha256 })
            else { continue }
            used.insert(k)
            // TCG_PCR_EVENT2: pcrIndex, eventType, TPML_DIGEST_VALUES.count, then (hashAlg, digest)…
            var at = event.offset + 12
            for _ in event.digests {
                guard at + 2 <= rewritten.count else {
                    throw AttestError(code: .truncated, reason: "predict: event \(event.index)'s digests are cut off")
                }
                let alg = TPMAlgorithmID(UInt16(rewritten[at]) | UInt16(rewritten[at + 1]) << 8)
                guard let size = spec.algorithms.first(where: { $0.id == alg })?.digestSize,
                    let digest = newDigests[k][alg], digest.count == size, at + 2 + size <= rewritten.count
                else { throw AttestError(code: .invalidValue, reason: "predict: event \(event.index) has bank \(alg)") }
                rewritten.replaceSubrange((at + 2)..<(at + 2 + size), with: digest)
                at += 2 + size
            }
            replaced.append(
                Replaced(event: event.index, pcr: event.pcr ?? -1, old: sha256, new: newDigests[k][.sha256] ?? []))
        }
        if let unused = replacements.indices.first(where: { !used.contains($0) }) {
            throw AttestError(
                code: .invalidValue,
                reason:
                    "predict: no EV_EFI_BOOT_SERVICES_APPLICATION in the log has SHA-256 digest \(Hex.encode(replacements[unused].oldSHA256))"
            )
        }
        replay = EventLogReplay(try UnverifiedEventLog(bytes: rewritten))
        self.replaced = replaced
    }

    /// Every PCR of every replayed bank: `{"sha256": {"0": hex, …, "23": hex}, …}` (PCRs no event extends are
    /// at their start value).
    public var values: PCRValues {
        var out = PCRValues()
        for bank in replay.values.banks.keys {
            for pcr in 0..<24 { if let v = replay.value(bank, pcr) { out[bank, pcr] = v } }
        }
        return out
    }
}
