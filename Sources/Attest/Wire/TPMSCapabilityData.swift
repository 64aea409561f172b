/// TPMS_CAPABILITY_DATA — TPM 2.0 Part 2 §10.10.2: the answer to TPM2_GetCapability, for the
/// capabilities Vigil reads (algorithms, handles, PCR allocation, TPM properties).
public struct TPMSCapabilityData: Hashable, Sendable {
    /// Cap on list lengths (MAX_CAP_DATA is at most a few hundred entries).
    public static let maxEntries = 1024

    /// TPMU_CAPABILITIES — TPM 2.0 Part 2 §10.10.1: the decoded list, selected by ``capability``.
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

    /// The TPM_CAP selector (Part 2 §6.12): 0 algorithms, 1 handles, 5 PCRs, 6 TPM properties.
    public let capability: UInt32
    /// The decoded capability list.
    public let data: Data

    /// Decodes a whole TPMS_CAPABILITY_DATA; other capabilities, oversized counts and trailing bytes are errors.
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
            throw AttestError(
                code: .unsupportedStructure,
                reason: "TPMS_CAPABILITY_DATA: capability \(capability) is not decoded by Vigil")
        }
        try reader.expectEnd("TPMS_CAPABILITY_DATA")
    }

    private static func count(_ reader: inout ByteReader, at: Int) throws(AttestError) -> Int {
        let count = Int(try reader.readUInt32("TPMS_CAPABILITY_DATA.count", .big))
        guard count <= maxEntries else {
            throw .tooLarge("TPMS_CAPABILITY_DATA.count", size: count, limit: maxEntries, at: at)
        }
        return count
    }
}

/// TPMS_NV_PUBLIC — TPM 2.0 Part 2 §13.5: an NV index's public area.
public struct TPMSNVPublic: Hashable, Sendable {
    /// TPMA_NV bits — Part 2 §13.4.
    public struct Attributes: OptionSet, Hashable, Sendable {
        /// The 32-bit TPMA_NV value.
        public let rawValue: UInt32
        /// Wraps a TPMA_NV value; reserved and TPM_NT bits are kept as given.
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// TPMA_NV_PPWRITE (bit 0).
        public static let ppWrite = Attributes(rawValue: 1 << 0)
        /// TPMA_NV_OWNERWRITE (bit 1).
        public static let ownerWrite = Attributes(rawValue: 1 << 1)
        /// TPMA_NV_AUTHWRITE (bit 2).
        public static let authWrite = Attributes(rawValue: 1 << 2)
        /// TPMA_NV_POLICYWRITE (bit 3).
        public static let policyWrite = Attributes(rawValue: 1 << 3)
        /// TPMA_NV_POLICY_DELETE (bit 10).
        public static let policyDelete = Attributes(rawValue: 1 << 10)
        /// TPMA_NV_WRITELOCKED (bit 11).
        public static let writeLocked = Attributes(rawValue: 1 << 11)
        /// TPMA_NV_WRITEALL (bit 12).
        public static let writeAll = Attributes(rawValue: 1 << 12)
        /// TPMA_NV_WRITEDEFINE (bit 13).
        public static let writeDefine = Attributes(rawValue: 1 << 13)
        /// TPMA_NV_WRITE_STCLEAR (bit 14).
        public static let writeSTClear = Attributes(rawValue: 1 << 14)
        /// TPMA_NV_GLOBALLOCK (bit 15).
        public static let globalLock = Attributes(rawValue: 1 << 15)
        /// TPMA_NV_PPREAD (bit 16).
        public static let ppRead = Attributes(rawValue: 1 << 16)
        /// TPMA_NV_OWNERREAD (bit 17).
        public static let ownerRead = Attributes(rawValue: 1 << 17)
        /// TPMA_NV_AUTHREAD (bit 18).
        public static let authRead = Attributes(rawValue: 1 << 18)
        /// TPMA_NV_POLICYREAD (bit 19).
        public static let policyRead = Attributes(rawValue: 1 << 19)
        /// TPMA_NV_NO_DA (bit 25).
        public static let noDA = Attributes(rawValue: 1 << 25)
        /// TPMA_NV_ORDERLY (bit 26).
        public static let orderly = Attributes(rawValue: 1 << 26)
        /// TPMA_NV_CLEAR_STCLEAR (bit 27).
        public static let clearSTClear = Attributes(rawValue: 1 << 27)
        /// TPMA_NV_READLOCKED (bit 28).
        public static let readLocked = Attributes(rawValue: 1 << 28)
        /// TPMA_NV_WRITTEN (bit 29).
        public static let written = Attributes(rawValue: 1 << 29)
        /// TPMA_NV_PLATFORMCREATE (bit 30).
        public static let platformCreate = Attributes(rawValue: 1 << 30)
        /// TPMA_NV_READ_STCLEAR (bit 31).
        public static let readSTClear = Attributes(rawValue: 1 << 31)
    }

    /// TPMI_RH_NV_INDEX: the NV index handle.
    public var nvIndex: UInt32
    /// Hash algorithm for the index Name (see ``name()``).
    public var nameAlg: TPMAlgorithmID
    /// The TPMA_NV attributes.
    public var attributes: Attributes
    /// The index's authorization policy digest (at most 64 bytes when decoded; empty for none).
    public var authPolicy: [UInt8]
    /// Size in bytes of the index's data area.
    public var dataSize: UInt16

    /// Builds an NV public area, e.g. for TPM2_NV_DefineSpace.
    public init(
        nvIndex: UInt32, nameAlg: TPMAlgorithmID, attributes: Attributes, authPolicy: [UInt8] = [], dataSize: UInt16
    ) {
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

    /// The TPMS_NV_PUBLIC encoding (without the TPM2B size prefix).
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
