public import Attest
internal import CTSS2

/// Who authorizes an NV read or write.
public enum NVAuthorization: Sendable {
    /// The owner hierarchy (TPMA_NV_OWNERREAD / OWNERWRITE).
    case owner
    /// The index's own auth value (TPMA_NV_AUTHREAD / AUTHWRITE); empty by default.
    case index(SecretBytes?)
}

extension TPM {
    /// Defines an NV index under the owner hierarchy.
    ///
    /// Corresponding ESAPI call: `Esys_NV_DefineSpace` (TPM2_NV_DefineSpace, Part 3 §31.3).
    public func nvDefineSpace(_ nvPublic: TPMSNVPublic, authValue: SecretBytes? = nil) throws(TPMError) {
        guard TPMHandle(nvPublic.nvIndex).isNVIndex else {
            throw TPMError.invalidArgument("NV_DefineSpace: \(TPMHandle(nvPublic.nvIndex)) is not an NV index")
        }
        let ctx = context.raw
        var auth = try authStruct(authValue ?? SecretBytes([]))
        defer { wipe(&auth) }
        var info = try MU.unmarshal(
            nvPublic.marshalTPM2B(), into: TPM2B_NV_PUBLIC(), Tss2_MU_TPM2B_NV_PUBLIC_Unmarshal, "TPM2B_NV_PUBLIC")
        var tr: ESYS_TR = ESYS.none
        try tss2Call("Esys_NV_DefineSpace", logger: logger) {
            Esys_NV_DefineSpace(ctx, TPMHierarchy.owner.esysTR, ESYS.password, ESYS.none, ESYS.none, &auth, &info, &tr)
        }
        closeReference(tr)
    }

    /// Deletes an owner NV index.
    ///
    /// Corresponding ESAPI call: `Esys_NV_UndefineSpace` (TPM2_NV_UndefineSpace, Part 3 §31.4).
    public func nvUndefineSpace(_ index: TPMHandle) throws(TPMError) {
        let ctx = context.raw
        let object = try openPersistent(index, authValue: nil)
        // On success ESAPI drops the reference itself.
        do throws(TPMError) {
            try tss2Call("Esys_NV_UndefineSpace", logger: logger) {
                Esys_NV_UndefineSpace(ctx, TPMHierarchy.owner.esysTR, object.tr, ESYS.password, ESYS.none, ESYS.none)
            }
        } catch {
            closeReference(object.tr)
            throw error
        }
    }

    /// The public area of an NV index, or nil if it is not defined.
    ///
    /// Corresponding ESAPI call: `Esys_NV_ReadPublic` (TPM2_NV_ReadPublic, Part 3 §31.6).
    public func nvReadPublic(_ index: TPMHandle) throws(TPMError) -> TPMSNVPublic? {
        guard try handles(from: index).contains(index) else { return nil }
        let ctx = context.raw
        let object = try openPersistent(index, authValue: nil)
        defer { closeReference(object.tr) }
        var pub: UnsafeMutablePointer<TPM2B_NV_PUBLIC>? = nil
        var name: UnsafeMutablePointer<TPM2B_NAME>? = nil
        try tss2Call("Esys_NV_ReadPublic", logger: logger) {
            Esys_NV_ReadPublic(ctx, object.tr, ESYS.none, ESYS.none, ESYS.none, &pub, &name)
        }
        defer {
            Esys_Free(pub)
            Esys_Free(name)
        }
        guard let pub else { throw TPMError.invalidResponse("Esys_NV_ReadPublic returned nothing") }
        let bytes = try MU.marshal(pub.pointee, Tss2_MU_TPM2B_NV_PUBLIC_Marshal, "TPM2B_NV_PUBLIC")
        do { return try TPMSNVPublic(tpm2bBytes: bytes) } catch {
            throw TPMError.invalidResponse("NV_ReadPublic: \(error)")
        }
    }

    /// Reads `size` bytes at `offset`, in chunks of TPM_PT_NV_BUFFER_MAX. Reading past the end of the
    /// index is the TPM's TPM_RC_NV_RANGE, passed on as a typed error.
    ///
    /// Corresponding ESAPI call: `Esys_NV_Read` (TPM2_NV_Read, Part 3 §31.13).
    public func nvRead(_ index: TPMHandle, offset: Int = 0, size: Int, authorization: NVAuthorization = .owner)
        throws(TPMError) -> [UInt8]
    {
        guard offset >= 0, size >= 0, offset + size <= Int(UInt16.max) else {
            throw TPMError.invalidArgument("NV_Read: offset \(offset) + size \(size) is out of range")
        }
        let chunk = try nvBufferMax()
        let ctx = context.raw
        let (object, authTR) = try openNVIndex(index, authorization)
        defer { closeReference(object.tr) }
        var out: [UInt8] = []
        out.reserveCapacity(size)
        var position = offset
        while position < offset + size {
            let n = min(chunk, offset + size - position)
            var data: UnsafeMutablePointer<TPM2B_MAX_NV_BUFFER>? = nil
            try tss2Call("Esys_NV_Read", logger: logger) {
                Esys_NV_Read(
                    ctx, authTR, object.tr, ESYS.password, ESYS.none, ESYS.none, UInt16(n), UInt16(position), &data)
            }
            defer { Esys_Free(data) }
            guard let data else { throw TPMError.invalidResponse("Esys_NV_Read returned nothing") }
            let bytes = try MU.payload(data.pointee, Tss2_MU_TPM2B_MAX_NV_BUFFER_Marshal, "TPM2B_MAX_NV_BUFFER")
            guard bytes.count == n else {
                throw TPMError.invalidResponse("NV_Read returned \(bytes.count) bytes, asked for \(n)")
            }
            out.append(contentsOf: bytes)
            position += n
        }
        return out
    }

    /// Opens an NV index and picks the authorization handle: the owner hierarchy, or the index itself
    /// with its auth value set.
    private func openNVIndex(_ index: TPMHandle, _ authorization: NVAuthorization) throws(TPMError) -> (
        TPMObject, ESYS_TR
    ) {
        switch authorization {
        case .owner:
            return (try openPersistent(index, authValue: nil), TPMHierarchy.owner.esysTR)
        case .index(let auth):
            let object = try openPersistent(index, authValue: auth ?? SecretBytes([]))
            return (object, object.tr)
        }
    }

    /// Reads a whole NV index (its dataSize from NV_ReadPublic), or nil if it is not defined.
    public func nvReadAll(_ index: TPMHandle, authorization: NVAuthorization = .owner) throws(TPMError) -> [UInt8]? {
        guard let pub = try nvReadPublic(index) else { return nil }
        return try nvRead(index, offset: 0, size: Int(pub.dataSize), authorization: authorization)
    }

    /// Writes `data` at `offset`, in chunks of TPM_PT_NV_BUFFER_MAX (a TPM with a small NV buffer never
    /// sees an oversized write).
    ///
    /// Corresponding ESAPI call: `Esys_NV_Write` (TPM2_NV_Write, Part 3 §31.7).
    public func nvWrite(_ index: TPMHandle, data: [UInt8], offset: Int = 0, authorization: NVAuthorization = .owner)
        throws(TPMError)
    {
        guard offset >= 0, offset + data.count <= Int(UInt16.max) else {
            throw TPMError.invalidArgument("NV_Write: offset \(offset) + \(data.count) bytes is out of range")
        }
        let chunk = try nvBufferMax()
        let ctx = context.raw
        let (object, authTR) = try openNVIndex(index, authorization)
        defer { closeReference(object.tr) }
        var position = 0
        while position < data.count {
            let n = min(chunk, data.count - position)
            var buffer = try MU.tpm2b(
                Array(data[position..<(position + n)]), into: TPM2B_MAX_NV_BUFFER(),
                Tss2_MU_TPM2B_MAX_NV_BUFFER_Unmarshal, "TPM2B_MAX_NV_BUFFER")
            let at = UInt16(offset + position)
            try tss2Call("Esys_NV_Write", logger: logger) {
                Esys_NV_Write(ctx, authTR, object.tr, ESYS.password, ESYS.none, ESYS.none, &buffer, at)
            }
            position += n
        }
    }

    /// Adds one to an NV counter (TPM_NT_COUNTER). A counter only ever grows: a new one starts above any counter
    /// value this TPM ever had, so deleting and redefining it cannot roll it back (Part 1 §37.2.3).
    ///
    /// Corresponding ESAPI call: `Esys_NV_Increment` (TPM2_NV_Increment, Part 3 §31.8).
    public func nvIncrement(_ index: TPMHandle, authorization: NVAuthorization = .owner) throws(TPMError) {
        let ctx = context.raw
        let (object, authTR) = try openNVIndex(index, authorization)
        defer { closeReference(object.tr) }
        try tss2Call("Esys_NV_Increment", logger: logger) {
            Esys_NV_Increment(ctx, authTR, object.tr, ESYS.password, ESYS.none, ESYS.none)
        }
    }

    /// Requires, in a policy session, that NV index data compare to `operandB` (at `offset`, by `operation`):
    /// e.g. a counter at most an approval's epoch, so raising the counter revokes older approvals.
    ///
    /// Corresponding ESAPI call: `Esys_PolicyNV` (TPM2_PolicyNV, Part 3 §23.9).
    public func policyNV(
        _ session: TPMSession, index: TPMHandle, operandB: [UInt8], offset: UInt16 = 0,
        operation: TPMPolicyDigest.Operation, authorization: NVAuthorization = .index(nil)
    ) throws(TPMError) {
        let ctx = context.raw
        let (object, authTR) = try openNVIndex(index, authorization)
        defer { closeReference(object.tr) }
        var operand = try MU.tpm2b(operandB, into: TPM2B_OPERAND(), Tss2_MU_TPM2B_OPERAND_Unmarshal, "TPM2B_OPERAND")
        try tss2Call("Esys_PolicyNV", logger: logger) {
            Esys_PolicyNV(
                ctx, authTR, object.tr, session.tr, ESYS.password, ESYS.none, ESYS.none, &operand, offset,
                operation.rawValue)
        }
    }
}
