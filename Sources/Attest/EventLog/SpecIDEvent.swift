/// TCG_EfiSpecIDEvent — PFP §10.4.5.1: the first event of a crypto-agile log, in SHA-1 log format,
/// declaring the digest algorithms (and their sizes) every later event carries.
public struct SpecIDEvent: Hashable, Sendable {
    /// The 16-byte signature field, "Spec ID Event03" and a NUL, that marks a crypto-agile log.
    public static let signature: [UInt8] = Array("Spec ID Event03".utf8) + [0]
    /// More banks than any TPM has.
    public static let maxAlgorithms = 16

    /// TCG_EfiSpecIdEventAlgorithmSize — PFP §10.4.5.1: one declared digest algorithm and its size.
    public struct Algorithm: Hashable, Sendable {
        /// The digest's TPM_ALG_ID.
        public let id: TPMAlgorithmID
        /// The digest size in bytes (1–64; must match the registry size for known hashes).
        public let digestSize: Int
    }

    /// The platformClass field (0 client, 1 server), as claimed by the log.
    public let platformClass: UInt32
    /// The spec version the firmware claims to follow (e.g. 2.0 errata 0).
    public let specVersion: (major: UInt8, minor: UInt8, errata: UInt8)
    /// The UINTN size claimed by the firmware (1 for UINT32, 2 for UINT64).
    public let uintnSize: UInt8
    /// The digest algorithms every later event carries, in log order (at least one, no duplicates).
    public let algorithms: [Algorithm]
    /// Vendor-defined bytes (vendorInfo), uninterpreted and untrusted.
    public let vendorInfo: [UInt8]

    /// Compares every field, including the spec version tuple.
    public static func == (a: SpecIDEvent, b: SpecIDEvent) -> Bool {
        a.platformClass == b.platformClass && a.specVersion == b.specVersion && a.uintnSize == b.uintnSize
            && a.algorithms == b.algorithms && a.vendorInfo == b.vendorInfo
    }
    /// Hashes the platform class, algorithms and vendor info.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(platformClass)
        hasher.combine(algorithms)
        hasher.combine(vendorInfo)
    }

    /// Decodes the event data of the first event. Returns nil when the data is not a Spec ID event at all
    /// (the log is then in SHA-1 format); throws when it claims to be one but is malformed.
    public init?(eventData data: [UInt8]) throws(AttestError) {
        guard data.count >= 16, Array(data.prefix(16)) == Self.signature else { return nil }
        var r = ByteReader(data)
        try r.skip("TCG_EfiSpecIDEvent.signature", count: 16)
        platformClass = try r.readUInt32("TCG_EfiSpecIDEvent.platformClass", .little)
        let minor = try r.readUInt8("TCG_EfiSpecIDEvent.specVersionMinor")
        let major = try r.readUInt8("TCG_EfiSpecIDEvent.specVersionMajor")
        let errata = try r.readUInt8("TCG_EfiSpecIDEvent.specErrata")
        specVersion = (major, minor, errata)
        uintnSize = try r.readUInt8("TCG_EfiSpecIDEvent.uintnSize")
        let countAt = r.offset
        let count = Int(try r.readUInt32("TCG_EfiSpecIDEvent.numberOfAlgorithms", .little))
        guard count >= 1, count <= Self.maxAlgorithms else {
            throw .tooLarge(
                "TCG_EfiSpecIDEvent.numberOfAlgorithms", size: count, limit: Self.maxAlgorithms, at: countAt)
        }
        var algorithms: [Algorithm] = []
        for _ in 0..<count {
            let id = TPMAlgorithmID(try r.readUInt16("TCG_EfiSpecIdEventAlgorithmSize.algorithmId", .little))
            let sizeAt = r.offset
            let size = Int(try r.readUInt16("TCG_EfiSpecIdEventAlgorithmSize.digestSize", .little))
            guard size >= 1, size <= 64 else {
                throw AttestError.invalid(
                    "TCG_EfiSpecIDEvent: digest size \(size) for algorithm \(id) at byte \(sizeAt) is not 1–64")
            }
            if let known = id.digestSize, known != size {
                throw AttestError.invalid(
                    "TCG_EfiSpecIDEvent: \(id) declared with \(size)-byte digests, but it has \(known)")
            }
            guard !algorithms.contains(where: { $0.id == id }) else {
                throw AttestError.invalid("TCG_EfiSpecIDEvent: algorithm \(id) declared twice")
            }
            algorithms.append(Algorithm(id: id, digestSize: size))
        }
        let vendorSize = Int(try r.readUInt8("TCG_EfiSpecIDEvent.vendorInfoSize"))
        vendorInfo = try r.readBytes("TCG_EfiSpecIDEvent.vendorInfo", count: vendorSize)
        try r.expectEnd("TCG_EfiSpecIDEvent")
        self.algorithms = algorithms
    }
}
