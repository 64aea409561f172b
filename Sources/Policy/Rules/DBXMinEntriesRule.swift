import Attest

/// `boot.dbx.min_entries`: the measured dbx has at least this many entries (a recent revocation list).
struct DBXMinEntriesRule: PolicyRule {
    let minimum: Int
    var id: RuleID { .dbxMinEntries }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        guard let entries = PolicyEngine.measuredDBX(for: id, e, trusted: trusted, add) else { return }
        add(
            id, entries.count >= minimum ? .passed : .failed, "≥ \(minimum) entries", "\(entries.count) entries", nil,
            7, nil)
    }
}
