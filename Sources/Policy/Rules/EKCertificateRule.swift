import Attest

/// `identity.ek_certificate`: the evidence carries an EK certificate, and credential activation bound the AK to it
/// (`optional`: neither is required, and an unbound certificate is reported as not applicable).
struct EKCertificateRule: PolicyRule {
    let required: Bool
    var id: RuleID { .ekCertificate }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        let expected = required ? "an EK certificate, bound to the AK" : "optional"
        if let ek = e.ekCertificate {
            let unbound = e.identityUnbound
            // Optional: a certificate that nothing binds to the AK is reported, not failed (it proves nothing either way).
            let status: Verdict.Status = unbound == nil ? .passed : (required ? .failed : .notApplicable)
            add(id, status, expected, unbound ?? "EK certificate issued by \(ek.issuer)", nil, nil, nil)
        } else {
            add(id, required ? .failed : .notApplicable, expected, "no EK certificate in the evidence", nil, nil, nil)
        }
    }
}
