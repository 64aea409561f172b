import Attest

/// `boot.kernel_cmdline`: required, forbidden and allowed arguments of every measured kernel command line
/// (GRUB's in PCR 8, systemd-boot's and the stub's in PCR 12), tokenized as the kernel reads them.
struct KernelArgumentsRule: PolicyRule {
    let rule: AttestationPolicy.KernelCommandLineRule
    var id: RuleID { .kernelCommandLine }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        guard let (f, bank) = PolicyEngine.bootFacts(for: id, e, trusted: trusted, add) else { return }
        let lines = f.kernelCommandLines
        guard !lines.isEmpty, !f.kernelArguments.isEmpty else {
            add(
                id, rule.required == nil ? .notApplicable : .failed, "a measured kernel command line", "none measured",
                nil,
                nil, nil)
            return
        }
        var problems: [String] = []
        // The first command line at fault names the verdict's PCR and event.
        var culprit: BootFacts.EventOrigin?
        let required = (rule.required ?? []).map { ($0, KernelCommandLine.Argument(entry: $0)) }
        let forbidden = (rule.forbidden ?? []).map { ($0, KernelCommandLine.Argument(entry: $0)) }
        // Each measured command line must hold on its own (a later one does not excuse an earlier one).
        for (i, line) in f.kernelArguments.enumerated() {
            let before = problems.count
            for (text, req) in required where !line.contains(req, anyValue: false) {
                problems.append("missing \(text)")
            }
            for (text, bad) in forbidden where line.contains(bad, anyValue: true) {
                problems.append("forbidden \(text) present")
            }
            if let patterns = rule.allowedPatterns {
                for a in line.arguments where !patterns.contains(where: { PolicyEngine.globMatch($0, a.text) }) {
                    problems.append("\(a.text) not allowed")
                }
            }
            if culprit == nil, problems.count > before, f.kernelCommandLineEvents.indices.contains(i) {
                culprit = f.kernelCommandLineEvents[i]
            }
        }
        let unique = problems.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        add(
            id, unique.isEmpty ? .passed : .failed, "required/forbidden/allowed arguments",
            unique.isEmpty ? lines.last ?? "" : unique.joined(separator: "; "), culprit.map { _ in bank.name },
            culprit?.pcr, culprit?.eventIndex)
    }
}
