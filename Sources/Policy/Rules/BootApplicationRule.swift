import Attest

/// `boot.boot_applications`: every PCR 4 measurement, whatever type it claims, judged by its digest (the
/// Authenticode hash the firmware measured) in the trusted bank whose digest size matches the allow-list. Event
/// data is only a description here, so it needs no binding.
struct BootApplicationRule: PolicyRule {
    let rule: AttestationPolicy.BootApplicationsRule
    var id: RuleID { .bootApplications }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        let size = (rule.allowed.first?.count ?? 64) / 2
        guard let bank = trusted.first(where: { $0.digestSize == size }) else {
            add(
                id, .failed, "allowed digests of \(size * 8) bits",
                "no trusted bank has \(size)-byte digests (trusted: \(trusted.map(\.name).joined(separator: ", ")))",
                nil,
                4, nil)
            return
        }
        let expected = "boot applications from PCR 4 verified in \(bank.name)"
        guard let log = e.eventLog else {
            add(id, .failed, expected, "no event log in the evidence", bank.name, 4, nil)
            return
        }
        let f: BootFacts
        switch PolicyEngine.source(
            for: id, e, trusted: [bank] + trusted.filter { $0 != bank }, log: log, checkBinding: false)
        {
        case .refused(let actual, let pcr, let event):
            add(id, .failed, expected, actual, bank.name, pcr, event)
            return
        case .facts(let facts, let used):
            guard used == bank else {
                add(id, .failed, expected, "PCR 4 is not verified in \(bank.name)", bank.name, 4, nil)
                return
            }
            f = facts
        }
        let measured = f.bootApplications
        if measured.isEmpty {
            add(id, .notApplicable, "allowed boot applications", "no boot application measured", bank.name, 4, nil)
        } else if rule.ordered {
            let digests = measured.map { $0.digest ?? "" }
            let firstDiff = zip(digests, rule.allowed).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            let ok = digests == rule.allowed
            let at = firstDiff ?? min(digests.count, rule.allowed.count)
            add(
                id, ok ? .passed : .failed, "exactly \(rule.allowed.count) application(s) in order",
                ok
                    ? "\(digests.count) in order"
                    : "application \(at + 1) differs (\(at < measured.count ? measured[at].devicePath : "missing"))",
                bank.name, 4, ok ? nil : (at < measured.count ? measured[at].eventIndex : nil))
        } else if let bad = measured.first(where: { !rule.allows($0.digest ?? "") }) {
            add(
                id, .failed, "only allowed digests",
                "\(bad.devicePath) (\(bad.claimedType)) \(bank.name) \(bad.digest ?? "(none)")", bank.name, bad.pcr,
                bad.eventIndex)
        } else {
            add(id, .passed, "only allowed digests", "\(measured.count) allowed application(s)", bank.name, 4, nil)
        }
    }
}
