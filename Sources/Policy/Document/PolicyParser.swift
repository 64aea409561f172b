import Attest

/// Turns a ``PolicyNode`` tree into an ``AttestationPolicy``, strictly: unknown keys, wrong types, bad
/// values and empty rule sets are errors with file:line:column.
struct PolicyParser {
    let file: String

    /// The keys each section allows; `policies/schema/policy.schema.json` must say the same (a test checks).
    static let keys: [String: Set<String>] = [
        "policy": [
            "id", "version", "description", "extends", "accept", "reference_sets", "identity", "freshness", "pcrs",
            "boot", "enforce",
        ],
        "identity": [
            "ek_certificate", "ek_ca", "manufacturers", "min_firmware_version", "ak_algorithms", "ak_activated",
        ],
        "freshness": ["max_nonce_age_seconds", "allow_reboot", "offline_grace_seconds"],
        "pcrs": ["banks", "sha1", "sha256", "sha384", "sha512", "sm3_256"],
        "boot": [
            "secure_boot", "pk", "kek", "db", "dbx", "boot_applications", "kernel_cmdline", "forbid", "scrtm_versions",
        ],
    ]

    func parse(_ root: PolicyNode) throws(PolicyError) -> AttestationPolicy {
        let top = try mapping(root, "policy", allowed: Self.keys["policy"])
        guard let idNode = top["id"] else { throw PolicyError(.missingKey, "\(root.location)", "the policy has no id") }
        let id = try string(idNode, "id")
        guard !id.isEmpty,
            id.utf8.allSatisfy({
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E || $0 == 0x5F
            })
        else {
            throw PolicyError(
                .invalidValue, "\(idNode.location)", "id \"\(id)\" must be lowercase letters, digits, '.', '-' or '_'")
        }
        guard let versionNode = top["version"] else {
            throw PolicyError(.missingKey, "\(root.location)", "the policy has no version")
        }
        let version = try int(versionNode, "version", min: 1)
        var policy = AttestationPolicy(id: id, version: version, source: file)
        Self.recordReferences(in: root, into: &policy.referenceLocations)
        if let d = top["description"] { policy.description = try string(d, "description") }
        if let e = top["extends"] {
            policy.extends = try string(e, "extends")
            policy.extendsLocation = "\(e.location)"
        }
        if let a = top["accept"] {
            guard try string(a, "accept") == "any" else {
                throw PolicyError(.invalidValue, "\(a.location)", "accept must be \"any\" (the only value), or absent")
            }
            policy.acceptAny = true
        }
        if let sets = top["reference_sets"] {
            for (name, node) in try mapping(sets, "reference_sets").pairs {
                policy.referenceSets[name] = try strings(node, "reference_sets.\(name)")
            }
        }
        if let n = top["identity"] { policy.identity = try identity(n) }
        if let n = top["freshness"] { policy.freshness = try freshness(n) }
        if let n = top["pcrs"] { policy.pcrs = try pcrs(n) }
        if let n = top["boot"] { policy.boot = try boot(n) }
        if let n = top["enforce"] {
            for (rule, value) in try mapping(n, "enforce").pairs {
                guard try bool(value, "enforce.\(rule)") == false else { continue }
                policy.warnOnly.insert(rule)
            }
        }
        // The offline grace is a setting, not a rule: a policy with only it still says nothing about the device.
        let freshnessRules = policy.freshness.map { $0.maxNonceAgeSeconds != nil || $0.allowReboot != nil } ?? false
        let hasRules = policy.identity != nil || freshnessRules || policy.pcrs != nil || policy.boot != nil
        if !hasRules && !policy.acceptAny && policy.extends == nil {
            throw PolicyError(
                .emptyRules, "\(root.location)",
                "policy \"\(id)\" has no rules; a policy must say what it accepts (write `accept: any` to accept everything)"
            )
        }
        return policy
    }

    // MARK: Sections

    func identity(_ node: PolicyNode) throws(PolicyError) -> AttestationPolicy.IdentityRules {
        let m = try mapping(node, "identity", allowed: Self.keys["identity"], nonEmpty: true)
        var r = AttestationPolicy.IdentityRules()
        if let n = m["ek_certificate"] {
            switch try string(n, "identity.ek_certificate") {
            case "required": r.requireEKCertificate = true
            case "optional": r.requireEKCertificate = false
            default:
                throw PolicyError(
                    .invalidValue, "\(n.location)", "identity.ek_certificate must be \"required\" or \"optional\"")
            }
        }
        if let n = m["ak_activated"] {
            switch try string(n, "identity.ak_activated") {
            case "required": r.requireAKActivation = true
            case "optional": r.requireAKActivation = false
            default:
                throw PolicyError(
                    .invalidValue, "\(n.location)", "identity.ak_activated must be \"required\" or \"optional\"")
            }
        }
        if let n = m["ek_ca"] { r.ekCA = try string(n, "identity.ek_ca") }
        if let n = m["manufacturers"] { r.manufacturers = try strings(n, "identity.manufacturers", nonEmpty: true) }
        if let n = m["min_firmware_version"] {
            func version(_ node: PolicyNode, _ field: String) throws(PolicyError) -> UInt64 {
                let text = try string(node, field)
                let value = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
                guard let value else {
                    throw PolicyError(.invalidValue, "\(node.location)", "\(field) must be an integer or 0x-hex")
                }
                return value
            }
            if case .mapping = n {
                var byManufacturer: [String: UInt64] = [:]
                for (manufacturer, v) in try mapping(n, "identity.min_firmware_version", nonEmpty: true).pairs {
                    byManufacturer[manufacturer] = try version(v, "identity.min_firmware_version.\(manufacturer)")
                }
                r.minFirmwareVersionByManufacturer = byManufacturer
            } else {
                r.minFirmwareVersion = try version(n, "identity.min_firmware_version")
            }
        }
        if let n = m["ak_algorithms"] {
            let algs = try strings(n, "identity.ak_algorithms", nonEmpty: true)
            let known: Set<String> = ["ecc-p256", "ecc-p384", "ecc-p521", "rsa-2048", "rsa-3072", "rsa-4096"]
            for a in algs where !known.contains(a) {
                throw PolicyError(
                    .invalidValue, "\(n.location)",
                    "identity.ak_algorithms: unknown algorithm \"\(a)\" (known: \(known.sorted().joined(separator: ", ")))"
                )
            }
            r.akAlgorithms = algs
        }
        return r
    }

    func freshness(_ node: PolicyNode) throws(PolicyError) -> AttestationPolicy.FreshnessRules {
        let m = try mapping(node, "freshness", allowed: Self.keys["freshness"], nonEmpty: true)
        var r = AttestationPolicy.FreshnessRules()
        if let n = m["max_nonce_age_seconds"] {
            r.maxNonceAgeSeconds = try int(n, "freshness.max_nonce_age_seconds", min: 1)
        }
        if let n = m["allow_reboot"] { r.allowReboot = try bool(n, "freshness.allow_reboot") }
        if let n = m["offline_grace_seconds"] {
            let grace = try int(n, "freshness.offline_grace_seconds", min: 0)
            guard grace <= 7 * 86400 else {
                throw PolicyError(
                    .invalidValue, "\(n.location)",
                    "freshness.offline_grace_seconds: \(grace) is more than a week (604800); a stolen box would run that long unattested"
                )
            }
            r.offlineGraceSeconds = grace
        }
        return r
    }

    static let bankNames: Set<String> = ["sha1", "sha256", "sha384", "sha512", "sm3_256"]

    func pcrs(_ node: PolicyNode) throws(PolicyError) -> AttestationPolicy.PCRRules {
        let m = try mapping(node, "pcrs", allowed: Self.keys["pcrs"], nonEmpty: true)
        var r = AttestationPolicy.PCRRules(trustedBanks: [.sha256], expectations: [:])
        if let n = m["banks"] {
            let banks = try strings(n, "pcrs.banks", nonEmpty: true)
            for b in banks where !Self.bankNames.contains(b) {
                throw PolicyError(.invalidValue, "\(n.location)", "pcrs.banks: unknown bank \"\(b)\"")
            }
            r.trustedBanks = banks.compactMap(TPMAlgorithmID.init(name:))
        }
        for (bank, bankNode) in m.pairs where bank != "banks" {
            let size = TPMAlgorithmID(name: bank)?.digestSize ?? 32
            var byIndex: [Int: AttestationPolicy.PCRExpectation] = [:]
            let pcrMap = try mapping(bankNode, "pcrs.\(bank)", nonEmpty: true)
            for (key, value) in pcrMap.pairs {
                guard let index = Int(key), (0..<24).contains(index) else {
                    throw PolicyError(
                        .invalidValue, "\(pcrMap.location(of: key))", "pcrs.\(bank): \"\(key)\" is not a PCR index 0–23"
                    )
                }
                let field = "pcrs.\(bank).\(index)"
                if case .scalar(let s, let loc) = value {
                    switch s {
                    case "replay": byIndex[index] = .replay
                    case "any": byIndex[index] = .any
                    default:
                        if s.hasPrefix("@") {
                            byIndex[index] = .oneOf([s])
                            continue
                        }
                        throw PolicyError(
                            .invalidValue, "\(loc)", "\(field) must be a list of allowed values, \"replay\" or \"any\"")
                    }
                } else {
                    let values = try strings(value, field, nonEmpty: true)
                    var canonical: [String] = []
                    for v in values {
                        if v.hasPrefix("@") {
                            canonical.append(v)
                            continue
                        }
                        guard let bytes = Hex.decode(v), bytes.count == size else {
                            throw PolicyError(
                                .invalidValue, "\(value.location)",
                                "\(field): \"\(v)\" is not a \(size)-byte hex \(bank) value")
                        }
                        canonical.append(Hex.encode(bytes))
                    }
                    byIndex[index] = .oneOf(canonical)
                }
            }
            guard let id = TPMAlgorithmID(name: bank) else {
                throw PolicyError(.invalidValue, "\(bankNode.location)", "pcrs: unknown bank \"\(bank)\"")
            }
            r.expectations[id] = byIndex
        }
        return r
    }

    func boot(_ node: PolicyNode) throws(PolicyError) -> AttestationPolicy.BootRules {
        let m = try mapping(node, "boot", allowed: Self.keys["boot"], nonEmpty: true)
        var r = AttestationPolicy.BootRules()
        if let n = m["secure_boot"] {
            switch try string(n, "boot.secure_boot") {
            case "required": r.secureBoot = true
            case "forbidden": r.secureBoot = false
            default:
                throw PolicyError(
                    .invalidValue, "\(n.location)", "boot.secure_boot must be \"required\" or \"forbidden\"")
            }
        }
        for name in ["pk", "kek", "db"] {
            guard let n = m[name] else { continue }
            let sm = try mapping(n, "boot.\(name)", allowed: ["contains", "equals"], nonEmpty: true)
            let rule = AttestationPolicy.SignatureDatabaseRule(
                contains: try sm["contains"].map { (x: PolicyNode) throws(PolicyError) in
                    try hexList(x, "boot.\(name).contains", size: 32)
                },
                equals: try sm["equals"].map { (x: PolicyNode) throws(PolicyError) in
                    try hexList(x, "boot.\(name).equals", size: 32, allowEmpty: true)
                })
            switch name {
            case "pk": r.pk = rule
            case "kek": r.kek = rule
            default: r.db = rule
            }
        }
        if let n = m["dbx"] {
            let dm = try mapping(n, "boot.dbx", allowed: ["contains", "min_entries"], nonEmpty: true)
            r.dbx = AttestationPolicy.DBXRule(
                contains: try dm["contains"].map { (x: PolicyNode) throws(PolicyError) in
                    try hexList(x, "boot.dbx.contains", size: 32)
                },
                minEntries: try dm["min_entries"].map { (x: PolicyNode) throws(PolicyError) in
                    try int(x, "boot.dbx.min_entries", min: 0)
                })
        }
        if let n = m["boot_applications"] {
            let bm = try mapping(n, "boot.boot_applications", allowed: ["allowed", "ordered"], nonEmpty: true)
            guard let allowed = bm["allowed"] else {
                throw PolicyError(.missingKey, "\(n.location)", "boot.boot_applications needs allowed:")
            }
            r.bootApplications = AttestationPolicy.BootApplicationsRule(
                allowed: try hexList(allowed, "boot.boot_applications.allowed", sizes: Self.digestSizes),
                ordered: try bm["ordered"].map { (x: PolicyNode) throws(PolicyError) in
                    try bool(x, "boot.boot_applications.ordered")
                } ?? false)
        }
        if let n = m["kernel_cmdline"] {
            let km = try mapping(
                n, "boot.kernel_cmdline", allowed: ["required", "forbidden", "allowed_patterns"], nonEmpty: true)
            r.kernelCommandLine = AttestationPolicy.KernelCommandLineRule(
                required: try km["required"].map { (x: PolicyNode) throws(PolicyError) in
                    try strings(x, "boot.kernel_cmdline.required", nonEmpty: true)
                },
                forbidden: try km["forbidden"].map { (x: PolicyNode) throws(PolicyError) in
                    try strings(x, "boot.kernel_cmdline.forbidden", nonEmpty: true)
                },
                allowedPatterns: try km["allowed_patterns"].map { (x: PolicyNode) throws(PolicyError) in
                    try strings(x, "boot.kernel_cmdline.allowed_patterns", nonEmpty: true)
                })
        }
        if let n = m["forbid"] {
            let items = try strings(n, "boot.forbid", nonEmpty: true)
            let known: Set<String> = [
                "debugger", "uefi_debug_mode", "error_separators", "events_after_exit_boot_services",
            ]
            for i in items where !known.contains(i) {
                throw PolicyError(
                    .invalidValue, "\(n.location)",
                    "boot.forbid: unknown event class \"\(i)\" (known: \(known.sorted().joined(separator: ", ")))")
            }
            r.forbid = items
        }
        if let n = m["scrtm_versions"] { r.sCRTMVersions = try strings(n, "boot.scrtm_versions", nonEmpty: true) }
        return r
    }

    // MARK: Typed accessors

    struct Mapping {
        let pairs: [(String, PolicyNode)]
        let locations: [String: PolicyNode.Location]
        let node: PolicyNode
        subscript(key: String) -> PolicyNode? { pairs.first { $0.0 == key }?.1 }
        func location(of key: String) -> PolicyNode.Location { locations[key] ?? node.location }
    }

    func mapping(_ node: PolicyNode, _ field: String, allowed: Set<String>? = nil, nonEmpty: Bool = false)
        throws(PolicyError) -> Mapping
    {
        guard case .mapping(let pairs, let loc) = node else {
            throw PolicyError(.wrongType, "\(node.location)", "\(field) must be a mapping")
        }
        if let allowed {
            for p in pairs where !allowed.contains(p.key) {
                throw PolicyError(
                    .unknownKey, "\(p.keyLocation)",
                    "unknown key \"\(p.key)\" in \(field) (allowed: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
        if nonEmpty && pairs.isEmpty {
            throw PolicyError(.emptyRules, "\(loc)", "\(field) is empty: remove it or give it rules")
        }
        return Mapping(
            pairs: pairs.map { ($0.key, $0.value) },
            locations: Dictionary(pairs.map { ($0.key, $0.keyLocation) }, uniquingKeysWith: { a, _ in a }), node: node)
    }

    /// The first place each "@name" value is written (the tree is already bounded in size and depth).
    static func recordReferences(in node: PolicyNode, into locations: inout SourceLocations) {
        switch node {
        case .scalar(let s, let location):
            if s.hasPrefix("@"), locations[s] == nil { locations[s] = "\(location)" }
        case .sequence(let items, _):
            for item in items { recordReferences(in: item, into: &locations) }
        case .mapping(let pairs, _):
            for pair in pairs { recordReferences(in: pair.value, into: &locations) }
        }
    }

    func string(_ node: PolicyNode, _ field: String) throws(PolicyError) -> String {
        guard case .scalar(let s, _) = node else {
            throw PolicyError(.wrongType, "\(node.location)", "\(field) must be a string")
        }
        return s
    }

    func strings(_ node: PolicyNode, _ field: String, nonEmpty: Bool = false) throws(PolicyError) -> [String] {
        guard case .sequence(let items, let loc) = node else {
            throw PolicyError(.wrongType, "\(node.location)", "\(field) must be a list")
        }
        if nonEmpty && items.isEmpty { throw PolicyError(.emptyRules, "\(loc)", "\(field) is an empty list") }
        var out: [String] = []
        for item in items { out.append(try string(item, "\(field)[]")) }
        return out
    }

    /// Hex values in canonical form (lowercase, no "0x"), each `size` bytes (or one of `sizes`); "@set" references
    /// are kept for the loader, which checks their members the same way.
    func hexList(_ node: PolicyNode, _ field: String, size: Int, allowEmpty: Bool = false) throws(PolicyError)
        -> [String]
    {
        try hexList(node, field, sizes: [size], allowEmpty: allowEmpty)
    }

    func hexList(_ node: PolicyNode, _ field: String, sizes: Set<Int>, allowEmpty: Bool = false) throws(PolicyError)
        -> [String]
    {
        let values = try strings(node, field, nonEmpty: !allowEmpty)
        var out: [String] = []
        for v in values {
            if v.hasPrefix("@") {
                out.append(v)
                continue
            }
            guard let b = Hex.decode(v), sizes.contains(b.count) else {
                throw PolicyError(
                    .invalidValue, "\(node.location)", "\(field): \"\(v)\" is not \(Self.describe(sizes)) of hex")
            }
            out.append(Hex.encode(b))
        }
        return out
    }

    static func describe(_ sizes: Set<Int>) -> String {
        sizes.count == 1
            ? "\(sizes.first ?? 0) bytes" : sizes.sorted().map(String.init).joined(separator: ", ") + " bytes"
    }

    /// Digest sizes a boot-application allow-list may hold (SHA-1, SHA-256/SM3, SHA-384, SHA-512 banks).
    static let digestSizes: Set<Int> = [20, 32, 48, 64]

    func int(_ node: PolicyNode, _ field: String, min: Int) throws(PolicyError) -> Int {
        guard case .scalar(let s, _) = node, let v = Int(s) else {
            throw PolicyError(.wrongType, "\(node.location)", "\(field) must be an integer")
        }
        guard v >= min else { throw PolicyError(.invalidValue, "\(node.location)", "\(field) must be at least \(min)") }
        return v
    }

    func bool(_ node: PolicyNode, _ field: String) throws(PolicyError) -> Bool {
        guard case .scalar(let s, _) = node else {
            throw PolicyError(.wrongType, "\(node.location)", "\(field) must be true or false")
        }
        switch s {
        case "true": return true
        case "false": return false
        default: throw PolicyError(.wrongType, "\(node.location)", "\(field) must be true or false")
        }
    }
}
