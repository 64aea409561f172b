import Attest

/// `identity.ak_algorithms`: the attestation key's algorithm, from its actual key (the RSA modulus's real length).
struct AKAlgorithmRule: PolicyRule {
    let allowed: [String]
    var id: RuleID { .akAlgorithm }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        let expected = "one of \(allowed.joined(separator: ", "))"
        guard let ak = e.ak else {
            add(id, .failed, expected, "no attestation key (unsigned evidence)", nil, nil, nil)
            return
        }
        let name = PolicyEngine.akAlgorithmName(ak.publicArea)
        add(id, allowed.contains(name) ? .passed : .failed, expected, name, nil, nil, nil)
    }
}
