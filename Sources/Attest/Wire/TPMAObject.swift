/// TPMA_OBJECT — TPM 2.0 Part 2 §8.3: object attributes.
public struct TPMAObject: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let fixedTPM = TPMAObject(rawValue: 1 << 1)
    public static let stClear = TPMAObject(rawValue: 1 << 2)
    public static let fixedParent = TPMAObject(rawValue: 1 << 4)
    public static let sensitiveDataOrigin = TPMAObject(rawValue: 1 << 5)
    public static let userWithAuth = TPMAObject(rawValue: 1 << 6)
    public static let adminWithPolicy = TPMAObject(rawValue: 1 << 7)
    public static let noDA = TPMAObject(rawValue: 1 << 10)
    public static let encryptedDuplication = TPMAObject(rawValue: 1 << 11)
    public static let restricted = TPMAObject(rawValue: 1 << 16)
    public static let decrypt = TPMAObject(rawValue: 1 << 17)
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
