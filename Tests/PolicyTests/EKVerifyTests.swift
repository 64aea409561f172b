import Testing
import Foundation
import Attest
import X509

/// EK certificates from real TPMs against vendor CA folders as vendors publish them.
@Suite struct EKVerifyTests {
    static let ekcerts = PolicyFixture.root.appendingPathComponent("ekcerts")
    static func leaf(_ n: String) throws -> EKCertificate {
        try EKCertificate(bytes: Array(try Data(contentsOf: ekcerts.appendingPathComponent("leaf/\(n)"))))
    }
    static func verifier(_ folder: String) throws -> EKCertificateVerifier {
        EKCertificateVerifier(caCertificates: try CACertificateFolder(path: ekcerts.appendingPathComponent(folder).path).certificates)
    }
    static let when = Date(timeIntervalSince1970: 1_790_000_000)  // 2026-09: inside every chain's validity

    @Test func stmRSALeafPaddedWithFFChainsThroughSTMToGlobalSign() async throws {
        let ek = try Self.leaf("stm-rsa-ek-ca05-ffpadded.der")
        #expect(ek.tpmManufacturer == "id:53544D20")
        #expect(ek.tpmModel == "ST33HTPHAHB4")
        #expect(ek.tpmVersion == "id:00490004")
        guard case .valid(let chain) = await (try Self.verifier("vendor-ca")).validate(ek, at: Self.when) else {
            Issue.record("STM RSA EK did not validate")
            return
        }
        #expect(chain.map { $0.subject.description } == [
            "", "CN=STM TPM EK Intermediate CA 05,O=STMicroelectronics NV,C=CH", "CN=STM TPM EK Root CA,O=STMicroelectronics NV,C=CH",
            "CN=GlobalSign Trusted Platform Module Root CA,O=GlobalSign,OU=GlobalSign Trusted Computing Certificate Authority",
        ])
    }

    @Test func stmECCLeafNamesTheMissingGlobalSignECCRoot() async throws {
        let result = await (try Self.verifier("vendor-ca")).validate(try Self.leaf("stm-ecc-ek-ca01.der"), at: Self.when)
        #expect(result == .invalid(reason: "issuer not found: CN=GlobalSign Trusted Platform Module ECC Root CA,O=GlobalSign,OU=GlobalSign Trusted Computing Certificate Authority"))
    }

    @Test(arguments: ["infineon-rsa-ek-ca035.der", "infineon-ecc-ek-ca035.der"])
    func infineonCA035LeavesHaveNoIssuerInTheFolder(_ name: String) async throws {
        guard case .invalid(let reason) = await (try Self.verifier("vendor-ca")).validate(try Self.leaf(name), at: Self.when) else {
            Issue.record("\(name) validated")
            return
        }
        #expect(reason.hasPrefix("issuer not found: CN=Infineon OPTIGA(TM)"), "\(reason)")
    }

    @Test(arguments: ["gce-vtpm-uca_tpm_rsa_enc_cert.pem", "gce-vtpm-uca_tpm_ecc_enc_cert.pem", "gce-vtpm-pca_tpm_rsa_enc_cert.pem", "gce-vtpm-pca_tpm_ecc_enc_cert.pem"])
    func gceLeavesChainToTheGCEFolderAndFailAgainstTheVendorFolder(_ name: String) async throws {
        let ek = try Self.leaf(name)
        guard case .valid = await (try Self.verifier("gce-ca")).validate(ek, at: Self.when) else {
            Issue.record("\(name) did not chain to gce-ca")
            return
        }
        guard case .invalid(let reason) = await (try Self.verifier("vendor-ca")).validate(ek, at: Self.when) else {
            Issue.record("\(name) validated against the vendor folder")
            return
        }
        #expect(reason.hasPrefix("issuer not found:"))
    }

    @Test func theGCEFolderOfDERFilesLoadsAndNonDERVendorFilesAreReportedNotFatal() throws {
        let gce = try CACertificateFolder(path: Self.ekcerts.appendingPathComponent("gce-ca").path)
        #expect(gce.certificates.count == 5)
        #expect(gce.skipped.isEmpty)
        let vendor = try CACertificateFolder(path: Self.ekcerts.appendingPathComponent("vendor-ca").path)
        #expect(vendor.certificates.count > 40)
        #expect(vendor.skipped.allSatisfy { $0.reason.contains("SET OF") }, "\(vendor.skipped)")
    }

    @Test func anExpiredChainIsRejectedAsExpired() async throws {
        let late = Date(timeIntervalSince1970: 4_102_444_800)  // 2100
        guard case .invalid(let reason) = await (try Self.verifier("vendor-ca")).validate(try Self.leaf("stm-rsa-ek-ca05-ffpadded.der"), at: late) else {
            Issue.record("validated in 2100")
            return
        }
        #expect(reason.lowercased().contains("expired"), "\(reason)")
    }
}
