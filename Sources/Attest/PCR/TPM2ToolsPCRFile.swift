/// The PCR file `tpm2_quote -o` and `tpm2_pcrread -o` write by default ("serialized" format, tpm2-tools 5.x).
///
/// It is raw C memory from the tool's machine, not a TPM wire structure, so it is little-endian:
/// a `TPML_PCR_SELECTION` C struct (UINT32 count + 16 × 8-byte TPMS_PCR_SELECTION: UINT16 hash,
/// UINT8 sizeofSelect, BYTE pcrSelect[4], 1 pad), then the number of `TPML_DIGEST` blocks (UINT32, or a
/// 64-bit `size_t` on some builds — told apart by the file length), then that many `TPML_DIGEST`
/// C structs (UINT32 count + 8 × TPM2B_DIGEST {UINT16 size; BYTE buffer[64]}). Digests appear in
/// selection order, eight per block.
public enum TPM2ToolsPCRFile {
    static let selectionStructSize = 4 + 16 * 8
    static let digestListStructSize = 4 + 8 * 66
    /// Cap: 4 banks × 32 PCRs / 8 per block, with room.
    static let maxDigestLists = 32

    /// Decodes the file into its selection and values. Every field is bounds-checked.
    public static func parse(_ bytes: [UInt8]) throws(AttestError) -> (TPMLPCRSelection, PCRValues) {
        var reader = ByteReader(bytes)
        let count = Int(try reader.readUInt32("tpm2 PCR file: selection count", .little))
        guard count <= 16 else { throw .tooLarge("tpm2 PCR file: selection count", size: count, limit: 16, at: 0) }
        var selections: [TPMSPCRSelection] = []
        for i in 0..<16 {
            let at = reader.offset
            let hash = TPMAlgorithmID(try reader.readUInt16("tpm2 PCR file: selection[\(i)].hash", .little))
            let size = Int(try reader.readUInt8("tpm2 PCR file: selection[\(i)].sizeofSelect"))
            let bitmap = try reader.readBytes("tpm2 PCR file: selection[\(i)].pcrSelect", count: 4)
            try reader.skip("tpm2 PCR file: selection[\(i)] padding", count: 1)
            guard i < count else { continue }
            guard hash.isHash else {
                throw .unknownAlgorithm("tpm2 PCR file: selection[\(i)].hash", hash.rawValue, at: at)
            }
            guard size <= 4 else { throw .tooLarge("tpm2 PCR file: sizeofSelect", size: size, limit: 4, at: at + 2) }
            var pcrs: [Int] = []
            for (byteIndex, byte) in bitmap.prefix(size).enumerated() {
                for bit in 0..<8 where byte & (1 << bit) != 0 { pcrs.append(byteIndex * 8 + bit) }
            }
            selections.append(TPMSPCRSelection(hash: hash, pcrs: pcrs, sizeOfSelect: max(size, 1)))
        }
        let rest = reader.remaining
        let lists: Int
        if rest >= 4, (rest - 4) % digestListStructSize == 0 {
            lists = Int(try reader.readUInt32("tpm2 PCR file: digest list count", .little))
        } else if rest >= 8, (rest - 8) % digestListStructSize == 0 {
            let wide = try reader.readUInt64("tpm2 PCR file: digest list count", .little)
            guard wide <= UInt64(maxDigestLists) else {
                throw .tooLarge(
                    "tpm2 PCR file: digest list count", size: maxDigestLists + 1, limit: maxDigestLists,
                    at: selectionStructSize)
            }
            lists = Int(wide)
        } else {
            throw AttestError(
                code: .truncated,
                reason: "tpm2 PCR file: \(rest) bytes after the selection is not a whole number of TPML_DIGEST blocks")
        }
        guard lists <= maxDigestLists else {
            throw .tooLarge(
                "tpm2 PCR file: digest list count", size: lists, limit: maxDigestLists, at: selectionStructSize)
        }
        var digests: [[UInt8]] = []
        for l in 0..<lists {
            let at = reader.offset
            let n = Int(try reader.readUInt32("tpm2 PCR file: TPML_DIGEST[\(l)].count", .little))
            guard n <= 8 else { throw .tooLarge("tpm2 PCR file: TPML_DIGEST.count", size: n, limit: 8, at: at) }
            for d in 0..<8 {
                let sizeAt = reader.offset
                let size = Int(try reader.readUInt16("tpm2 PCR file: digest size", .little))
                let buffer = try reader.readBytes("tpm2 PCR file: digest buffer", count: 64)
                guard d < n else { continue }
                guard size <= 64 else {
                    throw .tooLarge("tpm2 PCR file: digest size", size: size, limit: 64, at: sizeAt)
                }
                digests.append(Array(buffer.prefix(size)))
            }
        }
        try reader.expectEnd("tpm2 PCR file")
        let selection = TPMLPCRSelection(selections)
        guard digests.count == selection.pcrCount else {
            throw AttestError.invalid("tpm2 PCR file: \(digests.count) digests for \(selection.pcrCount) selected PCRs")
        }
        var values = PCRValues()
        var i = 0
        for s in selection.selections {
            for pcr in s.pcrs {
                guard digests[i].count == s.hash.digestSize else {
                    throw AttestError.invalid(
                        "tpm2 PCR file: \(s.hash.name) PCR \(pcr) has a \(digests[i].count)-byte digest")
                }
                values[s.hash, pcr] = digests[i]
                i += 1
            }
        }
        return (selection, values)
    }

    /// Encodes `values` for `selection` in the layout `tpm2_quote -o` writes (UINT32 block count, x86-64).
    public static func serialize(selection: TPMLPCRSelection, values: PCRValues) throws(AttestError) -> [UInt8] {
        guard selection.selections.count <= 16 else {
            throw .tooLarge("PCR selection", size: selection.selections.count, limit: 16, at: 0)
        }
        guard let ordered = values.ordered(by: selection) else {
            throw AttestError.invalid("PCR values: a PCR selected by \(selection) has no value")
        }
        var out: [UInt8] = []
        func le16(_ v: UInt16) {
            out.append(UInt8(truncatingIfNeeded: v))
            out.append(UInt8(truncatingIfNeeded: v >> 8))
        }
        func le32(_ v: UInt32) { for s in [0, 8, 16, 24] { out.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
        le32(UInt32(selection.selections.count))
        for i in 0..<16 {
            if i < selection.selections.count {
                let s = selection.selections[i]
                var w = ByteWriter()
                s.marshal(into: &w)
                le16(s.hash.rawValue)
                out.append(UInt8(s.sizeOfSelect))
                var bitmap = Array(w.bytes.dropFirst(3))
                bitmap += [UInt8](repeating: 0, count: max(0, 4 - bitmap.count))
                out.append(contentsOf: bitmap.prefix(4))
                out.append(0)
            } else {
                out.append(contentsOf: [UInt8](repeating: 0, count: 8))
            }
        }
        let blocks = stride(from: 0, to: ordered.count, by: 8).map { Array(ordered[$0..<min($0 + 8, ordered.count)]) }
        le32(UInt32(blocks.count))
        for block in blocks {
            le32(UInt32(block.count))
            for d in 0..<8 {
                let digest = d < block.count ? block[d] : []
                le16(UInt16(digest.count))
                out.append(contentsOf: digest + [UInt8](repeating: 0, count: 64 - digest.count))
            }
        }
        return out
    }
}
