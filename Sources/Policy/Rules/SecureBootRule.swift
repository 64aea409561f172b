import Attest

/// `boot.secure_boot`: the SecureBoot variable as measured into PCR 7 (EV_EFI_VARIABLE_DRIVER_CONFIG, bound data).
struct SecureBootRule: PolicyRule {
    let required: Bool
    var id: RuleID { .secureBoot }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        guard let (f, _) = PolicyEngine.bootFacts(for: id, e, trusted: trusted, add) else { return }
        let expected = required ? "enabled" : "disabled"
        switch f.secureBoot {
        case .some(let on):
            add(id, on == required ? .passed : .failed, expected, on ? "enabled" : "disabled", nil, 7, nil)
        case .none:
            // Not measured at all (e.g. legacy BIOS): required fails; forbidden holds vacuously.
            add(id, required ? .failed : .notApplicable, expected, "SecureBoot variable not measured", nil, 7, nil)
        }
    }
}
