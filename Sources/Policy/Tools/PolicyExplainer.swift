import Attest
import Foundation

/// Policies in plain words (`vigil policy explain`), one sentence per rule — also the basis of `diff`.
public enum PolicyExplainer {
    /// rule id → sentence.
    public static func sentences(_ p: AttestationPolicy) -> [(rule: String, text: String)] {
        var out: [(String, String)] = []
        func add(_ r: String, _ t: String) {
            out.append((r, t + (p.warnOnly.contains(r) ? " (warning only: reported, not enforced)" : "")))
        }
        if p.acceptAny { add(RuleID.accept.description, "ACCEPTS ANY DEVICE without checking anything (accept: any)") }
        if let i = p.identity {
            if let r = i.requireEKCertificate {
                add(
                    RuleID.ekCertificate.description,
                    r
                        ? "The device must present its TPM's endorsement-key certificate."
                        : "An EK certificate is optional.")
            }
            if let r = i.requireAKActivation {
                add(
                    RuleID.akActivated.description,
                    r
                        ? "The attestation key must be proven to live in the EK's TPM by credential activation (devices attesting through EVE's API cannot be)."
                        : "Credential activation of the attestation key is optional (EVE devices, whose AK only the device certificate vouches for, are accepted)."
                )
            }
            if let ca = i.ekCA { add(RuleID.ekChain.description, "The EK certificate must chain to a CA in \(ca).") }
            if let m = i.manufacturers {
                add(RuleID.manufacturer.description, "The TPM must be made by \(m.joined(separator: " or ")).")
            }
            if let f = i.minFirmwareVersion {
                add(
                    RuleID.minFirmwareVersion.description,
                    "The TPM firmware version must be at least 0x\(String(f, radix: 16)).")
            }
            if let t = i.minFirmwareVersionByManufacturer {
                add(
                    RuleID.minFirmwareVersion.description,
                    "The TPM firmware version must be at least "
                        + t.sorted { $0.key < $1.key }.map { "0x\(String($0.value, radix: 16)) on \($0.key)" }.joined(
                            separator: ", ") + ".")
            }
            if let a = i.akAlgorithms {
                add(RuleID.akAlgorithm.description, "The attestation key must be \(a.joined(separator: " or ")).")
            }
        }
        if let f = p.freshness {
            if let n = f.maxNonceAgeSeconds {
                add(RuleID.nonceAge.description, "The quote must answer a nonce issued at most \(n) seconds earlier.")
            }
            if let r = f.allowReboot {
                add(
                    RuleID.reboot.description,
                    r
                        ? "Reboots between attestations are allowed."
                        : "The device must not have rebooted since its previous attestation.")
            }
            if let g = f.offlineGraceSeconds, g > 0 {
                add(
                    "freshness.offline_grace",
                    "A node may keep its workloads running for up to \(g) seconds after a pass while the controller cannot be reached (never past the result's expiry); this is a setting, not a check."
                )
            }
        }
        if let pcrs = p.pcrs {
            for b in pcrs.trustedBanks {
                add(
                    RuleID.bank(b).description,
                    "The \(b) PCR bank must be quoted; only its values and events are trusted.")
            }
            for (bank, e) in pcrs.expectations.sorted(by: { $0.key < $1.key }) {
                for (i, x) in e.sorted(by: { $0.key < $1.key }) {
                    switch x {
                    case .any: add(RuleID.pcr(bank, i).description, "\(bank) PCR \(i) may hold any value.")
                    case .replay:
                        add(RuleID.pcr(bank, i).description, "\(bank) PCR \(i) must equal the replay of the event log.")
                    case .oneOf(let v):
                        add(
                            RuleID.pcr(bank, i).description,
                            "\(bank) PCR \(i) must be "
                                + (v.count == 1 ? v[0] : "one of \(v.count) values: \(v.joined(separator: ", "))") + "."
                        )
                    }
                }
            }
        }
        if p.pcrs != nil || p.boot != nil {
            add(
                RuleID.eventLogReplay.description,
                "When an event log comes with the quote, every quoted PCR of the trusted banks that the log covers must replay from it (a PCR cannot be hidden by leaving its events out)."
            )
        }
        if let b = p.boot {
            if let s = b.secureBoot {
                add(RuleID.secureBoot.description, s ? "Secure Boot must be enabled." : "Secure Boot must be disabled.")
            }
            for (name, r, id) in [("pk", b.pk, RuleID.pk), ("kek", b.kek, RuleID.kek), ("db", b.db, RuleID.db)] {
                guard let r else { continue }
                if let c = r.contains {
                    add(
                        id.description,
                        "\(name.uppercased()) must contain the certificates \(c.joined(separator: ", ")).")
                }
                if let e = r.equals {
                    add(id.description, "\(name.uppercased()) must be exactly \(e.joined(separator: ", ")).")
                }
            }
            if let c = b.dbx?.contains { add(RuleID.dbx.description, "dbx must revoke \(c.joined(separator: ", ")).") }
            if let n = b.dbx?.minEntries {
                add(RuleID.dbxMinEntries.description, "dbx must have at least \(n) entries.")
            }
            if let a = b.bootApplications {
                add(
                    RuleID.bootApplications.description,
                    a.ordered
                        ? "The boot applications must be exactly, in order: \(a.allowed.joined(separator: ", "))."
                        : "Every boot application must be one of: \(a.allowed.joined(separator: ", ")).")
            }
            if let k = b.kernelCommandLine {
                var parts: [String] = []
                if let r = k.required { parts.append("must include \(r.joined(separator: " "))") }
                if let f = k.forbidden { parts.append("must not include \(f.joined(separator: " "))") }
                if let a = k.allowedPatterns {
                    parts.append("may only contain arguments matching \(a.joined(separator: " "))")
                }
                add(
                    RuleID.kernelCommandLine.description,
                    "The kernel command line " + parts.joined(separator: "; ") + ".")
            }
            for f in b.forbid ?? [] {
                guard let kind = RuleID.ForbiddenEvent(rawValue: f) else { continue }
                add(
                    RuleID.forbid(kind).description,
                    "The boot must not show \(f.replacingOccurrences(of: "_", with: " ")).")
            }
            if let v = b.sCRTMVersions {
                add(
                    RuleID.sCRTMVersions.description,
                    "The firmware (S-CRTM) version must be one of: \(v.joined(separator: ", "))."
                )
            }
        }
        return out
    }

    /// The whole explanation: a heading with the policy's id, version and description, then one "- " line per rule.
    public static func text(_ p: AttestationPolicy) -> String {
        var lines = ["Policy \(p.id), version \(p.version)" + (p.description.isEmpty ? "" : ": \(p.description)")]
        lines += sentences(p).map { "- \($0.text)" }
        return lines.joined(separator: "\n")
    }
}

/// What a new policy version accepts or refuses that the old did not (`vigil policy diff`).
public enum PolicyDiff {
    /// One line per rule that differs: "+" a new rule, "-" a removed one, "~" a changed one, followed by the
    /// values an allow-list now accepts or refuses.
    public static func lines(old: AttestationPolicy, new: AttestationPolicy) -> [String] {
        let a = Dictionary(
            PolicyExplainer.sentences(old).map { ($0.rule, $0.text) }, uniquingKeysWith: { x, y in x + " " + y })
        let b = Dictionary(
            PolicyExplainer.sentences(new).map { ($0.rule, $0.text) }, uniquingKeysWith: { x, y in x + " " + y })
        var out: [String] = []
        for rule in Set(a.keys).union(b.keys).sorted() {
            switch (a[rule], b[rule]) {
            case (nil, let n?): out.append("+ \(rule): new rule, refuses what it does not allow: \(n)")
            case (let o?, nil): out.append("- \(rule): rule removed, now accepted regardless: was \(o)")
            case (let o?, let n?) where o != n:
                out.append("~ \(rule): \(o) → \(n)")
                out.append(contentsOf: valueChanges(rule, old, new))
            default: break
            }
        }
        return out
    }

    /// For allow-lists: which values the new version starts or stops accepting.
    static func valueChanges(_ rule: String, _ old: AttestationPolicy, _ new: AttestationPolicy) -> [String] {
        func values(_ p: AttestationPolicy) -> Set<String>? {
            let parts = rule.split(separator: ".")
            if parts.count == 3, parts[0] == Substring(RuleID.Section.pcrs.rawValue), let i = Int(parts[2]),
                case .oneOf(let v)? = p.pcrs?.expectations[TPMAlgorithmID(name: String(parts[1])) ?? .null]?[i]
            {
                return Set(v)
            }
            if rule == RuleID.bootApplications.description { return p.boot?.bootApplications.map { Set($0.allowed) } }
            return nil
        }
        guard let o = values(old), let n = values(new) else { return [] }
        return n.subtracting(o).sorted().map { "    now accepts \($0)" }
            + o.subtracting(n).sorted().map { "    now refuses \($0)" }
    }
}
