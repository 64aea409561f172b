public import Attest
public import AttestTPM
public import Foundation
import SystemSupport

/// `vigil tpm quote`: a PCR quote by the attestation key over a caller's nonce, written in the file
/// formats tpm2-tools uses, so `tpm2_checkquote` can verify it:
/// `quote.msg` (TPMS_ATTEST), `quote.sig` (TPMT_SIGNATURE), `quote.pcrs` (the `tpm2_quote -o` layout),
/// `ak.pem` (the AK's SubjectPublicKeyInfo) and `ak.pub` (its TPM2B_PUBLIC).
public struct QuoteExport: Sendable {
    public let attest: [UInt8]
    public let signature: [UInt8]
    public let selection: TPMLPCRSelection
    public let values: PCRValues
    public let akPublic: TPMTPublic

    /// Quotes with the provisioned AK. The PCRs are read before and after the quote and the quote's
    /// digest is checked against them, so the values written always match what was signed.
    public static func make(tpm: TPM, selection: TPMLPCRSelection, nonce: [UInt8]) async throws(TPMError) -> QuoteExport
    {
        let handle = IdentityKeyTemplates.akHandle
        guard let ak = try await tpm.readPublic(handle) else {
            throw TPMError(
                code: .notProvisioned, reason: "no attestation key at \(handle): run `vigil tpm provision` first")
        }
        for _ in 0..<5 {
            let before = try await tpm.pcrRead(selection)
            let signed = try await tpm.withPersistent(handle) { tpm, key throws(TPMError) in
                try tpm.quote(signingKey: key, qualifyingData: nonce, selection: selection)
            }
            let after = try await tpm.pcrRead(selection)
            guard before.values == after.values else { continue }
            let attest: TPMSAttest
            do { attest = try TPMSAttest(bytes: signed.attest) } catch {
                throw TPMError.invalidResponse("Quote: \(error)")
            }
            guard case .quote(_, let digest) = attest.attested,
                let expected = try? before.values.digest(for: selection, hashAlg: .sha256), expected == digest
            else { continue }
            return QuoteExport(
                attest: signed.attest, signature: signed.signature, selection: selection, values: before.values,
                akPublic: ak.publicArea)
        }
        throw TPMError(code: .invalidResponse, reason: "Quote: the PCRs kept changing while quoting; try again")
    }

    /// Writes the five files into `directory` (created if needed), each atomically.
    public func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try AtomicFile.write(attest, to: directory.appendingPathComponent("quote.msg"))
        try AtomicFile.write(signature, to: directory.appendingPathComponent("quote.sig"))
        try AtomicFile.write(
            try TPM2ToolsPCRFile.serialize(selection: selection, values: values),
            to: directory.appendingPathComponent("quote.pcrs"))
        try AtomicFile.write(try akPublic.pemRepresentation(), to: directory.appendingPathComponent("ak.pem"))
        try AtomicFile.write(akPublic.marshalTPM2B(), to: directory.appendingPathComponent("ak.pub"))
    }
}
