import Attest

/// `freshness.allow_reboot`: the TPM's resetCount/restartCount and clock against the verifier's previous accepted
/// quote. "No reboot" cannot pass without that quote; counters or clock going backwards always fail.
struct RebootRule: PolicyRule {
    let allow: Bool
    var id: RuleID { .reboot }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        let expected = allow ? "TPM counters and clock moving forward" : "no reboot since the last attestation"
        guard let quote = e.quote else {
            add(id, .failed, expected, "no signed quote", nil, nil, nil)
            return
        }
        let findings = quote.clockFindings
        let rebooted = findings.contains { if case .rebooted = $0 { true } else { false } }
        let backwards = findings.contains {
            switch $0 {
            case .countersWentBackwards, .clockWentBackwards: true
            default: false
            }
        }
        if !quote.comparedWithPrevious {
            // "No reboot" cannot be shown without the previous quote; "reboots allowed" has nothing to compare.
            add(
                id, allow ? .notApplicable : .failed, expected,
                "no previous accepted quote to compare with (the verifier supplied none)", nil, nil, nil)
        } else if backwards || (rebooted && !allow) {
            add(id, .failed, expected, findings.map(\.description).joined(separator: "; "), nil, nil, nil)
        } else {
            add(id, .passed, expected, rebooted ? "rebooted" : "no reboot", nil, nil, nil)
        }
    }
}
