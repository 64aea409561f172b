public import Attest
internal import CTSS2

extension TPM {
    /// TPMA_SESSION bits — Part 2 §8.4.
    static let continueSession: UInt8 = 0x01
    static let decryptParameter: UInt8 = 0x20
    static let encryptParameter: UInt8 = 0x40

    /// Starts an authorization session. `salt` (a loaded decryption key such as the SRK or EK) makes the
    /// session key unknowable to anyone watching the bus; AES-128-CFB is set up for parameter encryption.
    /// The caller must flush it: prefer the scoped ``withHMACSession(salt:encryptParameters:_:)`` and
    /// ``withPolicySession(salt:trial:_:)``.
    ///
    /// Corresponding ESAPI call: `Esys_StartAuthSession` (TPM2_StartAuthSession, Part 3 §11.1).
    public func startAuthSession(
        _ kind: TPMSession.Kind, salt: TPMObject? = nil, bind: TPMObject? = nil,
        hashAlg: TPMAlgorithmID = .sha256
    ) throws(TPMError) -> TPMSession {
        let ctx = context.raw
        var symmetric = try MU.unmarshal(
            [0x00, 0x06, 0x00, 0x80, 0x00, 0x43], into: TPMT_SYM_DEF(),
            Tss2_MU_TPMT_SYM_DEF_Unmarshal, "TPMT_SYM_DEF")
        let type: UInt8 =
            switch kind {
            case .hmac: 0x00
            case .policy: 0x01
            case .trial: 0x03
            }
        var tr: ESYS_TR = ESYS.none
        try tss2Call("Esys_StartAuthSession", logger: logger) {
            Esys_StartAuthSession(
                ctx, salt?.tr ?? ESYS.none, bind?.tr ?? ESYS.none, ESYS.none, ESYS.none, ESYS.none,
                nil, type, &symmetric, hashAlg.rawValue, &tr)
        }
        return TPMSession(tr: tr, kind: kind)
    }

    /// An HMAC session (salted when `salt` is given) that encrypts the first command parameter and
    /// the first response parameter when `encryptParameters` is set; flushed on every exit path.
    public func withHMACSession<R>(
        salt: TPMObject? = nil, encryptParameters: Bool = true,
        _ body: @Sendable (isolated TPM, TPMSession) throws(TPMError) -> R
    ) throws(TPMError) -> R {
        let session = try startAuthSession(.hmac, salt: salt)
        defer { flush(session.tr) }
        let flags = Self.continueSession | (encryptParameters ? Self.decryptParameter | Self.encryptParameter : 0)
        let ctx = context.raw
        try tss2Call("Esys_TRSess_SetAttributes", logger: logger) {
            Esys_TRSess_SetAttributes(ctx, session.tr, flags, 0xFF)
        }
        return try body(self, session)
    }

    /// A policy session (or a trial session that only computes a digest); flushed on every exit path.
    /// With `salt`, the session is salted and encrypts parameters (use it for TPM2_Unseal).
    public func withPolicySession<R>(
        salt: TPMObject? = nil, trial: Bool = false,
        _ body: @Sendable (isolated TPM, TPMSession) throws(TPMError) -> R
    ) throws(TPMError) -> R {
        let session = try startAuthSession(trial ? .trial : .policy, salt: salt)
        defer { flush(session.tr) }
        if salt != nil && !trial {
            let ctx = context.raw
            let flags = Self.continueSession | Self.decryptParameter | Self.encryptParameter
            try tss2Call("Esys_TRSess_SetAttributes", logger: logger) {
                Esys_TRSess_SetAttributes(ctx, session.tr, flags, 0xFF)
            }
        }
        return try body(self, session)
    }

    /// Binds the session's policy to PCR values: the current ones (`pcrDigest` empty) or the digest of
    /// expected values, which the TPM compares at use time.
    ///
    /// Corresponding ESAPI call: `Esys_PolicyPCR` (TPM2_PolicyPCR, Part 3 §23.7).
    public func policyPCR(_ session: TPMSession, selection: TPMLPCRSelection, pcrDigest: [UInt8] = []) throws(TPMError)
    {
        let ctx = context.raw
        var digest = try MU.tpm2b(pcrDigest, into: TPM2B_DIGEST(), Tss2_MU_TPM2B_DIGEST_Unmarshal, "TPM2B_DIGEST")
        var pcrs = try MU.unmarshal(
            selection.marshal(), into: TPML_PCR_SELECTION(), Tss2_MU_TPML_PCR_SELECTION_Unmarshal, "TPML_PCR_SELECTION")
        try tss2Call("Esys_PolicyPCR", logger: logger) {
            Esys_PolicyPCR(ctx, session.tr, ESYS.none, ESYS.none, ESYS.none, &digest, &pcrs)
        }
    }

    /// Requires knowledge of a hierarchy's authorization (empty by default) in the session's policy:
    /// the EK's policy is PolicySecret(TPM_RH_ENDORSEMENT).
    ///
    /// Corresponding ESAPI call: `Esys_PolicySecret` (TPM2_PolicySecret, Part 3 §23.4).
    public func policySecret(_ session: TPMSession, hierarchy: TPMHierarchy) throws(TPMError) {
        let ctx = context.raw
        var timeout: UnsafeMutablePointer<TPM2B_TIMEOUT>? = nil
        var ticket: UnsafeMutablePointer<TPMT_TK_AUTH>? = nil
        try tss2Call("Esys_PolicySecret", logger: logger) {
            Esys_PolicySecret(
                ctx, hierarchy.esysTR, session.tr, ESYS.password, ESYS.none, ESYS.none, nil, nil, nil, 0, &timeout,
                &ticket)
        }
        Esys_Free(timeout)
        Esys_Free(ticket)
    }

    /// Replaces the session's policy digest with `approvedPolicy` when `ticket` proves that the key named
    /// `keySign` signed H(approvedPolicy || policyRef): a signed policy that survives approved updates.
    ///
    /// Corresponding ESAPI call: `Esys_PolicyAuthorize` (TPM2_PolicyAuthorize, Part 3 §23.16).
    public func policyAuthorize(
        _ session: TPMSession, approvedPolicy: [UInt8], policyRef: [UInt8] = [],
        keySign: TPMName, ticket: TPMVerifiedTicket
    ) throws(TPMError) {
        let ctx = context.raw
        var approved = try MU.tpm2b(
            approvedPolicy, into: TPM2B_DIGEST(), Tss2_MU_TPM2B_DIGEST_Unmarshal, "TPM2B_DIGEST")
        var ref = try MU.tpm2b(policyRef, into: TPM2B_NONCE(), Tss2_MU_TPM2B_NONCE_Unmarshal, "TPM2B_NONCE")
        var name = try MU.tpm2b(keySign.bytes, into: TPM2B_NAME(), Tss2_MU_TPM2B_NAME_Unmarshal, "TPM2B_NAME")
        var check = try MU.unmarshal(
            ticket.bytes, into: TPMT_TK_VERIFIED(), Tss2_MU_TPMT_TK_VERIFIED_Unmarshal, "TPMT_TK_VERIFIED")
        try tss2Call("Esys_PolicyAuthorize", logger: logger) {
            Esys_PolicyAuthorize(ctx, session.tr, ESYS.none, ESYS.none, ESYS.none, &approved, &ref, &name, &check)
        }
    }

    /// The session's current policy digest (from a trial session: the value to put in an object's authPolicy).
    ///
    /// Corresponding ESAPI call: `Esys_PolicyGetDigest` (TPM2_PolicyGetDigest, Part 3 §23.19).
    public func policyGetDigest(_ session: TPMSession) throws(TPMError) -> [UInt8] {
        let ctx = context.raw
        var digest: UnsafeMutablePointer<TPM2B_DIGEST>? = nil
        try tss2Call("Esys_PolicyGetDigest", logger: logger) {
            Esys_PolicyGetDigest(ctx, session.tr, ESYS.none, ESYS.none, ESYS.none, &digest)
        }
        defer { Esys_Free(digest) }
        guard let digest else { throw TPMError.invalidResponse("Esys_PolicyGetDigest returned nothing") }
        return try MU.payload(digest.pointee, Tss2_MU_TPM2B_DIGEST_Marshal, "TPM2B_DIGEST")
    }

    /// Checks a signature with a loaded key and returns the TPM's ticket for PolicyAuthorize.
    ///
    /// Corresponding ESAPI call: `Esys_VerifySignature` (TPM2_VerifySignature, Part 3 §20.1).
    public func verifySignature(_ key: TPMObject, digest: [UInt8], signature: TPMTSignature) throws(TPMError)
        -> TPMVerifiedTicket
    {
        let ctx = context.raw
        var d = try MU.tpm2b(digest, into: TPM2B_DIGEST(), Tss2_MU_TPM2B_DIGEST_Unmarshal, "TPM2B_DIGEST")
        var sig = try MU.unmarshal(
            signature.marshal(), into: TPMT_SIGNATURE(), Tss2_MU_TPMT_SIGNATURE_Unmarshal, "TPMT_SIGNATURE")
        var ticket: UnsafeMutablePointer<TPMT_TK_VERIFIED>? = nil
        try tss2Call("Esys_VerifySignature", logger: logger) {
            Esys_VerifySignature(ctx, key.tr, ESYS.none, ESYS.none, ESYS.none, &d, &sig, &ticket)
        }
        defer { Esys_Free(ticket) }
        guard let ticket else { throw TPMError.invalidResponse("Esys_VerifySignature returned no ticket") }
        return TPMVerifiedTicket(
            bytes: try MU.marshal(ticket.pointee, Tss2_MU_TPMT_TK_VERIFIED_Marshal, "TPMT_TK_VERIFIED"))
    }

    /// Loads a public key (no private part) into the null or owner hierarchy, e.g. a policy-signing key.
    /// The caller must flush it: prefer ``withExternalPublic(_:hierarchy:_:)``.
    ///
    /// Corresponding ESAPI call: `Esys_LoadExternal` (TPM2_LoadExternal, Part 3 §12.3).
    public func loadExternal(_ publicArea: TPMTPublic, hierarchy: TPMHierarchy = .null) throws(TPMError) -> TPMObject {
        let ctx = context.raw
        var inPublic = try MU.unmarshal(
            publicArea.marshalTPM2B(), into: TPM2B_PUBLIC(), Tss2_MU_TPM2B_PUBLIC_Unmarshal, "TPM2B_PUBLIC")
        var tr: ESYS_TR = ESYS.none
        try tss2Call("Esys_LoadExternal", logger: logger) {
            Esys_LoadExternal(ctx, ESYS.none, ESYS.none, ESYS.none, nil, &inPublic, hierarchy.esysTR, &tr)
        }
        do throws(TPMError) {
            return TPMObject(tr: tr, name: try objectName(publicArea), publicArea: publicArea, handle: nil)
        } catch {
            flush(tr)
            throw error
        }
    }

    /// Loads a public key, runs `body`, and flushes it on every exit path.
    public func withExternalPublic<R>(
        _ publicArea: TPMTPublic, hierarchy: TPMHierarchy = .null,
        _ body: @Sendable (isolated TPM, TPMObject) throws(TPMError) -> R
    ) throws(TPMError) -> R {
        let object = try loadExternal(publicArea, hierarchy: hierarchy)
        defer { flush(object.tr) }
        return try body(self, object)
    }
}

/// TPMT_TK_VERIFIED — Part 2 §10.7.4: the TPM's proof that it checked a signature.
public struct TPMVerifiedTicket: Hashable, Sendable {
    public let bytes: [UInt8]
    public init(bytes: [UInt8]) { self.bytes = bytes }
}
