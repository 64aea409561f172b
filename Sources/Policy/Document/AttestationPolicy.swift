public import Attest

/// A security team's attestation policy, as written in YAML (see `policies/schema/policy.schema.json`).
///
/// There is no implicit accept-all: a policy with no rules is an error, and a policy that accepts
/// everything must say `accept: any` (which `vigil policy lint` flags).
public struct AttestationPolicy: Hashable, Sendable {
    /// `id`: the policy's name (lowercase letters, digits, `.`, `_`, `-`), reported in every verdict.
    public var id: String
    /// `version`: the policy's revision (1 or more), reported in every verdict.
    public var version: Int
    /// `description`: free text for people; not evaluated.
    public var description: String
    /// The policy this one extends (its rules apply first; this one's rules replace same-named ones).
    public var extends: String?
    /// `accept: any`: the explicitly permissive policy.
    public var acceptAny: Bool
    /// Named sets of values (digests, fingerprints, strings) referenced as "@name".
    public var referenceSets: [String: [String]]
    /// `identity:` rules about which TPM signed (EK certificate, its chain, manufacturer, firmware, AK algorithm).
    public var identity: IdentityRules?
    /// `freshness:` rules about when the evidence was made (nonce age, reboots).
    public var freshness: FreshnessRules?
    /// `pcrs:` expected PCR values per bank.
    public var pcrs: PCRRules?
    /// `boot:` rules over verified boot events (Secure Boot, key databases, boot applications, command line).
    public var boot: BootRules?
    /// Rules reported but not enforced (staged roll-outs): rule id → false.
    public var warnOnly: Set<String>
    /// Where the policy was read from, for messages.
    public var source: String
    /// Where `extends:` is written ("file:line:column"), for messages.
    public var extendsLocation: String?
    /// Where each "@name" reference is first written, for messages.
    public var referenceLocations = SourceLocations()

    /// Builds a policy in code (tests, golden capture); `source` names it in messages.
    public init(
        id: String, version: Int, description: String = "", extends: String? = nil, acceptAny: Bool = false,
        referenceSets: [String: [String]] = [:], identity: IdentityRules? = nil, freshness: FreshnessRules? = nil,
        pcrs: PCRRules? = nil, boot: BootRules? = nil, warnOnly: Set<String> = [], source: String = ""
    ) {
        self.id = id
        self.version = version
        self.description = description
        self.extends = extends
        self.acceptAny = acceptAny
        self.referenceSets = referenceSets
        self.identity = identity
        self.freshness = freshness
        self.pcrs = pcrs
        self.boot = boot
        self.warnOnly = warnOnly
        self.source = source
    }

    /// The `identity:` section: which TPMs may attest. EK-derived rules also need the verifier's AK binding,
    /// and the manufacturer is believed only from a certificate that chains to `ek_ca`.
    public struct IdentityRules: Hashable, Sendable {
        /// Require an EK certificate in the evidence.
        public var requireEKCertificate: Bool?
        /// Folder of trusted EK CA certificates (roots and intermediates), relative to the policy file.
        public var ekCA: String?
        /// Allowed TPM manufacturers: vendor ids as in the EK certificate ("id:53544D20") or ASCII ("STM").
        public var manufacturers: [String]?
        /// Minimum TPM firmware version (TPM_PT_FIRMWARE_VERSION_1 << 32 | _2), from the signed quote.
        public var minFirmwareVersion: UInt64?
        /// Minimum firmware versions per manufacturer ("STM" or "id:53544D20" → version), chosen by the EK
        /// certificate's TPM manufacturer.
        public var minFirmwareVersionByManufacturer: [String: UInt64]?
        /// Allowed AK algorithms: "ecc-p256", "ecc-p384", "rsa-2048", "rsa-3072", "rsa-4096".
        public var akAlgorithms: [String]?
        /// `ak_activated: required`: the AK must be bound to the EK by credential activation (TPM2_ActivateCredential).
        /// Devices attesting through EVE's API cannot be (the protocol has no activation step): this refuses them.
        public var requireAKActivation: Bool?
    }

    /// The `freshness:` section: how recent the evidence must be, judged against the verifier's own nonce records.
    public struct FreshnessRules: Hashable, Sendable {
        /// The longest time from issuing the nonce to checking the quote.
        public var maxNonceAgeSeconds: Int?
        /// Whether a reboot (TPM resetCount change) since the previous attestation is acceptable.
        public var allowReboot: Bool?
        /// `offline_grace_seconds`: how long a node may keep its gate open on a passing, unexpired result while the
        /// controller cannot be reached (a node setting, carried in the signed result; not a rule: it judges
        /// nothing). Absent: none, the gate closes when a re-attestation cannot reach the controller.
        public var offlineGraceSeconds: Int?
    }

    /// The `pcrs:` section: which banks are trusted and what each quoted PCR must hold.
    public struct PCRRules: Hashable, Sendable {
        /// Banks whose values policy trusts (default: sha256). Every trusted bank must be quoted.
        public var trustedBanks: [TPMAlgorithmID]
        /// bank → PCR index → expectation.
        public var expectations: [TPMAlgorithmID: [Int: PCRExpectation]]
    }

    /// What one PCR must hold (`pcrs.<bank>.<index>` in YAML).
    public enum PCRExpectation: Hashable, Sendable {
        /// The quoted value must be one of these (lowercase hex, or "@set" references resolved at load).
        case oneOf([String])
        /// The quoted value must equal the event log's replay (the log must be present and verified).
        case replay
        /// Anything (documented as deliberately unchecked).
        case any
    }

    /// The `boot:` section: rules over events whose PCR replayed to the signed quote; a rule whose events are not
    /// verified fails.
    public struct BootRules: Hashable, Sendable {
        /// true: Secure Boot must be on; false: must be off.
        public var secureBoot: Bool?
        /// `boot.pk`: what the Secure Boot Platform Key database measured in PCR 7 must hold.
        public var pk: SignatureDatabaseRule?
        /// `boot.kek`: what the Key Exchange Key database measured in PCR 7 must hold.
        public var kek: SignatureDatabaseRule?
        /// `boot.db`: what the allowed-signatures database measured in PCR 7 must hold.
        public var db: SignatureDatabaseRule?
        /// `boot.dbx`: what the revocation database measured in PCR 7 must hold.
        public var dbx: DBXRule?
        /// `boot.boot_applications`: the code allowed to run from PCR 4 (judged by digest).
        public var bootApplications: BootApplicationsRule?
        /// `boot.kernel_cmdline`: the arguments the kernel may be started with.
        public var kernelCommandLine: KernelCommandLineRule?
        /// Events that must not occur: "debugger", "uefi_debug_mode", "error_separators", "events_after_exit_boot_services".
        public var forbid: [String]?
        /// Allowed S-CRTM / firmware version strings.
        public var sCRTMVersions: [String]?
    }

    /// `boot.pk`, `boot.kek`, `boot.db`: entries of a Secure Boot database, by SHA-256 (certificate fingerprint or
    /// image hash, 64 hex digits, or "@set").
    public struct SignatureDatabaseRule: Hashable, Sendable {
        /// Certificates (SHA-256 fingerprints) that must be present.
        public var contains: [String]?
        /// The exact set of certificates (fingerprints) and hashes allowed.
        public var equals: [String]?
    }

    /// `boot.dbx`: revocations that must be present, and a minimum size.
    public struct DBXRule: Hashable, Sendable {
        /// Hashes (or certificate fingerprints) that must be revoked.
        public var contains: [String]?
        /// At least this many entries.
        public var minEntries: Int?
    }

    /// `boot.boot_applications`: the boot loaders, shims and kernels allowed to load.
    public struct BootApplicationsRule: Hashable, Sendable {
        /// Allowed digests (hex, canonical) of PCR 4 measurements, in one bank's size.
        public var allowed: [String] { didSet { allowedSet = Set(allowed) } }
        /// When true, the applications must be exactly `allowed`, in this order.
        public var ordered: Bool
        /// ``allowed`` as a set, built when the list is set (not per evaluation).
        private var allowedSet: Set<String>

        /// Builds the rule; `allowed` must already be canonical lowercase hex.
        public init(allowed: [String], ordered: Bool) {
            self.allowed = allowed
            self.ordered = ordered
            allowedSet = Set(allowed)
        }

        /// Whether `digest` (hex, canonical) is allowed.
        public func allows(_ digest: String) -> Bool { allowedSet.contains(digest) }
    }

    /// `boot.kernel_cmdline`: what the kernel command line (as GRUB or systemd-boot measured it) must and must
    /// not contain.
    public struct KernelCommandLineRule: Hashable, Sendable {
        /// Arguments that must appear (exact "key=value" or bare flags).
        public var required: [String]?
        /// Arguments that must not appear (a bare key forbids any value of it).
        public var forbidden: [String]?
        /// When set, every argument must match one of these patterns ("*" matches any run of characters).
        public var allowedPatterns: [String]?
    }
}

/// "file:line:column" of things written in a policy, for messages. Metadata, not content: two policies that
/// say the same thing are equal wherever they were written.
public struct SourceLocations: Hashable, Sendable {
    /// Location by name ("@name" references, keys).
    public var byName: [String: String] = [:]

    /// An empty table.
    public init() {}

    /// The location of `name`, if recorded.
    public subscript(name: String) -> String? {
        get { byName[name] }
        set { byName[name] = newValue }
    }

    /// Always true: locations are metadata, not content.
    public static func == (lhs: SourceLocations, rhs: SourceLocations) -> Bool { true }
    /// Hashes nothing, consistent with `==`.
    public func hash(into hasher: inout Hasher) {}
}
