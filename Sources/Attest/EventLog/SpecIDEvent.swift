/// TCG_EfiSpecIDEvent — PFP §10.4.5.1: the first event of a crypto-agile log, in SHA-1 log format,
/// declaring the digest algorithms (and their sizes) every later event carries.
public struct SpecIDEvent: Hashable, Sendable {
    public static let signature: [UInt8] = Array("Spec ID Event03".utf8) + [0]
    /// More banks than any TPM has.
    public static let maxAlgorithms = 16

    public struct Algorithm: Hashable, Sendable {
        public let id: TPMAlgorithmID
        public let digestSize: Int
    }

    public let platformClass: UInt32
    public let specVersion: (major: UInt8, minor: UInt8, errata: UInt8)
    public let uintnSize: UInt8
    public let algorithms: [Algorithm]
    public let vendorInfo: [UInt8]

    public static func == (a: SpecIDEvent, b: SpecIDEvent) -> Bool {
        a.platformClass == b.platformClass && a.specVersion == b.specVersion && a.uintnSize == b.uintnSize
            && a.algorithms == b.algorithms && a.vendorInfo == b.vendorInfo
    }
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
            throw .tooLarge("TCG_EfiSpecIDEvent.numberOfAlgorithms", size: count, limit: Self.maxAlgorithms, at: countAt)
        }
        var algorithms: [Algorithm] = []
        for _ in 0..<count {
            let id = TPMAlgorithmID(try r.readUInt16("TCG_EfiSpecIdEventAlgorithmSize.algorithmId", .little))
            let sizeAt = r.offset
            let size = Int(try r.readUInt16("TCG_EfiSpecIdEventAlgorithmSize.digestSize", .little))
            guard size >= 1, size <= 64 else {
                throw AttestError.invalid("TCG_EfiSpecIDEvent: digest size \(size) for algorithm \(id) at byte \(sizeAt) is not 1–64")
            }
            if let known = id.digestSize, known != size {
                throw AttestError.invalid("TCG_EfiSpecIDEvent: \(id) declared with \(size)-byte digests, but it has \(known)")
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
