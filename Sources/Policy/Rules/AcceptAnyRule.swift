import Attest

/// `accept: any`: the explicitly permissive policy (lint flags it).
struct AcceptAnyRule: PolicyRule {
    var id: RuleID { .accept }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        add(.accept, .passed, "anything (accept: any)", "accepted without checks", nil, nil, nil)
    }
}
