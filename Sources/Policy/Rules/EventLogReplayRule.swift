import Attest

/// `eventlog.replay`: with an event log, every quoted PCR of a trusted bank that the log covers replays from it,
/// those without events included (a device cannot hide a PCR by leaving all of its events out).
struct EventLogReplayRule: PolicyRule {
    var id: RuleID { .eventLogReplay }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        guard let log = e.eventLog else { return }
        let banks = Set(trusted)
        let expected = "every quoted PCR of \(trusted.map(\.name).joined(separator: ", ")) replays from the event log"
        if let m = log.mismatches.first(where: { banks.contains($0.bank) }) {
            add(id, .failed, expected, m.explanation, m.bank.name, m.pcr, m.eventIndex)
        } else if let bank = banks.sorted().first(where: { log.banksNotInLog.contains($0) && e.pcrs.banks[$0] != nil })
        {
            add(id, .failed, expected, "the event log has no \(bank.name) digests", bank.name, nil, nil)
        } else {
            let count = banks.reduce(0) { $0 + (log.matched[$1]?.count ?? 0) }
            add(id, .passed, expected, "\(count) quoted PCR value(s) reproduced", nil, nil, nil)
        }
    }
}
