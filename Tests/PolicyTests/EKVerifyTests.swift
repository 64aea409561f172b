import Attest
import Foundation
import SwiftASN1
import Testing
import X509

/// EK certificates from real TPMs against vendor CA folders as vendors publish them.
@Suite struct EKVerifyTests {
    static let ekcerts = PolicyFixture.root.appendingPathComponent("ekcerts")
    static func leaf(_ n: String) throws -> EKCertificate {
        try EKCertificate(bytes: Array(try Data(contentsOf: ekcerts.appendingPathComponent("leaf/\(n)"))))
    }
    static func verifier(_ folder: String) throws -> EKCertificateVerifier {
        EKCertificateVerifier(anchors: try EKTrustAnchors(folder: ekcerts.appendingPathComponent(folder).path))
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
        #expect(
            chain.map { $0.subject.description } == [
                "", "CN=STM TPM EK Intermediate CA 05,O=STMicroelectronics NV,C=CH",
                "CN=STM TPM EK Root CA,O=STMicroelectronics NV,C=CH",
                "CN=GlobalSign Trusted Platform Module Root CA,O=GlobalSign,OU=GlobalSign Trusted Computing Certificate Authority",
            ])
    }

    @Test func stmECCLeafNamesTheMissingGlobalSignECCRoot() async throws {
        let result = await (try Self.verifier("vendor-ca")).validate(
            try Self.leaf("stm-ecc-ek-ca01.der"), at: Self.when)
        #expect(
            result
                == .invalid(
                    reason:
                        "issuer not found: CN=GlobalSign Trusted Platform Module ECC Root CA,O=GlobalSign,OU=GlobalSign Trusted Computing Certificate Authority"
                ))
    }

    @Test(arguments: ["infineon-rsa-ek-ca035.der", "infineon-ecc-ek-ca035.der"])
    func infineonCA035LeavesHaveNoIssuerInTheFolder(_ name: String) async throws {
        guard
            case .invalid(let reason) = await (try Self.verifier("vendor-ca")).validate(
                try Self.leaf(name), at: Self.when)
        else {
            Issue.record("\(name) validated")
            return
        }
        #expect(reason.hasPrefix("issuer not found: CN=Infineon OPTIGA(TM)"), "\(reason)")
    }

    @Test(arguments: [
        "gce-vtpm-uca_tpm_rsa_enc_cert.pem", "gce-vtpm-uca_tpm_ecc_enc_cert.pem", "gce-vtpm-pca_tpm_rsa_enc_cert.pem",
        "gce-vtpm-pca_tpm_ecc_enc_cert.pem",
    ])
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

    @Test func theGCEFolderOfDERFilesLoadsAndNuvotonRootsOutOfDERSetOrderAreRepaired() throws {
        let gce = try CACertificateFolder(path: Self.ekcerts.appendingPathComponent("gce-ca").path)
        #expect(gce.certificates.count == 5)
        #expect(gce.skipped.isEmpty && gce.repaired.isEmpty)
        let vendor = try CACertificateFolder(path: Self.ekcerts.appendingPathComponent("vendor-ca").path)
        #expect(vendor.skipped.isEmpty, "\(vendor.skipped)")
        // Nuvoton's seven roots write their multi-valued RDN (CN + O + C) out of DER order (keylime#944).
        #expect(
            vendor.repaired.map(\.file).sorted() == [
                "NTC1.pem", "NTC2.pem", "NUVO_0100.pem", "NUVO_1110.pem", "NUVO_1111.pem", "NUVO_2110.pem",
                "NUVO_2111.pem",
            ])
        #expect(vendor.repaired.allSatisfy { $0.reason.contains("X.690 §11.6") })
        let nuvoton = vendor.certificates.filter { $0.subject.description.contains("Nuvoton") }
        #expect(nuvoton.count == 7)
        #expect(nuvoton.allSatisfy { $0.subject == $0.issuer })
    }

    static let nuvotonRoot = ekcerts.appendingPathComponent("leaf/nuvoton-root-ca-2110-nonDER-setorder.der")

    @Test func aRepairKeepsTheLengthAndTheSignatureIsCheckedOverThePublishedBytes() throws {
        let published = Array(try Data(contentsOf: Self.nuvotonRoot))
        #expect(throws: (any Error).self) { _ = try Certificate(derEncoded: published) }  // strict DER refuses it
        let repaired = try #require(try CACertificateFolder.parse(published).first)
        #expect(repaired.subject.description == "C=TW+CN=Nuvoton TPM Root CA 2110+O=Nuvoton Technology Corporation")
        var serializer = DER.Serializer()
        try serializer.serialize(repaired)
        let canonical = serializer.serializedBytes
        #expect(canonical.count == published.count && canonical != published)

        // The same certificate as a DER file in a folder (with NV-style 0xFF padding) is repaired and reported.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-ca-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(published + [UInt8](repeating: 0xFF, count: 64)).write(
            to: folder.appendingPathComponent("nuvoton.der"))
        let loaded = try CACertificateFolder(path: folder.path)
        #expect(loaded.certificates.count == 1 && loaded.skipped.isEmpty)
        #expect(loaded.repaired.map(\.file) == ["nuvoton.der"])

        // notAfter 2035-10-15 moved to 2034 (still well-formed: only the signature can tell), or one bit of the
        // signature flipped: the repair is refused.
        let notAfter = Array("351015".utf8)
        let year = try #require(
            (0..<(published.count - notAfter.count)).first { Array(published[$0..<($0 + notAfter.count)]) == notAfter })
        var laterExpiry = published
        laterExpiry[year + 1] = UInt8(ascii: "4")
        var badSignature = published
        badSignature[published.count - 5] ^= 0x01
        for tampered in [laterExpiry, badSignature] {
            #expect(throws: AttestError.self) { _ = try CACertificateFolder.parse(tampered) }
        }
        // Truncations and garbage never trap.
        for length in stride(from: 0, to: published.count, by: 7) {
            _ = try? CACertificateFolder.parse(Array(published.prefix(length)))
        }
    }

    @Test func aCARootOfferedAsAnEKIsNamedAsSuch() async throws {
        let root = try EKCertificate(bytes: Array(try Data(contentsOf: Self.nuvotonRoot)))
        let result = await (try Self.verifier("vendor-ca")).validate(root, at: Self.when)
        #expect(
            result
                == .invalid(
                    reason:
                        "not an EK certificate: a CA certificate (basicConstraints cA=TRUE): C=TW+CN=Nuvoton TPM Root CA 2110+O=Nuvoton Technology Corporation"
                ))
    }

    @Test func anExpiredChainIsRejectedAsExpired() async throws {
        let late = Date(timeIntervalSince1970: 4_102_444_800)  // 2100
        guard
            case .invalid(let reason) = await (try Self.verifier("vendor-ca")).validate(
                try Self.leaf("stm-rsa-ek-ca05-ffpadded.der"), at: late)
        else {
            Issue.record("validated in 2100")
            return
        }
        #expect(reason.lowercased().contains("expired"), "\(reason)")
    }

    @Test func aRepairedNuvotonRootIsATrustAnchor() throws {
        // Nuvoton's root, published out of DER SET order: repaired, accepted after its signature verified over the
        // published bytes, and then an anchor like any self-issued certificate in the verifier's folder.
        let bytes = Array(
            try Data(contentsOf: Self.ekcerts.appendingPathComponent("leaf/nuvoton-root-ca-2110-nonDER-setorder.der")))
        let certificates = try CACertificateFolder.parse(bytes)
        let anchors = EKTrustAnchors(certificates: certificates, source: "nuvoton")
        #expect(anchors.roots.count == 1 && anchors.intermediates.isEmpty)
        #expect(anchors.roots.first?.subject.description.contains("Nuvoton TPM Root CA 2110") == true)
        // Anchors are what the verifier's folder holds: a root offered by the device is only an intermediate.
        let verifier = EKCertificateVerifier(
            anchors: EKTrustAnchors(certificates: [], source: "none"), untrustedIntermediates: certificates)
        #expect(verifier.roots.isEmpty && verifier.intermediates.count == 1)
    }
}
