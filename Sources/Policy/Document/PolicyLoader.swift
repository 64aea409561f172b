import Attest
import Foundation

/// Loads policy files: parses them, resolves `extends:` (by id, among the given files and the
/// `<id>.yaml` files next to them), rejects duplicate ids and cycles, merges, and resolves "@set"
/// references. The result is a flat ``AttestationPolicy`` ready for the engine.
public enum PolicyLoader {
    /// Parses one file without resolving `extends` (what `lint` checks first).
    public static func parseFile(_ path: String) throws(PolicyError) -> AttestationPolicy {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size <= PolicyNode.maxSize else {
            throw PolicyError(.tooLarge, "\(path):1:1", "policy is \(size) bytes; the limit is \(PolicyNode.maxSize)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PolicyError(.notFound, "\(path):1:1", "cannot read the policy file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PolicyError(.syntax, "\(path):1:1", "the policy is not UTF-8 text")
        }
        return try parse(text, file: path)
    }

    /// Parses policy text without resolving `extends`; `file` names it in error locations.
    public static func parse(_ text: String, file: String) throws(PolicyError) -> AttestationPolicy {
        try PolicyParser(file: file).parse(try PolicyNode.parse(text, file: file))
    }

    /// Loads `path` and everything it extends; `others` are further files that may be extended by id.
    public static func load(_ path: String, others: [String] = []) throws(PolicyError) -> AttestationPolicy {
        var byID: [String: AttestationPolicy] = [:]
        let main = try parseFile(path)
        byID[main.id] = main
        for other in others where other != path {
            let p = try parseFile(other)
            if let existing = byID[p.id] {
                throw PolicyError(
                    .duplicate, "\(other):1:1", "duplicate policy id \"\(p.id)\" (also in \(existing.source))")
            }
            byID[p.id] = p
        }
        return try resolve(main, byID: &byID, folder: (path as NSString).deletingLastPathComponent, chain: [])
    }

    /// Loads policy text held in memory (a controller's stored version): parses it, resolves `extends` among
    /// `others` only (nothing is read from disk) and resolves "@set" references. `file` names it in messages.
    public static func load(text: String, file: String, others: [AttestationPolicy] = []) throws(PolicyError)
        -> AttestationPolicy
    {
        let main = try parse(text, file: file)
        var byID: [String: AttestationPolicy] = [main.id: main]
        for p in others where p.id != main.id { byID[p.id] = p }
        // An empty folder: `extends` not found among `others` is an error, never a file lookup.
        return try resolve(main, byID: &byID, folder: "/nonexistent-vigil-policy-folder", chain: [])
    }

    static func resolve(
        _ policy: AttestationPolicy, byID: inout [String: AttestationPolicy], folder: String, chain: [String]
    ) throws(PolicyError) -> AttestationPolicy {
        guard !chain.contains(policy.id) else {
            throw PolicyError(
                .cyclicExtends, policy.extendsLocation ?? "\(policy.source):1:1",
                "cyclic extends: \((chain + [policy.id]).joined(separator: " → "))")
        }
        var merged = policy
        if let parentID = policy.extends {
            var parent = byID[parentID]
            if parent == nil {
                let candidate = (folder as NSString).appendingPathComponent("\(parentID).yaml")
                if FileManager.default.fileExists(atPath: candidate) {
                    let p = try parseFile(candidate)
                    guard p.id == parentID else {
                        throw PolicyError(
                            .notFound, "\(candidate):1:1", "\(candidate) has id \"\(p.id)\", not \"\(parentID)\"")
                    }
                    byID[parentID] = p
                    parent = p
                }
            }
            guard let parent else {
                throw PolicyError(
                    .notFound, policy.extendsLocation ?? "\(policy.source):1:1",
                    "policy \"\(policy.id)\" extends \"\(parentID)\", which was not found (looked for \(parentID).yaml next to it)"
                )
            }
            let resolvedParent = try resolve(parent, byID: &byID, folder: folder, chain: chain + [policy.id])
            merged = merge(parent: resolvedParent, child: policy)
        }
        if chain.isEmpty { try resolveReferences(&merged) }
        return merged
    }

    /// Child sections replace the parent's rule by rule.
    static func merge(parent: AttestationPolicy, child: AttestationPolicy) -> AttestationPolicy {
        var m = child
        m.extends = child.extends
        m.acceptAny = child.acceptAny || parent.acceptAny
        m.referenceSets = parent.referenceSets.merging(child.referenceSets) { _, c in c }
        m.referenceLocations.byName = parent.referenceLocations.byName.merging(child.referenceLocations.byName) {
            _, c in c
        }
        m.warnOnly = parent.warnOnly.union(child.warnOnly)
        if var id = parent.identity {
            if let c = child.identity {
                id.requireEKCertificate = c.requireEKCertificate ?? id.requireEKCertificate
                id.ekCA = c.ekCA ?? id.ekCA
                id.manufacturers = c.manufacturers ?? id.manufacturers
                id.minFirmwareVersion = c.minFirmwareVersion ?? id.minFirmwareVersion
                id.minFirmwareVersionByManufacturer =
                    c.minFirmwareVersionByManufacturer ?? id.minFirmwareVersionByManufacturer
                id.akAlgorithms = c.akAlgorithms ?? id.akAlgorithms
                id.requireAKActivation = c.requireAKActivation ?? id.requireAKActivation
            }
            m.identity = id
        }
        if var f = parent.freshness {
            if let c = child.freshness {
                f.maxNonceAgeSeconds = c.maxNonceAgeSeconds ?? f.maxNonceAgeSeconds
                f.allowReboot = c.allowReboot ?? f.allowReboot
                f.offlineGraceSeconds = c.offlineGraceSeconds ?? f.offlineGraceSeconds
            }
            m.freshness = f
        }
        if var p = parent.pcrs {
            if let c = child.pcrs {
                p.trustedBanks = c.trustedBanks
                for (bank, values) in c.expectations {
                    p.expectations[bank, default: [:]].merge(values) { _, new in new }
                }
            }
            m.pcrs = p
        }
        if var b = parent.boot {
            if let c = child.boot {
                b.secureBoot = c.secureBoot ?? b.secureBoot
                b.pk = c.pk ?? b.pk
                b.kek = c.kek ?? b.kek
                b.db = c.db ?? b.db
                b.dbx = c.dbx ?? b.dbx
                b.bootApplications = c.bootApplications ?? b.bootApplications
                b.kernelCommandLine = c.kernelCommandLine ?? b.kernelCommandLine
                b.forbid = c.forbid ?? b.forbid
                b.sCRTMVersions = c.sCRTMVersions ?? b.sCRTMVersions
            }
            m.boot = b
        }
        return m
    }

    /// The keys each policy section allows (the schema's `properties` must match).
    public static var allowedKeys: [String: Set<String>] { PolicyParser.keys }

    /// Resolves references of a policy parsed from text (no `extends`), as ``load(_:others:)`` does.
    public static func resolveForTesting(_ p: inout AttestationPolicy) throws(PolicyError) {
        guard p.extends == nil else {
            throw PolicyError(.notFound, "\(p.source):1:1", "extends needs PolicyLoader.load")
        }
        try resolveReferences(&p)
    }

    /// Replaces every "@name" with the members of reference set `name`.
    static func resolveReferences(_ p: inout AttestationPolicy) throws(PolicyError) {
        let sets = p.referenceSets
        let source = p.source
        let locations = p.referenceLocations
        /// - Parameter hex: for digest fields, the allowed byte sizes: members are checked and put in canonical
        ///   form (lowercase, no "0x"); nil for strings (kernel arguments, S-CRTM versions), kept exactly as written.
        func expand(_ values: [String], _ field: String, hex: Set<Int>? = nil) throws(PolicyError) -> [String] {
            var out: [String] = []
            for v in values {
                if v.hasPrefix("@") {
                    guard let members = sets[String(v.dropFirst())] else {
                        throw PolicyError(
                            .notFound, locations[v] ?? "\(source):1:1",
                            "\(field) refers to \(v), but reference_sets has no \"\(v.dropFirst())\"")
                    }
                    guard let sizes = hex else {
                        out.append(contentsOf: members)
                        continue
                    }
                    for m in members {
                        guard let bytes = Hex.decode(m), sizes.contains(bytes.count) else {
                            throw PolicyError(
                                .invalidValue, locations[v] ?? "\(source):1:1",
                                "\(field) refers to \(v), whose member \"\(m)\" is not \(PolicyParser.describe(sizes)) of hex"
                            )
                        }
                        out.append(Hex.encode(bytes))
                    }
                } else {
                    out.append(v)
                }
            }
            return out
        }
        if var pcrs = p.pcrs {
            for (bank, values) in pcrs.expectations {
                for (index, e) in values {
                    let size = bank.digestSize.map { Set([$0]) } ?? PolicyParser.digestSizes
                    if case .oneOf(let list) = e {
                        pcrs.expectations[bank]?[index] = .oneOf(
                            try expand(list, "pcrs.\(bank.name).\(index)", hex: size))
                    }
                }
            }
            p.pcrs = pcrs
        }
        if var b = p.boot {
            if let x = b.bootApplications {
                b.bootApplications?.allowed = try expand(
                    x.allowed, "boot.boot_applications.allowed", hex: PolicyParser.digestSizes)
            }
            if let x = b.pk?.contains { b.pk?.contains = try expand(x, "boot.pk.contains", hex: [32]) }
            if let x = b.kek?.contains { b.kek?.contains = try expand(x, "boot.kek.contains", hex: [32]) }
            if let x = b.db?.contains { b.db?.contains = try expand(x, "boot.db.contains", hex: [32]) }
            if let x = b.pk?.equals { b.pk?.equals = try expand(x, "boot.pk.equals", hex: [32]) }
            if let x = b.kek?.equals { b.kek?.equals = try expand(x, "boot.kek.equals", hex: [32]) }
            if let x = b.db?.equals { b.db?.equals = try expand(x, "boot.db.equals", hex: [32]) }
            if let x = b.dbx?.contains { b.dbx?.contains = try expand(x, "boot.dbx.contains", hex: [32]) }
            if let x = b.kernelCommandLine?.required {
                b.kernelCommandLine?.required = try expand(x, "boot.kernel_cmdline.required")
            }
            if let x = b.kernelCommandLine?.forbidden {
                b.kernelCommandLine?.forbidden = try expand(x, "boot.kernel_cmdline.forbidden")
            }
            if let x = b.kernelCommandLine?.allowedPatterns {
                b.kernelCommandLine?.allowedPatterns = try expand(x, "boot.kernel_cmdline.allowed_patterns")
            }
            if let x = b.sCRTMVersions { b.sCRTMVersions = try expand(x, "boot.scrtm_versions") }
            p.boot = b
        }
        if var id = p.identity, let m = id.manufacturers {
            id.manufacturers = try expand(m, "identity.manufacturers")
            p.identity = id
        }
        // warn-only rule names must name rules this policy has.
        let known = Set(PolicyEngine.ruleIDs(of: p).map(\.description))
        for rule in p.warnOnly where !known.contains(rule) {
            throw PolicyError(
                .unknownKey, "\(source):1:1",
                "enforce: \"\(rule)\" is not a rule of this policy (rules: \(known.sorted().joined(separator: ", ")))")
        }
    }
}
