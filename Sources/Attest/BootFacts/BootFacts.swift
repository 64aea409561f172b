/// What a boot did, decoded from events — from a ``VerifiedEventLog`` for policy (only events whose
/// PCR replayed to the quote), or from an unverified log for authoring and display.
public struct BootFacts: Hashable, Sendable {
    /// A PCR 4 measurement: a boot application (PE image) or anything else measured there.
    public struct BootApplication: Hashable, Sendable {
        /// Index of the event in the log.
        public let eventIndex: Int
        /// The PCR it was measured into (4).
        public let pcr: Int
        /// The measured digest in ``bank``, hex: what a boot-application rule judges.
        public let digest: String?
        /// The bank ``digest`` comes from.
        public let bank: TPMAlgorithmID
        /// The device path the event data claims (not attested: the digest is of the image, not of the path).
        public let devicePath: String
        /// The event type the log claims (not attested).
        public let claimedType: TCGEventType
    }

    /// An EV_SEPARATOR measurement, or any event in PCRs 0–7 whose digest is that of an error separator.
    public struct Separator: Hashable, Sendable {
        /// Index of the event in the log.
        public let eventIndex: Int
        /// The PCR it was measured into.
        public let pcr: Int
        /// True for an error separator (a value other than 0, or an error separator's digest).
        public let isError: Bool
    }

    /// The SecureBoot variable as measured into PCR 7 (nil if not measured).
    public var secureBoot: Bool?
    /// PK, KEK, db, dbx as measured (EV_EFI_VARIABLE_DRIVER_CONFIG).
    public var signatureDatabases: [String: [EFISignatureList.Entry]] = [:]
    /// Certificates that authorized images (EV_EFI_VARIABLE_AUTHORITY), by SHA-256 fingerprint, with the variable they came from.
    public var authorities: [Authority] = []

    /// A certificate that authorized an image, from an EV_EFI_VARIABLE_AUTHORITY event.
    public struct Authority: Hashable, Sendable {
        /// The UEFI variable name the event names ("db", "MokList").
        public let variable: String
        /// SHA-256 of the certificate (without the EFI_SIGNATURE_DATA owner GUID), lowercase hex.
        public let sha256Fingerprint: String
    }
    /// Every PCR 4 measurement in log order, judged by digest whatever type it claims.
    public var bootApplications: [BootApplication] = []
    /// EV_IPL strings of GRUB in PCR 8 ("grub_cmd: …").
    public var grubCommands: [String] = []
    /// Kernel command lines: GRUB's "kernel_cmdline: …" and systemd-boot/stub load options (PCR 12 or EV_EVENT_TAG).
    public var kernelCommandLines: [String] = [] {
        didSet { kernelArguments = kernelCommandLines.map(KernelCommandLine.init) }
    }
    /// ``kernelCommandLines`` tokenized as the kernel reads them (once, here, not per evaluation).
    public private(set) var kernelArguments: [KernelCommandLine] = []
    /// Where each of ``kernelCommandLines`` was measured (same order; empty for facts built from bare strings).
    public var kernelCommandLineEvents: [EventOrigin] = []

    /// The event a fact was decoded from: its index in the log and the PCR it extended.
    public struct EventOrigin: Hashable, Sendable {
        /// The event's index in the log.
        public let eventIndex: Int
        /// The PCR it extended.
        public let pcr: Int
    }
    /// Files GRUB measured into PCR 9.
    public var grubFiles: [String] = []
    /// EV_SEPARATOR events, and events whose digest is an error separator's.
    public var separators: [Separator] = []
    /// EV_S_CRTM_VERSION strings (the firmware version the CRTM reports).
    public var sCRTMVersions: [String] = []
    /// EV_EFI_ACTION and EV_ACTION strings ("Calling EFI Application from Boot Option", …).
    public var efiActions: [String] = []
    /// "UEFI Debug Mode" actions and similar debug markers.
    public var debugMarkers: [String] = []
    /// Events measured into PCR 5 after the ExitBootServices invocation, other than its result actions: the OS
    /// was already running. Judged within PCR 5, whose order the TPM attests.
    public var eventsAfterExitBootServices: [Int] = []
    /// Disk GUIDs from EV_EFI_GPT_EVENT events.
    public var gptDisks: [String] = []
    /// Total number of tables listed by EV_EFI_HANDOFF_TABLES events.
    public var handoffTables: UInt64 = 0
    /// PCRs with at least one (verified) measured event.
    public var measuredPCRs: Set<Int> = []
    /// Whether the ExitBootServices invocation was measured (PCR 5).
    public var exitBootServicesMeasured = false

    /// PCRs 0–7 with measured events but no (bound) EV_SEPARATOR: firmware separates every one of them before
    /// the OS loader (PFP §3.3.4.2), so a missing separator may be a retyped error separator.
    public var pcrsWithoutSeparator: [Int] { measuredPCRs.filter { $0 < 8 && !separatorPCRs.contains($0) }.sorted() }
    /// PCRs 0–7 in which a bound EV_SEPARATOR was measured.
    public var separatorPCRs: Set<Int> = []

    /// Facts from the events of a ``VerifiedEventLog`` verified in `bank`, for policy. An event whose data
    /// should hash to its digest and does not is never decoded (``EventDataBinding``). Every PCR 4 measurement
    /// that is not a bound separator or EFI action counts as a boot application and is judged by its
    /// digest in `bank`, whatever type it claims. "After ExitBootServices" is judged in PCR 5's own order
    /// (the order within one PCR is attested; across PCRs it is not).
    public init(_ log: VerifiedEventLog, bank: TPMAlgorithmID) {
        var events: [EventLogEvent] = []
        var bound: Set<Int> = []
        for e in log.events where e.banks.contains(bank) {
            switch e.binding {
            case .bound:
                bound.insert(e.event.index)
                events.append(e.event)
            case .digestOfOtherData: events.append(e.event)
            case .unbound: break
            }
        }
        self.init(events: events, bank: bank, bound: bound)
    }

    /// Facts decoded from events as logged, for display and authoring: nothing is verified, and every event's
    /// data is taken at its word. Boot-application digests are read from SHA-256.
    public init(events: [EventLogEvent]) {
        self.init(events: events, bank: .sha256, bound: nil)
    }

    /// - Parameter bound: indices of events whose data is bound to their digests; nil to trust every event's data.
    init(events: [EventLogEvent], bank: TPMAlgorithmID, bound: Set<Int>?) {
        var ebsSeen = false
        // Markers recognised by digest, whatever type or data the log claims: retyping an error separator or
        // the "UEFI Debug Mode" action into an event whose data is not hashed does not hide it.
        let errorSeparatorDigests = [[1, 0, 0, 0], [0xFF, 0xFF, 0xFF, 0xFF]].compactMap {
            try? TPMDigest.hash(bank, $0)
        }
        let debugModeDigest = try? TPMDigest.hash(bank, Array(Self.uefiDebugMode.utf8))
        for e in events where e.isExtended {
            guard let pcr = e.pcr else { continue }
            measuredPCRs.insert(pcr)
            let isBound = bound?.contains(e.index) ?? true
            if e.type == .separator && isBound, pcr < 8 { separatorPCRs.insert(pcr) }
            // Only an event whose data does not vouch for it is suspected by digest: BootOrder = 0001 hashes like an
            // error separator, and a bound variable event is believed as what it says.
            if bound != nil, let d = e.digestBytes(bank), !(isBound && EventDataBinding.preimages(of: e) != nil) {
                if pcr < 8, errorSeparatorDigests.contains(where: { $0.elementsEqual(d) }) {
                    separators.append(.init(eventIndex: e.index, pcr: pcr, isError: true))
                }
                if pcr == 7, let debugModeDigest, debugModeDigest.elementsEqual(d),
                    !(isBound && (e.type == .efiAction || e.type == .action))
                {
                    debugMarkers.append("\(Self.uefiDebugMode) (measured as event \(e.index), logged as \(e.type))")
                }
            }
            if pcr == 4, !(isBound && (e.type == .separator || e.type == .efiAction)) {
                // Every other PCR 4 measurement loads code (PFP §3.3.4.5): judged by digest, typed or not.
                let path: String
                if case .imageLoad(let image) = DecodedEventData(e) { path = image.devicePath } else { path = "" }
                bootApplications.append(
                    .init(
                        eventIndex: e.index, pcr: pcr, digest: e.digest(bank).map { Hex.encode($0) }, bank: bank,
                        devicePath: path.isEmpty ? "(\(e.type))" : path, claimedType: e.type))
                continue
            }
            if pcr == 5, ebsSeen,
                !(isBound && e.type == .efiAction && Self.ebsResults.contains(where: { e.dataBytes.elementsEqual($0) }))
            {
                eventsAfterExitBootServices.append(e.index)
            }
            // Data that is not bound to its digest is a claim: it is not decoded into facts.
            guard isBound else { continue }
            switch DecodedEventData(e) {
            case .separator(_, let isError):
                separators.append(.init(eventIndex: e.index, pcr: pcr, isError: isError))
            case .variable(let v, let sb, let sigs):
                if let sb, pcr == 7 { secureBoot = sb }
                if let sigs { signatureDatabases[v.name] = sigs }
                if e.type == .efiVariableAuthority {
                    var cert = v.data
                    if !(cert.count > 2 && cert[0] == 0x30 && cert[1] == 0x82), cert.count > 16 {
                        cert = Array(cert.dropFirst(16))
                    }
                    authorities.append(
                        .init(
                            variable: v.name, sha256Fingerprint: Hex.encode((try? TPMDigest.hash(.sha256, cert)) ?? []))
                    )
                }
            case .text(let t):
                switch e.type {
                case .ipl where pcr == 8:
                    // GRUB 2.04+ writes "grub_cmd: …"/"kernel_cmdline: …"; RHEL 8's GRUB writes
                    // "grub_cmd …" and "grub_kernel_cmdline …" (image path first).
                    if let rest = Self.strip(t, "kernel_cmdline") ?? Self.strip(t, "grub_kernel_cmdline") {
                        kernelCommandLines.append(rest)
                        kernelCommandLineEvents.append(.init(eventIndex: e.index, pcr: pcr))
                    } else if let rest = Self.strip(t, "grub_cmd") {
                        grubCommands.append(rest)
                    } else {
                        grubCommands.append(t)
                    }
                case .ipl where pcr == 9:
                    grubFiles.append(t)
                case .ipl where pcr == 12:
                    kernelCommandLines.append(t)
                    kernelCommandLineEvents.append(.init(eventIndex: e.index, pcr: pcr))
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
                if let text, pcr == 12 {
                    kernelCommandLines.append(text)
                    kernelCommandLineEvents.append(.init(eventIndex: e.index, pcr: pcr))
                }
            case .gpt(let disk, _):
                gptDisks.append(disk.description)
            case .handoffTables(let n):
                handoffTables += n
            default: break
            }
        }
        kernelArguments = kernelCommandLines.map(KernelCommandLine.init)
    }

    static let uefiDebugMode = "UEFI Debug Mode"

    static let ebsResults = [EventLogWorkaround.ebsSuccess, EventLogWorkaround.ebsFailure].map { Array($0.utf8) }

    static func strip(_ text: String, _ prefix: String) -> String? {
        guard text.hasPrefix(prefix) else { return nil }
        var rest = text.dropFirst(prefix.count)
        if rest.first == ":" { rest = rest.dropFirst() }
        guard rest.first == " " else { return nil }
        return String(rest.dropFirst())
    }

}
