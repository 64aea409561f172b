public import Attest
public import AttestTPM
public import Foundation
import SwiftASN1
import X509

/// `vigil tpm evidence`: everything the verifier needs in one ``EvidenceBundle`` — a quote by the AK over
/// the verifier's nonce, the PCR values it covers, the AK public area, the EK certificate (and the device
/// certificate) from NV, and the TCG event log.
public enum EvidenceCollector {
    /// The kernel's copy of the firmware event log.
    public static let kernelEventLog = "/sys/kernel/security/tpm0/binary_bios_measurements"

    public static func collect(
        tpm: TPM, nonce: [UInt8], selection: TPMLPCRSelection, eventLog: [UInt8]?, now: Date = Date()
    ) async throws(TPMError) -> EvidenceBundle {
        let quote = try await QuoteExport.make(tpm: tpm, selection: selection, nonce: nonce)
        var ekDER: [UInt8]?
        var ekPublic: TPMTPublic?
        for template in EndorsementKeyTemplate.allCases {
            if let cert = try await IdentityProvisioner.readEKCertificate(tpm, template) {
                ekDER = cert.derBytes
                // The EK's public area goes with its certificate, for credential activation.
                if let ek = try await tpm.readPublic(template.persistentHandle),
                    (try? cert.matches(ek.publicArea)) == true
                {
                    ekPublic = ek.publicArea
                }
                break
            }
        }
        var deviceDER: [UInt8]?
        var deviceID = "ak-" + Hex.encode(try quote.akPublic.nameOrThrow().bytes.dropFirst(2).prefix(8))
        let index = IdentityKeyTemplates.deviceCertificateIndex
        if let stored = try await tpm.nvReadPublic(index), stored.attributes.contains(.written) {
            let der = try await tpm.nvRead(index, size: Int(stored.dataSize))
            if let cert = try? Certificate(derEncoded: der) {
                deviceDER = der
                if let cn = cert.subject.description.split(separator: ",").first(where: { $0.hasPrefix("CN=") }) {
                    deviceID = String(cn.dropFirst(3))
                }
            }
        }
        return EvidenceBundle(
            deviceID: deviceID, nonce: nonce, attest: quote.attest, signature: quote.signature, pcrs: quote.values,
            akPublic: quote.akPublic, ekCertificate: ekDER, deviceCertificate: deviceDER, eventLog: eventLog,
            collectedAt: now,
            ekPublic: ekPublic)
    }
}

extension TPMTPublic {
    func nameOrThrow() throws(TPMError) -> TPMName {
        do { return try name() } catch { throw TPMError.invalidResponse("cannot compute a Name: \(error)") }
    }
}
