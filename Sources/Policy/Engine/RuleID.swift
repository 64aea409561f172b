import Attest

/// A rule's identity: its section, its name within the section, and the PCRs its facts come from
/// (PC Client PFP §3.3.4, PCR usage). Every rule id the engine reports is built here; verdicts,
/// `enforce:` and `explain` print ``description`` ("boot.secure_boot", "pcrs.sha256.7").
public struct RuleID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public enum Section: String, Sendable, CaseIterable {
        case accept, identity, freshness, pcrs, eventlog, boot
    }

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

    public var description: String { name.isEmpty ? section.rawValue : "\(section.rawValue).\(name)" }

    public static func < (a: RuleID, b: RuleID) -> Bool { a.description < b.description }

    public static let accept = RuleID(.accept, "")
    public static let ekCertificate = RuleID(.identity, "ek_certificate")
    public static let ekChain = RuleID(.identity, "ek_chain")
    public static let manufacturer = RuleID(.identity, "manufacturer")
    public static let minFirmwareVersion = RuleID(.identity, "min_firmware_version")
    public static let akAlgorithm = RuleID(.identity, "ak_algorithm")
    public static let nonceAge = RuleID(.freshness, "nonce_age")
    public static let reboot = RuleID(.freshness, "reboot")
    /// Every quoted PCR in a trusted bank replays from the event log (no PCR hidden by leaving its events out).
    public static let eventLogReplay = RuleID(.eventlog, "replay")
    public static let secureBoot = RuleID(.boot, "secure_boot", pcrs: [7])
    public static let pk = RuleID(.boot, "pk", pcrs: [7])
    public static let kek = RuleID(.boot, "kek", pcrs: [7])
    public static let db = RuleID(.boot, "db", pcrs: [7])
    public static let dbx = RuleID(.boot, "dbx", pcrs: [7])
    public static let dbxMinEntries = RuleID(.boot, "dbx.min_entries", pcrs: [7])
    public static let bootApplications = RuleID(.boot, "boot_applications", pcrs: [4])
    public static let kernelCommandLine = RuleID(.boot, "kernel_cmdline", pcrs: [8, 12])
    public static let sCRTMVersions = RuleID(.boot, "scrtm_versions", pcrs: [0])

    /// `pcrs.banks.<bank>`: the trusted bank was quoted.
    public static func bank(_ bank: String) -> RuleID { RuleID(.pcrs, "banks.\(bank)") }
    /// `pcrs.<bank>.<index>`: a PCR value expectation.
    public static func pcr(_ bank: String, _ index: Int) -> RuleID { RuleID(.pcrs, "\(bank).\(index)", pcrs: [index]) }
    /// `boot.forbid.<what>`.
    public static func forbid(_ what: ForbiddenEvent) -> RuleID { RuleID(.boot, "forbid.\(what.rawValue)", pcrs: what.pcrs) }

    /// Events a policy can forbid (`boot.forbid`).
    public enum ForbiddenEvent: String, Sendable, CaseIterable {
        case errorSeparators = "error_separators"
        case uefiDebugMode = "uefi_debug_mode"
        case debugger
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
