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
        if policy.acceptAny {
            add(.accept, .passed, "anything (accept: any)", "accepted without checks", nil, nil, nil)
        }
        if let id = policy.identity { identity(id, evidence, add) }
        if let f = policy.freshness { freshness(f, evidence, add) }
        let trusted = policy.pcrs?.trustedBanks ?? [.sha256]
        if let p = policy.pcrs { pcrs(p, evidence, needsEvents: policy.boot != nil, add) }
        if evidence.eventLog != nil, policy.pcrs != nil || policy.boot != nil {
            eventLogReplay(evidence, trusted: trusted, add)
        }
        if let b = policy.boot { boot(b, evidence, trusted: trusted, add) }
        let pass = !results.contains { $0.status == .failed && $0.enforced }
        return Verdict(
            pass: pass, policyID: policy.id, policyVersion: policy.version, unsignedEvidence: evidence.unsigned,
            akBoundToEK: evidence.akBinding?.isBound ?? false, results: results)
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
        if let b = policy.boot {
            let pcrs = ruleIDs(boot: b).flatMap(\.pcrs)
            for bank in trusted { byBank[bank, default: []].formUnion(pcrs) }
        }
        return TPMLPCRSelection(
            byBank.keys.sorted().compactMap { bank in
                guard let pcrs = byBank[bank], !pcrs.isEmpty else { return nil }
                return TPMSPCRSelection(hash: bank, pcrs: pcrs.sorted())
            })
    }

    // MARK: Identity

    /// Identity rules rest on the EK, and the EK says something about the quote only when credential activation
    /// bound the AK to it: without a binding every EK-derived rule fails ("AK not bound to the EK").
    static func identity(_ r: AttestationPolicy.IdentityRules, _ e: EvaluationInput, _ add: Add) {
        let unbound: String? =
            switch e.akBinding {
            case .bound?: nil
            case .notBound(let reason)?: "AK not bound to the EK (\(reason))"
            case nil: "unsigned evidence: no TPM identity"
            }
        var chainValid = false
        if case .valid? = e.ekChain { chainValid = true }
        if let required = r.requireEKCertificate {
            let expected = required ? "an EK certificate, bound to the AK" : "optional"
            if let ek = e.ekCertificate {
                add(
                    .ekCertificate, unbound == nil ? .passed : .failed, expected,
                    unbound ?? "EK certificate issued by \(ek.issuer)", nil, nil, nil)
            } else {
                add(
                    .ekCertificate, required ? .failed : .notApplicable, expected, "no EK certificate in the evidence",
                    nil, nil, nil)
            }
        }
        if r.ekCA != nil {
            let expected = "a chain to a trusted EK CA"
            switch e.ekChain {
            case .valid(let chain)?:
                add(
                    .ekChain, unbound == nil ? .passed : .failed, expected,
                    unbound ?? "chain to \(chain.last?.subject.description ?? "?")", nil, nil, nil)
            case .invalid(let reason)?: add(.ekChain, .failed, expected, reason, nil, nil, nil)
            case nil:
                add(
                    .ekChain, .failed, expected,
                    e.ekCertificate == nil
                        ? "no EK certificate in the evidence"
                        : "chain not checked (the verifier supplied no EK anchors)", nil, nil, nil)
            }
        }
        if let allowed = r.manufacturers {
            let expected = "one of \(allowed.joined(separator: ", "))"
            if let m = e.ekCertificate?.tpmManufacturer {
                let ascii = manufacturerASCII(m)
                let ok = allowed.contains {
                    $0.caseInsensitiveCompare(m) == .orderedSame || $0.caseInsensitiveCompare(ascii) == .orderedSame
                }
                if let unbound {
                    add(.manufacturer, .failed, expected, unbound, nil, nil, nil)
                } else if !chainValid {
                    add(
                        .manufacturer, .failed, expected,
                        "\(ascii) claimed by an EK certificate that does not chain to a trusted EK CA (identity.ek_ca)",
                        nil, nil, nil)
                } else {
                    add(.manufacturer, ok ? .passed : .failed, expected, "\(m) (\(ascii))", nil, nil, nil)
                }
            } else {
                add(
                    .manufacturer, .failed, expected, "unknown (no EK certificate with a TPM manufacturer)", nil, nil,
                    nil)
            }
        }
        if let table = r.minFirmwareVersionByManufacturer {
            let rule = RuleID.minFirmwareVersion
            if let unbound {
                add(rule, .failed, "a minimum per manufacturer", unbound, nil, nil, nil)
            } else if let fw = e.quote?.firmwareVersion, let m = e.ekCertificate?.tpmManufacturer, chainValid {
                let ascii = manufacturerASCII(m)
                if let min = table.first(where: {
                    $0.key.caseInsensitiveCompare(m) == .orderedSame
                        || $0.key.caseInsensitiveCompare(ascii) == .orderedSame
                })?.value {
                    add(
                        rule, fw >= min ? .passed : .failed, "≥ 0x\(String(min, radix: 16)) for \(ascii)",
                        "0x\(String(fw, radix: 16))", nil, nil, nil)
                } else {
                    add(
                        rule, .failed, "a minimum for \(table.keys.sorted().joined(separator: ", "))",
                        "no minimum set for \(ascii) (\(m))", nil, nil, nil)
                }
            } else {
                add(
                    rule, .failed, "a minimum per manufacturer",
                    "no EK certificate chained to a trusted EK CA naming the manufacturer", nil, nil, nil)
            }
        }
        if let min = r.minFirmwareVersion {
            if let unbound {
                add(.minFirmwareVersion, .failed, "≥ 0x\(String(min, radix: 16))", unbound, nil, nil, nil)
            } else if let fw = e.quote?.firmwareVersion {
                add(
                    .minFirmwareVersion, fw >= min ? .passed : .failed, "≥ 0x\(String(min, radix: 16))",
                    "0x\(String(fw, radix: 16))", nil, nil, nil)
            }
        }
        if let algs = r.akAlgorithms {
            if let ak = e.ak {
                let name = akAlgorithmName(ak.publicArea)
                add(
                    .akAlgorithm, algs.contains(name) ? .passed : .failed, "one of \(algs.joined(separator: ", "))",
                    name, nil, nil, nil)
            } else {
                add(
                    .akAlgorithm, .failed, "one of \(algs.joined(separator: ", "))",
                    "no attestation key (unsigned evidence)", nil, nil, nil)
            }
        }
    }

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

    // MARK: Freshness

    static func freshness(_ r: AttestationPolicy.FreshnessRules, _ e: EvaluationInput, _ add: Add) {
        if let max = r.maxNonceAgeSeconds {
            if let issued = e.nonceIssuedAt, e.quote != nil {
                let age = e.checkedAt.timeIntervalSince(issued)
                add(
                    .nonceAge, age <= Double(max) && age >= -5 ? .passed : .failed, "≤ \(max) s",
                    String(format: "%.1f s", age), nil, nil, nil)
            } else {
                add(
                    .nonceAge, .failed, "≤ \(max) s",
                    e.quote == nil ? "no signed quote" : "the verifier did not say when it issued the nonce", nil, nil,
                    nil)
            }
        }
        if let allow = r.allowReboot {
            let expected = allow ? "TPM counters and clock moving forward" : "no reboot since the last attestation"
            guard let quote = e.quote else {
                add(.reboot, .failed, expected, "no signed quote", nil, nil, nil)
                return
            }
            let findings = quote.clockFindings
            let rebooted = findings.contains { if case .rebooted = $0 { true } else { false } }
            let backwards = findings.contains {
                if case .countersWentBackwards = $0 {
                    true
                } else if case .clockWentBackwards = $0 {
                    true
                } else {
                    false
                }
            }
            if !quote.comparedWithPrevious {
                // "No reboot" cannot be shown without the previous quote; "reboots allowed" has nothing to compare.
                add(
                    .reboot, allow ? .notApplicable : .failed, expected,
                    "no previous accepted quote to compare with (the verifier supplied none)", nil, nil, nil)
            } else if backwards {
                add(.reboot, .failed, expected, findings.map(\.description).joined(separator: "; "), nil, nil, nil)
            } else if rebooted && !allow {
                add(.reboot, .failed, expected, findings.map(\.description).joined(separator: "; "), nil, nil, nil)
            } else {
                add(.reboot, .passed, expected, rebooted ? "rebooted" : "no reboot", nil, nil, nil)
            }
        }
    }

    // MARK: PCRs

    static func pcrs(_ r: AttestationPolicy.PCRRules, _ e: EvaluationInput, needsEvents: Bool, _ add: Add) {
        for bank in r.trustedBanks {
            let quoted = e.pcrs.banks[bank] != nil
            let needed = !(r.expectations[bank]?.isEmpty ?? true) || needsEvents
            let status: Verdict.Status = quoted ? .passed : (needed ? .failed : .notApplicable)
            add(
                .bank(bank), status, "bank \(bank) quoted",
                quoted ? "quoted" : "not quoted (banks: \(e.quotedBanks.sorted().joined(separator: ", ")))", bank.name,
                nil,
                nil)
        }
        for (bank, expectations) in r.expectations.sorted(by: { $0.key < $1.key }) {
            let bankName = bank.name
            for (index, expectation) in expectations.sorted(by: { $0.key < $1.key }) {
                let rule = RuleID.pcr(bank, index)
                let value = e.pcrs[bank, index].map { Hex.encode($0) }
                switch expectation {
                case .any:
                    add(
                        rule, .notApplicable, "any value (deliberately unchecked)", value ?? "not quoted", bankName,
                        index, nil)
                case .oneOf(let allowed):
                    guard let value else {
                        add(rule, .failed, "one of \(allowed.count) value(s)", "not quoted", bankName, index, nil)
                        continue
                    }
                    add(
                        rule, allowed.contains(value) ? .passed : .failed,
                        allowed.count == 1 ? allowed[0] : "one of \(allowed.count) values", value, bankName, index,
                        allowed.contains(value) ? nil : lastEvent(e, pcr: index))
                case .replay:
                    guard let value else {
                        add(rule, .failed, "the event log's replay", "not quoted", bankName, index, nil)
                        continue
                    }
                    guard let log = e.eventLog else {
                        add(rule, .failed, "the event log's replay", "no event log", bankName, index, nil)
                        continue
                    }
                    if let m = log.mismatches.first(where: { $0.bank == bank && $0.pcr == index }) {
                        add(
                            rule, .failed, "replay \(Hex.encode(m.replayed))", "\(value): \(m.explanation)", bankName,
                            index, m.eventIndex)
                    } else if log.isVerified(bank, index) {
                        add(
                            rule, .passed, "replay \(log.replay.value(bank, index).map { Hex.encode($0) } ?? "?")",
                            value, bankName, index, nil)
                    } else {
                        let why =
                            log.banksNotInLog.contains(bank)
                            ? "the event log has no \(bankName) digests"
                            : (log.uncomputableBanks[bank] ?? "not verified")
                        add(rule, .failed, "the event log's replay", why, bankName, index, nil)
                    }
                }
            }
        }
    }

    static func lastEvent(_ e: EvaluationInput, pcr: Int) -> Int? {
        e.eventLog?.events.last(where: { $0.event.pcr == pcr })?.event.index
    }

    // MARK: Event log

    /// Every quoted PCR of a trusted bank must replay from the log, those without events included: a device
    /// cannot hide a PCR by leaving all of its events out.
    static func eventLogReplay(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: Add) {
        guard let log = e.eventLog else { return }
        let banks = Set(trusted)
        let expected = "every quoted PCR of \(trusted.map(\.name).joined(separator: ", ")) replays from the event log"
        if let m = log.mismatches.first(where: { banks.contains($0.bank) }) {
            add(.eventLogReplay, .failed, expected, m.explanation, m.bank.name, m.pcr, m.eventIndex)
        } else if let bank = banks.sorted().first(where: { log.banksNotInLog.contains($0) && e.pcrs.banks[$0] != nil })
        {
            add(.eventLogReplay, .failed, expected, "the event log has no \(bank.name) digests", bank.name, nil, nil)
        } else {
            let count = banks.reduce(0) { $0 + (log.matched[$1]?.count ?? 0) }
            add(.eventLogReplay, .passed, expected, "\(count) quoted PCR value(s) reproduced", nil, nil, nil)
        }
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

    static func boot(_ r: AttestationPolicy.BootRules, _ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: Add) {
        guard let log = e.eventLog else {
            for rule in ruleIDs(boot: r) {
                add(rule, .failed, "facts from a verified event log", "no event log in the evidence", nil, nil, nil)
            }
            return
        }
        func facts(_ rule: RuleID, checkBinding: Bool = true) -> (BootFacts, TPMAlgorithmID)? {
            switch source(for: rule, e, trusted: trusted, log: log, checkBinding: checkBinding) {
            case .facts(let f, let bank): return (f, bank)
            case .refused(let actual, let pcr, let event):
                add(
                    rule, .failed,
                    "facts from events of PCR(s) \(rule.pcrs.map(String.init).joined(separator: ", ")) verified by the quote",
                    actual, nil, pcr, event)
                return nil
            }
        }
        if let sb = r.secureBoot, let (f, _) = facts(.secureBoot) {
            let expected = sb ? "enabled" : "disabled"
            switch f.secureBoot {
            case .some(let on):
                add(.secureBoot, on == sb ? .passed : .failed, expected, on ? "enabled" : "disabled", nil, 7, nil)
            case .none:
                // Not measured at all (e.g. legacy BIOS): required fails; forbidden holds vacuously.
                add(
                    .secureBoot, sb ? .failed : .notApplicable, expected, "SecureBoot variable not measured", nil, 7,
                    nil)
            }
        }
        for (name, rule, id) in [("PK", r.pk, RuleID.pk), ("KEK", r.kek, RuleID.kek), ("db", r.db, RuleID.db)] {
            guard let rule, let (f, _) = facts(id) else { continue }
            guard let entries = f.signatureDatabases[name] else {
                // Without Secure Boot enabled and with the database unmeasured there is nothing to check
                // (boot.secure_boot decides whether that is acceptable).
                add(
                    id, f.secureBoot != true ? .notApplicable : .failed, "\(name) measured",
                    "\(name) not measured in PCR 7", nil, 7, nil)
                continue
            }
            let present = Set(entries.map(entryID))
            if let must = rule.contains {
                let missing = must.filter { !present.contains($0) }
                add(
                    id, missing.isEmpty ? .passed : .failed, "contains \(must.count) certificate(s)",
                    missing.isEmpty
                        ? "all present (\(present.count) entries)"
                        : "missing \(missing.map { String($0.prefix(16)) }.joined(separator: ", "))…", nil, 7, nil)
            }
            if let exact = rule.equals {
                let ok = present == Set(exact)
                add(
                    id, ok ? .passed : .failed, "exactly \(exact.count) entr\(exact.count == 1 ? "y" : "ies")",
                    ok
                        ? "equal"
                        : "\(present.count) entries, \(present.subtracting(exact).count) unexpected, \(Set(exact).subtracting(present).count) missing",
                    nil, 7, nil)
            }
        }
        if let dbx = r.dbx {
            let ids = (dbx.contains != nil ? [RuleID.dbx] : []) + (dbx.minEntries != nil ? [RuleID.dbxMinEntries] : [])
            for id in ids {
                guard let (f, _) = facts(id) else { continue }
                guard let entries = f.signatureDatabases["dbx"] else {
                    add(
                        id, f.secureBoot != true ? .notApplicable : .failed, "dbx measured",
                        "dbx not measured in PCR 7", nil, 7, nil)
                    continue
                }
                if id == .dbx, let must = dbx.contains {
                    let present = Set(entries.map(entryID))
                    let missing = must.filter { !present.contains($0) }
                    add(
                        id, missing.isEmpty ? .passed : .failed, "revokes \(must.count) hash(es)",
                        missing.isEmpty
                            ? "all revoked" : "\(missing.count) not revoked, e.g. \(missing[0].prefix(16))…", nil, 7,
                        nil)
                }
                if id == .dbxMinEntries, let min = dbx.minEntries {
                    add(
                        id, entries.count >= min ? .passed : .failed, "≥ \(min) entries", "\(entries.count) entries",
                        nil, 7, nil)
                }
            }
        }
        if let apps = r.bootApplications {
            bootApplications(apps, e, trusted: trusted, log: log, add)
        }
        if let k = r.kernelCommandLine, let (f, _) = facts(.kernelCommandLine) {
            let lines = f.kernelCommandLines
            if lines.isEmpty || f.kernelArguments.isEmpty {
                add(
                    .kernelCommandLine, k.required == nil ? .notApplicable : .failed, "a measured kernel command line",
                    "none measured", nil, nil, nil)
            } else {
                let parsed = f.kernelArguments
                var problems: [String] = []
                let required = (k.required ?? []).map { ($0, KernelCommandLine.Argument(entry: $0)) }
                let forbidden = (k.forbidden ?? []).map { ($0, KernelCommandLine.Argument(entry: $0)) }
                // Each measured command line must hold on its own (a later one does not excuse an earlier one).
                for line in parsed {
                    for (text, req) in required where !line.contains(req, anyValue: false) {
                        problems.append("missing \(text)")
                    }
                    for (text, bad) in forbidden where line.contains(bad, anyValue: true) {
                        problems.append("forbidden \(text) present")
                    }
                    if let patterns = k.allowedPatterns {
                        for a in line.arguments where !patterns.contains(where: { globMatch($0, a.text) }) {
                            problems.append("\(a.text) not allowed")
                        }
                    }
                }
                let unique = problems.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
                add(
                    .kernelCommandLine, unique.isEmpty ? .passed : .failed, "required/forbidden/allowed arguments",
                    unique.isEmpty ? lines.last ?? "" : unique.joined(separator: "; "), nil, nil, nil)
            }
        }
        for what in r.forbid ?? [] {
            guard let kind = RuleID.ForbiddenEvent(rawValue: what) else { continue }
            let rule = RuleID.forbid(kind)
            guard let (f, _) = facts(rule) else { continue }
            switch kind {
            case .errorSeparators:
                if let s = f.separators.first(where: \.isError) {
                    add(rule, .failed, "no error separator", "error separator", nil, s.pcr, s.eventIndex)
                } else if f.separators.isEmpty {
                    add(rule, .notApplicable, "no error separator", "no separator measured", nil, nil, nil)
                } else if let pcr = f.pcrsWithoutSeparator.first {
                    add(
                        rule, .failed, "a separator in every measured PCR 0–7",
                        "PCR \(pcr) has events but no separator (a separator retyped to hide an error?)", nil, pcr, nil)
                } else {
                    add(rule, .passed, "no error separator", "\(f.separators.count) normal separator(s)", nil, nil, nil)
                }
            case .uefiDebugMode, .debugger:
                if let m = f.debugMarkers.first {
                    add(rule, .failed, "no debug marker", m, nil, 7, nil)
                } else if !f.measuredPCRs.contains(7) {
                    add(rule, .notApplicable, "no debug marker", "PCR 7 not measured", nil, 7, nil)
                } else {
                    add(rule, .passed, "no debug marker", "none", nil, nil, nil)
                }
            case .eventsAfterExitBootServices:
                if let i = f.eventsAfterExitBootServices.first {
                    add(rule, .failed, "no event after ExitBootServices (in PCR 5's order)", "event \(i)", nil, 5, i)
                } else if !f.exitBootServicesMeasured {
                    add(
                        rule, .notApplicable, "no event after ExitBootServices", "ExitBootServices not measured", nil,
                        5, nil)
                } else {
                    add(rule, .passed, "no event after ExitBootServices (in PCR 5's order)", "none", nil, nil, nil)
                }
            }
        }
        if let versions = r.sCRTMVersions, let (f, _) = facts(.sCRTMVersions) {
            if f.sCRTMVersions.isEmpty {
                // The policy names versions: a firmware that measured none (or an event retyped away) is not one of them.
                add(
                    .sCRTMVersions, .failed, "one of \(versions.count) version(s)",
                    "no S-CRTM version measured in PCR 0", nil, 0, nil)
            } else {
                let bad = f.sCRTMVersions.first { !versions.contains($0) }
                add(
                    .sCRTMVersions, bad == nil ? .passed : .failed, "one of \(versions.joined(separator: ", "))",
                    bad ?? f.sCRTMVersions.joined(separator: ", "), nil, 0, nil)
            }
        }
    }

    /// Boot applications are judged by digest (the Authenticode hash the firmware measured), in the trusted
    /// bank whose digest size matches the allow-list's entries; every PCR 4 measurement counts, whatever type
    /// it claims. Event data is only a description here, so it needs no binding.
    static func bootApplications(
        _ apps: AttestationPolicy.BootApplicationsRule, _ e: EvaluationInput, trusted: [TPMAlgorithmID],
        log: VerifiedEventLog, _ add: Add
    ) {
        let rule = RuleID.bootApplications
        let size = (apps.allowed.first?.count ?? 64) / 2
        guard let bank = trusted.first(where: { $0.digestSize == size }) else {
            add(
                rule, .failed, "allowed digests of \(size * 8) bits",
                "no trusted bank has \(size)-byte digests (trusted: \(trusted.map(\.name).joined(separator: ", ")))",
                nil, 4, nil)
            return
        }
        var order = [bank]
        order += trusted.filter { $0 != bank }
        let f: BootFacts
        switch source(for: rule, e, trusted: order, log: log, checkBinding: false) {
        case .refused(let actual, let pcr, let event):
            add(rule, .failed, "boot applications from PCR 4 verified in \(bank.name)", actual, bank.name, pcr, event)
            return
        case .facts(let facts, let used):
            guard used == bank else {
                add(
                    rule, .failed, "boot applications from PCR 4 verified in \(bank.name)",
                    "PCR 4 is not verified in \(bank.name)", bank.name, 4, nil)
                return
            }
            f = facts
        }
        let measured = f.bootApplications
        if measured.isEmpty {
            add(rule, .notApplicable, "allowed boot applications", "no boot application measured", bank.name, 4, nil)
        } else if apps.ordered {
            let digests = measured.map { $0.digest ?? "" }
            let firstDiff = zip(digests, apps.allowed).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            let ok = digests == apps.allowed
            let at = firstDiff ?? min(digests.count, apps.allowed.count)
            add(
                rule, ok ? .passed : .failed, "exactly \(apps.allowed.count) application(s) in order",
                ok
                    ? "\(digests.count) in order"
                    : "application \(at + 1) differs (\(at < measured.count ? measured[at].devicePath : "missing"))",
                bank.name, 4, ok ? nil : (at < measured.count ? measured[at].eventIndex : nil))
        } else {
            if let bad = measured.first(where: { !apps.allows($0.digest ?? "") }) {
                add(
                    rule, .failed, "only allowed digests",
                    "\(bad.devicePath) (\(bad.claimedType)) \(bank.name) \(bad.digest ?? "(none)")", bank.name, bad.pcr,
                    bad.eventIndex)
            } else {
                add(
                    rule, .passed, "only allowed digests", "\(measured.count) allowed application(s)", bank.name, 4, nil
                )
            }
        }
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

    /// Every rule a policy produces (for `enforce:` validation and `explain`).
    public static func ruleIDs(of p: AttestationPolicy) -> [RuleID] {
        var ids: [RuleID] = []
        if p.acceptAny { ids.append(.accept) }
        if let r = p.identity {
            if r.requireEKCertificate != nil { ids.append(.ekCertificate) }
            if r.ekCA != nil { ids.append(.ekChain) }
            if r.manufacturers != nil { ids.append(.manufacturer) }
            if r.minFirmwareVersion != nil || r.minFirmwareVersionByManufacturer != nil {
                ids.append(.minFirmwareVersion)
            }
            if r.akAlgorithms != nil { ids.append(.akAlgorithm) }
        }
        if let f = p.freshness {
            if f.maxNonceAgeSeconds != nil { ids.append(.nonceAge) }
            if f.allowReboot != nil { ids.append(.reboot) }
        }
        if let r = p.pcrs {
            ids += r.trustedBanks.map(RuleID.bank)
            for (bank, e) in r.expectations { ids += e.keys.map { RuleID.pcr(bank, $0) } }
        }
        if p.pcrs != nil || p.boot != nil { ids.append(.eventLogReplay) }
        if let b = p.boot { ids += ruleIDs(boot: b) }
        return ids
    }

    static func ruleIDs(boot b: AttestationPolicy.BootRules) -> [RuleID] {
        var ids: [RuleID] = []
        if b.secureBoot != nil { ids.append(.secureBoot) }
        if b.pk != nil { ids.append(.pk) }
        if b.kek != nil { ids.append(.kek) }
        if b.db != nil { ids.append(.db) }
        if b.dbx?.contains != nil { ids.append(.dbx) }
        if b.dbx?.minEntries != nil { ids.append(.dbxMinEntries) }
        if b.bootApplications != nil { ids.append(.bootApplications) }
        if b.kernelCommandLine != nil { ids.append(.kernelCommandLine) }
        ids += (b.forbid ?? []).compactMap(RuleID.ForbiddenEvent.init(rawValue:)).map(RuleID.forbid)
        if b.sCRTMVersions != nil { ids.append(.sCRTMVersions) }
        return ids
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
