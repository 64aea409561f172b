import Crypto
import Foundation

/// Replays an event log into PCR values, per bank, the way the TPM computed them
/// (PCR := H(PCR || digest) for each measured event, PFP §10.2 and TPM 2.0 Part 3 §22.2):
///
/// - EV_NO_ACTION events and PCR indices ≥ 24 are never extended;
/// - start values come from ``PCRStartValue`` (StartupLocality, H-CRTM, all ones for PCRs 17–22);
/// - banks are independent; a bank whose hash Vigil cannot compute (e.g. SM3-256) is reported, not guessed.
public struct EventLogReplay: Hashable, Sendable {
    /// Replayed values of every PCR the log extends or sets the start value of, per computable bank.
    public let values: PCRValues
    /// Declared banks that cannot be replayed, with the reason.
    public let uncomputableBanks: [TPMAlgorithmID: String]
    /// Where each PCR started, from the log's StartupLocality and H-CRTM events.
    public let start: PCRStartValue
    /// The locality from a StartupLocality event, if any.
    public var startupLocality: UInt8? { start.startupLocality }
    /// Whether PCR 0 starts from an H-CRTM measurement.
    public var hcrtm: Bool { start.hcrtm }
    /// Workarounds applied to the log before this replay (empty for a plain replay).
    public let workarounds: [EventLogWorkaround]

    static let startupLocalitySignature: [UInt8] = Array("StartupLocality".utf8) + [0]

    /// Replays every declared bank of `log`, after applying `workarounds` (in order) to a copy of its events.
    public init(_ log: UnverifiedEventLog, workarounds: [EventLogWorkaround] = []) {
        let events = workarounds.reduce(log.events) { $1.apply(to: $0, banks: log.banks) }
        var locality: UInt8?
        for e in events where e.type == .noAction && e.pcrIndex == 0 {
            if e.data.count == 17, Array(e.data.prefix(16)) == Self.startupLocalitySignature {
                locality = e.data[16]
            }
        }
        let firstPCR0 = events.first { $0.isExtended && $0.pcrIndex == 0 }
        let start = PCRStartValue(startupLocality: locality, hcrtm: firstPCR0?.type == .efiHCRTMEvent)
        var values = PCRValues()
        var uncomputable: [TPMAlgorithmID: String] = [:]
        for bank in log.banks {
            guard let size = bank.digestSize, TPMDigest.isSupported(bank) else {
                uncomputable[bank] = "Vigil has no implementation of \(bank.name)"
                continue
            }
            let result: ([Int: [UInt8]], Int?) =
                switch bank {
                case .sha1: Self.replayBank(Insecure.SHA1.self, bank, events, size: size, start: start)
                case .sha256: Self.replayBank(SHA256.self, bank, events, size: size, start: start)
                case .sha384: Self.replayBank(SHA384.self, bank, events, size: size, start: start)
                case .sm3_256: Self.replayBank(SM3Hasher.self, bank, events, size: size, start: start)
                default: Self.replayBank(SHA512.self, bank, events, size: size, start: start)
                }
            if let missing = result.1 {
                uncomputable[bank] = "event \(missing) has no \(bank.name) digest"
                continue
            }
            for (pcr, v) in result.0 { values[bank, pcr] = v }
        }
        self.values = values
        self.uncomputableBanks = uncomputable
        self.start = start
        self.workarounds = workarounds
    }

    /// Replays one bank with hash `H`: 24 fixed slots, digests kept in the hash's own type until the end
    /// (no per-event allocation). Returns the values, or the index of an event lacking this bank's digest.
    static func replayBank<H: HashFunction>(
        _: H.Type, _ bank: TPMAlgorithmID, _ events: [EventLogEvent], size: Int,
        start: PCRStartValue
    ) -> ([Int: [UInt8]], Int?) {
        var slots = [H.Digest?](repeating: nil, count: 24)
        var touched = [Bool](repeating: false, count: 24)
        let ones = start.value(pcr: 17, size: size), zeros = start.value(pcr: 1, size: size)
        let pcr0Start = start.value(pcr: 0, size: size)
        if start.setsPCR0 { touched[0] = true }
        for e in events where e.isExtended {
            guard let pcr = e.pcr else { continue }
            guard let d = e.digestBytes(bank), d.count == size else { return ([:], e.index) }
            var h = H()
            if let current = slots[pcr] {
                current.withUnsafeBytes { h.update(bufferPointer: $0) }
            } else {
                (pcr == 0 ? pcr0Start : (17...22).contains(pcr) ? ones : zeros).withUnsafeBytes {
                    h.update(bufferPointer: $0)
                }
            }
            d.withUnsafeBytes { h.update(bufferPointer: $0) }
            slots[pcr] = h.finalize()
            touched[pcr] = true
        }
        var out: [Int: [UInt8]] = [:]
        for pcr in 0..<24 where touched[pcr] {
            out[pcr] = slots[pcr].map { Array($0) } ?? pcr0Start
        }
        return (out, nil)
    }

    /// The value the log says `pcr` holds in `bank`: its replay, or its start value when no event
    /// extends it; nil for a bank that cannot be replayed.
    public func value(_ bank: TPMAlgorithmID, _ pcr: Int) -> [UInt8]? {
        if let v = values[bank, pcr] { return v }
        guard uncomputableBanks[bank] == nil, let size = bank.digestSize else { return nil }
        return start.value(pcr: pcr, size: size)
    }

    /// The JSON `vigil eventlog replay --json` prints: `{"pcrs": {"sha256": {"0": "hex", …}, …}}`.
    public var jsonObject: [String: [String: [String: String]]] {
        ["pcrs": values.jsonObject]
    }
}
