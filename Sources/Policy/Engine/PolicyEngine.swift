import Attest
import Foundation
import X509

/// Evaluates an ``AttestationPolicy`` against ``PolicyEvidence``: pure and deterministic (time comes
/// from the evidence), `Sendable`, cheap enough to run on every attestation.
public enum PolicyEngine {
    public static func evaluate(_ evidence: PolicyEvidence, _ policy: AttestationPolicy) -> Verdict {
        var results: [Verdict.RuleResult] = []
        func add(_ rule: String, _ status: Verdict.Status, expected: String, actual: String, bank: String? = nil, pcr: Int? = nil, event: Int? = nil) {
            results.append(.init(rule: rule, status: status, enforced: !policy.warnOnly.contains(rule), expected: expected, actual: actual,
                                 bank: bank, pcr: pcr, event: event))
        }
        if policy.acceptAny {
            add("accept", .passed, expected: "anything (accept: any)", actual: "accepted without checks")
        }
        if let id = policy.identity { identity(id, evidence, add) }
        if let f = policy.freshness { freshness(f, evidence, add) }
        let trusted = Set(policy.pcrs?.trustedBanks ?? ["sha256"])
        if let p = policy.pcrs { pcrs(p, evidence, needsEvents: policy.boot != nil, add) }
        if let b = policy.boot { boot(b, evidence, trusted: trusted, add) }
        let pass = !results.contains { $0.status == .failed && $0.enforced }
        return Verdict(pass: pass, policyID: policy.id, policyVersion: policy.version, unsignedEvidence: evidence.unsigned, results: results)
    }


    // MARK: Identity

    static func identity(_ r: AttestationPolicy.IdentityRules, _ e: PolicyEvidence,
                         _ add: (String, Verdict.Status, String, String, String?, Int?, Int?) -> Void) {
        if let required = r.requireEKCertificate {
            if e.ekCertificate != nil {
                add("identity.ek_certificate", .passed, required ? "an EK certificate" : "optional", "EK certificate issued by \(e.ekCertificate?.issuer ?? "")", nil, nil, nil)
            } else {
                add("identity.ek_certificate", required ? .failed : .notApplicable, required ? "an EK certificate" : "optional", "no EK certificate in the evidence", nil, nil, nil)
            }
        }
        if r.ekCA != nil {
            switch e.ekChain {
            case .valid(let chain)?: add("identity.ek_chain", .passed, "a chain to a trusted EK CA", "chain to \(chain.last?.subject.description ?? "?")", nil, nil, nil)
            case .invalid(let reason)?: add("identity.ek_chain", .failed, "a chain to a trusted EK CA", reason, nil, nil, nil)
            case nil: add("identity.ek_chain", e.ekCertificate == nil ? .notApplicable : .failed, "a chain to a trusted EK CA",
                          e.ekCertificate == nil ? "no EK certificate" : "chain not checked", nil, nil, nil)
            }
        }
        if let allowed = r.manufacturers {
            if let m = e.ekCertificate?.tpmManufacturer {
                let ascii = manufacturerASCII(m)
                let ok = allowed.contains { $0.caseInsensitiveCompare(m) == .orderedSame || $0.caseInsensitiveCompare(ascii) == .orderedSame }
                add("identity.manufacturer", ok ? .passed : .failed, "one of \(allowed.joined(separator: ", "))", "\(m) (\(ascii))", nil, nil, nil)
            } else {
                // Whether an EK certificate must be present is identity.ek_certificate's decision.
                add("identity.manufacturer", .notApplicable, "one of \(allowed.joined(separator: ", "))", "unknown (no EK certificate with a TPM manufacturer)", nil, nil, nil)
            }
        }
        if let table = r.minFirmwareVersionByManufacturer {
            let rule = "identity.min_firmware_version"
            if let fw = e.quote?.firmwareVersion, let m = e.ekCertificate?.tpmManufacturer {
                let ascii = manufacturerASCII(m)
                if let min = table.first(where: { $0.key.caseInsensitiveCompare(m) == .orderedSame || $0.key.caseInsensitiveCompare(ascii) == .orderedSame })?.value {
                    add(rule, fw >= min ? .passed : .failed, "≥ 0x\(String(min, radix: 16)) for \(ascii)", "0x\(String(fw, radix: 16))", nil, nil, nil)
                } else {
                    add(rule, .notApplicable, "a minimum for \(table.keys.sorted().joined(separator: ", "))", "no minimum set for \(ascii) (\(m))", nil, nil, nil)
                }
            } else {
                add(rule, .notApplicable, "a minimum per manufacturer", e.quote == nil ? "no signed quote" : "no EK certificate naming the manufacturer", nil, nil, nil)
            }
        }
        if let min = r.minFirmwareVersion {
            if let fw = e.quote?.firmwareVersion {
                add("identity.min_firmware_version", fw >= min ? .passed : .failed, "≥ 0x\(String(min, radix: 16))", "0x\(String(fw, radix: 16))", nil, nil, nil)
            } else {
                add("identity.min_firmware_version", .notApplicable, "≥ 0x\(String(min, radix: 16))", "no signed quote", nil, nil, nil)
            }
        }
        if let algs = r.akAlgorithms {
            if let ak = e.akPublic {
                let name = akAlgorithmName(ak)
                add("identity.ak_algorithm", algs.contains(name) ? .passed : .failed, "one of \(algs.joined(separator: ", "))", name, nil, nil, nil)
            } else {
                add("identity.ak_algorithm", .notApplicable, "one of \(algs.joined(separator: ", "))", "no attestation key", nil, nil, nil)
            }
        }
    }

    static func manufacturerASCII(_ id: String) -> String {
        guard id.hasPrefix("id:"), let v = UInt32(id.dropFirst(3), radix: 16) else { return id }
        let bytes = [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)].filter { $0 >= 0x20 && $0 < 0x7F }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces)
    }

    static func akAlgorithmName(_ p: TPMTPublic) -> String {
        switch p.parameters {
        case .ecc(let e): switch e.curve { case .nistP256: "ecc-p256"; case .nistP384: "ecc-p384"; case .nistP521: "ecc-p521"; default: "ecc-\(e.curve.rawValue)" }
        case .rsa(let r): "rsa-\(r.keyBits)"
        default: "\(p.type)"
        }
    }

    // MARK: Freshness

    static func freshness(_ r: AttestationPolicy.FreshnessRules, _ e: PolicyEvidence,
                          _ add: (String, Verdict.Status, String, String, String?, Int?, Int?) -> Void) {
        if let max = r.maxNonceAgeSeconds {
            if let issued = e.nonceIssuedAt {
                let age = e.checkedAt.timeIntervalSince(issued)
                add("freshness.nonce_age", age <= Double(max) && age >= -5 ? .passed : .failed, "≤ \(max) s", String(format: "%.1f s", age), nil, nil, nil)
            } else {
                add("freshness.nonce_age", .notApplicable, "≤ \(max) s", "nonce issue time unknown", nil, nil, nil)
            }
        }
        if let allow = r.allowReboot {
            let findings = e.quote?.clockFindings ?? []
            let rebooted = findings.contains { if case .rebooted = $0 { true } else { false } }
            let backwards = findings.contains { if case .countersWentBackwards = $0 { true } else if case .clockWentBackwards = $0 { true } else { false } }
            if e.quote == nil {
                add("freshness.reboot", .notApplicable, allow ? "reboots allowed" : "no reboot since the last attestation", "no signed quote", nil, nil, nil)
            } else if backwards {
                add("freshness.reboot", .failed, "TPM counters and clock moving forward", findings.map(\.description).joined(separator: "; "), nil, nil, nil)
            } else if rebooted && !allow {
                add("freshness.reboot", .failed, "no reboot since the last attestation", findings.map(\.description).joined(separator: "; "), nil, nil, nil)
            } else {
                add("freshness.reboot", .passed, allow ? "reboots allowed" : "no reboot since the last attestation", rebooted ? "rebooted" : "no reboot", nil, nil, nil)
            }
        }
    }

    // MARK: PCRs

    static func pcrs(_ r: AttestationPolicy.PCRRules, _ e: PolicyEvidence, needsEvents: Bool,
                     _ add: (String, Verdict.Status, String, String, String?, Int?, Int?) -> Void) {
        for bank in r.trustedBanks {
            let quoted = e.quotedBanks.contains(bank)
            let needed = !(r.expectations[bank]?.isEmpty ?? true) || needsEvents
            let status: Verdict.Status = quoted ? .passed : (needed ? .failed : .notApplicable)
            add("pcrs.banks.\(bank)", status, "bank \(bank) quoted", quoted ? "quoted" : "not quoted (banks: \(e.quotedBanks.sorted().joined(separator: ", ")))", bank, nil, nil)
        }
        for (bankName, expectations) in r.expectations.sorted(by: { $0.key < $1.key }) {
            guard let bank = TPMAlgorithmID(name: bankName) else { continue }
            for (index, expectation) in expectations.sorted(by: { $0.key < $1.key }) {
                let rule = "pcrs.\(bankName).\(index)"
                let value = e.pcrs[bank, index].map { Hex.encode($0) }
                switch expectation {
                case .any:
                    add(rule, .notApplicable, "any value (deliberately unchecked)", value ?? "not quoted", bankName, index, nil)
                case .oneOf(let allowed):
                    guard let value else {
                        add(rule, .failed, "one of \(allowed.count) value(s)", "not quoted", bankName, index, nil)
                        continue
                    }
                    add(rule, allowed.contains(value) ? .passed : .failed,
                        allowed.count == 1 ? allowed[0] : "one of \(allowed.count) values", value, bankName, index,
                        allowed.contains(value) ? nil : lastEvent(e, pcr: index))
                case .replay:
                    guard let value else { add(rule, .failed, "the event log's replay", "not quoted", bankName, index, nil); continue }
                    guard let log = e.eventLog else { add(rule, .failed, "the event log's replay", "no event log", bankName, index, nil); continue }
                    if let m = log.mismatches.first(where: { $0.bank == bank && $0.pcr == index }) {
                        add(rule, .failed, "replay \(Hex.encode(m.replayed))", "\(value): \(m.explanation)", bankName, index, m.eventIndex)
                    } else {
                        let replayed = log.replay.values[bank, index].map { Hex.encode($0) } ?? "initial value"
                        let ok = log.replay.values[bank, index].map { Hex.encode($0) == value } ?? (value.allSatisfy { $0 == "0" })
                        add(rule, ok ? .passed : .failed, "replay \(replayed)", value, bankName, index, nil)
                    }
                }
            }
        }
    }

    static func lastEvent(_ e: PolicyEvidence, pcr: Int) -> Int? {
        e.eventLog?.replay.values.banks.isEmpty == false ? e.eventLog?.events.last(where: { $0.event.pcr == pcr })?.event.index : nil
    }

    // MARK: Boot

    static func boot(_ r: AttestationPolicy.BootRules, _ e: PolicyEvidence, trusted: Set<String>,
                     _ add: (String, Verdict.Status, String, String, String?, Int?, Int?) -> Void) {
        guard let facts = e.facts(trustedBanks: trusted), let log = e.eventLog else {
            for rule in ruleIDs(boot: r) { add(rule, .failed, "facts from a verified event log", "no event log in the evidence", nil, nil, nil) }
            return
        }
        // A fact is only as good as the PCRs it comes from: a rule whose PCRs the log extends but the
        // quote does not confirm (in a trusted bank) fails, so tampering cannot hide events from it.
        let extended = log.extendedPCRs
        let confirmed = Set(log.matched.filter { trusted.contains($0.key.name) }.flatMap(\.value))
        func unverified(_ pcrs: [Int]) -> Int? { pcrs.first { extended.contains($0) && !confirmed.contains($0) } }
        func mismatchEvent(_ pcr: Int) -> Int? { log.mismatches.first { $0.pcr == pcr }?.eventIndex }
        var blocked = Set<String>()
        for rule in ruleIDs(boot: r) {
            if let pcr = unverified(Self.pcrsOf(rule)) {
                add(rule, .failed, "events of PCR \(pcr) confirmed by the quote", "PCR \(pcr) does not replay to a quoted value in a trusted bank (\(trusted.sorted().joined(separator: ", ")))",
                    nil, pcr, mismatchEvent(pcr))
                blocked.insert(rule)
            }
        }
        func open(_ rule: String) -> Bool { !blocked.contains(rule) }
        if let sb = r.secureBoot, open("boot.secure_boot") {
            let expected = sb ? "enabled" : "disabled"
            switch facts.secureBoot {
            case .some(let on): add("boot.secure_boot", on == sb ? .passed : .failed, expected, on ? "enabled" : "disabled", nil, 7, nil)
            case .none:
                // Not measured at all (e.g. legacy BIOS): required fails; forbidden holds vacuously.
                add("boot.secure_boot", sb ? .failed : .notApplicable, expected, "SecureBoot variable not measured", nil, 7, nil)
            }
        }
        for (name, rule) in [("PK", r.pk), ("KEK", r.kek), ("db", r.db)] {
            guard let rule, open("boot.\(name.lowercased())") else { continue }
            let id = "boot.\(name.lowercased())"
            guard let entries = facts.signatureDatabases[name] else {
                // Without Secure Boot enabled and with the database unmeasured there is nothing to check
                // (boot.secure_boot decides whether that is acceptable).
                add(id, facts.secureBoot != true ? .notApplicable : .failed, "\(name) measured", "\(name) not measured in PCR 7", nil, 7, nil)
                continue
            }
            let present = Set(entries.map(entryID))
            if let must = rule.contains {
                let missing = must.filter { !present.contains($0) }
                add(id, missing.isEmpty ? .passed : .failed, "contains \(must.count) certificate(s)",
                    missing.isEmpty ? "all present (\(present.count) entries)" : "missing \(missing.map { String($0.prefix(16)) }.joined(separator: ", "))…", nil, 7, nil)
            }
            if let exact = rule.equals {
                let ok = present == Set(exact)
                add(id, ok ? .passed : .failed, "exactly \(exact.count) entr\(exact.count == 1 ? "y" : "ies")", ok ? "equal" : "\(present.count) entries, \(present.subtracting(exact).count) unexpected, \(Set(exact).subtracting(present).count) missing", nil, 7, nil)
            }
        }
        if let dbx = r.dbx, open("boot.dbx") || open("boot.dbx.min_entries") {
            if let entries = facts.signatureDatabases["dbx"] {
                let present = Set(entries.map(entryID))
                if let must = dbx.contains {
                    let missing = must.filter { !present.contains($0) }
                    add("boot.dbx", missing.isEmpty ? .passed : .failed, "revokes \(must.count) hash(es)", missing.isEmpty ? "all revoked" : "\(missing.count) not revoked, e.g. \(missing[0].prefix(16))…", nil, 7, nil)
                }
                if let min = dbx.minEntries {
                    add("boot.dbx.min_entries", entries.count >= min ? .passed : .failed, "≥ \(min) entries", "\(entries.count) entries", nil, 7, nil)
                }
            } else {
                let status: Verdict.Status = facts.secureBoot != true ? .notApplicable : .failed
                if dbx.contains != nil { add("boot.dbx", status, "dbx measured", "dbx not measured in PCR 7", nil, 7, nil) }
                if dbx.minEntries != nil { add("boot.dbx.min_entries", status, "dbx measured", "dbx not measured in PCR 7", nil, 7, nil) }
            }
        }
        if let apps = r.bootApplications, open("boot.boot_applications") {
            let measured = facts.bootApplications
            if measured.isEmpty {
                add("boot.boot_applications", .notApplicable, "allowed boot applications", "no boot application measured", nil, 4, nil)
            } else if apps.ordered {
                let digests = measured.map { $0.sha256 ?? "" }
                let firstDiff = zip(digests, apps.allowed).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                let ok = digests == apps.allowed
                let at = firstDiff ?? min(digests.count, apps.allowed.count)
                add("boot.boot_applications", ok ? .passed : .failed, "exactly \(apps.allowed.count) application(s) in order",
                    ok ? "\(digests.count) in order" : "application \(at + 1) differs (\(at < measured.count ? measured[at].devicePath : "missing"))",
                    nil, 4, ok ? nil : (at < measured.count ? measured[at].eventIndex : nil))
            } else {
                let allowed = Set(apps.allowed)
                if let bad = measured.first(where: { !allowed.contains($0.sha256 ?? "") }) {
                    add("boot.boot_applications", .failed, "only allowed digests", "\(bad.devicePath) sha256 \(bad.sha256 ?? "(none)")", nil, bad.pcr, bad.eventIndex)
                } else {
                    add("boot.boot_applications", .passed, "only allowed digests", "\(measured.count) allowed application(s)", nil, 4, nil)
                }
            }
        }
        if let k = r.kernelCommandLine, open("boot.kernel_cmdline") {
            let lines = facts.kernelCommandLines
            if lines.isEmpty {
                add("boot.kernel_cmdline", k.required == nil ? .notApplicable : .failed, "a measured kernel command line", "none measured", nil, nil, nil)
            } else {
                let args = lines.flatMap { $0.split(separator: " ").map(String.init) }
                var problems: [String] = []
                for req in k.required ?? [] where !args.contains(req) { problems.append("missing \(req)") }
                for bad in k.forbidden ?? [] {
                    if args.contains(where: { $0 == bad || $0.hasPrefix(bad + "=") }) { problems.append("forbidden \(bad) present") }
                }
                if let patterns = k.allowedPatterns {
                    for a in args where !patterns.contains(where: { globMatch($0, a) }) { problems.append("\(a) not allowed") }
                }
                add("boot.kernel_cmdline", problems.isEmpty ? .passed : .failed, "required/forbidden/allowed arguments",
                    problems.isEmpty ? lines.last ?? "" : problems.joined(separator: "; "), nil, nil, nil)
            }
        }
        for what in r.forbid ?? [] where open("boot.forbid.\(what)") {
            let rule = "boot.forbid.\(what)"
            switch what {
            case "error_separators":
                if let s = facts.separators.first(where: \.isError) { add(rule, .failed, "no error separator", "error separator", nil, s.pcr, s.eventIndex) }
                else if facts.separators.isEmpty { add(rule, .notApplicable, "no error separator", "no separator measured", nil, nil, nil) }
                else { add(rule, .passed, "no error separator", "\(facts.separators.count) normal separator(s)", nil, nil, nil) }
            case "uefi_debug_mode", "debugger":
                if let m = facts.debugMarkers.first { add(rule, .failed, "no debug marker", m, nil, 7, nil) }
                else if !facts.measuredPCRs.contains(7) { add(rule, .notApplicable, "no debug marker", "PCR 7 not measured", nil, 7, nil) }
                else { add(rule, .passed, "no debug marker", "none", nil, nil, nil) }
            case "events_after_exit_boot_services":
                if let i = facts.eventsAfterExitBootServices.first { add(rule, .failed, "no event after ExitBootServices", "event \(i)", nil, nil, i) }
                else if !facts.exitBootServicesMeasured { add(rule, .notApplicable, "no event after ExitBootServices", "ExitBootServices not measured", nil, 5, nil) }
                else { add(rule, .passed, "no event after ExitBootServices", "none", nil, nil, nil) }
            default: break
            }
        }
        if let versions = r.sCRTMVersions, open("boot.scrtm_versions") {
            if facts.sCRTMVersions.isEmpty {
                add("boot.scrtm_versions", .notApplicable, "one of \(versions.count) version(s)", "no S-CRTM version measured", nil, 0, nil)
            } else {
                let bad = facts.sCRTMVersions.first { !versions.contains($0) }
                add("boot.scrtm_versions", bad == nil ? .passed : .failed, "one of \(versions.joined(separator: ", "))", bad ?? facts.sCRTMVersions.joined(separator: ", "), nil, 0, nil)
            }
        }
    }

    /// The PCRs a boot rule's facts come from (PC Client PFP §3.3.4 PCR usage).
    static func pcrsOf(_ rule: String) -> [Int] {
        switch rule {
        case "boot.secure_boot", "boot.pk", "boot.kek", "boot.db", "boot.dbx", "boot.dbx.min_entries", "boot.forbid.uefi_debug_mode", "boot.forbid.debugger": [7]
        case "boot.boot_applications": [4]
        case "boot.kernel_cmdline": [8, 9, 12]
        case "boot.scrtm_versions": [0]
        case "boot.forbid.error_separators", "boot.forbid.events_after_exit_boot_services": Array(0...7)
        default: []
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

    /// Every rule id a policy produces (for `enforce:` validation and `explain`).
    public static func ruleIDs(of p: AttestationPolicy) -> [String] {
        var ids: [String] = []
        if p.acceptAny { ids.append("accept") }
        if let r = p.identity {
            if r.requireEKCertificate != nil { ids.append("identity.ek_certificate") }
            if r.ekCA != nil { ids.append("identity.ek_chain") }
            if r.manufacturers != nil { ids.append("identity.manufacturer") }
            if r.minFirmwareVersion != nil || r.minFirmwareVersionByManufacturer != nil { ids.append("identity.min_firmware_version") }
            if r.akAlgorithms != nil { ids.append("identity.ak_algorithm") }
        }
        if let f = p.freshness {
            if f.maxNonceAgeSeconds != nil { ids.append("freshness.nonce_age") }
            if f.allowReboot != nil { ids.append("freshness.reboot") }
        }
        if let r = p.pcrs {
            ids += r.trustedBanks.map { "pcrs.banks.\($0)" }
            for (bank, e) in r.expectations { ids += e.keys.map { "pcrs.\(bank).\($0)" } }
        }
        if let b = p.boot { ids += ruleIDs(boot: b) }
        return ids
    }

    static func ruleIDs(boot b: AttestationPolicy.BootRules) -> [String] {
        var ids: [String] = []
        if b.secureBoot != nil { ids.append("boot.secure_boot") }
        if b.pk != nil { ids.append("boot.pk") }
        if b.kek != nil { ids.append("boot.kek") }
        if b.db != nil { ids.append("boot.db") }
        if b.dbx?.contains != nil { ids.append("boot.dbx") }
        if b.dbx?.minEntries != nil { ids.append("boot.dbx.min_entries") }
        if b.bootApplications != nil { ids.append("boot.boot_applications") }
        if b.kernelCommandLine != nil { ids.append("boot.kernel_cmdline") }
        ids += (b.forbid ?? []).map { "boot.forbid.\($0)" }
        if b.sCRTMVersions != nil { ids.append("boot.scrtm_versions") }
        return ids
    }
}
