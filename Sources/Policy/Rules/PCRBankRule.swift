import Attest

/// `pcrs.banks`: a trusted bank was quoted (needed when the policy expects values in it or judges boot events).
struct PCRBankRule: PolicyRule {
    let bank: TPMAlgorithmID
    let needed: Bool
    var id: RuleID { .bank(bank) }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        let quoted = e.pcrs.banks[bank] != nil
        add(
            id, quoted ? .passed : (needed ? .failed : .notApplicable), "bank \(bank) quoted",
            quoted ? "quoted" : "not quoted (banks: \(e.quotedBanks.sorted().joined(separator: ", ")))", bank.name, nil,
            nil)
    }
}
