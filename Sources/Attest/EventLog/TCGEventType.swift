/// TCG event types — TCG PC Client Platform Firmware Profile (PFP) §10.4.1.
///
/// - Warning: The type is *not* covered by the event's digest (go-attestation's published finding):
///   it is untrusted metadata. Decide anything from it only together with checks of the data.
public struct TCGEventType: RawRepresentable, Hashable, Sendable, CustomStringConvertible, Codable {
    /// The 32-bit eventType value as read from the log (untrusted).
    public let rawValue: UInt32
    /// Wraps any event type; unknown values are kept, not rejected.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Wraps any event type; unknown values are kept, not rejected.
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    /// EV_PREBOOT_CERT (0x00000000).
    public static let prebootCert = TCGEventType(0x0000_0000)
    /// EV_POST_CODE (0x00000001).
    public static let postCode = TCGEventType(0x0000_0001)
    /// EV_NO_ACTION (0x00000003).
    public static let noAction = TCGEventType(0x0000_0003)
    /// EV_SEPARATOR (0x00000004).
    public static let separator = TCGEventType(0x0000_0004)
    /// EV_ACTION (0x00000005).
    public static let action = TCGEventType(0x0000_0005)
    /// EV_EVENT_TAG (0x00000006).
    public static let eventTag = TCGEventType(0x0000_0006)
    /// EV_S_CRTM_CONTENTS (0x00000007).
    public static let sCRTMContents = TCGEventType(0x0000_0007)
    /// EV_S_CRTM_VERSION (0x00000008).
    public static let sCRTMVersion = TCGEventType(0x0000_0008)
    /// EV_CPU_MICROCODE (0x00000009).
    public static let cpuMicrocode = TCGEventType(0x0000_0009)
    /// EV_PLATFORM_CONFIG_FLAGS (0x0000000A).
    public static let platformConfigFlags = TCGEventType(0x0000_000A)
    /// EV_TABLE_OF_DEVICES (0x0000000B).
    public static let tableOfDevices = TCGEventType(0x0000_000B)
    /// EV_COMPACT_HASH (0x0000000C).
    public static let compactHash = TCGEventType(0x0000_000C)
    /// EV_IPL (0x0000000D).
    public static let ipl = TCGEventType(0x0000_000D)
    /// EV_IPL_PARTITION_DATA (0x0000000E).
    public static let iplPartitionData = TCGEventType(0x0000_000E)
    /// EV_NONHOST_CODE (0x0000000F).
    public static let nonhostCode = TCGEventType(0x0000_000F)
    /// EV_NONHOST_CONFIG (0x00000010).
    public static let nonhostConfig = TCGEventType(0x0000_0010)
    /// EV_NONHOST_INFO (0x00000011).
    public static let nonhostInfo = TCGEventType(0x0000_0011)
    /// EV_OMIT_BOOT_DEVICE_EVENTS (0x00000012).
    public static let omitBootDeviceEvents = TCGEventType(0x0000_0012)
    /// EV_EFI_VARIABLE_DRIVER_CONFIG (0x80000001).
    public static let efiVariableDriverConfig = TCGEventType(0x8000_0001)
    /// EV_EFI_VARIABLE_BOOT (0x80000002).
    public static let efiVariableBoot = TCGEventType(0x8000_0002)
    /// EV_EFI_BOOT_SERVICES_APPLICATION (0x80000003).
    public static let efiBootServicesApplication = TCGEventType(0x8000_0003)
    /// EV_EFI_BOOT_SERVICES_DRIVER (0x80000004).
    public static let efiBootServicesDriver = TCGEventType(0x8000_0004)
    /// EV_EFI_RUNTIME_SERVICES_DRIVER (0x80000005).
    public static let efiRuntimeServicesDriver = TCGEventType(0x8000_0005)
    /// EV_EFI_GPT_EVENT (0x80000006).
    public static let efiGPTEvent = TCGEventType(0x8000_0006)
    /// EV_EFI_ACTION (0x80000007).
    public static let efiAction = TCGEventType(0x8000_0007)
    /// EV_EFI_PLATFORM_FIRMWARE_BLOB (0x80000008).
    public static let efiPlatformFirmwareBlob = TCGEventType(0x8000_0008)
    /// EV_EFI_HANDOFF_TABLES (0x80000009).
    public static let efiHandoffTables = TCGEventType(0x8000_0009)
    /// EV_EFI_PLATFORM_FIRMWARE_BLOB2 (0x8000000A).
    public static let efiPlatformFirmwareBlob2 = TCGEventType(0x8000_000A)
    /// EV_EFI_HANDOFF_TABLES2 (0x8000000B).
    public static let efiHandoffTables2 = TCGEventType(0x8000_000B)
    /// EV_EFI_VARIABLE_BOOT2 (0x8000000C).
    public static let efiVariableBoot2 = TCGEventType(0x8000_000C)
    /// EV_EFI_HCRTM_EVENT (0x80000010).
    public static let efiHCRTMEvent = TCGEventType(0x8000_0010)
    /// EV_EFI_VARIABLE_AUTHORITY (0x800000E0).
    public static let efiVariableAuthority = TCGEventType(0x8000_00E0)
    /// EV_EFI_SPDM_FIRMWARE_BLOB (0x800000E1).
    public static let efiSPDMFirmwareBlob = TCGEventType(0x8000_00E1)
    /// EV_EFI_SPDM_FIRMWARE_CONFIG (0x800000E2).
    public static let efiSPDMFirmwareConfig = TCGEventType(0x8000_00E2)

    private static let names: [UInt32: String] = [
        0x0: "EV_PREBOOT_CERT", 0x1: "EV_POST_CODE", 0x2: "EV_UNUSED", 0x3: "EV_NO_ACTION", 0x4: "EV_SEPARATOR",
        0x5: "EV_ACTION", 0x6: "EV_EVENT_TAG", 0x7: "EV_S_CRTM_CONTENTS", 0x8: "EV_S_CRTM_VERSION",
        0x9: "EV_CPU_MICROCODE", 0xA: "EV_PLATFORM_CONFIG_FLAGS", 0xB: "EV_TABLE_OF_DEVICES", 0xC: "EV_COMPACT_HASH",
        0xD: "EV_IPL", 0xE: "EV_IPL_PARTITION_DATA", 0xF: "EV_NONHOST_CODE", 0x10: "EV_NONHOST_CONFIG",
        0x11: "EV_NONHOST_INFO", 0x12: "EV_OMIT_BOOT_DEVICE_EVENTS",
        0x8000_0001: "EV_EFI_VARIABLE_DRIVER_CONFIG", 0x8000_0002: "EV_EFI_VARIABLE_BOOT",
        0x8000_0003: "EV_EFI_BOOT_SERVICES_APPLICATION", 0x8000_0004: "EV_EFI_BOOT_SERVICES_DRIVER",
        0x8000_0005: "EV_EFI_RUNTIME_SERVICES_DRIVER", 0x8000_0006: "EV_EFI_GPT_EVENT", 0x8000_0007: "EV_EFI_ACTION",
        0x8000_0008: "EV_EFI_PLATFORM_FIRMWARE_BLOB", 0x8000_0009: "EV_EFI_HANDOFF_TABLES",
        0x8000_000A: "EV_EFI_PLATFORM_FIRMWARE_BLOB2", 0x8000_000B: "EV_EFI_HANDOFF_TABLES2",
        0x8000_000C: "EV_EFI_VARIABLE_BOOT2", 0x8000_0010: "EV_EFI_HCRTM_EVENT",
        0x8000_00E0: "EV_EFI_VARIABLE_AUTHORITY", 0x8000_00E1: "EV_EFI_SPDM_FIRMWARE_BLOB",
        0x8000_00E2: "EV_EFI_SPDM_FIRMWARE_CONFIG",
    ]

    /// The PFP name ("EV_SEPARATOR"), or "0x…" for a type the profile does not define.
    public var description: String {
        Self.names[rawValue] ?? "0x" + String(rawValue, radix: 16)
    }

    /// Decodes the event type from a single UInt32 value (JSON number).
    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt32.self) }
    /// Encodes the event type as a single UInt32 value.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}
