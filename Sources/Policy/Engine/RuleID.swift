public import Attest

/// A rule's identity: its section, its name within the section, and the PCRs its facts come from
/// (PC Client PFP §3.3.4, PCR usage). Every rule id the engine reports is built here; verdicts,
/// `enforce:` and `explain` print ``description`` ("boot.secure_boot", "pcrs.sha256.7").
public struct RuleID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The policy section a rule belongs to (the first part of its id).
    public enum Section: String, Sendable, CaseIterable {
        /// The sections of a policy; `eventlog` holds the log-replay rule.
        case accept, identity, freshness, pcrs, eventlog, boot
    }

    /// The section of the rule.
    public let section: Section
    /// The name within the section ("secure_boot", "sha256.7"); empty for `accept`.
    public let name: String
    /// The PCRs whose verified events or values the rule judges.
    public let pcrs: [Int]

    init(_ section: Section, _ name: String, pcrs: [Int] = []) {
        self.section = section
        self.name = name
        self.pcrs = pcrs
    }

    /// The id as written in verdicts and `enforce:` ("boot.secure_boot", or "accept").
    public var description: String { name.isEmpty ? section.rawValue : "\(section.rawValue).\(name)" }

    /// Orders rules by their id text.
    public static func < (a: RuleID, b: RuleID) -> Bool { a.description < b.description }

    /// `accept` (YAML `accept: any`): the policy accepts every device.
    public static let accept = RuleID(.accept, "")
    /// `identity.ek_certificate`: the evidence carries an EK certificate (required or optional).
    public static let ekCertificate = RuleID(.identity, "ek_certificate")
    /// `identity.ak_activated`: credential activation bound the AK to the EK (required or optional).
    public static let akActivated = RuleID(.identity, "ak_activated")
    /// `identity.ek_chain` (YAML `identity.ek_ca`): the EK certificate chains to an anchor in that CA folder.
    public static let ekChain = RuleID(.identity, "ek_chain")
    /// `identity.manufacturer` (YAML `identity.manufacturers`): the TPM maker, from a chained EK certificate.
    public static let manufacturer = RuleID(.identity, "manufacturer")
    /// `identity.min_firmware_version`: the signed TPM firmware version is at least the minimum.
    public static let minFirmwareVersion = RuleID(.identity, "min_firmware_version")
    /// `identity.ak_algorithm` (YAML `identity.ak_algorithms`): the attestation key's algorithm and size are allowed.
    public static let akAlgorithm = RuleID(.identity, "ak_algorithm")
    /// `freshness.nonce_age` (YAML `freshness.max_nonce_age_seconds`): the nonce was issued recently enough.
    public static let nonceAge = RuleID(.freshness, "nonce_age")
    /// `freshness.reboot` (YAML `freshness.allow_reboot`): whether a reboot since the previous quote is allowed.
    public static let reboot = RuleID(.freshness, "reboot")
    /// Every quoted PCR in a trusted bank replays from the event log (no PCR hidden by leaving its events out).
    public static let eventLogReplay = RuleID(.eventlog, "replay")
    /// `boot.secure_boot`: the SecureBoot variable measured in PCR 7 is on (or off).
    public static let secureBoot = RuleID(.boot, "secure_boot", pcrs: [7])
    /// `boot.pk`: the Platform Key database measured in PCR 7.
    public static let pk = RuleID(.boot, "pk", pcrs: [7])
    /// `boot.kek`: the Key Exchange Key database measured in PCR 7.
    public static let kek = RuleID(.boot, "kek", pcrs: [7])
    /// `boot.db`: the allowed-signatures database measured in PCR 7.
    public static let db = RuleID(.boot, "db", pcrs: [7])
    /// `boot.dbx` (YAML `boot.dbx.contains`): revocations the dbx measured in PCR 7 must hold.
    public static let dbx = RuleID(.boot, "dbx", pcrs: [7])
    /// `boot.dbx.min_entries`: the dbx measured in PCR 7 has at least this many entries.
    public static let dbxMinEntries = RuleID(.boot, "dbx.min_entries", pcrs: [7])
    /// `boot.boot_applications`: every PCR 4 measurement is an allowed digest.
    public static let bootApplications = RuleID(.boot, "boot_applications", pcrs: [4])
    /// `boot.kernel_cmdline`: the kernel command line measured in PCR 8 or 12 meets the rule.
    public static let kernelCommandLine = RuleID(.boot, "kernel_cmdline", pcrs: [8, 12])
    /// `boot.scrtm_versions`: the S-CRTM version measured in PCR 0 is allowed.
    public static let sCRTMVersions = RuleID(.boot, "scrtm_versions", pcrs: [0])

    /// `pcrs.banks.<bank>`: the trusted bank was quoted.
    public static func bank(_ bank: TPMAlgorithmID) -> RuleID { RuleID(.pcrs, "banks.\(bank.name)") }
    /// `pcrs.<bank>.<index>`: a PCR value expectation.
    public static func pcr(_ bank: TPMAlgorithmID, _ index: Int) -> RuleID {
        RuleID(.pcrs, "\(bank.name).\(index)", pcrs: [index])
    }
    /// `boot.forbid.<what>`.
    public static func forbid(_ what: ForbiddenEvent) -> RuleID {
        RuleID(.boot, "forbid.\(what.rawValue)", pcrs: what.pcrs)
    }

    /// Events a policy can forbid (`boot.forbid`).
    public enum ForbiddenEvent: String, Sendable, CaseIterable {
        /// `error_separators`: an error EV_SEPARATOR in PCRs 0–7, or a measured PCR 0–7 without a separator.
        case errorSeparators = "error_separators"
        /// `uefi_debug_mode`: a debug marker ("UEFI Debug Mode" and similar) in PCR 7.
        case uefiDebugMode = "uefi_debug_mode"
        /// `debugger`: a debug marker in PCR 7 (the same check as `uefi_debug_mode`).
        case debugger
        /// `events_after_exit_boot_services`: an event in PCR 5 after ExitBootServices, other than its result.
        case eventsAfterExitBootServices = "events_after_exit_boot_services"

        /// Separators close PCRs 0–7 (PFP §10.4.4); debug markers are EFI actions in PCR 7; ExitBootServices
        /// and what follows it are in PCR 5.
        var pcrs: [Int] {
            switch self {
            case .errorSeparators: Array(0...7)
            case .uefiDebugMode, .debugger: [7]
            case .eventsAfterExitBootServices: [5]
            }
        }
    }
}
