import Attest

/// `identity.ak_activated`: credential activation (TPM2_MakeCredential / TPM2_ActivateCredential, TPM 2.0 Part 1
/// §24) bound the quote's AK to the EK. Vigil's own onboarding always proves it; EVE's API has no such step, so a
/// device attesting through it has an AK vouched for only by its device certificate, and this rule names that.
struct AKActivationRule: PolicyRule {
    let required: Bool
    var id: RuleID { .akActivated }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        let expected = required ? "the AK bound to the EK by credential activation" : "optional"
        switch e.akBinding {
        case .bound(let b)?:
            add(id, .passed, expected, "bound by credential activation (AK \(b.akName))", nil, nil, nil)
        case .notBound(let reason)?:
            add(id, required ? .failed : .notApplicable, expected, "not activated: \(reason)", nil, nil, nil)
        case nil:
            add(id, required ? .failed : .notApplicable, expected, "unsigned evidence: no TPM identity", nil, nil, nil)
        }
    }
}
