import ArgumentParser
import Attest
import Foundation
import X509

struct EKCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ek", abstract: "Endorsement-key certificates.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Validate a TPM EK certificate against a folder of vendor CA certificates (roots and intermediates mixed).",
            discussion: "Exit 0 when a path to a self-signed anchor exists, 1 with the reason otherwise.")

        @Argument(help: "The EK certificate (DER, PEM, or as read from NV with padding).") var certificate: String
        @Option(help: "Folder of vendor CA certificates (PEM or DER).") var ca: String
        @Flag(help: "Print as JSON.") var json = false

        struct Output: Encodable {
            let valid: Bool
            let reason: String?
            let chain: [String]
            let issuer: String
            let tpm_manufacturer: String?
            let tpm_model: String?
            let tpm_version: String?
            let skipped_ca_files: [String]
            let repaired_ca_files: [String]
        }

        func run() async throws {
            try await reportingErrors {
                let ek = try EKCertificate(bytes: try readInput(certificate, limit: EKCertificate.maxSize))
                let folder = try CACertificateFolder(path: ca)
                let result = await EKCertificateVerifier(
                    anchors: EKTrustAnchors(certificates: folder.certificates, source: ca)
                ).validate(ek)
                let chain: [String], reason: String?
                switch result {
                case .valid(let c): (chain, reason) = (c.map { $0.subject.description }, nil)
                case .invalid(let r): (chain, reason) = ([], r)
                }
                if json {
                    try printJSON(
                        Output(
                            valid: reason == nil, reason: reason, chain: chain, issuer: ek.issuer,
                            tpm_manufacturer: ek.tpmManufacturer,
                            tpm_model: ek.tpmModel, tpm_version: ek.tpmVersion,
                            skipped_ca_files: folder.skipped.map { "\($0.file): \($0.reason)" },
                            repaired_ca_files: folder.repaired.map { "\($0.file): \($0.reason)" }))
                } else {
                    print(
                        "TPM: manufacturer \(ek.tpmManufacturer ?? "-"), model \(ek.tpmModel ?? "-"), firmware version \(ek.tpmVersion ?? "-")"
                    )
                    for s in folder.skipped { print("note: skipped \(s.file): \(s.reason)") }
                    for r in folder.repaired { print("note: repaired \(r.file): \(r.reason)") }
                    if reason == nil {
                        print(
                            "valid: "
                                + chain.enumerated().map { $0.offset == 0 ? "EK (issuer \(ek.issuer))" : $0.element }
                                .joined(separator: " → "))
                    }
                }
                if let reason {
                    throw AttestError(code: .invalidValue, reason: reason)
                }
            }
        }
    }
}
