public import Attest

/// What the event log said about the sealed PCRs at seal time: each extending event's PCR, type, SHA-256 digest
/// and a short decoded description. Event logs are public (not secret); keeping this lets
/// `vigil vault status --eventlog` say which events changed when a sealed PCR differs (TCG PC Client PFP §10).
public struct SealedBootRecord: Codable, Sendable, Hashable {
    /// One event, as recorded.
    public struct Event: Codable, Sendable, Hashable {
        /// The PCR it extended.
        public var pcr: Int
        /// The TCG event type's name (e.g. `EV_EFI_BOOT_SERVICES_APPLICATION`).
        public var type: String
        /// Its SHA-256 digest (hex).
        public var digest: String
        /// A decoded summary of its data (a path, a variable, a command line), capped.
        public var summary: String

        /// How the event reads in a diff.
        public var label: String { "\(type) \(summary.isEmpty ? "" : summary + " ")(digest \(digest.prefix(16))…)" }
    }

    /// The extending events of the sealed PCRs, in log order.
    public var events: [Event]

    /// The record of `log` for `pcrs` (SHA-256 digests; events without a SHA-256 digest are skipped).
    public init(log: UnverifiedEventLog, pcrs: [Int]) {
        let wanted = Set(pcrs)
        events = log.events.compactMap { e in
            guard e.isExtended, let pcr = e.pcr, wanted.contains(pcr), let d = e.digest(.sha256) else { return nil }
            return Event(
                pcr: pcr, type: e.type.description, digest: Hex.encode(d),
                summary: String(DecodedEventData(e).summary.prefix(160)))
        }
    }

    /// What changed in `pcr` between this record and `now`: events removed, added or altered, in log order.
    /// An altered event is one at the same position in the PCR's sequence, of the same type, with another digest.
    public func changes(in pcr: Int, now: SealedBootRecord) -> [String] {
        let before = events.filter { $0.pcr == pcr }
        let after = now.events.filter { $0.pcr == pcr }
        // Longest common subsequence by digest, then pair leftovers of the same type as alterations.
        let n = before.count
        let m = after.count
        guard n <= 4096, m <= 4096 else { return ["PCR \(pcr): more than 4096 events; not compared"] }
        var lcs = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: n + 1)
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                lcs[i][j] =
                    before[i].digest == after[j].digest ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        var out: [String] = []
        var removed: [Event] = []
        var added: [Event] = []
        func flush() {
            var adds = added
            for r in removed {
                if let k = adds.firstIndex(where: { $0.type == r.type }) {
                    let a = adds.remove(at: k)
                    out.append(
                        "PCR \(pcr): changed \(r.type): \(r.summary.isEmpty ? "" : r.summary + " ")digest \(r.digest.prefix(16))… → \(a.summary.isEmpty || a.summary == r.summary ? "" : a.summary + " ")digest \(a.digest.prefix(16))…"
                    )
                } else {
                    out.append("PCR \(pcr): removed \(r.label)")
                }
            }
            for a in adds { out.append("PCR \(pcr): added \(a.label)") }
            removed = []
            added = []
        }
        var i = 0
        var j = 0
        while i < n || j < m {
            if i < n, j < m, before[i].digest == after[j].digest {
                flush()
                i += 1
                j += 1
            } else if j < m, i == n || lcs[i][j + 1] >= lcs[i + 1][j] {
                added.append(after[j])
                j += 1
            } else {
                removed.append(before[i])
                i += 1
            }
        }
        flush()
        return out
    }
}
