/// TPMA_OBJECT — TPM 2.0 Part 2 §8.3: object attributes.
public struct TPMAObject: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The 32-bit TPMA_OBJECT value.
    public let rawValue: UInt32
    /// Wraps a TPMA_OBJECT value; reserved bits are kept as given.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// TPMA_OBJECT fixedTPM (bit 1).
    public static let fixedTPM = TPMAObject(rawValue: 1 << 1)
    /// TPMA_OBJECT stClear (bit 2).
    public static let stClear = TPMAObject(rawValue: 1 << 2)
    /// TPMA_OBJECT fixedParent (bit 4).
    public static let fixedParent = TPMAObject(rawValue: 1 << 4)
    /// TPMA_OBJECT sensitiveDataOrigin (bit 5).
    public static let sensitiveDataOrigin = TPMAObject(rawValue: 1 << 5)
    /// TPMA_OBJECT userWithAuth (bit 6).
    public static let userWithAuth = TPMAObject(rawValue: 1 << 6)
    /// TPMA_OBJECT adminWithPolicy (bit 7).
    public static let adminWithPolicy = TPMAObject(rawValue: 1 << 7)
    /// TPMA_OBJECT noDA (bit 10).
    public static let noDA = TPMAObject(rawValue: 1 << 10)
    /// TPMA_OBJECT encryptedDuplication (bit 11).
    public static let encryptedDuplication = TPMAObject(rawValue: 1 << 11)
    /// TPMA_OBJECT restricted (bit 16).
    public static let restricted = TPMAObject(rawValue: 1 << 16)
    /// TPMA_OBJECT decrypt (bit 17).
    public static let decrypt = TPMAObject(rawValue: 1 << 17)
    /// TPMA_OBJECT sign / encrypt (bit 18).
    public static let sign = TPMAObject(rawValue: 1 << 18)

    private static let names: [(TPMAObject, String)] = [
        (.fixedTPM, "fixedtpm"), (.stClear, "stclear"), (.fixedParent, "fixedparent"),
        (.sensitiveDataOrigin, "sensitivedataorigin"), (.userWithAuth, "userwithauth"),
        (.adminWithPolicy, "adminwithpolicy"), (.noDA, "noda"), (.encryptedDuplication, "encryptedduplication"),
        (.restricted, "restricted"), (.decrypt, "decrypt"), (.sign, "sign"),
    ]

    /// tpm2-tools style: "fixedtpm|fixedparent|…".
    public var description: String {
        Self.names.filter { contains($0.0) }.map(\.1).joined(separator: "|")
    }
}
