internal import CTSS2

/// A TSS2 return code (`TSS2_RC`) from libtss2 or the TPM, decoded.
///
/// Bits 16–23 name the software layer (0 = the TPM itself, 7 = ESAPI, 10 = TCTI, …; tss2_common.h).
/// For TPM-layer codes, ``tpmBaseCode`` strips the handle/parameter/session number of format-1 codes
/// (TPM 2.0 Part 2 §6.6), so `TPM_RC_POLICY_FAIL` matches whichever session failed.
/// Shaped like swift-system's `Errno`.
public struct TSS2Error: Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    /// `Tss2_RC_Decode` text, copied at creation ("tpm:session(1):a policy check failed").
    public let decoded: String

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
        if let cString = Tss2_RC_Decode(rawValue) {
            self.decoded = String(cString: cString)
        } else {
            self.decoded = "unknown TSS2 return code"
        }
    }

    /// The software layer that produced the code (`TSS2_RC_LAYER_SHIFT` = 16).
    public var layer: UInt32 { (rawValue >> 16) & 0xFF }
    public var isTPMLayer: Bool { layer == 0 }

    /// True for TPM warnings (format-0 with the severity bit): retrying may succeed.
    public var isWarning: Bool {
        isTPMLayer && rawValue & 0x80 == 0 && rawValue & 0x800 != 0
    }

    /// The TPM response code without the layer and without format-1 handle/parameter/session numbers.
    public var tpmBaseCode: UInt32 {
        let rc = rawValue & 0xFFFF
        return rc & 0x80 != 0 ? rc & 0xBF : rc & 0xFFF
    }

    public static func == (lhs: TSS2Error, rhs: TSS2Error) -> Bool { lhs.rawValue == rhs.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    /// Whether this is the given TPM response code (`TPM_RC_*`), ignoring which handle/session/parameter.
    public func isTPM(_ code: TPMResponseCode) -> Bool { isTPMLayer && tpmBaseCode == code.rawValue }

    public var description: String { "\(decoded) (0x\(String(rawValue, radix: 16)))" }
}

/// TPM_RC values — TPM 2.0 Part 2 §6.6 (format-1 codes without their number fields).
public struct TPMResponseCode: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let initialize = TPMResponseCode(rawValue: 0x100)
    public static let failure = TPMResponseCode(rawValue: 0x101)
    public static let nvRange = TPMResponseCode(rawValue: 0x146)
    public static let nvSize = TPMResponseCode(rawValue: 0x147)
    public static let nvLocked = TPMResponseCode(rawValue: 0x148)
    public static let nvAuthorization = TPMResponseCode(rawValue: 0x149)
    public static let nvUninitialized = TPMResponseCode(rawValue: 0x14A)
    public static let nvDefined = TPMResponseCode(rawValue: 0x14C)
    public static let hash = TPMResponseCode(rawValue: 0x083)
    public static let value = TPMResponseCode(rawValue: 0x084)
    public static let handle = TPMResponseCode(rawValue: 0x08B)
    public static let authFail = TPMResponseCode(rawValue: 0x08E)
    public static let size = TPMResponseCode(rawValue: 0x095)
    public static let policyFail = TPMResponseCode(rawValue: 0x09D)
    public static let badAuth = TPMResponseCode(rawValue: 0x0A2)
    public static let lockout = TPMResponseCode(rawValue: 0x921)
    public static let retry = TPMResponseCode(rawValue: 0x922)
    public static let objectMemory = TPMResponseCode(rawValue: 0x902)
    public static let sessionMemory = TPMResponseCode(rawValue: 0x903)
}
