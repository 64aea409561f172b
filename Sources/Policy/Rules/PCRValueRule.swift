import Attest

/// `pcrs.<bank>.<index>`: a quoted PCR value is one of the allowed values, or the event log's replay, or (written
/// as `any`) deliberately unchecked.
struct PCRValueRule: PolicyRule {
    let bank: TPMAlgorithmID
    let index: Int
    let expectation: AttestationPolicy.PCRExpectation
    var id: RuleID { .pcr(bank, index) }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        let bankName = bank.name
        let value = e.pcrs[bank, index].map { Hex.encode($0) }
        switch expectation {
        case .any:
            add(id, .notApplicable, "any value (deliberately unchecked)", value ?? "not quoted", bankName, index, nil)
        case .oneOf(let allowed):
            guard let value else {
                add(id, .failed, "one of \(allowed.count) value(s)", "not quoted", bankName, index, nil)
                return
            }
            add(
                id, allowed.contains(value) ? .passed : .failed,
                allowed.count == 1 ? allowed[0] : "one of \(allowed.count) values", value, bankName, index,
                allowed.contains(value) ? nil : PolicyEngine.lastEvent(e, pcr: index))
        case .replay:
            guard let value else {
                add(id, .failed, "the event log's replay", "not quoted", bankName, index, nil)
                return
            }
            guard let log = e.eventLog else {
                add(id, .failed, "the event log's replay", "no event log", bankName, index, nil)
                return
            }
            if let m = log.mismatches.first(where: { $0.bank == bank && $0.pcr == index }) {
                add(
                    id, .failed, "replay \(Hex.encode(m.replayed))", "\(value): \(m.explanation)", bankName, index,
                    m.eventIndex)
            } else if log.isVerified(bank, index) {
                add(
                    id, .passed, "replay \(log.replay.value(bank, index).map { Hex.encode($0) } ?? "?")", value,
                    bankName,
                    index, nil)
            } else {
                let why =
                    log.banksNotInLog.contains(bank)
                    ? "the event log has no \(bankName) digests" : (log.uncomputableBanks[bank] ?? "not verified")
                add(id, .failed, "the event log's replay", why, bankName, index, nil)
            }
        }
    }
}
