import Attest

/// `boot.dbx.contains` (rule `boot.dbx`): the measured dbx revokes the given hashes or certificates.
struct DBXRevocationRule: PolicyRule {
    let revoked: [String]
    var id: RuleID { .dbx }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        guard let entries = PolicyEngine.measuredDBX(for: id, e, trusted: trusted, add) else { return }
        let present = Set(entries.map(PolicyEngine.entryID))
        let missing = revoked.filter { !present.contains($0) }
        add(
            id, missing.isEmpty ? .passed : .failed, "revokes \(revoked.count) hash(es)",
            missing.isEmpty ? "all revoked" : "\(missing.count) not revoked, e.g. \(missing[0].prefix(16))…", nil, 7,
            nil)
    }
}
