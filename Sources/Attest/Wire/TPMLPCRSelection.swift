/// TPMS_PCR_SELECTION — TPM 2.0 Part 2 §10.6.2: one bank and a bitmap of PCR indices.
public struct TPMSPCRSelection: Hashable, Sendable, CustomStringConvertible {
    /// Largest `sizeofSelect` accepted (ESAPI's PCR_SELECT_MAX: 32 PCRs).
    public static let maxSizeOfSelect = 4

    /// TPMI_ALG_HASH: the PCR bank.
    public var hash: TPMAlgorithmID
    /// Selected PCR indices, ascending, each below `8 * sizeOfSelect`.
    public private(set) var pcrs: [Int]
    /// The bitmap length on the wire (3 for 24 PCRs).
    public var sizeOfSelect: Int

    /// - Precondition: every index is in `0 ..< 8 * sizeOfSelect` and `sizeOfSelect` ≤ 4 (caller-supplied, trusted).
    public init(hash: TPMAlgorithmID, pcrs: some Sequence<Int>, sizeOfSelect: Int = 3) {
        let sorted = Array(Set(pcrs)).sorted()
        let needed = max(sizeOfSelect, ((sorted.last ?? 0) / 8) + 1)
        precondition(needed <= Self.maxSizeOfSelect && (sorted.first ?? 0) >= 0, "PCR index out of range")
        self.hash = hash
        self.pcrs = sorted
        self.sizeOfSelect = needed
    }

    /// Decodes a TPMS_PCR_SELECTION; a non-hash bank or a `sizeofSelect` above ``maxSizeOfSelect`` is an error.
    public init(parsing reader: inout ByteReader) throws(AttestError) {
        let at = reader.offset
        hash = TPMAlgorithmID(try reader.readUInt16("TPMS_PCR_SELECTION.hash", .big))
        guard hash.isHash else { throw .unknownAlgorithm("TPMS_PCR_SELECTION.hash", hash.rawValue, at: at) }
        let sizeAt = reader.offset
        let size = Int(try reader.readUInt8("TPMS_PCR_SELECTION.sizeofSelect"))
        guard size <= Self.maxSizeOfSelect else {
            throw .tooLarge("TPMS_PCR_SELECTION.sizeofSelect", size: size, limit: Self.maxSizeOfSelect, at: sizeAt)
        }
        let bitmap = try reader.readBytes("TPMS_PCR_SELECTION.pcrSelect", count: size)
        var pcrs: [Int] = []
        for (byteIndex, byte) in bitmap.enumerated() {
            for bit in 0..<8 where byte & (1 << bit) != 0 { pcrs.append(byteIndex * 8 + bit) }
        }
        self.pcrs = pcrs
        self.sizeOfSelect = size
    }

    /// Appends the TPMS_PCR_SELECTION encoding (hash, sizeofSelect, bitmap) to `w`.
    public func marshal(into w: inout ByteWriter) {
        w.append(hash.rawValue)
        w.append(UInt8(sizeOfSelect))
        var bitmap = [UInt8](repeating: 0, count: sizeOfSelect)
        for pcr in pcrs where pcr / 8 < sizeOfSelect { bitmap[pcr / 8] |= UInt8(1 << (pcr % 8)) }
        w.append(bytes: bitmap)
    }

    /// "sha256:0,1,2".
    public var description: String { "\(hash.name):" + pcrs.map(String.init).joined(separator: ",") }
}

/// TPML_PCR_SELECTION — TPM 2.0 Part 2 §10.9.7: banks in the order the TPM reports them.
public struct TPMLPCRSelection: Hashable, Sendable, CustomStringConvertible {
    /// HASH_COUNT cap: more banks than any TPM has.
    public static let maxCount = 16

    /// The per-bank selections, in wire order.
    public var selections: [TPMSPCRSelection]

    /// Wraps the given selections as they are.
    public init(_ selections: [TPMSPCRSelection]) { self.selections = selections }

    /// Decodes a TPML_PCR_SELECTION; more than ``maxCount`` banks is an error.
    public init(parsing reader: inout ByteReader) throws(AttestError) {
        let at = reader.offset
        let count = Int(try reader.readUInt32("TPML_PCR_SELECTION.count", .big))
        guard count <= Self.maxCount else {
            throw .tooLarge("TPML_PCR_SELECTION.count", size: count, limit: Self.maxCount, at: at)
        }
        var selections: [TPMSPCRSelection] = []
        for _ in 0..<count { selections.append(try TPMSPCRSelection(parsing: &reader)) }
        self.selections = selections
    }

    /// Appends the TPML_PCR_SELECTION encoding to `w`.
    public func marshal(into w: inout ByteWriter) {
        w.append(UInt32(selections.count))
        for s in selections { s.marshal(into: &w) }
    }

    /// The TPML_PCR_SELECTION encoding.
    public func marshal() -> [UInt8] {
        var w = ByteWriter()
        marshal(into: &w)
        return w.bytes
    }

    /// Banks with at least one PCR selected, in order.
    public var nonEmpty: [TPMSPCRSelection] { selections.filter { !$0.pcrs.isEmpty } }

    /// Compares selected (bank, PCR) pairs in order, ignoring bitmap widths and empty banks.
    public func selectsSamePCRs(as other: TPMLPCRSelection) -> Bool {
        nonEmpty.map { [$0.hash.rawValue: $0.pcrs] } == other.nonEmpty.map { [$0.hash.rawValue: $0.pcrs] }
    }

    /// Total number of selected PCRs across banks.
    public var pcrCount: Int { selections.reduce(0) { $0 + $1.pcrs.count } }

    /// Parses "sha256:0,1,2+sha1:0-7" (tpm2-tools syntax; "all" selects 0–23).
    public init?(parsingSpec spec: String) {
        var selections: [TPMSPCRSelection] = []
        for part in spec.split(separator: "+") {
            let halves = part.split(separator: ":", maxSplits: 1)
            guard halves.count == 2, let alg = TPMAlgorithmID(name: String(halves[0])), alg.isHash else { return nil }
            var pcrs: [Int] = []
            if halves[1] == "all" {
                pcrs = Array(0..<24)
            } else {
                for item in halves[1].split(separator: ",") {
                    let range = item.split(separator: "-", omittingEmptySubsequences: false)
                    // Bounds first: "0-9223372036854775807" must be refused, not materialised.
                    if range.count == 2, let lo = Int(range[0]), let hi = Int(range[1]), lo <= hi, lo >= 0, hi < 32 {
                        pcrs.append(contentsOf: lo...hi)
                    } else if range.count == 1, let v = Int(range[0]) {
                        pcrs.append(v)
                    } else {
                        return nil
                    }
                }
            }
            guard !pcrs.isEmpty, pcrs.allSatisfy({ (0..<32).contains($0) }) else { return nil }
            selections.append(TPMSPCRSelection(hash: alg, pcrs: pcrs))
        }
        guard !selections.isEmpty else { return nil }
        self.selections = selections
    }

    /// tpm2-tools syntax: "sha256:0,1,2+sha1:0,7".
    public var description: String { selections.map(\.description).joined(separator: "+") }
}
