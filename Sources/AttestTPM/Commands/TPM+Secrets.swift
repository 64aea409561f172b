import Attest
internal import CTSS2

extension TPM {
    /// Returns the data sealed in a keyed-hash object, if the session satisfies its policy (or, with no
    /// session, its auth value). Use a salted policy session so the secret crosses the bus encrypted.
    ///
    /// Corresponding ESAPI call: `Esys_Unseal` (TPM2_Unseal, Part 3 §12.7).
    public func unseal(_ item: TPMObject, session: TPMSession? = nil) throws(TPMError) -> SecretBytes {
        let ctx = context.raw
        var out: UnsafeMutablePointer<TPM2B_SENSITIVE_DATA>? = nil
        try tss2Call("Esys_Unseal", logger: logger) {
            Esys_Unseal(ctx, item.tr, session?.tr ?? ESYS.password, ESYS.none, ESYS.none, &out)
        }
        defer {
            if let out { wipe(&out.pointee) }
            Esys_Free(out)
        }
        guard let out else { throw TPMError.invalidResponse("Esys_Unseal returned nothing") }
        var bytes = try MU.payload(out.pointee, Tss2_MU_TPM2B_SENSITIVE_DATA_Marshal, "TPM2B_SENSITIVE_DATA")
        defer { wipeArray(&bytes) }
        return SecretBytes(bytes)
    }

    /// Recovers a credential that a verifier encrypted to the EK for the key `activating` (TPM2_MakeCredential
    /// on the verifier side). The TPM releases it only if `activating` is loaded in the same TPM as the EK
    /// and its Name is the one the verifier used: the proof that the AK lives in this TPM.
    ///
    /// A low-range EK (TCG templates L-1, L-2: no userWithAuth) is authorized with PolicySecret(TPM_RH_ENDORSEMENT),
    /// its PolicyA. A high-range EK (H-1…H-7) sets userWithAuth with an empty authValue, so it is authorized
    /// by password: a SHA-256 PolicySecret session would not match its PolicyB (TPM_RC_POLICY_FAIL).
    ///
    /// Corresponding ESAPI call: `Esys_ActivateCredential` (TPM2_ActivateCredential, Part 3 §12.5).
    public func activateCredential(
        activating: TPMObject, endorsementKey: TPMObject,
        credentialBlob: [UInt8], encryptedSecret: [UInt8]
    ) throws(TPMError) -> SecretBytes {
        let ctx = context.raw
        var blob = try MU.tpm2b(
            credentialBlob, into: TPM2B_ID_OBJECT(), Tss2_MU_TPM2B_ID_OBJECT_Unmarshal, "TPM2B_ID_OBJECT")
        var secret = try MU.tpm2b(
            encryptedSecret, into: TPM2B_ENCRYPTED_SECRET(), Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal,
            "TPM2B_ENCRYPTED_SECRET")
        let byPassword = endorsementKey.publicArea?.objectAttributes.contains(.userWithAuth) == true
        let session: TPMSession? = byPassword ? nil : try startAuthSession(.policy)
        defer { if let session { flush(session.tr) } }
        if let session { try policySecret(session, hierarchy: .endorsement) }
        let ekAuthorization = session?.tr ?? ESYS.password
        var certInfo: UnsafeMutablePointer<TPM2B_DIGEST>? = nil
        try tss2Call("Esys_ActivateCredential", logger: logger) {
            Esys_ActivateCredential(
                ctx, activating.tr, endorsementKey.tr, ESYS.password, ekAuthorization, ESYS.none, &blob, &secret,
                &certInfo)
        }
        defer {
            if let certInfo { wipe(&certInfo.pointee) }
            Esys_Free(certInfo)
        }
        guard let certInfo else { throw TPMError.invalidResponse("Esys_ActivateCredential returned nothing") }
        var bytes = try MU.payload(certInfo.pointee, Tss2_MU_TPM2B_DIGEST_Marshal, "TPM2B_DIGEST")
        defer { wipeArray(&bytes) }
        return SecretBytes(bytes)
    }

    /// ECDH with a TPM-resident key: returns the shared point d·Q for the peer's point Q (x, y). With `session`
    /// (an HMAC session salted by a loaded key, with parameter encryption), the key is authorized through it and
    /// the shared point crosses the bus encrypted.
    ///
    /// Corresponding ESAPI call: `Esys_ECDH_ZGen` (TPM2_ECDH_ZGen, Part 3 §14.5).
    public func ecdhZGen(_ key: TPMObject, peerX: [UInt8], peerY: [UInt8], session: TPMSession? = nil)
        throws(TPMError) -> SecretBytes
    {
        let ctx = context.raw
        var point = ByteWriter()
        point.appendTPM2B(peerX)
        point.appendTPM2B(peerY)
        var inPoint = try MU.tpm2b(
            point.bytes, into: TPM2B_ECC_POINT(), Tss2_MU_TPM2B_ECC_POINT_Unmarshal, "TPM2B_ECC_POINT")
        var out: UnsafeMutablePointer<TPM2B_ECC_POINT>? = nil
        try tss2Call("Esys_ECDH_ZGen", logger: logger) {
            Esys_ECDH_ZGen(ctx, key.tr, session?.tr ?? ESYS.password, ESYS.none, ESYS.none, &inPoint, &out)
        }
        defer {
            if let out { wipe(&out.pointee) }
            Esys_Free(out)
        }
        guard let out else { throw TPMError.invalidResponse("Esys_ECDH_ZGen returned nothing") }
        var bytes = try MU.payload(out.pointee, Tss2_MU_TPM2B_ECC_POINT_Marshal, "TPM2B_ECC_POINT")
        defer { wipeArray(&bytes) }
        var reader = ByteReader(bytes)
        do {
            var x = try reader.readTPM2B("TPMS_ECC_POINT.x", maxSize: 128)
            defer { wipeArray(&x) }
            return SecretBytes(x)
        } catch {
            throw TPMError.invalidResponse("ECDH_ZGen: \(error)")
        }
    }
}
