public import Attest
import Foundation
import X509

/// Evaluates an ``AttestationPolicy`` against ``VerifiedEvidence`` (or, for authoring, ``UnsignedEvidence``):
/// pure and deterministic (time comes from the evidence), `Sendable`, cheap enough to run on every attestation.
///
/// Fail-closed: a rule whose input the verifier did not establish (no nonce issue time, no previous quote,
/// no EK chain, an AK not bound to its EK, a PCR that was not verified) fails and says which input is missing.
public enum PolicyEngine {
    /// Evaluates verified evidence from a device.
    public static func evaluate(_ evidence: VerifiedEvidence, _ policy: AttestationPolicy) -> Verdict {
        evaluate(EvaluationInput(evidence), policy)
    }

    /// Evaluates a bare event log for authoring; the verdict says the evidence was unsigned.
    public static func evaluate(_ evidence: UnsignedEvidence, _ policy: AttestationPolicy) -> Verdict {
        evaluate(EvaluationInput(evidence), policy)
    }

    typealias Add = (RuleID, Verdict.Status, String, String, String?, Int?, Int?) -> Void

    static func evaluate(_ evidence: EvaluationInput, _ policy: AttestationPolicy) -> Verdict {
        var results: [Verdict.RuleResult] = []
        func add(
            _ rule: RuleID, _ status: Verdict.Status, _ expected: String, _ actual: String, _ bank: String?,
            _ pcr: Int?, _ event: Int?
        ) {
            let id = rule.description
            results.append(
                .init(
                    rule: id, status: status, enforced: !policy.warnOnly.contains(id), expected: expected,
                    actual: actual,
                    bank: bank, pcr: pcr, event: event))
        }
        let trusted = policy.pcrs?.trustedBanks ?? [.sha256]
        for rule in rules(of: policy) { rule.evaluate(evidence, trusted: trusted, add) }
        let pass = !results.contains { $0.status == .failed && $0.enforced }
        return Verdict(
            pass: pass, policyID: policy.id, policyVersion: policy.version, unsignedEvidence: evidence.unsigned,
            akBoundToEK: evidence.akBinding?.isBound ?? false, results: results)
    }

    /// The policy document compiled into its rules, one value per rule kind, in the order verdicts list them:
    /// accept, identity, freshness, PCR banks and values, the event log, boot.
    static func rules(of p: AttestationPolicy) -> [any PolicyRule] {
        var rules: [any PolicyRule] = []
        if p.acceptAny { rules.append(AcceptAnyRule()) }
        if let r = p.identity {
            if let required = r.requireEKCertificate { rules.append(EKCertificateRule(required: required)) }
            if let required = r.requireAKActivation { rules.append(AKActivationRule(required: required)) }
            if r.ekCA != nil { rules.append(EKChainRule()) }
            if let m = r.manufacturers { rules.append(ManufacturerRule(allowed: m)) }
            if r.minFirmwareVersion != nil || r.minFirmwareVersionByManufacturer != nil {
                rules.append(
                    MinFirmwareVersionRule(
                        minimum: r.minFirmwareVersion, byManufacturer: r.minFirmwareVersionByManufacturer))
            }
            if let a = r.akAlgorithms { rules.append(AKAlgorithmRule(allowed: a)) }
        }
        if let f = p.freshness {
            if let max = f.maxNonceAgeSeconds { rules.append(NonceAgeRule(maxSeconds: max)) }
            if let allow = f.allowReboot { rules.append(RebootRule(allow: allow)) }
        }
        if let r = p.pcrs {
            for bank in r.trustedBanks {
                rules.append(PCRBankRule(bank: bank, needed: !(r.expectations[bank]?.isEmpty ?? true) || p.boot != nil))
            }
            for (bank, expectations) in r.expectations.sorted(by: { $0.key < $1.key }) {
                for (index, expectation) in expectations.sorted(by: { $0.key < $1.key }) {
                    rules.append(PCRValueRule(bank: bank, index: index, expectation: expectation))
                }
            }
        }
        if p.pcrs != nil || p.boot != nil { rules.append(EventLogReplayRule()) }
        if let b = p.boot {
            if let sb = b.secureBoot { rules.append(SecureBootRule(required: sb)) }
            for (variable, rule, id) in [("PK", b.pk, RuleID.pk), ("KEK", b.kek, RuleID.kek), ("db", b.db, RuleID.db)] {
                if let rule { rules.append(SignatureDatabaseRule(variable: variable, id: id, rule: rule)) }
            }
            if let revoked = b.dbx?.contains { rules.append(DBXRevocationRule(revoked: revoked)) }
            if let minimum = b.dbx?.minEntries { rules.append(DBXMinEntriesRule(minimum: minimum)) }
            if let apps = b.bootApplications { rules.append(BootApplicationRule(rule: apps)) }
            if let k = b.kernelCommandLine { rules.append(KernelArgumentsRule(rule: k)) }
            for what in b.forbid ?? [] {
                if let kind = RuleID.ForbiddenEvent(rawValue: what) { rules.append(ForbiddenEventRule(kind: kind)) }
            }
            if let v = b.sCRTMVersions { rules.append(SCRTMVersionRule(versions: v)) }
        }
        return rules
    }

    /// The PCRs a verifier must require the quote to cover for `policy`: every PCR with a value expectation and
    /// every PCR a boot rule's facts come from, in each trusted bank. ``EvidenceVerifier`` refuses a quote that
    /// leaves one out, so the device does not choose what is judged.
    public static func requiredSelection(for policy: AttestationPolicy) -> TPMLPCRSelection {
        var byBank: [TPMAlgorithmID: Set<Int>] = [:]
        let trusted = policy.pcrs?.trustedBanks ?? [.sha256]
        for (bank, expectations) in policy.pcrs?.expectations ?? [:] {
            byBank[bank, default: []].formUnion(expectations.keys)
        }
        if policy.boot != nil {
            let pcrs = rules(of: policy).filter { $0.id.section == .boot }.flatMap(\.id.pcrs)
            for bank in trusted { byBank[bank, default: []].formUnion(pcrs) }
        }
        return TPMLPCRSelection(
            byBank.keys.sorted().compactMap { bank in
                guard let pcrs = byBank[bank], !pcrs.isEmpty else { return nil }
                return TPMSPCRSelection(hash: bank, pcrs: pcrs.sorted())
            })
    }

    // MARK: Helpers shared by the rules

    /// The bit length of a big-endian modulus (leading zero bits not counted).
    static func modulusBits(_ modulus: [UInt8]) -> Int {
        let significant = modulus.drop { $0 == 0 }
        return significant.first.map { (significant.count - 1) * 8 + (8 - $0.leadingZeroBitCount) } ?? 0
    }

    static func manufacturerASCII(_ id: String) -> String {
        guard id.hasPrefix("id:"), let v = UInt32(id.dropFirst(3), radix: 16) else { return id }
        let bytes = [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)].filter {
            $0 >= 0x20 && $0 < 0x7F
        }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces)
    }

    /// The AK's algorithm from its actual key: the RSA modulus's real bit length, not the declared keyBits.
    static func akAlgorithmName(_ p: TPMTPublic) -> String {
        switch p.parameters {
        case .ecc(let e):
            switch e.curve {
            case .nistP256: "ecc-p256"
            case .nistP384: "ecc-p384"
            case .nistP521: "ecc-p521"
            default: "ecc-\(e.curve.rawValue)"
            }
        case .rsa(let r): "rsa-\(modulusBits(r.modulus))"
        default: "\(p.type)"
        }
    }

    static func lastEvent(_ e: EvaluationInput, pcr: Int) -> Int? {
        e.eventLog?.events.last(where: { $0.event.pcr == pcr })?.event.index
    }

    // MARK: Boot

    /// Where a boot rule's facts come from: the first trusted bank in which every PCR of the rule replayed.
    /// Every other trusted bank that was quoted must agree (verify the same PCRs), and no event of those
    /// PCRs may carry data that does not hash to its digest.
    enum FactSource {
        case facts(BootFacts, bank: TPMAlgorithmID)
        case refused(actual: String, pcr: Int?, event: Int?)
    }

    static func source(
        for rule: RuleID, _ e: EvaluationInput, trusted: [TPMAlgorithmID], log: VerifiedEventLog,
        checkBinding: Bool = true
    ) -> FactSource {
        let quotedTrusted = trusted.filter { e.pcrs.banks[$0] != nil }
        guard let bank = quotedTrusted.first(where: { b in rule.pcrs.allSatisfy { log.isVerified(b, $0) } }) else {
            let pcr = rule.pcrs.first { p in !quotedTrusted.contains { log.isVerified($0, p) } } ?? rule.pcrs.first
            let mismatch = log.mismatches.first { $0.pcr == pcr && quotedTrusted.contains($0.bank) }
            let why =
                mismatch.map { "PCR \($0.pcr) does not replay to the quoted \($0.bank.name) value: \($0.explanation)" }
                ?? "PCR \(pcr.map(String.init) ?? "?") is not quoted and verified in a trusted bank (\(trusted.map(\.name).joined(separator: ", ")))"
            return .refused(actual: why, pcr: pcr, event: mismatch?.eventIndex)
        }
        for other in quotedTrusted where other != bank {
            if let p = rule.pcrs.first(where: { !log.isVerified(other, $0) }) {
                return .refused(
                    actual:
                        "the \(bank.name) and \(other.name) banks disagree: PCR \(p) replays in \(bank.name) but not in \(other.name)",
                    pcr: p,
                    event: log.mismatches.first { $0.pcr == p && $0.bank == other }?.eventIndex)
            }
        }
        let types = dataTypes(of: rule)
        if checkBinding,
            let bad = log.unboundEvents.first(where: { e in
                guard rule.pcrs.contains(e.event.pcr ?? -1), case .unbound = e.binding else { return false }
                return types.map { $0.contains(e.event.type) } ?? true
            })
        {
            return .refused(
                actual:
                    "event \(bad.event.index) (\(bad.event.type)) in PCR \(bad.event.pcr ?? -1): its \(bad.binding) — the event data was edited",
                pcr: bad.event.pcr, event: bad.event.index)
        }
        return .facts(e.facts[bank] ?? BootFacts(log, bank: bank), bank: bank)
    }

    /// The (claimed) event types whose data a rule reads; an event of such a type in the rule's PCRs whose data
    /// does not hash to its digest fails the rule. Nil: every event of the rule's PCRs (the kernel command line,
    /// whose PCRs hold only hashed strings). Events the rule does not read (e.g. a firmware's malformed
    /// EV_EFI_VARIABLE_AUTHORITY, seen on GCE) are left out of facts without failing it.
    static func dataTypes(of rule: RuleID) -> Set<TCGEventType>? {
        switch rule {
        case .secureBoot, .pk, .kek, .db, .dbx, .dbxMinEntries: [.efiVariableDriverConfig]
        case .sCRTMVersions: [.sCRTMVersion]
        case .kernelCommandLine: nil
        case .forbid(.errorSeparators): [.separator]
        case .forbid(.uefiDebugMode), .forbid(.debugger): [.efiAction, .action]
        case .forbid(.eventsAfterExitBootServices): [.efiAction]
        default: []
        }
    }

    /// The facts a boot rule reads (see ``source(for:_:trusted:log:checkBinding:)``), or nil after reporting why
    /// the rule fails: no event log, or its PCRs not verified, banks disagreeing, or data edited.
    static func bootFacts(for rule: RuleID, _ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: Add)
        -> (BootFacts, TPMAlgorithmID)?
    {
        guard let log = e.eventLog else {
            add(rule, .failed, "facts from a verified event log", "no event log in the evidence", nil, nil, nil)
            return nil
        }
        switch source(for: rule, e, trusted: trusted, log: log) {
        case .facts(let f, let bank): return (f, bank)
        case .refused(let actual, let pcr, let event):
            add(
                rule, .failed,
                "facts from events of PCR(s) \(rule.pcrs.map(String.init).joined(separator: ", ")) verified by the quote",
                actual, nil, pcr, event)
            return nil
        }
    }

    /// The dbx entries as measured in PCR 7, or nil after reporting why a dbx rule cannot judge them (facts refused;
    /// dbx not measured, which fails with Secure Boot on and is not applicable otherwise).
    static func measuredDBX(for rule: RuleID, _ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: Add)
        -> [EFISignatureList.Entry]?
    {
        guard let (f, _) = bootFacts(for: rule, e, trusted: trusted, add) else { return nil }
        guard let entries = f.signatureDatabases["dbx"] else {
            add(
                rule, f.secureBoot != true ? .notApplicable : .failed, "dbx measured", "dbx not measured in PCR 7", nil,
                7, nil)
            return nil
        }
        return entries
    }

    static func entryID(_ e: EFISignatureList.Entry) -> String {
        switch e {
        case .x509(_, _, let fp): fp
        case .sha256(_, let h): h
        case .other(_, _, let d): Hex.encode(d)
        }
    }

    /// "*" matches any run of characters; everything else literally.
    static func globMatch(_ pattern: String, _ text: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        guard parts.count > 1 else { return pattern == text }
        guard text.hasPrefix(parts[0]) else { return false }
        var rest = Substring(text.dropFirst(parts[0].count))
        for (i, part) in parts.enumerated().dropFirst() {
            if i == parts.count - 1 { return part.isEmpty || rest.hasSuffix(part) }
            guard !part.isEmpty else { continue }
            guard let r = rest.range(of: part) else { return false }
            rest = rest[r.upperBound...]
        }
        return true
    }

    // MARK: Rule ids

    /// Every rule a policy produces (for `enforce:` validation and `explain`), once each, in verdict order.
    public static func ruleIDs(of p: AttestationPolicy) -> [RuleID] {
        var seen = Set<RuleID>()
        return rules(of: p).map(\.id).filter { seen.insert($0).inserted }
    }

    /// Whether a policy judges anything beyond the quote's signature (lint warns when it does not).
    public static func judgesBeyondSignature(_ p: AttestationPolicy) -> Bool {
        ruleIDs(of: p).contains { id in
            switch id.section {
            case .accept, .eventlog: false
            case .pcrs: !id.name.hasPrefix("banks.")
            default: true
            }
        }
    }
}
