import Attest

/// `boot.pk`, `boot.kek`, `boot.db`: the Secure Boot signature database as measured into PCR 7 contains the given
/// certificates, or equals the given set exactly.
struct SignatureDatabaseRule: PolicyRule {
    /// "PK", "KEK" or "db" (the UEFI variable name).
    let variable: String
    let id: RuleID
    let rule: AttestationPolicy.SignatureDatabaseRule

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        guard let (f, _) = PolicyEngine.bootFacts(for: id, e, trusted: trusted, add) else { return }
        guard let entries = f.signatureDatabases[variable] else {
            // Without Secure Boot enabled and with the database unmeasured there is nothing to check
            // (boot.secure_boot decides whether that is acceptable).
            add(
                id, f.secureBoot != true ? .notApplicable : .failed, "\(variable) measured",
                "\(variable) not measured in PCR 7", nil, 7, nil)
            return
        }
        let present = Set(entries.map(PolicyEngine.entryID))
        if let must = rule.contains {
            let missing = must.filter { !present.contains($0) }
            add(
                id, missing.isEmpty ? .passed : .failed, "contains \(must.count) certificate(s)",
                missing.isEmpty
                    ? "all present (\(present.count) entries)"
                    : "missing \(missing.map { String($0.prefix(16)) }.joined(separator: ", "))…", nil, 7, nil)
        }
        if let exact = rule.equals {
            let ok = present == Set(exact)
            add(
                id, ok ? .passed : .failed, "exactly \(exact.count) entr\(exact.count == 1 ? "y" : "ies")",
                ok
                    ? "equal"
                    : "\(present.count) entries, \(present.subtracting(exact).count) unexpected, \(Set(exact).subtracting(present).count) missing",
                nil, 7, nil)
        }
    }
}
