public import Attest
internal import CTSS2
import Logging

#if canImport(Glibc)
    import Glibc
#endif

extension TPM {
    // MARK: Primary keys

    /// Creates a primary object from `template` in `hierarchy`. The same template in the same hierarchy
    /// always yields the same key (the EK and SRK are re-derived this way). The caller must flush it:
    /// prefer ``withPrimary(_:template:authValue:_:)``.
    ///
    /// Corresponding ESAPI call: `Esys_CreatePrimary` (TPM2_CreatePrimary, Part 3 §24.1).
    public func createPrimary(_ hierarchy: TPMHierarchy, template: TPMTPublic, authValue: SecretBytes? = nil)
        throws(TPMError) -> TPMObject
    {
        let ctx = context.raw
        var inSensitive = try sensitiveCreate(authValue: authValue, data: nil)
        var inPublic = try MU.unmarshal(
            template.marshalTPM2B(), into: TPM2B_PUBLIC(), Tss2_MU_TPM2B_PUBLIC_Unmarshal, "TPM2B_PUBLIC")
        var outsideInfo = TPM2B_DATA()
        var creationPCR = TPML_PCR_SELECTION()
        var tr: ESYS_TR = ESYS.none
        var outPublic: UnsafeMutablePointer<TPM2B_PUBLIC>? = nil
        var creationData: UnsafeMutablePointer<TPM2B_CREATION_DATA>? = nil
        var creationHash: UnsafeMutablePointer<TPM2B_DIGEST>? = nil
        var ticket: UnsafeMutablePointer<TPMT_TK_CREATION>? = nil
        defer { wipe(&inSensitive) }
        try tss2Call("Esys_CreatePrimary", logger: logger) {
            Esys_CreatePrimary(
                ctx, hierarchy.esysTR, ESYS.password, ESYS.none, ESYS.none, &inSensitive, &inPublic, &outsideInfo,
                &creationPCR, &tr, &outPublic, &creationData, &creationHash, &ticket)
        }
        defer {
            Esys_Free(outPublic)
            Esys_Free(creationData)
            Esys_Free(creationHash)
            Esys_Free(ticket)
        }
        do throws(TPMError) {
            guard let outPublic else { throw TPMError.invalidResponse("Esys_CreatePrimary returned no public area") }
            let publicArea = try decodePublic(outPublic.pointee)
            if let authValue { try setAuth(tr, authValue) }
            return TPMObject(tr: tr, name: try objectName(publicArea), publicArea: publicArea, handle: nil)
        } catch {
            _ = Esys_FlushContext(ctx, tr)
            throw error
        }
    }

    /// Creates a primary object, runs `body` with it, and flushes it on every exit path.
    public func withPrimary<R>(
        _ hierarchy: TPMHierarchy, template: TPMTPublic, authValue: SecretBytes? = nil,
        _ body: @Sendable (isolated TPM, TPMObject) throws(TPMError) -> R
    ) throws(TPMError) -> R {
        let object = try createPrimary(hierarchy, template: template, authValue: authValue)
        defer { flushContext(object) }
        return try body(self, object)
    }

    // MARK: Ordinary objects

    /// Creates an object under a loaded storage parent: a key (TPM-generated) or a sealed data object
    /// (`sealedData` given). Returns the blobs to ``load(parent:_:authValue:)`` later. With `session` (an HMAC
    /// session salted by the parent, from ``withHMACSession(salt:encryptParameters:_:)``), the parent is authorized
    /// through it and inSensitive (the sealed data) crosses the bus encrypted.
    ///
    /// Corresponding ESAPI call: `Esys_Create` (TPM2_Create, Part 3 §12.1).
    public func create(
        parent: TPMObject, template: TPMTPublic, authValue: SecretBytes? = nil,
        sealedData: SecretBytes? = nil, session: TPMSession? = nil
    ) throws(TPMError) -> TPMKeyBlob {
        let ctx = context.raw
        var inSensitive = try sensitiveCreate(authValue: authValue, data: sealedData)
        defer { wipe(&inSensitive) }
        var inPublic = try MU.unmarshal(
            template.marshalTPM2B(), into: TPM2B_PUBLIC(), Tss2_MU_TPM2B_PUBLIC_Unmarshal, "TPM2B_PUBLIC")
        var outsideInfo = TPM2B_DATA()
        var creationPCR = TPML_PCR_SELECTION()
        var outPrivate: UnsafeMutablePointer<TPM2B_PRIVATE>? = nil
        var outPublic: UnsafeMutablePointer<TPM2B_PUBLIC>? = nil
        var creationData: UnsafeMutablePointer<TPM2B_CREATION_DATA>? = nil
        var creationHash: UnsafeMutablePointer<TPM2B_DIGEST>? = nil
        var ticket: UnsafeMutablePointer<TPMT_TK_CREATION>? = nil
        try tss2Call("Esys_Create", logger: logger) {
            Esys_Create(
                ctx, parent.tr, session?.tr ?? ESYS.password, ESYS.none, ESYS.none, &inSensitive, &inPublic,
                &outsideInfo,
                &creationPCR,
                &outPrivate, &outPublic, &creationData, &creationHash, &ticket)
        }
        defer {
            Esys_Free(outPrivate)
            Esys_Free(outPublic)
            Esys_Free(creationData)
            Esys_Free(creationHash)
            Esys_Free(ticket)
        }
        guard let outPrivate, let outPublic else { throw TPMError.invalidResponse("Esys_Create returned no object") }
        let priv = try MU.payload(outPrivate.pointee, Tss2_MU_TPM2B_PRIVATE_Marshal, "TPM2B_PRIVATE")
        let pub = try decodePublic(outPublic.pointee)
        return TPMKeyBlob(privateArea: priv, publicArea: pub.marshal())
    }

    /// Loads an object created by ``create(parent:template:authValue:sealedData:)`` under the same parent.
    /// The caller must flush it: prefer ``withLoaded(parent:_:authValue:_:)``.
    ///
    /// Corresponding ESAPI call: `Esys_Load` (TPM2_Load, Part 3 §12.2).
    public func load(parent: TPMObject, _ blob: TPMKeyBlob, authValue: SecretBytes? = nil) throws(TPMError) -> TPMObject
    {
        let ctx = context.raw
        let publicArea: TPMTPublic
        do { publicArea = try blob.decodedPublic() } catch { throw TPMError.invalidArgument("load: \(error)") }
        var inPrivate = try MU.tpm2b(
            blob.privateArea, into: TPM2B_PRIVATE(), Tss2_MU_TPM2B_PRIVATE_Unmarshal, "TPM2B_PRIVATE")
        var inPublic = try MU.unmarshal(
            publicArea.marshalTPM2B(), into: TPM2B_PUBLIC(), Tss2_MU_TPM2B_PUBLIC_Unmarshal, "TPM2B_PUBLIC")
        var tr: ESYS_TR = ESYS.none
        try tss2Call("Esys_Load", logger: logger) {
            Esys_Load(ctx, parent.tr, ESYS.password, ESYS.none, ESYS.none, &inPrivate, &inPublic, &tr)
        }
        do throws(TPMError) {
            if let authValue { try setAuth(tr, authValue) }
            return TPMObject(tr: tr, name: try objectName(publicArea), publicArea: publicArea, handle: nil)
        } catch {
            _ = Esys_FlushContext(ctx, tr)
            throw error
        }
    }

    /// Loads an object, runs `body` with it, and flushes it on every exit path.
    public func withLoaded<R>(
        parent: TPMObject, _ blob: TPMKeyBlob, authValue: SecretBytes? = nil,
        _ body: @Sendable (isolated TPM, TPMObject) throws(TPMError) -> R
    ) throws(TPMError) -> R {
        let object = try load(parent: parent, blob, authValue: authValue)
        defer { flushContext(object) }
        return try body(self, object)
    }

    // MARK: Persistent objects

    /// Opens the persistent object at `handle` (reading and checking its public area and Name), runs
    /// `body`, and releases ESAPI's reference afterwards (the object stays in the TPM).
    ///
    /// Corresponding ESAPI calls: `Esys_TR_FromTPMPublic`, `Esys_ReadPublic` (TPM2_ReadPublic, Part 3 §12.4), `Esys_TR_Close`.
    public func withPersistent<R>(
        _ handle: TPMHandle, authValue: SecretBytes? = nil,
        _ body: @Sendable (isolated TPM, TPMObject) throws(TPMError) -> R
    ) throws(TPMError) -> R {
        let object = try openPersistent(handle, authValue: authValue)
        defer { closeReference(object.tr) }
        return try body(self, object)
    }

    /// The public area and Name of a persistent object, or nil when nothing is stored at `handle`.
    public func readPublic(_ handle: TPMHandle) throws(TPMError) -> (publicArea: TPMTPublic, name: TPMName)? {
        guard try handles(from: handle).contains(handle) else { return nil }
        return try withPersistent(handle) { _, object throws(TPMError) in
            guard let publicArea = object.publicArea else {
                throw TPMError.invalidResponse("ReadPublic returned no public area")
            }
            return (publicArea, object.name)
        }
    }

    /// Makes a loaded transient object persistent at `persistentHandle` (owner authorization).
    ///
    /// Corresponding ESAPI call: `Esys_EvictControl` (TPM2_EvictControl, Part 3 §28.5).
    public func evictControl(_ object: TPMObject, persistentHandle: TPMHandle) throws(TPMError) {
        guard persistentHandle.isPersistent else {
            throw TPMError.invalidArgument("EvictControl: \(persistentHandle) is not a persistent handle (0x81xxxxxx)")
        }
        let ctx = context.raw
        var newTR: ESYS_TR = ESYS.none
        try tss2Call("Esys_EvictControl", logger: logger) {
            Esys_EvictControl(
                ctx, TPMHierarchy.owner.esysTR, object.tr, ESYS.password, ESYS.none, ESYS.none,
                persistentHandle.rawValue, &newTR)
        }
        closeReference(newTR)
    }

    /// Removes the persistent object at `handle` (owner authorization).
    ///
    /// Corresponding ESAPI call: `Esys_EvictControl` (TPM2_EvictControl, Part 3 §28.5).
    public func evictPersistent(_ handle: TPMHandle) throws(TPMError) {
        let ctx = context.raw
        let object = try openPersistent(handle, authValue: nil)
        var newTR: ESYS_TR = ESYS.none
        defer {
            // Drop ESAPI's record of the evicted object, or a later object at the same handle would be
            // refused by Esys_TR_FromTPMPublic as a "Name mismatch".
            closeReference(object.tr)
            if newTR != ESYS.none { closeReference(newTR) }
        }
        try tss2Call("Esys_EvictControl", logger: logger) {
            Esys_EvictControl(
                ctx, TPMHierarchy.owner.esysTR, object.tr, ESYS.password, ESYS.none, ESYS.none, handle.rawValue, &newTR)
        }
    }

    /// Flushes a transient object or session from the TPM. Errors are logged, not thrown: this runs in
    /// `defer` blocks, and a failed flush must not hide the error that caused the unwinding.
    ///
    /// Corresponding ESAPI call: `Esys_FlushContext` (TPM2_FlushContext, Part 3 §28.4).
    public func flushContext(_ object: TPMObject) {
        flush(object.tr)
    }

    func flush(_ tr: ESYS_TR) {
        let rc = Esys_FlushContext(context.raw, tr)
        if rc != 0 {
            logger.debug("flush failed", metadata: ["tpm.rc": "\(TSS2Error(rawValue: rc))"])
        }
    }

    func closeReference(_ tr: ESYS_TR) {
        var t = tr
        _ = Esys_TR_Close(context.raw, &t)
    }

    func openPersistent(_ handle: TPMHandle, authValue: SecretBytes?) throws(TPMError) -> TPMObject {
        let ctx = context.raw
        var tr: ESYS_TR = ESYS.none
        try tss2Call("Esys_TR_FromTPMPublic", logger: logger) {
            Esys_TR_FromTPMPublic(ctx, handle.rawValue, ESYS.none, ESYS.none, ESYS.none, &tr)
        }
        do throws(TPMError) {
            if handle.isNVIndex {
                var name: UnsafeMutablePointer<TPM2B_NAME>? = nil
                try tss2Call("Esys_TR_GetName", logger: logger) { Esys_TR_GetName(ctx, tr, &name) }
                defer { Esys_Free(name) }
                guard let name else { throw TPMError.invalidResponse("no Name for \(handle)") }
                let n = try MU.payload(name.pointee, Tss2_MU_TPM2B_NAME_Marshal, "TPM2B_NAME")
                if let authValue { try setAuth(tr, authValue) }
                return TPMObject(tr: tr, name: TPMName(bytes: n), publicArea: nil, handle: handle)
            }
            var outPublic: UnsafeMutablePointer<TPM2B_PUBLIC>? = nil
            var name: UnsafeMutablePointer<TPM2B_NAME>? = nil
            var qualified: UnsafeMutablePointer<TPM2B_NAME>? = nil
            try tss2Call("Esys_ReadPublic", logger: logger) {
                Esys_ReadPublic(ctx, tr, ESYS.none, ESYS.none, ESYS.none, &outPublic, &name, &qualified)
            }
            defer {
                Esys_Free(outPublic)
                Esys_Free(name)
                Esys_Free(qualified)
            }
            guard let outPublic, let name else { throw TPMError.invalidResponse("Esys_ReadPublic returned nothing") }
            let publicArea = try decodePublic(outPublic.pointee)
            let tpmName = TPMName(bytes: try MU.payload(name.pointee, Tss2_MU_TPM2B_NAME_Marshal, "TPM2B_NAME"))
            // The Name binds the public area: recompute it rather than trusting the TPM's pairing.
            guard try objectName(publicArea) == tpmName else {
                throw TPMError.invalidResponse("ReadPublic(\(handle)): the Name does not match the public area")
            }
            if let authValue { try setAuth(tr, authValue) }
            return TPMObject(tr: tr, name: tpmName, publicArea: publicArea, handle: handle)
        } catch {
            closeReference(tr)
            throw error
        }
    }

    // MARK: Helpers

    func setAuth(_ tr: ESYS_TR, _ authValue: SecretBytes) throws(TPMError) {
        var auth = try authStruct(authValue)
        defer { wipe(&auth) }
        let ctx = context.raw
        try tss2Call("Esys_TR_SetAuth", logger: logger) { Esys_TR_SetAuth(ctx, tr, &auth) }
    }

    func authStruct(_ authValue: SecretBytes) throws(TPMError) -> TPM2B_AUTH {
        guard authValue.count <= 64 else { throw TPMError.invalidArgument("an auth value is at most 64 bytes") }
        var bytes = authValue.unsafeCopy()
        defer { wipeArray(&bytes) }
        return try MU.tpm2b(bytes, into: TPM2B_AUTH(), Tss2_MU_TPM2B_AUTH_Unmarshal, "TPM2B_AUTH")
    }

    func sensitiveCreate(authValue: SecretBytes?, data: SecretBytes?) throws(TPMError) -> TPM2B_SENSITIVE_CREATE {
        var w = ByteWriter()
        var inner = ByteWriter()
        var auth = authValue?.unsafeCopy() ?? []
        var payload = data?.unsafeCopy() ?? []
        defer {
            wipeArray(&auth)
            wipeArray(&payload)
        }
        guard auth.count <= 64 else { throw TPMError.invalidArgument("an auth value is at most 64 bytes") }
        guard payload.count <= 128 else {
            throw TPMError.invalidArgument("sealed data is at most 128 bytes (MAX_SYM_DATA)")
        }
        inner.appendTPM2B(auth)
        inner.appendTPM2B(payload)
        w.appendTPM2B(inner.bytes)
        var encoded = w.bytes
        defer { wipeArray(&encoded) }
        return try MU.unmarshal(
            encoded, into: TPM2B_SENSITIVE_CREATE(), Tss2_MU_TPM2B_SENSITIVE_CREATE_Unmarshal, "TPM2B_SENSITIVE_CREATE")
    }

    func decodePublic(_ value: TPM2B_PUBLIC) throws(TPMError) -> TPMTPublic {
        let bytes = try MU.marshal(value, Tss2_MU_TPM2B_PUBLIC_Marshal, "TPM2B_PUBLIC")
        do { return try TPMTPublic(tpm2bPublicBytes: bytes) } catch {
            throw TPMError.invalidResponse("the TPM returned a public area Vigil cannot decode: \(error)")
        }
    }

    func objectName(_ publicArea: TPMTPublic) throws(TPMError) -> TPMName {
        do { return try publicArea.name() } catch {
            throw TPMError.invalidResponse("cannot compute the object Name: \(error)")
        }
    }
}

/// Zeroes a C structure that held secret material.
func wipe<T>(_ value: inout T) {
    withUnsafeMutableBytes(of: &value) { buf in
        if let base = buf.baseAddress { explicit_bzero(base, buf.count) }
    }
}

func wipeArray(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { buf in
        if let base = buf.baseAddress { explicit_bzero(base, buf.count) }
    }
}
