import Attest

/// `boot.scrtm_versions`: the S-CRTM (firmware) version measured into PCR 0 is one of these. A policy that names
/// versions fails a boot that measured none (or whose version event was retyped away).
struct SCRTMVersionRule: PolicyRule {
    let versions: [String]
    var id: RuleID { .sCRTMVersions }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        guard let (f, _) = PolicyEngine.bootFacts(for: id, e, trusted: trusted, add) else { return }
        guard !f.sCRTMVersions.isEmpty else {
            add(id, .failed, "one of \(versions.count) version(s)", "no S-CRTM version measured in PCR 0", nil, 0, nil)
            return
        }
        let bad = f.sCRTMVersions.first { !versions.contains($0) }
        add(
            id, bad == nil ? .passed : .failed, "one of \(versions.joined(separator: ", "))",
            bad ?? f.sCRTMVersions.joined(separator: ", "), nil, 0, nil)
    }
}
