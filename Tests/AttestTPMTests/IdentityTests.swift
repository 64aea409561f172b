import Attest
import AttestTPM
import Crypto
import Foundation
import SwiftASN1
import Testing
import VigilTestSupport
import X509

/// TPM-rooted identity: provisioning, idempotency, EK certificates and their chains, no clobbering.
@Suite(.enabled(if: SoftwareTPM.canRun, "swtpm is not installed (apt-get install swtpm swtpm-tools)"))
struct IdentityTests {
    static let caFolder = SoftwareTPM.repositoryRoot.appendingPathComponent("swtpm-fixtures/ca")

    static func certificate(_ path: URL) throws -> Certificate {
        try Certificate(pemEncoded: String(contentsOf: path, encoding: .utf8))
    }

    @Test func provisioningCreatesEveryObjectOnceAndThenChangesNothing() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let first = try await IdentityProvisioner(tpm: tpm).provision()
            #expect(first.changed)
            let states = Dictionary(uniqueKeysWithValues: first.items.map { ($0.handle, $0.state) })
            // swtpm_setup persisted the RSA and P-384 EKs; Vigil adds the P-256 EK and its own keys.
            #expect(states["0x81010001"] == .present)
            #expect(states["0x81010002"] == .created)
            #expect(states["0x81010016"] == .present)
            #expect(states["0x81000001"] == .created)
            #expect(states["0x81000100"] == .created)
            #expect(states["0x81000101"] == .created)
            #expect(states["0x01800100"] == .created)

            let second = try await IdentityProvisioner(tpm: tpm).provision()
            #expect(!second.changed)
            #expect(second.items.allSatisfy { $0.state == .present || $0.state == .skipped })
            #expect(second.items.map(\.detail) == first.items.map(\.detail))
        }
    }

    @Test func attestationKeyIsARestrictedSigningKeyOfTheEndorsementHierarchy() async throws {
        try await SoftwareTPM.with { tpm, _ in
            _ = try await IdentityProvisioner(tpm: tpm).provision()
            let ak = try #require(try await tpm.readPublic(IdentityKeyTemplates.akHandle))
            #expect(
                ak.publicArea.objectAttributes.isSuperset(of: [
                    .fixedTPM, .fixedParent, .sensitiveDataOrigin, .restricted, .sign,
                ]))
            #expect(!ak.publicArea.objectAttributes.contains(.decrypt))
            guard case .ecc(let p) = ak.publicArea.parameters else {
                Issue.record("AK is not ECC")
                return
            }
            #expect(p.curve == .nistP256)
            // Recreating the template in the endorsement hierarchy yields the same key.
            let derived = try await tpm.withPrimary(
                .endorsement, template: IdentityKeyTemplates.attestationKey(.eccP256)
            ) { _, key in key.name }
            #expect(derived == ak.name)
        }
    }

    @Test func rsaAttestationKeyCanBeChosen() async throws {
        try await SoftwareTPM.with { tpm, _ in
            _ = try await IdentityProvisioner(tpm: tpm, akAlgorithm: .rsa2048).provision()
            let ak = try #require(try await tpm.readPublic(IdentityKeyTemplates.akHandle))
            guard case .rsa(let p) = ak.publicArea.parameters else {
                Issue.record("AK is not RSA")
                return
            }
            #expect(p.keyBits == 2048)
            #expect(p.scheme == TPMTScheme(.rsassa, hashAlg: .sha256))
        }
    }

    @Test func ekCertificatesMatchTheEKsAndChainToTheCommittedRoot() async throws {
        try await SoftwareTPM.with { tpm, _ in
            _ = try await IdentityProvisioner(tpm: tpm).provision()
            let root = try Self.certificate(Self.caFolder.appendingPathComponent("root.pem"))
            let intermediate = try Self.certificate(Self.caFolder.appendingPathComponent("intermediate.pem"))
            let verifier = EKCertificateVerifier(
                anchors: EKTrustAnchors(certificates: [intermediate, root], source: "test"))
            #expect(verifier.roots == [root])
            for template in [EndorsementKeyTemplate.rsa2048, .eccNISTP384] {
                let cert = try #require(try await IdentityProvisioner.readEKCertificate(tpm, template))
                let ek = try #require(try await tpm.readPublic(template.persistentHandle))
                #expect(try cert.matches(ek.publicArea))
                #expect(cert.tpmManufacturer == "id:00001014")
                #expect(cert.tpmModel == "swtpm")
                guard case .valid(let chain) = await verifier.validate(cert) else {
                    Issue.record("EK certificate \(template) did not validate")
                    continue
                }
                #expect(chain.count == 3)
                #expect(chain.last == root)
            }
            #expect(try await IdentityProvisioner.readEKCertificate(tpm, .eccNISTP256) == nil)
        }
    }

    @Test func anEKCertificateFromAnotherCAIsRejectedWithAReason() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let cert = try #require(try await IdentityProvisioner.readEKCertificate(tpm, .rsa2048))
            // Trust only the root: the intermediate is missing, so no path exists.
            let root = try Self.certificate(Self.caFolder.appendingPathComponent("root.pem"))
            let result = await EKCertificateVerifier(anchors: EKTrustAnchors(certificates: [root], source: "test"))
                .validate(cert)
            #expect(
                result
                    == .invalid(
                        reason:
                            "issuer not found: CN=Vigil Test TPM EK Intermediate CA 01,O=Vigil Test TPM Manufacturer,C=DE"
                    ))
            // A different manufacturer's CA entirely.
            let other = try TestCA.make(name: "Other TPM Vendor Root CA")
            let result2 = await EKCertificateVerifier(anchors: EKTrustAnchors(certificates: [other], source: "test"))
                .validate(cert)
            guard case .invalid(let reason) = result2 else {
                Issue.record("validated against a foreign CA")
                return
            }
            #expect(reason.hasPrefix("issuer not found:"))
            // The right chain, but at a time before the certificate was issued.
            let intermediate = try Self.certificate(Self.caFolder.appendingPathComponent("intermediate.pem"))
            let early = await EKCertificateVerifier(
                anchors: EKTrustAnchors(certificates: [root, intermediate], source: "test")
            ).validate(cert, at: Date(timeIntervalSince1970: 0))
            guard case .invalid(let why) = early else {
                Issue.record("validated before notBefore")
                return
            }
            #expect(
                why.contains("not yet valid") || why.contains("expired") || why.contains("notValidBefore"), "\(why)")
        }
    }

    @Test func deviceCertificateIsSelfSignedInsideTheTPMForTheDeviceKey() async throws {
        try await SoftwareTPM.with { tpm, _ in
            _ = try await IdentityProvisioner(tpm: tpm).provision()
            let der = try #require(try await tpm.nvReadAll(IdentityKeyTemplates.deviceCertificateIndex))
            let device = try #require(try await tpm.readPublic(IdentityKeyTemplates.deviceKeyHandle))
            let cert = try #require(DeviceCertificate.validStored(der, for: device.publicArea))
            #expect(cert.subject == cert.issuer)
            #expect(cert.publicKey == (try device.publicArea.certificatePublicKey()))
            #expect(cert.signatureAlgorithm == .ecdsaWithSHA256)
            #expect(cert.subject.description.contains("vigil-device-"))
            // Tampered bytes are detected and the next provisioning replaces them.
            var torn = der
            torn[torn.count - 5] ^= 0xFF
            #expect(DeviceCertificate.validStored(torn, for: device.publicArea) == nil)
            try await tpm.nvWrite(
                IdentityKeyTemplates.deviceCertificateIndex, data: Array(torn.suffix(10)), offset: torn.count - 10)
            let report = try await IdentityProvisioner(tpm: tpm).provision()
            #expect(report.items.first { $0.handle == "0x01800100" }?.state == .replaced)
            let again = try #require(try await tpm.nvReadAll(IdentityKeyTemplates.deviceCertificateIndex))
            #expect(DeviceCertificate.validStored(again, for: device.publicArea) != nil)
        }
    }

    @Test func aForeignObjectAtAVigilHandleIsNeverOverwritten() async throws {
        try await SoftwareTPM.with { tpm, _ in
            // Someone else's storage key sits where Vigil keeps its AK.
            try await tpm.withPrimary(.owner, template: IdentityKeyTemplates.srk) { tpm, key throws(TPMError) in
                try tpm.evictControl(key, persistentHandle: IdentityKeyTemplates.akHandle)
            }
            let error = await #expect(throws: TPMError.self) { try await IdentityProvisioner(tpm: tpm).provision() }
            #expect(error?.code == .handleOccupied)
            #expect(error?.reason.contains("0x81000100") == true)
            // It is still there.
            #expect(
                try await tpm.readPublic(IdentityKeyTemplates.akHandle)?.publicArea.objectAttributes.contains(.decrypt)
                    == true)
        }
    }

    @Test func anEKNonceOrTemplateInNVChangesTheEKAndProvisioningHonoursIt() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let ek = EndorsementKeyTemplate.eccNISTP256
            let nonce = Array("vigil-ek-nonce!!".utf8)
            let attributes: TPMSNVPublic.Attributes = [.ownerWrite, .ownerRead, .authRead, .noDA]
            try await tpm.nvDefineSpace(
                TPMSNVPublic(
                    nvIndex: 0x01C0_000B, nameAlg: .sha256, attributes: attributes, dataSize: UInt16(nonce.count)))
            try await tpm.nvWrite(TPMHandle(0x01C0_000B), data: nonce)
            let plain = try await tpm.withPrimary(.endorsement, template: ek.template) { _, key in key.name }
            let withNonce = try await tpm.withPrimary(.endorsement, template: ek.template(nonce: nonce)) { _, key in
                key.name
            }
            #expect(plain != withNonce)
            _ = try await IdentityProvisioner(tpm: tpm).provision()
            #expect(try await tpm.readPublic(ek.persistentHandle)?.name == withNonce)
            #expect(!(try await IdentityProvisioner(tpm: tpm).provision().changed))

            // A full template in NV takes precedence over the nonce.
            var custom = ek.template
            if case .ecc(var p) = custom.parameters {
                p.x = [UInt8](repeating: 0x11, count: 32)
                custom.parameters = .ecc(p)
            }
            let bytes = custom.marshal()
            try await tpm.nvDefineSpace(
                TPMSNVPublic(
                    nvIndex: 0x01C0_000C, nameAlg: .sha256, attributes: attributes, dataSize: UInt16(bytes.count)))
            try await tpm.nvWrite(TPMHandle(0x01C0_000C), data: bytes)
            #expect(try await ek.effectiveTemplate(tpm) == custom)
            // The persisted EK no longer matches what the manufacturer's template derives: refused, not replaced.
            let error = await #expect(throws: TPMError.self) { try await IdentityProvisioner(tpm: tpm).provision() }
            #expect(error?.code == .handleOccupied)
        }
    }

    @Test func anOwnerHierarchyImpostorAtTheEKHandleIsRejected() async throws {
        try await SoftwareTPM.with { tpm, _ in
            // EVE's mistake: the EK template, but under the owner hierarchy.
            try await tpm.withPrimary(.owner, template: EndorsementKeyTemplate.eccNISTP256.template) {
                tpm, key throws(TPMError) in
                try tpm.evictControl(key, persistentHandle: EndorsementKeyTemplate.eccNISTP256.persistentHandle)
            }
            let error = await #expect(throws: TPMError.self) { try await IdentityProvisioner(tpm: tpm).provision() }
            #expect(error?.code == .handleOccupied)
            #expect(error?.reason.contains("not the endorsement key") == true)
        }
    }

    @Test func anImpostorAtACertifiedEKHandleFailsTheCertificateCheckAndTheDerivation() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let rsa = EndorsementKeyTemplate.rsa2048
            try await tpm.evictPersistent(rsa.persistentHandle)
            try await tpm.withPrimary(.owner, template: rsa.template) { tpm, key throws(TPMError) in
                try tpm.evictControl(key, persistentHandle: rsa.persistentHandle)
            }
            let error = await #expect(throws: TPMError.self) { try await IdentityProvisioner(tpm: tpm).provision() }
            #expect(error?.code == .handleOccupied, "\(String(describing: error))")
            #expect(error?.reason.contains("0x81010001") == true)
        }
    }
}

/// Builds throwaway CA certificates for negative tests.
enum TestCA {
    static func make(name: String) throws -> Certificate {
        let key = P256.Signing.PrivateKey()
        let dn = try DistinguishedName { CommonName(name) }
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-3600), notValidAfter: Date().addingTimeInterval(3600 * 24 * 365),
            issuer: dn, subject: dn, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            },
            issuerPrivateKey: .init(key))
    }
}
