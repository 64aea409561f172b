/// A TPM handle (TPM_HANDLE — Part 2 §7): persistent objects 0x81xxxxxx, NV indices 0x01xxxxxx.
public struct TPMHandle: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    public var isPersistent: Bool { rawValue >> 24 == 0x81 }
    public var isNVIndex: Bool { rawValue >> 24 == 0x01 }
    public var description: String {
        let s = String(rawValue, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
    }
    public static func < (a: TPMHandle, b: TPMHandle) -> Bool { a.rawValue < b.rawValue }

    /// Parses "0x81010001" or decimal.
    public init?(parsing text: String) {
        if text.lowercased().hasPrefix("0x") {
            guard let v = UInt32(text.dropFirst(2), radix: 16) else { return nil }
            self.init(v)
        } else {
            guard let v = UInt32(text) else { return nil }
            self.init(v)
        }
    }

    // Handle ranges — TPM 2.0 Part 2 §7.2 (TPM_HT).
    public static let transientFirst = TPMHandle(0x8000_0000)
    public static let persistentFirst = TPMHandle(0x8100_0000)
    public static let nvIndexFirst = TPMHandle(0x0100_0000)
    public static let hmacSessionFirst = TPMHandle(0x0200_0000)
    public static let policySessionFirst = TPMHandle(0x0300_0000)
}

/// TPM_CAP — Part 2 §6.12.
public struct TPMCapability: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let algorithms = TPMCapability(rawValue: 0)
    public static let handles = TPMCapability(rawValue: 1)
    public static let commands = TPMCapability(rawValue: 2)
    public static let pcrs = TPMCapability(rawValue: 5)
    public static let tpmProperties = TPMCapability(rawValue: 6)
    public static let eccCurves = TPMCapability(rawValue: 8)
}

/// TPM_PT — Part 2 §6.13 (fixed properties start at PT_FIXED = 0x100, variable at PT_VAR = 0x200).
public struct TPMProperty: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let familyIndicator = TPMProperty(rawValue: 0x100)
    public static let revision = TPMProperty(rawValue: 0x102)
    public static let dayOfYear = TPMProperty(rawValue: 0x103)
    public static let year = TPMProperty(rawValue: 0x104)
    public static let manufacturer = TPMProperty(rawValue: 0x105)
    public static let vendorString1 = TPMProperty(rawValue: 0x106)
    public static let vendorString2 = TPMProperty(rawValue: 0x107)
    public static let vendorString3 = TPMProperty(rawValue: 0x108)
    public static let vendorString4 = TPMProperty(rawValue: 0x109)
    public static let vendorTPMType = TPMProperty(rawValue: 0x10A)
    public static let firmwareVersion1 = TPMProperty(rawValue: 0x10B)
    public static let firmwareVersion2 = TPMProperty(rawValue: 0x10C)
    public static let inputBuffer = TPMProperty(rawValue: 0x10D)
    public static let pcrCount = TPMProperty(rawValue: 0x112)
    public static let maxDigest = TPMProperty(rawValue: 0x120)
    public static let nvBufferMax = TPMProperty(rawValue: 0x12C)
    public static let permanent = TPMProperty(rawValue: 0x200)
}

/// Hierarchies usable as parents and authorization handles (TPM_RH — Part 2 §7.4).
public enum TPMHierarchy: String, Sendable, CaseIterable, CustomStringConvertible {
    case owner, endorsement, platform, null
    public var description: String { rawValue }
    /// The ESAPI object (ESYS_TR_RH_*).
    var esysTR: UInt32 {
        switch self {
        case .owner: 0x101
        case .endorsement: 0x10B
        case .platform: 0x10C
        case .null: 0x107
        }
    }
    /// The TPM handle (TPM_RH_*).
    var handle: UInt32 {
        switch self {
        case .owner: 0x4000_0001
        case .endorsement: 0x4000_000B
        case .platform: 0x4000_000C
        case .null: 0x4000_0007
        }
    }
}

enum ESYS {
    static let none: UInt32 = 0xFFF
    static let password: UInt32 = 0x0FF
    static func pcr(_ index: Int) -> UInt32 { UInt32(index) }
}
