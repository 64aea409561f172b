import Attest
import AttestTPM
import Controller
import ControllerClient
import ControllerProtocol
import Crypto
import Foundation
import ProcessSupport
import Testing
import VigilTestSupport

@testable import Node

/// How a device, or anyone on the wire, could lie to the controller, each lie built from real TPM evidence
/// (signed swtpm quotes) and each refused with a reason naming it: a replayed, expired, foreign or made-up
/// nonce; a quote by another TPM's AK; a replayed signed request; a quote that covers no PCRs; garbage
/// evidence (which then also blocks secret release).
@Suite(.enabled(if: SoftwareTPM.canRun, "swtpm is not installed"))
struct ControllerForgeryTests {
    @Test(arguments: ControllerHarness.Database.available)
    func everyForgedAttestationIsRefusedNamingTheForgery(_ database: ControllerHarness.Database) async throws {
        let controller = try await ControllerHarness.start(database)
        let deviceA = try TestDevice()
        let deviceB = try TestDevice(fresh: true)  // another TPM: other seeds, other EK and AK
        defer {
            deviceA.stop()
            deviceB.stop()
        }
        do {
            let admin = try await controller.admin()
            try await controller.prepareFleet()
            _ = try await ControllerEndToEndTests.bootAndOnboard(deviceA, controller, group: "lab")
            // Device B's blank TPM has no EK certificate: the team admits its EK by fingerprint.
            #expect(try await deviceB.vigil(["tpm", "provision"]).status == 0)
            #expect(try await deviceB.vigil(["tpm", "replay-log", ControllerFixtures.eventLog]).status == 0)
            let fingerprintB = try EKFingerprint(ek: try await DeviceAgent.readEK(deviceB))
            try await controller.controller.allowEK(admin, Admin.AllowEK(ekFingerprint: fingerprintB, group: "blank"))
            let onboardB = try await deviceB.vigil(["device", "onboard"] + controller.connectionArguments)
            #expect(onboardB.status == 0, "\(onboardB.stderr)")
            let log = Array(try Data(contentsOf: URL(fileURLWithPath: ControllerFixtures.eventLog)))

            let tpmA = try await deviceA.open()
            let tpmB = try await deviceB.open()
            let connection = try ControllerConnection(
                url: controller.url, caPEM: try String(contentsOfFile: controller.caPath, encoding: .utf8))
            let agentA = DeviceAgent(tpm: tpmA, connection: connection)
            let agentB = DeviceAgent(tpm: tpmB, connection: connection)
            let idA = try await agentA.deviceID()
            let idB = try await agentB.deviceID()
            #expect(idA != idB)

            func nonce(_ agent: DeviceAgent, _ id: DeviceID) async throws -> ([UInt8], TPMLPCRSelection) {
                let grant = try await agent.signedCall(
                    Attestation.NonceGrant.self, operation: "attestNonce", device: id, body: [])
                return (Hex.decode(grant.nonce) ?? [], TPMLPCRSelection(parsingSpec: grant.pcrSelection)!)
            }
            func send(_ agent: DeviceAgent, _ id: DeviceID, _ bundle: EvidenceBundle) async throws
                -> ControllerClientError?
            {
                do {
                    _ = try await agent.signedCall(
                        Attestation.Outcome.self, operation: "attest", device: id, body: try bundle.json())
                    return nil
                } catch let e as ControllerClientError {
                    return e
                }
            }

            // The honest attestation passes.
            let (n1, sel) = try await nonce(agentA, idA)
            let honest = try await EvidenceCollector.collect(tpm: tpmA, nonce: n1, selection: sel, eventLog: log)
            #expect(try await send(agentA, idA, honest) == nil)

            // 1. The same evidence again: its nonce is spent.
            let replayed = try await send(agentA, idA, honest)
            #expect(replayed?.code == "nonce_used", "\(String(describing: replayed))")

            // 2. A nonce answered too late.
            let (n2, _) = try await nonce(agentA, idA)
            let late = try await EvidenceCollector.collect(tpm: tpmA, nonce: n2, selection: sel, eventLog: log)
            controller.advanceClock(by: 61)
            let expired = try await send(agentA, idA, late)
            #expect(expired?.code == "nonce_expired", "\(String(describing: expired))")

            // 3. Another device's nonce.
            let (nB, _) = try await nonce(agentB, idB)
            let foreign = try await EvidenceCollector.collect(tpm: tpmA, nonce: nB, selection: sel, eventLog: log)
            let foreignError = try await send(agentA, idA, foreign)
            #expect(foreignError?.code == "nonce_foreign", "\(String(describing: foreignError))")

            // 4. A nonce the controller never issued.
            let madeUp = try await EvidenceCollector.collect(
                tpm: tpmA, nonce: (0..<32).map { _ in UInt8.random(in: 0...255) }, selection: sel, eventLog: log)
            let unknown = try await send(agentA, idA, madeUp)
            #expect(unknown?.code == "nonce_unknown", "\(String(describing: unknown))")

            // 5. Device A's nonce, quoted by device B's TPM (its own genuine AK), sent as device A.
            let (n5, _) = try await nonce(agentA, idA)
            let otherAK = try await EvidenceCollector.collect(tpm: tpmB, nonce: n5, selection: sel, eventLog: log)
            let notBound = try await send(agentA, idA, otherAK)
            #expect(notBound?.code == "ak_not_bound", "\(String(describing: notBound))")
            #expect(notBound?.reason.contains("AK") == true, "\(String(describing: notBound))")

            // 6. A quote that leaves out PCRs the policy judges.
            let (n6, _) = try await nonce(agentA, idA)
            let partial = try await EvidenceCollector.collect(
                tpm: tpmA, nonce: n6, selection: TPMLPCRSelection(parsingSpec: "sha256:0")!, eventLog: log)
            let leftOut = try await send(agentA, idA, partial)
            #expect(leftOut?.code == "pcr_selection_mismatch", "\(String(describing: leftOut))")

            // 7. Garbage evidence: refused, and it is the device's latest attestation, so no secret is released.
            let secretPut = try await controller.controller.putSecret(
                admin, name: SecretName("k")!,
                Admin.SecretUpload(device: idA, value: Data([1, 2, 3]).base64EncodedString()))
            #expect(secretPut == 1)
            do {
                _ = try await agentA.signedCall(
                    Attestation.Outcome.self, operation: "attest", device: idA, body: Array("{\"version\":1}".utf8))
                Issue.record("garbage evidence was accepted")
            } catch let e as ControllerClientError {
                #expect(e.status == 400 && e.reason.contains("evidence is malformed"), "\(e)")
            }
            do {
                _ = try await agentA.fetchSecret(SecretName("k")!)
                Issue.record("a secret was released after refused evidence")
            } catch let e as ControllerClientError {
                #expect(e.code == "not_attested" && e.reason.contains("refused"), "\(e)")
            }

            // 8. A signed request replayed byte for byte.
            let ts = Int64(Date().timeIntervalSince1970)
            let rid = String(repeating: "ab", count: 16)
            let path = APIOperation.named("attestNonce")!.path
            let digest = Array(
                Crypto.SHA256.hash(
                    data: DeviceRequestSignature.signedText(
                        method: "POST", path: path, deviceID: idA, timestamp: ts, requestID: rid, body: [UInt8]())))
            let der = try await TPMSigningKey.derSignature(
                tpm: tpmA, handle: IdentityKeyTemplates.deviceKeyHandle, digest: digest)
            let header = DeviceRequestSignature(deviceID: idA, timestamp: ts, requestID: rid, signature: der)
                .headerValue
            let first = try await connection.send(
                method: "POST", path: path, body: [], headers: [("Authorization", header)])
            #expect(first.status == 200)
            let second = try await connection.send(
                method: "POST", path: path, body: [], headers: [("Authorization", header)])
            #expect(second.status == 401)
            #expect(String(decoding: second.body, as: UTF8.self).contains("already used"))
            // The same signature on another device's id does not verify.
            let stolen = DeviceRequestSignature(
                deviceID: idB, timestamp: ts, requestID: String(repeating: "cd", count: 16), signature: der
            ).headerValue
            let impersonation = try await connection.send(
                method: "POST", path: path, body: [], headers: [("Authorization", stolen)])
            #expect(impersonation.status == 401)
            #expect(String(decoding: impersonation.body, as: UTF8.self).contains("does not verify"))

            await connection.shutdown()
        } catch {
            await controller.stop()
            throw error
        }
        await controller.stop()
    }
}

extension DeviceAgent {
    /// The EK public area of a test device's TPM.
    static func readEK(_ device: TestDevice) async throws -> TPMTPublic {
        let tpm = try await device.open()
        let ek = try await tpm.readPublic(EndorsementKeyTemplate.rsa2048.persistentHandle)
        return try #require(ek).publicArea
    }
}
