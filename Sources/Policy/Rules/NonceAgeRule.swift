import Attest
import Foundation

/// `freshness.max_nonce_age_seconds`: from the verifier issuing the nonce to checking the quote. Without the issue
/// time the verifier cannot vouch for freshness: the rule fails.
struct NonceAgeRule: PolicyRule {
    let maxSeconds: Int
    var id: RuleID { .nonceAge }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        guard let issued = e.nonceIssuedAt, e.quote != nil else {
            add(
                id, .failed, "≤ \(maxSeconds) s",
                e.quote == nil ? "no signed quote" : "the verifier did not say when it issued the nonce", nil, nil, nil)
            return
        }
        let age = e.checkedAt.timeIntervalSince(issued)
        add(
            id, age <= Double(maxSeconds) && age >= -5 ? .passed : .failed, "≤ \(maxSeconds) s",
            String(format: "%.1f s", age), nil, nil, nil)
    }
}
