public import Attest
import Foundation

/// Golden capture: a readable policy that accepts exactly the boot a known-good device just did —
/// PCR values, Secure Boot state and databases, boot applications in order, kernel command line,
/// S-CRTM versions — as named reference sets a security team can edit.
public enum PolicyCapture {
    /// - Parameters:
    ///   - pcrs: which PCRs to pin (those the evidence has values for).
    public static func yaml(
        from evidence: VerifiedEvidence, id: String, source: String, pcrs indices: [Int] = Array(0...9) + [14]
    ) -> String {
        yaml(from: EvaluationInput(evidence), id: id, source: source, pcrs: indices)
    }

    /// Capture from a bare log (authoring); the description says it was unsigned.
    public static func yaml(
        from evidence: UnsignedEvidence, id: String, source: String, pcrs indices: [Int] = Array(0...9) + [14]
    ) -> String {
        yaml(from: EvaluationInput(evidence), id: id, source: source, pcrs: indices)
    }

    static func yaml(from evidence: EvaluationInput, id: String, source: String, pcrs indices: [Int]) -> String {
        let bankName =
            evidence.pcrs.banks[.sha256] != nil ? "sha256" : (evidence.pcrs.banks.keys.sorted().first?.name ?? "sha256")
        let bank = TPMAlgorithmID(name: bankName) ?? .sha256
        let facts = evidence.facts[bank] ?? evidence.eventLog.map { BootFacts($0, bank: bank) }
        var y: [String] = []
        func q(_ s: String) -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            let data = (try? encoder.encode(s)) ?? Data("\"\"".utf8)
            return String(decoding: data, as: UTF8.self)
        }
        y.append("id: \(id)")
        y.append("version: 1")
        y.append(
            "description: \(q("Captured from \(source) (\(evidence.unsigned ? "unsigned event log" : "verified evidence")). Review before use."))"
        )
        var sets: [(String, [String])] = []
        let apps = facts?.bootApplications.compactMap(\.digest) ?? []
        if !apps.isEmpty { sets.append(("boot-applications", apps)) }
        let db = facts?.signatureDatabases["db"]?.map(PolicyEngine.entryID) ?? []
        if !db.isEmpty { sets.append(("db", db)) }
        if !sets.isEmpty {
            y.append("reference_sets:")
            for (name, values) in sets {
                y.append("  \(name):")
                for v in values { y.append("    - \(v)") }
            }
        }
        y.append("pcrs:")
        y.append("  banks: [\(bankName)]")
        y.append("  \(bankName):")
        for index in indices.sorted() {
            guard let v = evidence.pcrs[bank, index] else { continue }
            y.append("    \"\(index)\": [\(Hex.encode(v))]")
        }
        if let facts {
            var boot: [String] = []
            if let sb = facts.secureBoot { boot.append("  secure_boot: \(sb ? "required" : "forbidden")") }
            if !db.isEmpty {
                boot.append("  db:")
                boot.append("    contains: [\"@db\"]")
            }
            if let dbx = facts.signatureDatabases["dbx"] {
                boot.append("  dbx:")
                boot.append("    min_entries: \(dbx.count)")
            }
            if !apps.isEmpty {
                boot.append("  boot_applications:")
                boot.append("    allowed: [\"@boot-applications\"]")
                boot.append("    ordered: true")
            }
            let args = Array(Set(facts.kernelCommandLines.flatMap { KernelCommandLine($0).arguments.map(\.text) }))
                .sorted()
            if !args.isEmpty {
                boot.append("  kernel_cmdline:")
                boot.append("    required: [\(args.map(q).joined(separator: ", "))]")
            }
            if !facts.sCRTMVersions.isEmpty {
                boot.append("  scrtm_versions: [\(facts.sCRTMVersions.map(q).joined(separator: ", "))]")
            }
            var forbid: [String] = []
            if !facts.separators.contains(where: \.isError) { forbid.append("error_separators") }
            if facts.debugMarkers.isEmpty { forbid.append("uefi_debug_mode") }
            if !forbid.isEmpty { boot.append("  forbid: [\(forbid.joined(separator: ", "))]") }
            if !boot.isEmpty {
                y.append("boot:")
                y.append(contentsOf: boot)
            }
        }
        return y.joined(separator: "\n") + "\n"
    }
}
