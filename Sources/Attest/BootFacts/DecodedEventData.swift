/// An event's payload decoded by its (untrusted) type — best effort, separate from replay: an
/// undecodable payload never stops a replay, it is shown as ``undecodable(_:)``.
public enum DecodedEventData: Hashable, Sendable {
    /// EV_NO_ACTION event 0 of a crypto-agile log: the Spec ID Event03.
    case specID(SpecIDEvent)
    /// EV_NO_ACTION "StartupLocality": the locality TPM2_Startup came from (PFP §10.4.5.3).
    case startupLocality(UInt8)
    /// EV_SEPARATOR: 0x00000000 normally; 0x00000001 (or anything else) signals an error (PFP §10.4.4).
    case separator(value: UInt32, isError: Bool)
    /// Text events: EV_EFI_ACTION, EV_ACTION, EV_S_CRTM_VERSION, EV_IPL, EV_POST_CODE, EV_NO_ACTION strings.
    case text(String)
    /// UEFI_VARIABLE_DATA of an EV_EFI_VARIABLE_* event, with SecureBoot's value and, for PK/KEK/db/dbx measured as
    /// EV_EFI_VARIABLE_DRIVER_CONFIG, their signature entries.
    case variable(UEFIVariableData, secureBoot: Bool?, signatures: [EFISignatureList.Entry]?)
    /// UEFI_IMAGE_LOAD_EVENT of EV_EFI_BOOT_SERVICES_APPLICATION/_DRIVER or EV_EFI_RUNTIME_SERVICES_DRIVER.
    case imageLoad(UEFIImageLoadEvent)
    /// EV_EVENT_TAG: the TCG_PCClientTaggedEvent id, its data as text when it is text, and the data size.
    case taggedEvent(id: UInt32, text: String?, size: Int)
    /// EV_EFI_HANDOFF_TABLES: NumberOfTables of UEFI_HANDOFF_TABLE_POINTERS.
    case handoffTables(count: UInt64)
    /// EV_EFI_GPT_EVENT: the disk GUID and NumberOfPartitions of UEFI_GPT_DATA.
    case gpt(diskGUID: EFIGUID, partitions: Int)
    /// A payload that is neither text nor a structure Vigil decodes: its size only.
    case binary(size: Int)
    /// A payload that does not decode as its claimed type, with the reason.
    case undecodable(String)

    /// Decodes `event.data` according to its logged type.
    public init(_ event: EventLogEvent) {
        do throws(AttestError) {
            self = try Self.decode(event)
        } catch {
            self = .undecodable(error.reason)
        }
    }

    static func decode(_ e: EventLogEvent) throws(AttestError) -> DecodedEventData {
        switch e.type {
        case .noAction:
            if e.index == 0, let spec = try SpecIDEvent(eventData: e.data) { return .specID(spec) }
            if e.data.count == 17, Array(e.data.prefix(16)) == EventLogReplay.startupLocalitySignature {
                return .startupLocality(e.data[16])
            }
            if let t = ASCIIText.decode(Array(e.data.prefix(while: { $0 != 0 }))) { return .text(t) }
            return .binary(size: e.data.count)
        case .separator:
            guard e.data.count == 4 else { return .binary(size: e.data.count) }
            var r = ByteReader(e.data)
            let v = try r.readUInt32("separator", .little)
            return .separator(value: v, isError: v != 0)
        case .efiAction, .action, .ipl, .postCode, .sCRTMContents, .omitBootDeviceEvents, .compactHash:
            if let t = ASCIIText.decode(e.data) { return .text(t) }
            if UTF16Text.looksLikeUTF16(e.data) { return .text(UTF16Text.decode(e.data)) }
            return .binary(size: e.data.count)
        case .sCRTMVersion:
            if UTF16Text.looksLikeUTF16(e.data) { return .text(UTF16Text.decode(e.data)) }
            if let t = ASCIIText.decode(e.data) { return .text(t) }
            return .binary(size: e.data.count)
        case .efiVariableDriverConfig, .efiVariableBoot, .efiVariableBoot2, .efiVariableAuthority:
            let v = try UEFIVariableData(bytes: e.data)
            var secureBoot: Bool?
            var signatures: [EFISignatureList.Entry]?
            if v.name == "SecureBoot" { secureBoot = v.data.first.map { $0 == 1 } ?? false }
            if e.type == .efiVariableDriverConfig, ["PK", "KEK", "db", "dbx"].contains(v.name) {
                signatures = try EFISignatureList.parse(v.data)
            }
            return .variable(v, secureBoot: secureBoot, signatures: signatures)
        case .efiBootServicesApplication, .efiBootServicesDriver, .efiRuntimeServicesDriver:
            return .imageLoad(try UEFIImageLoadEvent(bytes: e.data))
        case .eventTag:
            var r = ByteReader(e.data)
            let id = try r.readUInt32("TCG_PCClientTaggedEvent.taggedEventID", .little)
            let size = Int(try r.readUInt32("TCG_PCClientTaggedEvent.taggedEventDataSize", .little))
            let body = try r.readBytes("TCG_PCClientTaggedEvent.taggedEventData", count: size)
            let text = UTF16Text.looksLikeUTF16(body) ? UTF16Text.decode(body) : ASCIIText.decode(body)
            return .taggedEvent(id: id, text: text, size: size)
        case .efiHandoffTables:
            var r = ByteReader(e.data)
            return .handoffTables(count: try r.readUInt64("UEFI_HANDOFF_TABLE_POINTERS.NumberOfTables", .little))
        case .efiGPTEvent:
            var r = ByteReader(e.data)
            try r.skip("UEFI_GPT_DATA.header (to DiskGUID)", count: 56)
            let disk = try EFIGUID(parsing: &r, "EFI_PARTITION_TABLE_HEADER.DiskGUID")
            try r.skip("EFI_PARTITION_TABLE_HEADER (rest)", count: 20)
            guard e.data.count >= 92 + 8 else {
                throw AttestError(code: .truncated, reason: "UEFI_GPT_DATA: too short")
            }
            var tail = ByteReader(Array(e.data[92...]))
            let n = try tail.readUInt64("UEFI_GPT_DATA.NumberOfPartitions", .little)
            return .gpt(diskGUID: disk, partitions: Int(clamping: n))
        default:
            if let t = ASCIIText.decode(e.data) { return .text(t) }
            return .binary(size: e.data.count)
        }
    }

    /// One line for `vigil eventlog show`.
    public var summary: String {
        switch self {
        case .specID(let s):
            "Spec ID Event03: " + s.algorithms.map { "\($0.id.name)(\($0.digestSize))" }.joined(separator: ", ")
        case .startupLocality(let l): "StartupLocality \(l)"
        case .separator(let v, let err): err ? "separator 0x\(String(v, radix: 16)) (ERROR)" : "separator"
        case .text(let t): "\"\(t.replacingNewlines)\""
        case .variable(let v, let sb, let sigs):
            if let sb {
                "\(v.name) = \(sb ? "enabled" : "disabled")"
            } else if let sigs {
                "\(v.name): \(sigs.count) entries"
            } else {
                "\(v.name) {\(v.vendor)} \(v.data.count) bytes"
            }
        case .imageLoad(let i):
            "image \(i.devicePath.isEmpty ? "(no device path)" : i.devicePath) (\(i.lengthInMemory) bytes)"
        case .taggedEvent(let id, let text, let size):
            "tag 0x\(String(id, radix: 16)) " + (text.map { "\"\($0.replacingNewlines)\"" } ?? "\(size) bytes")
        case .handoffTables(let n): "\(n) handoff table(s)"
        case .gpt(let disk, let n): "GPT disk \(disk), \(n) partition entries"
        case .binary(let size): "\(size) bytes"
        case .undecodable(let why): "undecodable: \(why)"
        }
    }
}

extension String {
    var replacingNewlines: String { String(map { $0 == "\n" ? " " : $0 }) }
}
