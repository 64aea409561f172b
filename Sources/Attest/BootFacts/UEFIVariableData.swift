/// UEFI_VARIABLE_DATA — PFP §10.4.7 (EV_EFI_VARIABLE_DRIVER_CONFIG, _BOOT, _AUTHORITY).
public struct UEFIVariableData: Hashable, Sendable {
    /// Longest UnicodeName accepted, in UTF-16 code units.
    public static let maxNameLength = 1024

    /// VariableName: the vendor GUID of the variable (e.g. ``EFIGUID/globalVariable``).
    public let vendor: EFIGUID
    /// UnicodeName, decoded from UTF-16LE ("SecureBoot", "db").
    public let name: String
    /// VariableData: the variable's contents as logged (a claim unless the event's data is bound to its digest).
    public let data: [UInt8]

    /// Decodes a UEFI_VARIABLE_DATA; an oversized name, a length past the end, or trailing bytes is an error.
    public init(bytes: [UInt8]) throws(AttestError) {
        var r = ByteReader(bytes)
        vendor = try EFIGUID(parsing: &r, "UEFI_VARIABLE_DATA.VariableName")
        let nameAt = r.offset
        let nameLength = try r.readUInt64("UEFI_VARIABLE_DATA.UnicodeNameLength", .little)
        let dataLength = try r.readUInt64("UEFI_VARIABLE_DATA.VariableDataLength", .little)
        guard nameLength <= UInt64(Self.maxNameLength) else {
            throw .tooLarge(
                "UEFI_VARIABLE_DATA.UnicodeNameLength", size: Self.maxNameLength + 1, limit: Self.maxNameLength,
                at: nameAt)
        }
        guard dataLength <= UInt64(r.remaining) else {
            throw .truncated(
                "UEFI_VARIABLE_DATA.VariableData", at: r.offset, needed: r.remaining + 1, available: r.remaining)
        }
        name = UTF16Text.decode(try r.readBytes("UEFI_VARIABLE_DATA.UnicodeName", count: Int(nameLength) * 2))
        data = try r.readBytes("UEFI_VARIABLE_DATA.VariableData", count: Int(dataLength))
        try r.expectEnd("UEFI_VARIABLE_DATA")
    }
}

/// EFI_SIGNATURE_LIST — UEFI 2.10 §32.4.1: the contents of PK, KEK, db, dbx (and MokList).
public struct EFISignatureList: Hashable, Sendable {
    /// Most signature entries accepted across one variable's lists.
    public static let maxEntries = 100_000

    /// One EFI_SIGNATURE_DATA (UEFI 2.10 §32.4.1), by its list's SignatureType.
    public enum Entry: Hashable, Sendable {
        /// EFI_CERT_X509_GUID: a DER certificate (its SHA-256 fingerprint identifies it).
        case x509(owner: EFIGUID, der: [UInt8], sha256Fingerprint: String)
        /// EFI_CERT_SHA256_GUID: an image hash.
        case sha256(owner: EFIGUID, hash: String)
        /// Any other signature type, carried as-is.
        case other(type: EFIGUID, owner: EFIGUID, data: [UInt8])
    }

    /// Decodes a sequence of EFI_SIGNATURE_LISTs (a whole variable's data).
    public static func parse(_ bytes: [UInt8]) throws(AttestError) -> [Entry] {
        var r = ByteReader(bytes)
        var entries: [Entry] = []
        while !r.isAtEnd {
            let listAt = r.offset
            let type = try EFIGUID(parsing: &r, "EFI_SIGNATURE_LIST.SignatureType")
            let listSize = Int(try r.readUInt32("EFI_SIGNATURE_LIST.SignatureListSize", .little))
            let headerSize = Int(try r.readUInt32("EFI_SIGNATURE_LIST.SignatureHeaderSize", .little))
            let signatureSize = Int(try r.readUInt32("EFI_SIGNATURE_LIST.SignatureSize", .little))
            let body = listSize - 28
            guard listSize >= 28, body <= r.remaining, headerSize <= body, signatureSize >= 16 else {
                throw AttestError.invalid(
                    "EFI_SIGNATURE_LIST at byte \(listAt): sizes (list \(listSize), header \(headerSize), signature \(signatureSize)) do not fit"
                )
            }
            guard (body - headerSize) % signatureSize == 0 else {
                throw AttestError.invalid(
                    "EFI_SIGNATURE_LIST at byte \(listAt): \(body - headerSize) bytes is not a whole number of \(signatureSize)-byte signatures"
                )
            }
            try r.skip("EFI_SIGNATURE_LIST.SignatureHeader", count: headerSize)
            for _ in 0..<((body - headerSize) / signatureSize) {
                guard entries.count < maxEntries else {
                    throw .tooLarge(
                        "EFI_SIGNATURE_LIST entries", size: entries.count + 1, limit: maxEntries, at: r.offset)
                }
                let owner = try EFIGUID(parsing: &r, "EFI_SIGNATURE_DATA.SignatureOwner")
                let data = try r.readBytes("EFI_SIGNATURE_DATA.SignatureData", count: signatureSize - 16)
                switch type {
                case .certX509:
                    entries.append(
                        .x509(
                            owner: owner, der: data,
                            sha256Fingerprint: Hex.encode((try? TPMDigest.hash(.sha256, data)) ?? [])))
                case .certSHA256: entries.append(.sha256(owner: owner, hash: Hex.encode(data)))
                default: entries.append(.other(type: type, owner: owner, data: data))
                }
            }
        }
        return entries
    }
}
