import Attest
import AttestTPM
import Crypto
import Foundation
import Testing
import VigilTestSupport

/// Every TPM command against a private swtpm, including the error paths.
@Suite(.enabled(if: SoftwareTPM.canRun, "swtpm is not installed (apt-get install swtpm swtpm-tools)"))
struct TPMCommandTests {
    @Test func getRandomReturnsTheRequestedNumberOfBytes() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let a = try await tpm.getRandom(100)
            let b = try await tpm.getRandom(100)
            #expect(a.count == 100)
            #expect(a != b)
            #expect(try await tpm.getRandom(0).isEmpty)
            await #expect(throws: TPMError.self) { try await tpm.getRandom(-1) }
        }
    }

    @Test func capabilitiesReportManufacturerBanksAndBufferSizes() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let id = try await tpm.identification()
            #expect(id.manufacturer == "IBM")
            #expect(id.manufacturerIDString == "id:49424D00")
            #expect(id.specFamily == "2.0")
            #expect(id.firmwareVersion != 0)
            #expect(id.pcrCount == 24)
            #expect(try await tpm.nvBufferMax() == id.nvBufferMax)
            #expect(try await tpm.activeBanks() == [.sha1, .sha256, .sha384])
            let algorithms = try await tpm.algorithms()
            #expect(algorithms.contains(.ecc) && algorithms.contains(.rsa) && algorithms.contains(.sha384))
            let allocation = try await tpm.pcrAllocation()
            #expect(allocation.selections.contains { $0.hash == .sha512 && $0.pcrs.isEmpty })
        }
    }

    @Test func pcrReadCoversEveryBankAndMoreThanEightPCRsPerRequest() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let selection = TPMLPCRSelection(
                [.sha1, .sha256, .sha384].map { TPMSPCRSelection(hash: $0, pcrs: 0..<24) })
            let (values, _) = try await tpm.pcrRead(selection)
            for bank: TPMAlgorithmID in [.sha1, .sha256, .sha384] {
                for pcr in 0..<24 {
                    let value = try #require(values[bank, pcr])
                    #expect(value.count == bank.digestSize)
                }
            }
            // PCRs 17–22 reset to all ones on a TPM without a DRTM launch.
            #expect(values[.sha256, 17] == [UInt8](repeating: 0xFF, count: 32))
            #expect(values[.sha256, 0] == [UInt8](repeating: 0, count: 32))
        }
    }

    @Test func pcrExtendComputesHashOfOldValueAndDigest() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let selection = TPMLPCRSelection([
                TPMSPCRSelection(hash: .sha256, pcrs: [16]), TPMSPCRSelection(hash: .sha1, pcrs: [16]),
            ])
            let before = try await tpm.pcrRead(selection)
            let d256 = Array(SHA256.hash(data: Array("event".utf8)))
            let d1 = Array(Insecure.SHA1.hash(data: Array("event".utf8)))
            try await tpm.pcrExtend(16, digests: [.sha256: d256, .sha1: d1])
            let after = try await tpm.pcrRead(selection)
            let old256 = try #require(before.values[.sha256, 16])
            #expect(after.values[.sha256, 16] == Array(SHA256.hash(data: old256 + d256)))
            let old1 = try #require(before.values[.sha1, 16])
            #expect(after.values[.sha1, 16] == Array(Insecure.SHA1.hash(data: old1 + d1)))
            await #expect(throws: TPMError.self) { try await tpm.pcrExtend(24, digests: [.sha256: d256]) }
            await #expect(throws: TPMError.self) { try await tpm.pcrExtend(16, digests: [.sha256: d1]) }
        }
    }

    @Test func pcrReadOfAnUnallocatedBankIsATypedError() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let error = await #expect(throws: TPMError.self) {
                try await tpm.pcrRead(TPMLPCRSelection([TPMSPCRSelection(hash: .sha512, pcrs: [0])]))
            }
            #expect(error?.code == .bankNotActive)
            #expect(error?.reason.contains("sha512") == true)
        }
    }

    @Test func createPrimaryIsDeterministicPerTemplate() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let template = EndorsementKeyTemplate.eccNISTP256.template
            let first = try await tpm.withPrimary(.endorsement, template: template) { _, key in key.name }
            let second = try await tpm.withPrimary(.endorsement, template: template) { _, key in key.name }
            #expect(first == second)
            // The same template in another hierarchy is another key.
            let owner = try await tpm.withPrimary(.owner, template: template) { _, key in key.name }
            #expect(owner != first)
        }
    }

    @Test func createLoadAndSignProducesSignaturesTheVerifierAccepts() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let digest = Array(SHA256.hash(data: Array("message".utf8)))
            let (signature, publicArea) = try await tpm.withPrimary(.owner, template: IdentityKeyTemplates.srk) {
                tpm, srk throws(TPMError) in
                let blob = try tpm.create(parent: srk, template: IdentityKeyTemplates.deviceKey)
                return try tpm.withLoaded(parent: srk, blob) { tpm, key throws(TPMError) in
                    (try tpm.sign(key, digest: digest), key.publicArea)
                }
            }
            let key = try #require(publicArea)
            #expect(key.isValidSignature(signature, for: Array("message".utf8)))
            #expect(!key.isValidSignature(signature, for: Array("massage".utf8)))
        }
    }

    @Test func wrongAuthorizationIsATypedErrorWithTheDecodedText() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let digest = [UInt8](repeating: 1, count: 32)
            let error = await #expect(throws: TPMError.self) {
                try await tpm.withPrimary(.owner, template: IdentityKeyTemplates.srk) { tpm, srk throws(TPMError) in
                    let blob = try tpm.create(
                        parent: srk, template: IdentityKeyTemplates.deviceKey, authValue: SecretBytes(utf8: "right"))
                    // Loaded with the right auth it signs; with the wrong one the TPM refuses.
                    _ = try tpm.withLoaded(parent: srk, blob, authValue: SecretBytes(utf8: "right")) {
                        tpm, key throws(TPMError) in
                        try tpm.sign(key, digest: digest)
                    }
                    return try tpm.withLoaded(parent: srk, blob, authValue: SecretBytes(utf8: "wrong")) {
                        tpm, key throws(TPMError) in
                        try tpm.sign(key, digest: digest)
                    }
                }
            }
            #expect(error?.code == .tss2)
            // noDA objects fail with TPM_RC_BAD_AUTH (no dictionary-attack counting), others with TPM_RC_AUTH_FAIL.
            #expect(error?.isTPM(.badAuth) == true, "\(String(describing: error))")
            #expect(error?.reason.hasPrefix("Esys_Sign: tpm:session(1):") == true, "\(String(describing: error))")
            #expect(error?.tss2?.decoded.contains("authorization") == true, "\(String(describing: error))")
        }
    }

    @Test func nvReadAndWriteAreChunkedAndReadingPastTheEndIsTPMRCNVRange() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let index = TPMHandle(0x0180_0FF0)
            let chunk = try await tpm.nvBufferMax()
            let data = (0..<(chunk + 700)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            try await tpm.nvDefineSpace(
                TPMSNVPublic(
                    nvIndex: index.rawValue, nameAlg: .sha256,
                    attributes: [.ownerWrite, .ownerRead, .authRead, .authWrite, .noDA], dataSize: UInt16(data.count)))
            try await tpm.nvWrite(index, data: data)
            #expect(try await tpm.nvRead(index, size: data.count) == data)
            #expect(
                try await tpm.nvRead(index, offset: 1000, size: 100, authorization: .index(nil))
                    == Array(data[1000..<1100]))
            let pub = try #require(try await tpm.nvReadPublic(index))
            #expect(pub.dataSize == UInt16(data.count))
            #expect(pub.attributes.contains(.written))

            let error = await #expect(throws: TPMError.self) {
                try await tpm.nvRead(index, offset: data.count - 10, size: 11)
            }
            #expect(error?.isTPM(.nvRange) == true)
            #expect(error?.reason.contains("Esys_NV_Read") == true)
            #expect(error?.tss2?.decoded.contains("NV") == true, "\(String(describing: error))")

            try await tpm.nvUndefineSpace(index)
            #expect(try await tpm.nvReadPublic(index) == nil)
        }
    }

    @Test func evictControlPersistsAndRemovesObjects() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let handle = TPMHandle(0x8100_0F00)
            #expect(try await tpm.readPublic(handle) == nil)
            let name = try await tpm.withPrimary(.owner, template: IdentityKeyTemplates.srk) {
                tpm, key throws(TPMError) in
                try tpm.evictControl(key, persistentHandle: handle)
                return key.name
            }
            #expect(try await tpm.readPublic(handle)?.name == name)
            try await tpm.evictPersistent(handle)
            #expect(try await tpm.readPublic(handle) == nil)
        }
    }

    @Test func ecdhZGenAgreesWithSwiftCrypto() async throws {
        try await SoftwareTPM.with { tpm, _ in
            let peer = P256.KeyAgreement.PrivateKey()
            let raw = Array(peer.publicKey.rawRepresentation)
            let template = TPMTPublic(
                nameAlg: .sha256,
                objectAttributes: [.fixedTPM, .fixedParent, .sensitiveDataOrigin, .userWithAuth, .noDA, .decrypt],
                parameters: .ecc(
                    .init(symmetric: .null, scheme: TPMTScheme(.ecdh, hashAlg: .sha256), curve: .nistP256, x: [], y: [])
                ))
            let (z, publicArea) = try await tpm.withPrimary(.owner, template: IdentityKeyTemplates.srk) {
                tpm, srk throws(TPMError) in
                let blob = try tpm.create(parent: srk, template: template)
                return try tpm.withLoaded(parent: srk, blob) { tpm, key throws(TPMError) in
                    (
                        try tpm.ecdhZGen(key, peerX: Array(raw[0..<32]), peerY: Array(raw[32..<64])).unsafeCopy(),
                        key.publicArea
                    )
                }
            }
            guard case .ecc(let p) = try #require(publicArea).parameters else {
                Issue.record("not ECC")
                return
            }
            let tpmPublic = try P256.KeyAgreement.PublicKey(rawRepresentation: p.x + p.y)
            let expected = try peer.sharedSecretFromKeyAgreement(with: tpmPublic).withUnsafeBytes { Array($0) }
            #expect(z == expected)
        }
    }
}
