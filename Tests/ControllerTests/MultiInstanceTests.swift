import Attest
import AttestTPM
import Controller
import ControllerClient
import ControllerProtocol
import Foundation
import ProcessSupport
import Synchronization
import Testing
import VigilTestSupport

@testable import Node

/// Several controller instances on one PostgreSQL database (issue 12): any instance answers any device, so every
/// single-use thing (a nonce, a signed request) must be spent once across all of them, the audit chain must stay one
/// chain, and a revocation must hold on every instance at once. Each race sends the two requests at the same
/// moment, signed beforehand, to two instances with their own connection pools.
@Suite(
    .enabled(if: SoftwareTPM.canRun, "swtpm is not installed"),
    .enabled(
        if: ControllerHarness.Database.available.contains(.postgres),
        "no PostgreSQL: run the tests with scripts/test.sh (required with CI=true)"))
struct MultiInstanceTests {
    /// How many times the same nonce is raced to both instances.
    static let races = 1000

    @Test func aNonceRacedToTwoInstancesIsAcceptedOnceAndEveryInstanceSeesTheSameState() async throws {
        // One device attests about ten times a second here: far past its default rate limits.
        var configuration = Controller.Configuration()
        configuration.noncesPerDevicePerMinute = 100_000
        configuration.evidenceBurstPerDevice = 100_000
        let first = try await ControllerHarness.start(.postgres, configuration: configuration)
        let device = try TestDevice()
        var second: ControllerHarness?
        var connections: [ControllerConnection] = []
        defer { device.stop() }
        do {
            try await first.prepareFleet()
            let id = try #require(
                DeviceID(try await ControllerEndToEndTests.bootAndOnboard(device, first, group: "lab")))
            second = try await first.anotherInstance()
            let other = try #require(second)
            let tpm = try await device.open()
            let ca = try String(contentsOfFile: first.caPath, encoding: .utf8)
            connections = [
                try ControllerConnection(url: first.url, caPEM: ca),
                try ControllerConnection(url: other.url, caPEM: ca),
            ]
            let a = DeviceAgent(tpm: tpm, connection: connections[0])
            let b = DeviceAgent(tpm: tpm, connection: connections[1])
            let log = Array(try Data(contentsOf: URL(fileURLWithPath: ControllerFixtures.eventLog)))
            let attestPath = try #require(APIOperation.named("attest")).path

            var accepted = 0
            var refusedCodes: [String: Int] = [:]
            for round in 0..<Self.races {
                // The nonce comes from either instance; the evidence goes to both at once.
                let issuer = round.isMultiple(of: 2) ? a : b
                let grant = try await issuer.signedCall(
                    Attestation.NonceGrant.self, operation: "attestNonce", device: id, body: [])
                let nonce = try #require(Hex.decode(grant.nonce))
                let selection = try #require(TPMLPCRSelection(parsingSpec: grant.pcrSelection))
                let bundle = try await EvidenceCollector.collect(
                    tpm: tpm, nonce: nonce, selection: selection, eventLog: log)
                let body = try bundle.json()
                let headerA = try await a.signedAuthorization(path: attestPath, device: id, body: body)
                let headerB = try await b.signedAuthorization(path: attestPath, device: id, body: body)
                async let toA = a.connection.send(
                    method: "POST", path: attestPath, body: body, headers: [("Authorization", headerA)])
                async let toB = b.connection.send(
                    method: "POST", path: attestPath, body: body, headers: [("Authorization", headerB)])
                let answers = try await [toA, toB]
                let passes = answers.filter { $0.status == 200 }
                accepted += passes.count
                #expect(
                    passes.count == 1,
                    "round \(round): \(answers.map { ($0.status, String(decoding: $0.body, as: UTF8.self)) })")
                for refusal in answers where refusal.status != 200 {
                    refusedCodes[ControllerClientError(status: refusal.status, body: refusal.body).code, default: 0] +=
                        1
                }
                if passes.count != 1 { break }
            }
            #expect(accepted == Self.races)
            // The loser was told its nonce was spent: no other refusal hides a broken race.
            #expect(refusedCodes == ["nonce_used": Self.races], "\(refusedCodes)")

            // One signed request raced to both: the request id is spent once across instances too.
            let noncePath = try #require(APIOperation.named("attestNonce")).path
            let header = try await a.signedAuthorization(path: noncePath, device: id, body: [])
            async let replayA = a.connection.send(
                method: "POST", path: noncePath, body: [], headers: [("Authorization", header)])
            async let replayB = b.connection.send(
                method: "POST", path: noncePath, body: [], headers: [("Authorization", header)])
            let replay = try await [replayA, replayB]
            #expect(replay.filter { $0.status == 200 }.count == 1, "\(replay.map(\.status))")
            let replayRefusal = try #require(replay.first { $0.status != 200 })
            #expect(
                String(decoding: replayRefusal.body, as: UTF8.self).contains("replayed request"),
                "\(String(decoding: replayRefusal.body, as: UTF8.self))")

            // Both instances tell the same story: the device, its verdicts, the audit chain.
            let viaA = try await first.controller.showDevice(try await first.admin(), id, limit: 5)
            let viaB = try await other.controller.showDevice(try await other.admin(), id, limit: 5)
            #expect(viaA == viaB)
            let verdicts = try await first.backend.transaction { tx throws(ControllerError) in
                try await tx.first(
                    "SELECT COUNT(*) AS n FROM attestations WHERE device_id = ? AND pass = ?",
                    [.text(id.rawValue), .integer(1)])?.requiredInteger("n")
            }
            #expect(verdicts == Int64(Self.races), "one pass per race")
            // (Each check is itself audited: the second sees the first's entry.)
            let auditA = try await first.controller.verifyAudit(try await first.admin())
            let auditB = try await other.controller.verifyAudit(try await other.admin())
            #expect(auditA.intact, "\(auditA)")
            #expect(auditB.intact, "\(auditB)")
            #expect(auditB.entries == auditA.entries + 1)
        } catch {
            Issue.record("\(error)")
        }
        for connection in connections { await connection.shutdown() }
        await second?.stop()
        await first.stop()
    }

    @Test func theAuditChainStaysOneChainUnderConcurrentWritesFromTwoInstances() async throws {
        let first = try await ControllerHarness.start(.postgres)
        let second = try await first.anotherInstance()
        let adminA = try await first.admin()
        let adminB = try await second.admin()
        let before = try await first.controller.verifyAudit(adminA).entries
        // 400 audited writes, half through each instance, 32 at a time.
        let writes = 400
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<writes {
                if i >= 32 { try await group.next() }
                let (controller, admin) = i.isMultiple(of: 2) ? (first.controller, adminA) : (second.controller, adminB)
                group.addTask {
                    _ = try await controller.createEnrollToken(
                        admin, Admin.EnrollTokenRequest(group: "lab", expiresInSeconds: 600))
                }
            }
            try await group.waitForAll()
        }
        let reportA = try await first.controller.verifyAudit(adminA)
        let reportB = try await second.controller.verifyAudit(adminB)
        #expect(reportA.intact, "\(reportA)")
        #expect(reportB.intact, "\(reportB)")
        // Every write is one link, plus the first check's own entry; the second check sees the first's.
        #expect(reportA.entries == before + 1 + writes, "\(reportA.entries) entries, \(before) before")
        #expect(reportB.entries == reportA.entries + 1)
        await second.stop()
        await first.stop()
    }

    @Test func aDeviceRevokedThroughOneInstanceIsRefusedByTheOtherAtOnce() async throws {
        let first = try await ControllerHarness.start(.postgres)
        let device = try TestDevice()
        var second: ControllerHarness?
        var connections: [ControllerConnection] = []
        defer { device.stop() }
        do {
            try await first.prepareFleet()
            let id = try #require(
                DeviceID(try await ControllerEndToEndTests.bootAndOnboard(device, first, group: "lab")))
            second = try await first.anotherInstance()
            let other = try #require(second)
            let tpm = try await device.open()
            let ca = try String(contentsOfFile: first.caPath, encoding: .utf8)
            connections = [try ControllerConnection(url: other.url, caPEM: ca)]
            let b = DeviceAgent(tpm: tpm, connection: connections[0])
            // The other instance serves the device (and so has read it) before the revocation.
            _ = try await b.signedCall(Attestation.NonceGrant.self, operation: "attestNonce", device: id, body: [])

            try await first.controller.revokeDevice(try await first.admin(), id)
            let revokedAt = ContinuousClock.now
            // The very first request to the other instance after the revoke committed is refused: no cache that
            // outlives the database state, so well within the one second the issue allows.
            var refusal: ControllerClientError?
            do {
                _ = try await b.signedCall(Attestation.NonceGrant.self, operation: "attestNonce", device: id, body: [])
            } catch let error as ControllerClientError {
                refusal = error
            }
            let elapsed = ContinuousClock.now - revokedAt
            #expect(refusal?.code == "device_revoked", "\(String(describing: refusal)) after \(elapsed)")
            // And the other instance's signed revocation list names it.
            let list = try await RevocationList.verify(
                try await other.controller.revocationList(),
                publicKeyPEM: try String(contentsOfFile: other.resultKeyPath, encoding: .utf8))
            #expect(list.revoked.map(\.device) == [id.rawValue])
        } catch {
            Issue.record("\(error)")
        }
        for connection in connections { await connection.shutdown() }
        await second?.stop()
        await first.stop()
    }
}
