import Attest
import AttestTPM
import Crypto
import Foundation
import Node
import ProcessSupport
import Testing
import VigilTestSupport

/// Quotes, certification and credential activation with the provisioned identity, and interoperability
/// with tpm2-tools in both directions.
@Suite(.enabled(if: SoftwareTPM.canRunTPM2Tools, "swtpm or tpm2-tools is not installed"))
struct AttestationTests {
    static let selection = TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: 0..<8)])

    @Test func quoteIsSignedByTheAKOverTheNonceAndTheReadPCRValues() async throws {
        try await SoftwareTPM.with { tpm, _ in
            _ = try await IdentityProvisioner(tpm: tpm).provision()
            let nonce = try await tpm.getRandom(32)
            let export = try await QuoteExport.make(tpm: tpm, selection: Self.selection, nonce: nonce)
            let attest = try TPMSAttest(bytes: export.attest)
            let signature = try TPMTSignature(bytes: export.signature)
            #expect(export.akPublic.isValidSignature(signature, for: export.attest))
            #expect(attest.extraData == nonce)
            #expect(attest.qualifiedSigner.bytes.count == 34)
            guard case .quote(let selection, let digest) = attest.attested else {
                Issue.record("not a quote")
                return
            }
            #expect(selection.selectsSamePCRs(as: Self.selection))
            #expect(try export.values.digest(for: selection, hashAlg: .sha256) == digest)
            // The AK is in the endorsement hierarchy, so the counters are in the clear.
            #expect(attest.clockInfo.resetCount < 1000)
            #expect(attest.clockInfo.safe)
        }
    }

    @Test func quoteOverABankTheTPMDoesNotImplementIsTheTPMsTypedError() async throws {
        try await SoftwareTPM.with { tpm, _ in
            _ = try await IdentityProvisioner(tpm: tpm).provision()
            let error = await #expect(throws: TPMError.self) {
                try await tpm.withPersistent(IdentityKeyTemplates.akHandle) { tpm, ak throws(TPMError) in
                    try tpm.quote(
                        signingKey: ak, qualifyingData: [1],
                        selection: TPMLPCRSelection([TPMSPCRSelection(hash: .sm3_256, pcrs: [0])]))
                }
            }
            #expect(error?.isTPM(.hash) == true, "\(String(describing: error))")
            #expect(
                error?.reason == "Esys_Quote: tpm:parameter(3):hash algorithm not supported or not appropriate (0x3c3)")
            // An implemented bank that is not allocated would be silently dropped by the TPM: refused up front.
            let unallocated = await #expect(throws: TPMError.self) {
                try await tpm.withPersistent(IdentityKeyTemplates.akHandle) { tpm, ak throws(TPMError) in
                    try tpm.quote(
                        signingKey: ak, qualifyingData: [1],
                        selection: TPMLPCRSelection([TPMSPCRSelection(hash: .sha512, pcrs: [0])]))
                }
            }
            #expect(unallocated?.code == .bankNotActive)
        }
    }

    @Test func theAKCertifiesThatTheDeviceKeyLivesInTheSameTPM() async throws {
        try await SoftwareTPM.with { tpm, _ in
            _ = try await IdentityProvisioner(tpm: tpm).provision()
            let nonce: [UInt8] = Array("certify-nonce".utf8)
            let signed = try await tpm.withPersistent(IdentityKeyTemplates.deviceKeyHandle) {
                tpm, device throws(TPMError) in
                try tpm.withPersistent(IdentityKeyTemplates.akHandle) { tpm, ak throws(TPMError) in
                    try tpm.certify(device, signingKey: ak, qualifyingData: nonce)
                }
            }
            let ak = try #require(try await tpm.readPublic(IdentityKeyTemplates.akHandle))
            let device = try #require(try await tpm.readPublic(IdentityKeyTemplates.deviceKeyHandle))
            #expect(ak.publicArea.isValidSignature(try TPMTSignature(bytes: signed.signature), for: signed.attest))
            let attest = try TPMSAttest(bytes: signed.attest)
            #expect(attest.extraData == nonce)
            guard case .certify(let name, _) = attest.attested else {
                Issue.record("not a certify")
                return
            }
            #expect(name == device.name)
        }
    }

    @Test func activateCredentialReleasesASecretMadeByTPM2MakecredentialForTheAK() async throws {
        try await SoftwareTPM.with { tpm, _ in
            _ = try await IdentityProvisioner(tpm: tpm).provision()
            let dir = try ProcessRunner.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let ak = try #require(try await tpm.readPublic(IdentityKeyTemplates.akHandle))
            for ekTemplate in [EndorsementKeyTemplate.rsa2048, .eccNISTP256] {
                let ek = try #require(try await tpm.readPublic(ekTemplate.persistentHandle))
                let secret = try await tpm.getRandom(16)
                let (blob, encrypted) = try Self.makeCredential(
                    ekPublic: ek.publicArea, name: ak.name, secret: secret, dir: dir)
                let recovered = try await tpm.withPersistent(ekTemplate.persistentHandle) {
                    tpm, ekObject throws(TPMError) in
                    try tpm.withPersistent(IdentityKeyTemplates.akHandle) { tpm, akObject throws(TPMError) in
                        try tpm.activateCredential(
                            activating: akObject, endorsementKey: ekObject, credentialBlob: blob,
                            encryptedSecret: encrypted
                        ).unsafeCopy()
                    }
                }
                #expect(recovered == secret, "EK \(ekTemplate)")

                // A credential made for another key's Name is refused: the AK must be the one named.
                let device = try #require(try await tpm.readPublic(IdentityKeyTemplates.deviceKeyHandle))
                let (wrongBlob, wrongSecret) = try Self.makeCredential(
                    ekPublic: ek.publicArea, name: device.name, secret: secret, dir: dir)
                let error = await #expect(throws: TPMError.self) {
                    try await tpm.withPersistent(ekTemplate.persistentHandle) { tpm, ekObject throws(TPMError) in
                        try tpm.withPersistent(IdentityKeyTemplates.akHandle) { tpm, akObject throws(TPMError) in
                            try tpm.activateCredential(
                                activating: akObject, endorsementKey: ekObject, credentialBlob: wrongBlob,
                                encryptedSecret: wrongSecret)
                        }
                    }
                }
                #expect(error?.code == .tss2)
            }
        }
    }

    /// Runs `tpm2_makecredential -T none` (no TPM needed: what a verifier does) and splits its output file:
    /// magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
    static func makeCredential(ekPublic: TPMTPublic, name: TPMName, secret: [UInt8], dir: URL) throws -> (
        [UInt8], [UInt8]
    ) {
        let ekFile = dir.appendingPathComponent("ek.pub"), secretFile = dir.appendingPathComponent("secret.bin")
        let out = dir.appendingPathComponent("cred.bin")
        try Data(ekPublic.marshalTPM2B()).write(to: ekFile)
        try Data(secret).write(to: secretFile)
        try? FileManager.default.removeItem(at: out)
        let result = try ProcessRunner.run(
            "tpm2_makecredential",
            [
                "-T", "none", "-u", ekFile.path, "-s", secretFile.path,
                "-n", Hex.encode(name.bytes), "-o", out.path,
            ])
        #expect(result.status == 0, "\(result.stderr)")
        var reader = ByteReader(Array(try Data(contentsOf: out)))
        #expect(try reader.readUInt32("magic", .big) == 0xBADC_C0DE)
        #expect(try reader.readUInt32("version", .big) == 1)
        let blob = try reader.readTPM2B("TPM2B_ID_OBJECT", maxSize: 1024)
        let encrypted = try reader.readTPM2B("TPM2B_ENCRYPTED_SECRET", maxSize: 1024)
        try reader.expectEnd("credential file")
        return (blob, encrypted)
    }

    @Test func tpm2CheckquoteAcceptsVigilTPMQuoteOutput() async throws {
        let session = try VigilCLISession()
        defer { session.close() }
        let dir = session.directory
        let provision = try session.vigil(["tpm", "provision"])
        #expect(provision.status == 0, "\(provision.stderr)")
        #expect(provision.stdout.contains("Identity provisioned."))
        let again = try session.vigil(["tpm", "provision"])
        #expect(again.stdout.contains("Nothing changed"), "\(again.stdout)")

        for (spec, nonce) in [
            ("sha256:0,1,2,3,4,5,6,7", "deadbeef00112233"), ("sha1:0-23+sha256:0-23+sha384:0,7", "01"),
        ] {
            let out = dir.appendingPathComponent(String(spec.prefix(6)))
            let quote = try session.vigil(["tpm", "quote", "--pcrs", spec, "--nonce", nonce, "--out", out.path])
            #expect(quote.status == 0, "\(quote.stderr)")
            let check = try ProcessRunner.run(
                "tpm2_checkquote",
                [
                    "-u", out.appendingPathComponent("ak.pem").path, "-m", out.appendingPathComponent("quote.msg").path,
                    "-s", out.appendingPathComponent("quote.sig").path, "-f",
                    out.appendingPathComponent("quote.pcrs").path,
                    "-g", "sha256", "-q", nonce,
                ])
            #expect(check.status == 0, "tpm2_checkquote rejected \(spec): \(check.stderr)")
            // And it rejects the same quote under another nonce: the check is real.
            let wrong = try ProcessRunner.run(
                "tpm2_checkquote",
                [
                    "-u", out.appendingPathComponent("ak.pem").path, "-m", out.appendingPathComponent("quote.msg").path,
                    "-s", out.appendingPathComponent("quote.sig").path, "-f",
                    out.appendingPathComponent("quote.pcrs").path,
                    "-g", "sha256", "-q", "ff" + nonce,
                ])
            #expect(wrong.status != 0)
        }
    }

    @Test func vigilReadsAQuoteMadeByTPM2Quote() async throws {
        try await SoftwareTPM.with { tpm, simulator in
            _ = try await IdentityProvisioner(tpm: tpm).provision()
            let dir = try ProcessRunner.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let msg = dir.appendingPathComponent("m"), sig = dir.appendingPathComponent("s"),
                pcrs = dir.appendingPathComponent("p")
            let result = try ProcessRunner.run(
                "tpm2_quote",
                [
                    "-c", IdentityKeyTemplates.akHandle.description, "-l", "sha256:0,1,2,3,4,5,6,7,8,9,10+sha1:0,16",
                    "-q", "abcdef0123", "-m", msg.path, "-s", sig.path, "-o", pcrs.path, "-g", "sha256",
                ],
                environment: ["TPM2TOOLS_TCTI": simulator.tctiString])
            #expect(result.status == 0, "\(result.stderr)")
            let attest = try TPMSAttest(bytes: Array(try Data(contentsOf: msg)))
            let signature = try TPMTSignature(bytes: Array(try Data(contentsOf: sig)))
            let (selection, values) = try TPM2ToolsPCRFile.parse(Array(try Data(contentsOf: pcrs)))
            let ak = try #require(try await tpm.readPublic(IdentityKeyTemplates.akHandle))
            #expect(ak.publicArea.isValidSignature(signature, for: attest.rawBytes))
            #expect(attest.extraData == Hex.decode("abcdef0123"))
            guard case .quote(let signedSelection, let digest) = attest.attested else {
                Issue.record("not a quote")
                return
            }
            #expect(signedSelection.selectsSamePCRs(as: selection))
            #expect(try values.digest(for: signedSelection, hashAlg: .sha256) == digest)
            let (current, _) = try await tpm.pcrRead(selection)
            #expect(current == values)
        }
    }
}
