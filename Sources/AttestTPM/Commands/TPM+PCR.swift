public import Attest
internal import CTSS2

extension TPM {
    /// Reads PCRs of any number of banks and indices. A TPM returns at most 8 digests per TPM2_PCR_Read,
    /// so this repeats the command for what is left, using the selection the TPM says it read.
    ///
    /// Throws ``TPMError/Code/bankNotActive`` for a bank the TPM has not allocated.
    ///
    /// Corresponding ESAPI call: `Esys_PCR_Read` (TPM2_PCR_Read, Part 3 §22.4).
    public func pcrRead(_ selection: TPMLPCRSelection) throws(TPMError) -> (values: PCRValues, updateCounter: UInt32) {
        let active = try activeBanks()
        for s in selection.nonEmpty where !active.contains(s.hash) {
            throw TPMError(
                code: .bankNotActive,
                reason:
                    "PCR bank \(s.hash.name) is not active on this TPM (active: \(active.map(\.name).joined(separator: ", ")))"
            )
        }
        let ctx = context.raw
        var remaining = selection.nonEmpty
        var values = PCRValues()
        var counter: UInt32 = 0
        for _ in 0..<(selection.pcrCount + 1) {
            guard !remaining.isEmpty else { break }
            var request = try MU.unmarshal(
                TPMLPCRSelection(remaining).marshal(), into: TPML_PCR_SELECTION(),
                Tss2_MU_TPML_PCR_SELECTION_Unmarshal, "TPML_PCR_SELECTION")
            var update: UInt32 = 0
            var selOut: UnsafeMutablePointer<TPML_PCR_SELECTION>? = nil
            var digests: UnsafeMutablePointer<TPML_DIGEST>? = nil
            try tss2Call("Esys_PCR_Read", logger: logger) {
                Esys_PCR_Read(ctx, ESYS.none, ESYS.none, ESYS.none, &request, &update, &selOut, &digests)
            }
            defer {
                Esys_Free(selOut)
                Esys_Free(digests)
            }
            guard let selOut, let digests else { throw TPMError.invalidResponse("Esys_PCR_Read returned no data") }
            let readSelection = try decode(
                TPMLPCRSelection.self,
                MU.marshal(selOut.pointee, Tss2_MU_TPML_PCR_SELECTION_Marshal, "TPML_PCR_SELECTION")
            ) {
                (r: inout ByteReader) throws(AttestError) in try TPMLPCRSelection(parsing: &r)
            }
            let list = try decodeDigestList(MU.marshal(digests.pointee, Tss2_MU_TPML_DIGEST_Marshal, "TPML_DIGEST"))
            guard list.count == readSelection.pcrCount else {
                throw TPMError.invalidResponse(
                    "TPM2_PCR_Read: \(list.count) digests for \(readSelection.pcrCount) PCRs")
            }
            guard list.count > 0 else { break }
            counter = update
            var i = 0
            for s in readSelection.selections {
                for pcr in s.pcrs {
                    values[s.hash, pcr] = list[i]
                    i += 1
                }
            }
            remaining = remaining.compactMap { want in
                let done = Set(readSelection.selections.filter { $0.hash == want.hash }.flatMap(\.pcrs))
                let left = want.pcrs.filter { !done.contains($0) }
                return left.isEmpty
                    ? nil : TPMSPCRSelection(hash: want.hash, pcrs: left, sizeOfSelect: want.sizeOfSelect)
            }
        }
        guard remaining.isEmpty else {
            throw TPMError.invalidResponse("TPM2_PCR_Read did not return \(TPMLPCRSelection(remaining))")
        }
        return (values, counter)
    }

    /// Extends one PCR in every given bank: PCR[i] = H(PCR[i] || digest).
    ///
    /// Corresponding ESAPI call: `Esys_PCR_Extend` (TPM2_PCR_Extend, Part 3 §22.2).
    public func pcrExtend(_ pcr: Int, digests: [TPMAlgorithmID: [UInt8]]) throws(TPMError) {
        guard (0..<24).contains(pcr) else {
            throw TPMError.invalidArgument("PCR_Extend: PCR \(pcr) is out of range 0…23")
        }
        var w = ByteWriter()
        w.append(UInt32(digests.count))
        for (alg, digest) in digests.sorted(by: { $0.key < $1.key }) {
            guard alg.digestSize == digest.count else {
                throw TPMError.invalidArgument(
                    "PCR_Extend: a \(alg.name) digest must be \(alg.digestSize ?? 0) bytes, got \(digest.count)")
            }
            w.append(alg.rawValue)
            w.append(bytes: digest)
        }
        var values = try MU.unmarshal(
            w.bytes, into: TPML_DIGEST_VALUES(), Tss2_MU_TPML_DIGEST_VALUES_Unmarshal, "TPML_DIGEST_VALUES")
        let ctx = context.raw
        try tss2Call("Esys_PCR_Extend", logger: logger) {
            Esys_PCR_Extend(ctx, ESYS.pcr(pcr), ESYS.password, ESYS.none, ESYS.none, &values)
        }
    }

    func decodeDigestList(_ bytes: [UInt8]) throws(TPMError) -> [[UInt8]] {
        var r = ByteReader(bytes)
        do {
            let count = Int(try r.readUInt32("TPML_DIGEST.count", .big))
            guard count <= 8 else { throw TPMError.invalidResponse("TPML_DIGEST.count \(count) > 8") }
            var out: [[UInt8]] = []
            for _ in 0..<count { out.append(try r.readTPM2B("TPML_DIGEST.digest", maxSize: 64)) }
            try r.expectEnd("TPML_DIGEST")
            return out
        } catch let e as AttestError {
            throw TPMError.invalidResponse("TPML_DIGEST: \(e)")
        } catch let e as TPMError {
            throw e
        } catch {
            throw TPMError.invalidResponse("TPML_DIGEST: \(error)")
        }
    }

    /// Decodes TPM output with an `Attest` wire parser, turning its error into ``TPMError/Code/invalidResponse``.
    func decode<T>(_: T.Type, _ bytes: [UInt8], _ parse: (inout ByteReader) throws(AttestError) -> T) throws(TPMError)
        -> T
    {
        var reader = ByteReader(bytes)
        do {
            let value = try parse(&reader)
            try reader.expectEnd("\(T.self)")
            return value
        } catch {
            throw TPMError.invalidResponse("the TPM returned a malformed \(T.self): \(error)")
        }
    }
}
