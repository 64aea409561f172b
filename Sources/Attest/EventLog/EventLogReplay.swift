import Crypto
import Foundation

/// Replays an event log into PCR values, per bank, the way the TPM computed them
/// (PCR := H(PCR || digest) for each measured event, PFP §10.2 and TPM 2.0 Part 3 §22.2):
///
/// - EV_NO_ACTION events and PCR indices ≥ 24 are never extended;
/// - an EV_NO_ACTION "StartupLocality" event in PCR 0 makes PCR 0 start at 00…0N (PFP §10.4.5.3);
/// - when the first measured PCR 0 event is EV_EFI_HCRTM_EVENT, PCR 0 starts at 00…04 (PFP §10.4.5.2);
/// - PCRs 17–22 start at all ones (no dynamic launch); every other PCR at zeros;
/// - banks are independent; a bank whose hash Vigil cannot compute (e.g. SM3-256) is reported, not guessed.
public struct EventLogReplay: Hashable, Sendable {
    /// Replayed values of every PCR the log extends or sets the start value of, per computable bank.
    public let values: PCRValues
    /// Declared banks that cannot be replayed, with the reason.
    public let uncomputableBanks: [TPMAlgorithmID: String]
    /// The locality from a StartupLocality event, if any.
    public let startupLocality: UInt8?
    /// Whether PCR 0 starts from an H-CRTM measurement.
    public let hcrtm: Bool
    /// Workarounds applied to the log before this replay (empty for a plain replay).
    public let workarounds: [EventLogWorkaround]

    static let startupLocalitySignature: [UInt8] = Array("StartupLocality".utf8) + [0]

    public init(_ log: UnverifiedEventLog, workarounds: [EventLogWorkaround] = []) {
        let events = workarounds.reduce(log.events) { $1.apply(to: $0, banks: log.banks) }
        var locality: UInt8?
        for e in events where e.type == .noAction && e.pcrIndex == 0 {
            if e.data.count == 17, Array(e.data.prefix(16)) == Self.startupLocalitySignature {
                locality = e.data[16]
            }
        }
        let firstPCR0 = events.first { $0.isExtended && $0.pcrIndex == 0 }
        let hcrtm = firstPCR0?.type == .efiHCRTMEvent
        var values = PCRValues()
        var uncomputable: [TPMAlgorithmID: String] = [:]
        for bank in log.banks {
            guard let size = bank.digestSize, TPMDigest.isSupported(bank) else {
                uncomputable[bank] = "Vigil has no implementation of \(bank.name)"
                continue
            }
            var start0 = [UInt8](repeating: 0, count: size)
            if hcrtm { start0[size - 1] = 4 } else if let locality { start0[size - 1] = locality }
            let result: ([Int: [UInt8]], Int?) = switch bank {
            case .sha1: Self.replayBank(Insecure.SHA1.self, bank, events, size: size, pcr0Start: start0, setsPCR0: locality != nil || hcrtm)
            case .sha256: Self.replayBank(SHA256.self, bank, events, size: size, pcr0Start: start0, setsPCR0: locality != nil || hcrtm)
            case .sha384: Self.replayBank(SHA384.self, bank, events, size: size, pcr0Start: start0, setsPCR0: locality != nil || hcrtm)
            default: Self.replayBank(SHA512.self, bank, events, size: size, pcr0Start: start0, setsPCR0: locality != nil || hcrtm)
            }
            if let missing = result.1 {
                uncomputable[bank] = "event \(missing) has no \(bank.name) digest"
                continue
            }
            for (pcr, v) in result.0 { values[bank, pcr] = v }
        }
        self.values = values
        self.uncomputableBanks = uncomputable
        self.startupLocality = locality
        self.hcrtm = hcrtm
        self.workarounds = workarounds
    }

    /// Replays one bank with hash `H`: 24 fixed slots, digests kept in the hash's own type until the end
    /// (no per-event allocation). Returns the values, or the index of an event lacking this bank's digest.
    static func replayBank<H: HashFunction>(_: H.Type, _ bank: TPMAlgorithmID, _ events: [EventLogEvent], size: Int,
                                            pcr0Start: [UInt8], setsPCR0: Bool) -> ([Int: [UInt8]], Int?) {
        var slots = [H.Digest?](repeating: nil, count: 24)
        var touched = [Bool](repeating: false, count: 24)
        let ones = [UInt8](repeating: 0xFF, count: size), zeros = [UInt8](repeating: 0, count: size)
        if setsPCR0 { touched[0] = true }
        for e in events where e.isExtended {
            guard let pcr = e.pcr else { continue }
            guard let d = e.digestBytes(bank), d.count == size else { return ([:], e.index) }
            var h = H()
            if let current = slots[pcr] {
                current.withUnsafeBytes { h.update(bufferPointer: $0) }
            } else {
                (pcr == 0 ? pcr0Start : (17...22).contains(pcr) ? ones : zeros).withUnsafeBytes { h.update(bufferPointer: $0) }
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

    /// The JSON `vigil eventlog replay --json` prints: `{"pcrs": {"sha256": {"0": "hex", …}, …}}`.
    public var jsonObject: [String: [String: [String: String]]] {
        ["pcrs": values.jsonObject]
    }
}
