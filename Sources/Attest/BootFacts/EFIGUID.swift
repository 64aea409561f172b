/// EFI_GUID — UEFI 2.10 Appendix A: Data1 (UINT32 LE), Data2, Data3 (UINT16 LE), Data4 (8 bytes).
public struct EFIGUID: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The 16 bytes as stored (Data1–Data3 little-endian).
    public let bytes: [UInt8]

    /// Reads 16 bytes from `r`; `field` names them in errors.
    public init(parsing r: inout ByteReader, _ field: String) throws(AttestError) {
        bytes = try r.readBytes(field, count: 16)
    }

    /// From the canonical text form "8be4df61-93ca-11d2-aa0d-00e098032b8c".
    public init?(_ text: String) {
        let hex = text.filter { $0 != "-" }
        guard hex.count == 32, let raw = Hex.decode(hex) else { return nil }
        bytes =
            Array(raw[0..<4].reversed()) + Array(raw[4..<6].reversed()) + Array(raw[6..<8].reversed())
            + Array(raw[8..<16])
    }

    /// The canonical lowercase text form, "8be4df61-93ca-11d2-aa0d-00e098032b8c".
    public var description: String {
        let d1 = Hex.encode(bytes[0..<4].reversed()), d2 = Hex.encode(bytes[4..<6].reversed()),
            d3 = Hex.encode(bytes[6..<8].reversed())
        return "\(d1)-\(d2)-\(d3)-\(Hex.encode(bytes[8..<10]))-\(Hex.encode(bytes[10..<16]))"
    }

    /// Decodes a GUID from its canonical text form in a JSON string.
    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let g = EFIGUID(s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a GUID"))
        }
        self = g
    }
    /// Encodes the GUID as its canonical text form.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// EFI_GLOBAL_VARIABLE (SecureBoot, PK, KEK, Boot####).
    public static let globalVariable = EFIGUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")!
    /// EFI_IMAGE_SECURITY_DATABASE_GUID (db, dbx).
    public static let imageSecurityDatabase = EFIGUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")!
    /// EFI_CERT_X509_GUID.
    public static let certX509 = EFIGUID("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")!
    /// EFI_CERT_SHA256_GUID.
    public static let certSHA256 = EFIGUID("c1c41626-504c-4092-aca9-41f936934328")!
    /// Shim's vendor GUID (MokList, SbatLevel).
    public static let shim = EFIGUID("605dab50-e046-4300-abb6-3dd810dd8b23")!
}

enum UTF16Text {
    /// Decodes little-endian UTF-16, stopping at the first NUL. Invalid sequences become U+FFFD.
    static func decode(_ bytes: some Collection<UInt8>) -> String {
        var units: [UInt16] = []
        var it = bytes.makeIterator()
        while let lo = it.next(), let hi = it.next() {
            let u = UInt16(lo) | UInt16(hi) << 8
            if u == 0 { break }
            units.append(u)
        }
        return String(decoding: units, as: UTF16.self)
    }

    /// Whether bytes look like UTF-16LE text (even length, ASCII-range code units).
    static func looksLikeUTF16(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 4, bytes.count % 2 == 0 else { return false }
        var i = 0
        var printable = 0
        while i + 1 < bytes.count {
            if bytes[i + 1] == 0 && (bytes[i] >= 0x20 || bytes[i] == 0 || bytes[i] == 0x0A) { printable += 1 }
            i += 2
        }
        return printable * 2 >= bytes.count - 2
    }
}

enum ASCIIText {
    /// Printable ASCII text with trailing NULs stripped, or nil if it is not text.
    static func decode(_ bytes: [UInt8]) -> String? {
        var b = bytes[...]
        while let last = b.last, last == 0 { b = b.dropLast() }
        guard !b.isEmpty, b.allSatisfy({ ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x0A || $0 == 0x09 }) else { return nil }
        return String(decoding: b, as: UTF8.self)
    }
}
