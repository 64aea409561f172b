import Attest

/// `boot.forbid`: no error separator (recognised by digest too, and every measured PCR 0–7 separated), no UEFI
/// debug-mode marker, no event after ExitBootServices in PCR 5's attested order.
struct ForbiddenEventRule: PolicyRule {
    let kind: RuleID.ForbiddenEvent
    var id: RuleID { .forbid(kind) }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        guard let (f, _) = PolicyEngine.bootFacts(for: id, e, trusted: trusted, add) else { return }
        switch kind {
        case .errorSeparators:
            if let s = f.separators.first(where: \.isError) {
                add(id, .failed, "no error separator", "error separator", nil, s.pcr, s.eventIndex)
            } else if f.separators.isEmpty {
                add(id, .notApplicable, "no error separator", "no separator measured", nil, nil, nil)
            } else if let pcr = f.pcrsWithoutSeparator.first {
                add(
                    id, .failed, "a separator in every measured PCR 0–7",
                    "PCR \(pcr) has events but no separator (a separator retyped to hide an error?)", nil, pcr, nil)
            } else {
                add(id, .passed, "no error separator", "\(f.separators.count) normal separator(s)", nil, nil, nil)
            }
        case .uefiDebugMode, .debugger:
            if let m = f.debugMarkers.first {
                add(id, .failed, "no debug marker", m, nil, 7, nil)
            } else if !f.measuredPCRs.contains(7) {
                add(id, .notApplicable, "no debug marker", "PCR 7 not measured", nil, 7, nil)
            } else {
                add(id, .passed, "no debug marker", "none", nil, nil, nil)
            }
        case .eventsAfterExitBootServices:
            if let i = f.eventsAfterExitBootServices.first {
                add(id, .failed, "no event after ExitBootServices (in PCR 5's order)", "event \(i)", nil, 5, i)
            } else if !f.exitBootServicesMeasured {
                add(id, .notApplicable, "no event after ExitBootServices", "ExitBootServices not measured", nil, 5, nil)
            } else {
                add(id, .passed, "no event after ExitBootServices (in PCR 5's order)", "none", nil, nil, nil)
            }
        }
    }
}
