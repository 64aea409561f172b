public import Attest
internal import CTSS2

/// A signed attestation straight from the TPM: the TPMS_ATTEST bytes and the TPMT_SIGNATURE over them.
/// Nothing about it is verified; that is the verifier's job (`Attest`).
public struct TPMSignedAttestation: Hashable, Sendable {
    /// The TPMS_ATTEST bytes exactly as signed (TPM2B_ATTEST payload).
    public let attest: [UInt8]
    /// The TPMT_SIGNATURE encoding.
    public let signature: [UInt8]
}

extension TPM {
    /// Quotes PCRs: the TPM signs their digest with a restricted signing key, together with the caller's
    /// nonce (`qualifyingData`), its clock and reset counters, and its firmware version.
    ///
    /// A TPM silently drops implemented-but-unallocated banks from a selection (quoting nothing for
    /// them), so Vigil refuses such banks up front with ``TPMError/Code/bankNotActive`` and re-checks the
    /// signed selection. A bank the TPM does not implement at all is sent on, and the TPM's own answer
    /// (TPM_RC_HASH) comes back as a ``TSS2Error``.
    ///
    /// Corresponding ESAPI call: `Esys_Quote` (TPM2_Quote, Part 3 §18.4).
    public func quote(signingKey: TPMObject, qualifyingData: [UInt8], selection: TPMLPCRSelection) throws(TPMError)
        -> TPMSignedAttestation
    {
        guard qualifyingData.count <= 64 else { throw TPMError.invalidArgument("Quote: a nonce is at most 64 bytes") }
        let allocation = try pcrAllocation()
        let active = allocation.selections.filter { !$0.pcrs.isEmpty }.map(\.hash)
        for s in selection.nonEmpty
        where !active.contains(s.hash) && allocation.selections.contains(where: { $0.hash == s.hash }) {
            throw TPMError(
                code: .bankNotActive,
                reason:
                    "Quote: PCR bank \(s.hash.name) is implemented but not allocated on this TPM, which would quote nothing for it (active: \(active.map(\.name).joined(separator: ", ")))"
            )
        }
        let ctx = context.raw
        var data = try MU.tpm2b(qualifyingData, into: TPM2B_DATA(), Tss2_MU_TPM2B_DATA_Unmarshal, "TPM2B_DATA")
        var scheme = try MU.unmarshal(
            [0x00, 0x10], into: TPMT_SIG_SCHEME(), Tss2_MU_TPMT_SIG_SCHEME_Unmarshal, "TPMT_SIG_SCHEME")
        var pcrs = try MU.unmarshal(
            selection.marshal(), into: TPML_PCR_SELECTION(), Tss2_MU_TPML_PCR_SELECTION_Unmarshal, "TPML_PCR_SELECTION")
        var quoted: UnsafeMutablePointer<TPM2B_ATTEST>? = nil
        var signature: UnsafeMutablePointer<TPMT_SIGNATURE>? = nil
        try tss2Call("Esys_Quote", logger: logger) {
            Esys_Quote(
                ctx, signingKey.tr, ESYS.password, ESYS.none, ESYS.none, &data, &scheme, &pcrs, &quoted, &signature)
        }
        defer {
            Esys_Free(quoted)
            Esys_Free(signature)
        }
        let result = try signedAttestation(quoted, signature, "Esys_Quote")
        do {
            let attest = try TPMSAttest(bytes: result.attest)
            guard case .quote(let signedSelection, _) = attest.attested, signedSelection.selectsSamePCRs(as: selection)
            else {
                throw TPMError.invalidResponse("Quote: the TPM signed selection differs from the request \(selection)")
            }
        } catch let e as TPMError {
            throw e
        } catch {
            throw TPMError.invalidResponse("Quote: \(error)")
        }
        return result
    }

    /// Certifies that `object` is loaded in this TPM: `signingKey` signs its Name with the nonce.
    ///
    /// Corresponding ESAPI call: `Esys_Certify` (TPM2_Certify, Part 3 §18.2).
    public func certify(_ object: TPMObject, signingKey: TPMObject, qualifyingData: [UInt8]) throws(TPMError)
        -> TPMSignedAttestation
    {
        guard qualifyingData.count <= 64 else { throw TPMError.invalidArgument("Certify: a nonce is at most 64 bytes") }
        let ctx = context.raw
        var data = try MU.tpm2b(qualifyingData, into: TPM2B_DATA(), Tss2_MU_TPM2B_DATA_Unmarshal, "TPM2B_DATA")
        var scheme = try MU.unmarshal(
            [0x00, 0x10], into: TPMT_SIG_SCHEME(), Tss2_MU_TPMT_SIG_SCHEME_Unmarshal, "TPMT_SIG_SCHEME")
        var info: UnsafeMutablePointer<TPM2B_ATTEST>? = nil
        var signature: UnsafeMutablePointer<TPMT_SIGNATURE>? = nil
        try tss2Call("Esys_Certify", logger: logger) {
            Esys_Certify(
                ctx, object.tr, signingKey.tr, ESYS.password, ESYS.password, ESYS.none, &data, &scheme, &info,
                &signature)
        }
        defer {
            Esys_Free(info)
            Esys_Free(signature)
        }
        return try signedAttestation(info, signature, "Esys_Certify")
    }

    /// Signs a digest with an unrestricted signing key (for a restricted key the digest must come with a
    /// TPM2_Hash ticket, which Vigil does not need).
    ///
    /// Corresponding ESAPI call: `Esys_Sign` (TPM2_Sign, Part 3 §20.2).
    public func sign(
        _ key: TPMObject, digest: [UInt8], scheme: TPMAlgorithmID = .ecdsa, hashAlg: TPMAlgorithmID = .sha256
    ) throws(TPMError) -> TPMTSignature {
        guard digest.count == hashAlg.digestSize else {
            throw TPMError.invalidArgument(
                "Sign: a \(hashAlg.name) digest is \(hashAlg.digestSize ?? 0) bytes, got \(digest.count)")
        }
        let ctx = context.raw
        var d = try MU.tpm2b(digest, into: TPM2B_DIGEST(), Tss2_MU_TPM2B_DIGEST_Unmarshal, "TPM2B_DIGEST")
        var w = ByteWriter()
        w.append(scheme.rawValue)
        w.append(hashAlg.rawValue)
        var inScheme = try MU.unmarshal(
            w.bytes, into: TPMT_SIG_SCHEME(), Tss2_MU_TPMT_SIG_SCHEME_Unmarshal, "TPMT_SIG_SCHEME")
        // TPMT_TK_HASHCHECK "null ticket": TPM_ST_HASHCHECK, TPM_RH_NULL, empty digest.
        var validation = try MU.unmarshal(
            [0x80, 0x24, 0x40, 0x00, 0x00, 0x07, 0x00, 0x00], into: TPMT_TK_HASHCHECK(),
            Tss2_MU_TPMT_TK_HASHCHECK_Unmarshal, "TPMT_TK_HASHCHECK")
        var signature: UnsafeMutablePointer<TPMT_SIGNATURE>? = nil
        try tss2Call("Esys_Sign", logger: logger) {
            Esys_Sign(ctx, key.tr, ESYS.password, ESYS.none, ESYS.none, &d, &inScheme, &validation, &signature)
        }
        defer { Esys_Free(signature) }
        guard let signature else { throw TPMError.invalidResponse("Esys_Sign returned no signature") }
        let bytes = try MU.marshal(signature.pointee, Tss2_MU_TPMT_SIGNATURE_Marshal, "TPMT_SIGNATURE")
        do { return try TPMTSignature(bytes: bytes) } catch { throw TPMError.invalidResponse("Sign: \(error)") }
    }

    private func signedAttestation(
        _ attest: UnsafeMutablePointer<TPM2B_ATTEST>?, _ signature: UnsafeMutablePointer<TPMT_SIGNATURE>?,
        _ function: String
    ) throws(TPMError) -> TPMSignedAttestation {
        guard let attest, let signature else { throw TPMError.invalidResponse("\(function) returned nothing") }
        let a = try MU.payload(attest.pointee, Tss2_MU_TPM2B_ATTEST_Marshal, "TPM2B_ATTEST")
        let s = try MU.marshal(signature.pointee, Tss2_MU_TPMT_SIGNATURE_Marshal, "TPMT_SIGNATURE")
        return TPMSignedAttestation(attest: a, signature: s)
    }
}
