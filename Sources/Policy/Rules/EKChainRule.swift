import Attest
import X509

/// `identity.ek_ca` (rule `identity.ek_chain`): the EK certificate chains to the verifier's anchors, and the AK is bound to it.
struct EKChainRule: PolicyRule {
    var id: RuleID { .ekChain }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        let expected = "a chain to a trusted EK CA"
        switch e.ekChain {
        case .valid(let chain)?:
            let unbound = e.identityUnbound
            add(
                id, unbound == nil ? .passed : .failed, expected,
                unbound ?? "chain to \(chain.last?.subject.description ?? "?")", nil, nil, nil)
        case .invalid(let reason)?:
            add(id, .failed, expected, reason, nil, nil, nil)
        case nil:
            add(
                id, .failed, expected,
                e.ekCertificate == nil
                    ? "no EK certificate in the evidence" : "chain not checked (the verifier supplied no EK anchors)",
                nil, nil, nil)
        }
    }
}
