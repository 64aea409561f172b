/// TPMS_CAPABILITY_DATA — TPM 2.0 Part 2 §10.10.2: the answer to TPM2_GetCapability, for the
/// capabilities Vigil reads (algorithms, handles, PCR allocation, TPM properties).
public struct TPMSCapabilityData: Hashable, Sendable {
    /// Cap on list lengths (MAX_CAP_DATA is at most a few hundred entries).
    public static let maxEntries = 1024

    public enum Data: Hashable, Sendable {
        /// TPML_ALG_PROPERTY: algorithm and TPMA_ALGORITHM bits.
        case algorithms([TPMAlgorithmID: UInt32])
        /// TPML_HANDLE.
        case handles([UInt32])
        /// TPML_PCR_SELECTION: the allocated banks.
        case pcrs(TPMLPCRSelection)
        /// TPML_TAGGED_TPM_PROPERTY: property and value.
        case properties([UInt32: UInt32])
    }

    public let capability: UInt32
    public let data: Data

    public init(bytes: [UInt8]) throws(AttestError) {
        var reader = ByteReader(bytes)
        capability = try reader.readUInt32("TPMS_CAPABILITY_DATA.capability", .big)
        let countAt = reader.offset
        switch capability {
        case 0:
            let count = try Self.count(&reader, at: countAt)
            var out: [TPMAlgorithmID: UInt32] = [:]
            for _ in 0..<count {
                let alg = TPMAlgorithmID(try reader.readUInt16("TPMS_ALG_PROPERTY.alg", .big))
                out[alg] = try reader.readUInt32("TPMS_ALG_PROPERTY.algProperties", .big)
            }
            data = .algorithms(out)
        case 1:
            let count = try Self.count(&reader, at: countAt)
            var out: [UInt32] = []
            for _ in 0..<count { out.append(try reader.readUInt32("TPML_HANDLE.handle", .big)) }
            data = .handles(out)
        case 5:
            data = .pcrs(try TPMLPCRSelection(parsing: &reader))
        case 6:
            let count = try Self.count(&reader, at: countAt)
            var out: [UInt32: UInt32] = [:]
            for _ in 0..<count {
                let property = try reader.readUInt32("TPMS_TAGGED_PROPERTY.property", .big)
                out[property] = try reader.readUInt32("TPMS_TAGGED_PROPERTY.value", .big)
            }
            data = .properties(out)
        default:
            throw AttestError(code: .unsupportedStructure, reason: "TPMS_CAPABILITY_DATA: capability \(capability) is not decoded by Vigil")
        }
        try reader.expectEnd("TPMS_CAPABILITY_DATA")
    }

    private static func count(_ reader: inout ByteReader, at: Int) throws(AttestError) -> Int {
        let count = Int(try reader.readUInt32("TPMS_CAPABILITY_DATA.count", .big))
        guard count <= maxEntries else { throw .tooLarge("TPMS_CAPABILITY_DATA.count", size: count, limit: maxEntries, at: at) }
        return count
    }
}

/// TPMS_NV_PUBLIC — TPM 2.0 Part 2 §13.5: an NV index's public area.
public struct TPMSNVPublic: Hashable, Sendable {
    /// TPMA_NV bits — Part 2 §13.4.
    public struct Attributes: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let ppWrite = Attributes(rawValue: 1 << 0)
        public static let ownerWrite = Attributes(rawValue: 1 << 1)
        public static let authWrite = Attributes(rawValue: 1 << 2)
        public static let policyWrite = Attributes(rawValue: 1 << 3)
        public static let policyDelete = Attributes(rawValue: 1 << 10)
        public static let writeLocked = Attributes(rawValue: 1 << 11)
        public static let writeAll = Attributes(rawValue: 1 << 12)
        public static let writeDefine = Attributes(rawValue: 1 << 13)
        public static let writeSTClear = Attributes(rawValue: 1 << 14)
        public static let globalLock = Attributes(rawValue: 1 << 15)
        public static let ppRead = Attributes(rawValue: 1 << 16)
        public static let ownerRead = Attributes(rawValue: 1 << 17)
        public static let authRead = Attributes(rawValue: 1 << 18)
        public static let policyRead = Attributes(rawValue: 1 << 19)
        public static let noDA = Attributes(rawValue: 1 << 25)
        public static let orderly = Attributes(rawValue: 1 << 26)
        public static let clearSTClear = Attributes(rawValue: 1 << 27)
        public static let readLocked = Attributes(rawValue: 1 << 28)
        public static let written = Attributes(rawValue: 1 << 29)
        public static let platformCreate = Attributes(rawValue: 1 << 30)
        public static let readSTClear = Attributes(rawValue: 1 << 31)
    }

    public var nvIndex: UInt32
    public var nameAlg: TPMAlgorithmID
    public var attributes: Attributes
    public var authPolicy: [UInt8]
    public var dataSize: UInt16

    public init(nvIndex: UInt32, nameAlg: TPMAlgorithmID, attributes: Attributes, authPolicy: [UInt8] = [], dataSize: UInt16) {
        self.nvIndex = nvIndex
        self.nameAlg = nameAlg
        self.attributes = attributes
        self.authPolicy = authPolicy
        self.dataSize = dataSize
    }

    /// Decodes a TPM2B_NV_PUBLIC.
    public init(tpm2bBytes bytes: [UInt8]) throws(AttestError) {
        var outer = ByteReader(bytes)
        let size = Int(try outer.readUInt16("TPM2B_NV_PUBLIC.size", .big))
        var reader = try outer.readSubReader("TPM2B_NV_PUBLIC.nvPublic", count: size)
        try outer.expectEnd("TPM2B_NV_PUBLIC")
        nvIndex = try reader.readUInt32("TPMS_NV_PUBLIC.nvIndex", .big)
        nameAlg = TPMAlgorithmID(try reader.readUInt16("TPMS_NV_PUBLIC.nameAlg", .big))
        attributes = Attributes(rawValue: try reader.readUInt32("TPMS_NV_PUBLIC.attributes", .big))
        authPolicy = try reader.readTPM2B("TPMS_NV_PUBLIC.authPolicy", maxSize: 64)
        dataSize = try reader.readUInt16("TPMS_NV_PUBLIC.dataSize", .big)
        try reader.expectEnd("TPMS_NV_PUBLIC")
    }

    public func marshal() -> [UInt8] {
        var w = ByteWriter()
        w.append(nvIndex)
        w.append(nameAlg.rawValue)
        w.append(attributes.rawValue)
        w.appendTPM2B(authPolicy)
        w.append(dataSize)
        return w.bytes
    }

    /// TPM2B_NV_PUBLIC encoding.
    public func marshalTPM2B() -> [UInt8] {
        var w = ByteWriter()
        w.appendTPM2B(marshal())
        return w.bytes
    }

    /// The index Name: nameAlg || H(TPMS_NV_PUBLIC) (Part 1 §16).
    public func name() throws(AttestError) -> TPMName {
        var w = ByteWriter()
        w.append(nameAlg.rawValue)
        w.append(bytes: try TPMDigest.hash(nameAlg, marshal()))
        return TPMName(bytes: w.bytes)
    }
}
