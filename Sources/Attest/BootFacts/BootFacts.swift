/// What a boot did, decoded from events — from a ``VerifiedEventLog`` for policy (only events whose
/// PCR replayed to the quote), or from an unverified log for authoring and display.
public struct BootFacts: Hashable, Sendable {
    public struct BootApplication: Hashable, Sendable {
        public let eventIndex: Int
        public let pcr: Int
        public let sha256: String?
        public let devicePath: String
    }

    public struct Separator: Hashable, Sendable {
        public let eventIndex: Int
        public let pcr: Int
        public let isError: Bool
    }

    /// The SecureBoot variable as measured into PCR 7 (nil if not measured).
    public var secureBoot: Bool?
    /// PK, KEK, db, dbx as measured (EV_EFI_VARIABLE_DRIVER_CONFIG).
    public var signatureDatabases: [String: [EFISignatureList.Entry]] = [:]
    /// Certificates that authorized images (EV_EFI_VARIABLE_AUTHORITY), by SHA-256 fingerprint, with the variable they came from.
    public var authorities: [Authority] = []

    public struct Authority: Hashable, Sendable {
        public let variable: String
        public let sha256Fingerprint: String
    }
    public var bootApplications: [BootApplication] = []
    /// EV_IPL strings of GRUB in PCR 8 ("grub_cmd: …").
    public var grubCommands: [String] = []
    /// Kernel command lines: GRUB's "kernel_cmdline: …" and systemd-boot/stub load options (PCR 12 or EV_EVENT_TAG).
    public var kernelCommandLines: [String] = []
    /// Files GRUB measured into PCR 9.
    public var grubFiles: [String] = []
    public var separators: [Separator] = []
    public var sCRTMVersions: [String] = []
    public var efiActions: [String] = []
    /// "UEFI Debug Mode" actions and similar debug markers.
    public var debugMarkers: [String] = []
    /// Events measured after the ExitBootServices invocation (PCRs 0–7): the OS is already running.
    public var eventsAfterExitBootServices: [Int] = []
    public var gptDisks: [String] = []
    public var handoffTables: UInt64 = 0
    /// PCRs with at least one (verified) measured event.
    public var measuredPCRs: Set<Int> = []
    /// Whether the ExitBootServices invocation was measured (PCR 5).
    public var exitBootServicesMeasured = false

    public init(events: [EventLogEvent]) {
        var ebsSeen = false
        for e in events where e.isExtended {
            guard let pcr = e.pcr else { continue }
            measuredPCRs.insert(pcr)
            if ebsSeen && pcr < 8 && !(e.type == .efiAction && pcr == 5) { eventsAfterExitBootServices.append(e.index) }
            switch DecodedEventData(e) {
            case .separator(_, let isError):
                separators.append(.init(eventIndex: e.index, pcr: pcr, isError: isError))
            case .variable(let v, let sb, let sigs):
                if let sb, pcr == 7 { secureBoot = sb }
                if let sigs { signatureDatabases[v.name] = sigs }
                if e.type == .efiVariableAuthority {
                    var cert = v.data
                    if !(cert.count > 2 && cert[0] == 0x30 && cert[1] == 0x82), cert.count > 16 { cert = Array(cert.dropFirst(16)) }
                    authorities.append(.init(variable: v.name, sha256Fingerprint: Hex.encode((try? TPMDigest.hash(.sha256, cert)) ?? [])))
                }
            case .imageLoad(let image) where e.type == .efiBootServicesApplication:
                bootApplications.append(.init(eventIndex: e.index, pcr: pcr, sha256: e.digest(.sha256).map { Hex.encode($0) }, devicePath: image.devicePath))
            case .text(let t):
                switch e.type {
                case .ipl where pcr == 8:
                    // GRUB 2.04+ writes "grub_cmd: …"/"kernel_cmdline: …"; RHEL 8's GRUB writes
                    // "grub_cmd …" and "grub_kernel_cmdline …" (image path first).
                    if let rest = Self.strip(t, "kernel_cmdline") ?? Self.strip(t, "grub_kernel_cmdline") { kernelCommandLines.append(rest) }
                    else if let rest = Self.strip(t, "grub_cmd") { grubCommands.append(rest) }
                    else { grubCommands.append(t) }
                case .ipl where pcr == 9:
                    grubFiles.append(t)
                case .ipl where pcr == 12:
                    kernelCommandLines.append(t)
                case .sCRTMVersion:
                    sCRTMVersions.append(t)
                case .efiAction, .action:
                    efiActions.append(t)
                    if t.contains("Debug") { debugMarkers.append(t) }
                    if t == EventLogWorkaround.ebsInvocation {
                        ebsSeen = true
                        exitBootServicesMeasured = true
                    }
                default: break
                }
            case .taggedEvent(_, let text, _):
                if let text, pcr == 12 { kernelCommandLines.append(text) }
            case .gpt(let disk, _):
                gptDisks.append(disk.description)
            case .handoffTables(let n):
                handoffTables += n
            default: break
            }
        }
    }

    static func strip(_ text: String, _ prefix: String) -> String? {
        guard text.hasPrefix(prefix) else { return nil }
        var rest = text.dropFirst(prefix.count)
        if rest.first == ":" { rest = rest.dropFirst() }
        guard rest.first == " " else { return nil }
        return String(rest.dropFirst())
    }

    /// Facts from the verified events only.
    public init(_ log: VerifiedEventLog) {
        self.init(events: log.events.map(\.event))
    }

}
