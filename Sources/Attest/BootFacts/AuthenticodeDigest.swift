/// The Authenticode digest of a PE/COFF image (Microsoft "Windows Authenticode Portable Executable Signature
/// Format", §"Calculating the PE Image Hash"): what UEFI firmware measures for an EFI application into PCR 4
/// (EV_EFI_BOOT_SERVICES_APPLICATION, TCG PC Client PFP §10.4.4), so a verifier can predict a boot chain before it
/// is installed (`vigil vault predict`).
///
/// Hashed: the headers without the CheckSum field and the Certificate Table directory entry; then each section's
/// raw data in file order; then any data after the sections except the certificate table. Untrusted input: every
/// offset is bounds-checked and sizes are capped; a malformed image is an error naming the field and offset.
public struct AuthenticodeDigest: Hashable, Sendable {
    /// The largest image accepted.
    public static let maxImageSize = 256 << 20
    /// The most sections accepted (the PE format's own limit is 96 for most loaders).
    public static let maxSections = 96

    /// The digest.
    public let digest: [UInt8]
    /// The hash algorithm.
    public let hashAlg: TPMAlgorithmID

    /// Computes the Authenticode digest of `image` with `hashAlg`.
    public init(image: [UInt8], hashAlg: TPMAlgorithmID = .sha256) throws(AttestError) {
        guard image.count <= Self.maxImageSize else {
            throw AttestError(
                code: .sizeLimitExceeded, reason: "PE image: \(image.count) bytes is over \(Self.maxImageSize)")
        }
        func u16(_ at: Int, _ field: String) throws(AttestError) -> Int {
            guard at >= 0, at + 2 <= image.count else { throw Self.truncated(field, at) }
            return Int(image[at]) | Int(image[at + 1]) << 8
        }
        func u32(_ at: Int, _ field: String) throws(AttestError) -> Int {
            guard at >= 0, at + 4 <= image.count else { throw Self.truncated(field, at) }
            return Int(image[at]) | Int(image[at + 1]) << 8 | Int(image[at + 2]) << 16 | Int(image[at + 3]) << 24
        }
        guard image.count >= 64, image[0] == 0x4D, image[1] == 0x5A else {
            throw AttestError(code: .invalidValue, reason: "PE image: no MZ header at offset 0")
        }
        let pe = try u32(0x3C, "e_lfanew")
        guard pe + 24 <= image.count, Array(image[pe..<(pe + 4)]) == [0x50, 0x45, 0, 0] else {
            throw AttestError(code: .invalidValue, reason: "PE image: no PE signature at offset \(pe)")
        }
        let sectionCount = try u16(pe + 6, "NumberOfSections")
        let optionalSize = try u16(pe + 20, "SizeOfOptionalHeader")
        let optional = pe + 24
        let magic = try u16(optional, "OptionalHeader.Magic")
        let directories: Int
        let countAt: Int
        switch magic {
        case 0x10B:
            countAt = optional + 92
            directories = optional + 96
        case 0x20B:
            countAt = optional + 108
            directories = optional + 112
        default:
            throw AttestError(code: .invalidValue, reason: "PE image: optional header magic \(magic) at \(optional)")
        }
        let checksumAt = optional + 64
        let headersSize = try u32(optional + 60, "SizeOfHeaders")
        let directoryCount = try u32(countAt, "NumberOfRvaAndSizes")
        guard sectionCount <= Self.maxSections else {
            throw AttestError(code: .sizeLimitExceeded, reason: "PE image: \(sectionCount) sections")
        }
        guard headersSize <= image.count, checksumAt + 4 <= headersSize else {
            throw AttestError(code: .invalidValue, reason: "PE image: SizeOfHeaders \(headersSize) is out of the image")
        }
        // The Certificate Table is data directory 4; an image without it has nothing to exclude there.
        let certEntryAt = directories + 4 * 8
        let hasCertEntry = directoryCount > 4 && certEntryAt + 8 <= optional + optionalSize
        guard !hasCertEntry || certEntryAt + 8 <= headersSize else {
            throw AttestError(
                code: .invalidValue,
                reason:
                    "PE image: SizeOfHeaders \(headersSize) ends inside the data directories (at \(certEntryAt + 8))")
        }
        var certOffset = 0
        var certSize = 0
        if hasCertEntry {
            certOffset = try u32(certEntryAt, "CertificateTable.VirtualAddress")
            certSize = try u32(certEntryAt + 4, "CertificateTable.Size")
            guard certSize == 0 || (certOffset >= headersSize && certOffset + certSize <= image.count) else {
                throw AttestError(
                    code: .invalidValue,
                    reason: "PE image: certificate table \(certOffset)+\(certSize) is out of the image")
            }
        }
        // The bytes Authenticode covers, in order (then hashed once with any supported algorithm).
        var h: [UInt8] = []
        h.reserveCapacity(image.count)
        if hasCertEntry {
            h.append(contentsOf: image[0..<checksumAt])
            h.append(contentsOf: image[(checksumAt + 4)..<certEntryAt])
            h.append(contentsOf: image[(certEntryAt + 8)..<headersSize])
        } else {
            h.append(contentsOf: image[0..<checksumAt])
            h.append(contentsOf: image[(checksumAt + 4)..<headersSize])
        }
        // Sections in file order.
        let table = optional + optionalSize
        var sections: [(offset: Int, size: Int)] = []
        for i in 0..<sectionCount {
            let at = table + 40 * i
            let size = try u32(at + 16, "section[\(i)].SizeOfRawData")
            let offset = try u32(at + 20, "section[\(i)].PointerToRawData")
            guard size > 0 else { continue }
            guard offset + size <= image.count else {
                throw AttestError(
                    code: .invalidValue, reason: "PE image: section \(i) raw data \(offset)+\(size) is out of the image"
                )
            }
            sections.append((offset, size))
        }
        sections.sort { $0.offset < $1.offset }
        var hashed = headersSize
        for s in sections {
            h.append(contentsOf: image[s.offset..<(s.offset + s.size)])
            hashed += s.size
        }
        // What follows, except the certificate table (which Authenticode requires to be last).
        let end = image.count - (certSize > 0 ? certSize : 0)
        if end > hashed { h.append(contentsOf: image[hashed..<end]) }
        digest = try TPMDigest.hash(hashAlg, h)
        self.hashAlg = hashAlg
    }

    static func truncated(_ field: String, _ at: Int) -> AttestError {
        AttestError(code: .invalidValue, reason: "PE image: \(field) at offset \(at) is past the end")
    }
}
