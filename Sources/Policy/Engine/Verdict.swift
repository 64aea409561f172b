import Foundation

/// The outcome of evaluating one policy against one piece of evidence: pass or fail, and for every
/// rule what was expected, what was found, and — for failures — the PCR and event involved.
public struct Verdict: Codable, Hashable, Sendable {
    /// How one rule came out: passed, failed, or not applicable (nothing to judge, e.g. an unmeasured dbx
    /// with Secure Boot off).
    public enum Status: String, Codable, Sendable {
        /// The rule held (`passed`) or did not (`failed`).
        case passed, failed
        /// The rule had nothing to judge in this evidence.
        case notApplicable = "not_applicable"
    }

    /// One rule's outcome, with what it expected and what the evidence showed.
    public struct RuleResult: Codable, Hashable, Sendable {
        /// The rule's id ("boot.secure_boot", "pcrs.sha256.7").
        public let rule: String
        /// Passed, failed or not applicable.
        public let status: Status
        /// False for `enforce: false` rules: reported, never failing the verdict.
        public let enforced: Bool
        /// What the policy asked for, in words ("enabled", "one of 2 value(s)").
        public let expected: String
        /// What the evidence showed, in words.
        public let actual: String
        /// The PCR bank the result is about, when one applies.
        public let bank: String?
        /// The PCR the result is about, for failures tied to a PCR.
        public let pcr: Int?
        /// The event index in the log, for failures tied to an event.
        public let event: Int?

        /// Builds a result (the engine and tests).
        public init(
            rule: String, status: Status, enforced: Bool, expected: String, actual: String, bank: String? = nil,
            pcr: Int? = nil, event: Int? = nil
        ) {
            self.rule = rule
            self.status = status
            self.enforced = enforced
            self.expected = expected
            self.actual = actual
            self.bank = bank
            self.pcr = pcr
            self.event = event
        }

        /// One line for people: "FAIL boot.secure_boot: expected enabled, found disabled (PCR 7, event 3)".
        public var line: String {
            let where_ = [pcr.map { "\(bank.map { "\($0) " } ?? "")PCR \($0)" }, event.map { "event \($0)" }].compactMap
            { $0 }.joined(separator: ", ")
            let tag = status == .failed ? (enforced ? "FAIL" : "WARN") : status == .passed ? "pass" : "n/a "
            return "\(tag) \(rule): expected \(expected), found \(actual)" + (where_.isEmpty ? "" : " (\(where_))")
        }
    }

    /// True when no enforced rule failed: the device meets the policy.
    public let pass: Bool
    /// The policy's `id`.
    public let policyID: String
    /// The policy's `version`.
    public let policyVersion: Int
    /// True when the evidence was not signed (authoring from a bare event log).
    public let unsignedEvidence: Bool
    /// True when the verifier supplied a credential-activation binding of the AK to the EK (EAR instance
    /// identity is affirming only then).
    public let akBoundToEK: Bool
    /// Every rule's result, in evaluation order.
    public let results: [RuleResult]

    /// Enforced rules that failed: why the verdict fails.
    public var failures: [RuleResult] { results.filter { $0.status == .failed && $0.enforced } }
    /// Warn-only (`enforce: false`) rules that failed: reported, not failing.
    public var warnings: [RuleResult] { results.filter { $0.status == .failed && !$0.enforced } }

    enum CodingKeys: String, CodingKey {
        case pass, policyID = "policy_id", policyVersion = "policy_version", unsignedEvidence = "unsigned_evidence",
            akBoundToEK = "ak_bound_to_ek", results
    }
}

/// An EAR-style appraisal (IETF RATS EAT Attestation Results, AR4SI trust tiers) of a verdict, for relying parties.
public struct EARAppraisal: Codable, Hashable, Sendable {
    /// "affirming", "warning" or "contraindicated".
    public let status: String
    /// AR4SI trust vector claims: claim → tier value (2 affirming, 32 warning, 96 contraindicated, 0 none).
    public let trustVector: [String: Int]
    /// "policy-id@version" of the policy that made the verdict.
    public let policyID: String

    enum CodingKeys: String, CodingKey {
        case status = "ear.status", trustVector = "ear.trustworthiness-vector", policyID = "ear.appraisal-policy-id"
    }

    /// Maps a verdict to an appraisal: per claim, 96 if an enforced rule failed, 32 for a warning or unsigned evidence,
    /// 2 if all passed, 0 if no rule judged it.
    public init(_ verdict: Verdict) {
        func tier(_ rules: [RuleID], sections: [RuleID.Section] = [], excluding: (String) -> Bool = { _ in false })
            -> Int
        {
            let ids = Set(rules.map(\.description))
            let relevant = verdict.results.filter { r in
                (ids.contains(r.rule) || ids.contains { r.rule.hasPrefix($0 + ".") }
                    || sections.contains { r.rule.hasPrefix($0.rawValue + ".") }) && !excluding(r.rule)
            }
            if relevant.isEmpty { return 0 }
            if relevant.contains(where: { $0.status == .failed && $0.enforced }) { return 96 }
            if relevant.contains(where: { $0.status == .failed }) || verdict.unsignedEvidence { return 32 }
            return 2
        }
        // Instance identity is affirmed only when credential activation bound the AK to the EK: without it, nothing
        // says which TPM signed (no claim, or contraindicated when an enforced identity rule failed).
        let identity = tier([.ekCertificate, .ekChain, .akAlgorithm, .akActivated])
        trustVector = [
            "instance-identity": verdict.akBoundToEK ? identity : (identity == 96 ? 96 : 0),
            "hardware": tier([.manufacturer, .minFirmwareVersion]),
            "executables": tier(
                [.bootApplications], sections: [.pcrs],
                excluding: { $0.hasPrefix(RuleID.Section.pcrs.rawValue + ".banks.") }),
            "configuration": tier(
                [.secureBoot, .pk, .kek, .db, .dbx, .dbxMinEntries, .kernelCommandLine, .sCRTMVersions]
                    + RuleID.ForbiddenEvent.allCases.map(RuleID.forbid)),
            "sourced-data": tier([], sections: [.freshness]),
        ]
        status =
            !verdict.pass
            ? "contraindicated" : (verdict.warnings.isEmpty && !verdict.unsignedEvidence ? "affirming" : "warning")
        policyID = "\(verdict.policyID)@\(verdict.policyVersion)"
    }
}
