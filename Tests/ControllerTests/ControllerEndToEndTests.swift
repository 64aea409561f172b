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

/// The controller's acceptance story through the device-side commands, on SQLite and on PostgreSQL: a swtpm
/// booted as the GCE RHEL 8 machine (its real event log replayed into the PCRs), onboarded with credential
/// activation, attesting against the strict Secure Boot policy; then a tampered boot.
@Suite(.enabled(if: SoftwareTPM.canRun, "swtpm is not installed"))
struct ControllerEndToEndTests {
    @Test(arguments: ControllerHarness.Database.available)
    func onboardAttestReleaseThenATamperedBootIsRefusedNamingTheRuleAndPCR(_ database: ControllerHarness.Database)
        async throws
    {
        let controller = try await ControllerHarness.start(database)
        let device = try TestDevice()
        defer { device.stop() }
        do {
            // The security team: the vendor's EK CA as a bundle, and the fleet policy (which extends the strict
            // Secure Boot policy: the CLI sends the files it extends with it) for the group.
            let bundle = try await device.vigil(
                [
                    "admin", "ek-ca", "add", "swtpm-vendor",
                    SoftwareTPM.repositoryRoot.appendingPathComponent("swtpm-fixtures/ca").path,
                ]
                    + controller.adminArguments)
            #expect(bundle.status == 0, "\(bundle.stderr)")
            try ControllerFixtures.fleetPolicy.write(
                toFile: device.path("fleet-lab.yaml"), atomically: true, encoding: .utf8)
            for (name, text) in zip(
                ["strict-secureboot-linux.yaml", "base-hygiene.yaml"], try ControllerFixtures.fleetParents())
            {
                try text.write(toFile: device.path(name), atomically: true, encoding: .utf8)
            }
            let add = try await device.vigil(
                ["admin", "policy", "add", "fleet-lab", device.path("fleet-lab.yaml")] + controller.adminArguments)
            #expect(add.status == 0, "\(add.stderr)")
            let assign = try await device.vigil(
                ["admin", "policy", "assign", "fleet-lab", "--group", "lab"] + controller.adminArguments)
            #expect(assign.status == 0, "\(assign.stderr)")

            let onboarded = try await Self.bootAndOnboard(device, controller, group: "lab")
            let id = try #require(DeviceID(onboarded))
            let secret = (0..<48).map { _ in UInt8.random(in: 0...255) }
            try Data(secret).write(to: URL(fileURLWithPath: device.path("disk.key")))
            let put = try await device.vigil(
                ["admin", "secret", "put", "disk-key", "--device", id.rawValue, "--file", device.path("disk.key")]
                    + controller.adminArguments)
            #expect(put.status == 0, "\(put.stderr)")

            // Attest → pass, with a result that verifies offline.
            let pass = try await device.vigil(
                ["device", "attest", "--eventlog", ControllerFixtures.eventLog, "--json"]
                    + controller.connectionArguments)
            #expect(pass.status == 0, "\(pass.stdout)\(pass.stderr)")
            let outcome = try JSONSerialization.jsonObject(with: Data(pass.stdout.utf8)) as? [String: Any]
            #expect(outcome?["pass"] as? Bool == true)
            let token = try #require(outcome?["result"] as? String)
            try token.write(toFile: device.path("result.jwt"), atomically: true, encoding: .utf8)
            let verified = try await device.vigil(
                ["result", "verify", "@" + device.path("result.jwt"), "--key", controller.resultKeyPath])
            #expect(verified.status == 0, "\(verified.stderr)")
            #expect(verified.stdout.contains("PASS \(id)"))
            // One byte changed anywhere in the token: refused.
            for index in [10, token.count / 2, token.count - 3] {
                var bytes = Array(token.utf8)
                bytes[index] = bytes[index] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
                try Data(bytes).write(to: URL(fileURLWithPath: device.path("forged.jwt")))
                let forged = try await device.vigil(
                    ["result", "verify", "@" + device.path("forged.jwt"), "--key", controller.resultKeyPath])
                #expect(forged.status == 1, "byte \(index): \(forged.stdout)")
            }

            // The secret, unwrapped by this TPM only, equals what the team put.
            let fetched = try await device.vigil(
                ["device", "fetch-secret", "disk-key", "--out", device.path("fetched.key")]
                    + controller.connectionArguments)
            #expect(fetched.status == 0, "\(fetched.stderr)")
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: device.path("fetched.key")))) == secret)
            let mode = try FileManager.default.attributesOfItem(atPath: device.path("fetched.key"))[.posixPermissions]
            #expect((mode as? Int) == 0o600)

            // A tampered boot: one unapproved measurement in PCR 4.
            let tpm = try await device.open()
            try await tpm.pcrExtend(4, digests: [.sha256: Array(SHA256.hash(data: Array("rootkit-loader".utf8)))])
            let fail = try await device.vigil(
                ["device", "attest", "--eventlog", ControllerFixtures.eventLog] + controller.connectionArguments)
            #expect(fail.status == 1)
            #expect(fail.stdout.contains("FAIL pcrs.sha256.4"), "\(fail.stdout)")
            #expect(fail.stdout.contains("PCR 4"), "\(fail.stdout)")

            // No secret after the fail.
            let refused = try await device.vigil(
                ["device", "fetch-secret", "disk-key", "--out", device.path("refused.key")]
                    + controller.connectionArguments)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("not_attested"), "\(refused.stderr)")
            #expect(refused.stderr.contains("pcrs.sha256.4"), "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: device.path("refused.key")))

            // The security team sees the failed rule, PCR and event.
            let show = try await device.vigil(["admin", "device", "show", id.rawValue] + controller.adminArguments)
            #expect(show.stdout.contains("pcrs.sha256.4 sha256 PCR 4 event 77"), "\(show.stdout)")

            // The audit chain holds, and one edited row breaks it at that row.
            let audit = try await device.vigil(["admin", "audit", "verify"] + controller.adminArguments)
            #expect(audit.status == 0, "\(audit.stdout)\(audit.stderr)")
            try await controller.backend.transaction { tx throws(ControllerError) in
                try await tx.execute("UPDATE audit SET outcome = 'pass' WHERE seq = 5")
            }
            let broken = try await device.vigil(["admin", "audit", "verify"] + controller.adminArguments)
            #expect(broken.status == 1)
            #expect(broken.stdout.contains("BROKEN at entry 5"), "\(broken.stdout)")
        } catch {
            await controller.stop()
            throw error
        }
        await controller.stop()
    }

    @Test(arguments: ControllerHarness.Database.available)
    func unknownDevicesAreRefusedAndRevokedDevicesAreToldSo(_ database: ControllerHarness.Database) async throws {
        let controller = try await ControllerHarness.start(database)
        let device = try TestDevice()
        defer { device.stop() }
        do {
            try await controller.prepareFleet()
            #expect(try await device.vigil(["tpm", "provision"]).status == 0)
            let unknown = try await device.vigil(["device", "onboard"] + controller.connectionArguments)
            #expect(unknown.status == 1)
            #expect(unknown.stderr.contains("unknown_device"), "\(unknown.stderr)")
            // A made-up token is not one the controller issued.
            let madeUp = try await device.vigil(
                ["device", "onboard", "--enroll-token", "vet_madeup"] + controller.connectionArguments)
            #expect(madeUp.stderr.contains("enroll_token_unknown"), "\(madeUp.stderr)")

            let id = try #require(DeviceID(try await Self.bootAndOnboard(device, controller, group: "lab")))
            // Onboarding again from the same TPM is idempotent (the token is spent; the EK is known now).
            let again = try await device.vigil(["device", "onboard", "--json"] + controller.connectionArguments)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout.contains("\"created\" : false"), "\(again.stdout)")
            // A result the device holds, checked against the signed revocation list before and after it is revoked.
            let pass = try await device.vigil(
                ["device", "attest", "--eventlog", ControllerFixtures.eventLog, "--json"]
                    + controller.connectionArguments)
            let outcome = try JSONSerialization.jsonObject(with: Data(pass.stdout.utf8)) as? [String: Any]
            try #require(outcome?["result"] as? String).write(
                toFile: device.path("held.jwt"), atomically: true, encoding: .utf8)
            let connection = try ControllerConnection(
                url: controller.url, caPEM: try String(contentsOfFile: controller.caPath, encoding: .utf8))
            func fetchList(_ name: String) async throws -> String {
                let answer = try await connection.send(method: "GET", path: "/v1/revocations", body: [], headers: [])
                #expect(answer.status == 200)
                try Data(answer.body).write(to: URL(fileURLWithPath: device.path(name)))
                return device.path(name)
            }
            func verify(_ list: String) async throws -> ProcessResult {
                try await device.vigil(
                    [
                        "result", "verify", "@" + device.path("held.jwt"), "--key", controller.resultKeyPath,
                        "--revocations", list,
                    ])
            }
            let clean = try await verify(try await fetchList("before.jwt"))
            #expect(clean.status == 0, "\(clean.stderr)")
            // A used token cannot admit another TPM.
            let revoke = try await device.vigil(["admin", "device", "revoke", id.rawValue] + controller.adminArguments)
            #expect(revoke.status == 0, "\(revoke.stderr)")
            // The held result still verifies on its own (until it expires), but not against the list.
            let after = try await verify(try await fetchList("after.jwt"))
            #expect(after.status == 1 && after.stderr.contains("is revoked"), "\(after.stderr)")
            // A list edited to drop the device (its signature broken), and a list that expired, are refused.
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: device.path("after.jwt"))))
            bytes[bytes.count / 2] ^= 0x01
            try Data(bytes).write(to: URL(fileURLWithPath: device.path("edited.jwt")))
            let edited = try await verify(device.path("edited.jwt"))
            #expect(edited.status == 1 && edited.stderr.contains("does not verify"), "\(edited.stderr)")
            controller.advanceClock(by: -3600)
            let stale = try await verify(try await fetchList("stale.jwt"))
            controller.advanceClock(by: 3600)
            #expect(stale.status == 1 && stale.stderr.contains("does not verify"), "\(stale.stderr)")
            // A result is not a revocation list, though both are signed with the same key.
            let confused = try await verify(device.path("held.jwt"))
            #expect(confused.status == 1 && confused.stderr.contains("does not verify"), "\(confused.stderr)")
            await connection.shutdown()
            let told = try await device.vigil(
                ["device", "attest", "--eventlog", ControllerFixtures.eventLog] + controller.connectionArguments)
            #expect(told.status == 1)
            #expect(told.stderr.contains("device_revoked"), "\(told.stderr)")
            let reonboard = try await device.vigil(["device", "onboard"] + controller.connectionArguments)
            #expect(reonboard.stderr.contains("device_revoked"), "\(reonboard.stderr)")

            // A TPM without an EK certificate (a blank swtpm: keys the controller cannot tell from software ones)
            // is not admitted by a token; by its EK fingerprint it is, as the team's explicit decision.
            let blank = try TestDevice(fresh: true)
            defer { blank.stop() }
            #expect(try await blank.vigil(["tpm", "provision"]).status == 0)
            let token = try await blank.vigil(
                ["admin", "enroll-token", "create", "--group", "blank"] + controller.adminArguments)
            let refused = try await blank.vigil(
                ["device", "onboard", "--enroll-token", token.stdout.trimmingCharacters(in: .whitespacesAndNewlines)]
                    + controller.connectionArguments)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("ek_chain_required"), "\(refused.stderr)")

            // Admissions can be withdrawn before they are used: a revoked token, a disallowed EK.
            let spare = try await blank.vigil(
                ["admin", "enroll-token", "create", "--group", "lab"] + controller.adminArguments)
            let spareToken = spare.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(
                try await blank.vigil(["admin", "enroll-token", "revoke", spareToken] + controller.adminArguments)
                    .status == 0)
            let revokedToken = try await blank.vigil(
                ["device", "onboard", "--enroll-token", spareToken] + controller.connectionArguments)
            #expect(revokedToken.status == 1)
            #expect(revokedToken.stderr.contains("enroll_token_revoked"), "\(revokedToken.stderr)")
            let blankID = try await blank.vigil(["device", "id", "--json"])
            let fingerprint = try #require(
                (try JSONSerialization.jsonObject(with: Data(blankID.stdout.utf8)) as? [String: Any])?["ek_fingerprint"]
                    as? String)
            #expect(
                try await blank.vigil(
                    ["admin", "device", "allow", "--ek-fingerprint", fingerprint, "--group", "blank"]
                        + controller.adminArguments
                ).status == 0)
            #expect(
                try await blank.vigil(
                    ["admin", "device", "disallow", "--ek-fingerprint", fingerprint] + controller.adminArguments
                ).status == 0)
            let withdrawn = try await blank.vigil(["device", "onboard"] + controller.connectionArguments)
            #expect(withdrawn.status == 1)
            #expect(withdrawn.stderr.contains("unknown_device"), "\(withdrawn.stderr)")
            // Allowed again, it onboards without a certificate: the team's explicit decision.
            #expect(
                try await blank.vigil(
                    ["admin", "device", "allow", "--ek-fingerprint", fingerprint, "--group", "blank"]
                        + controller.adminArguments
                ).status == 0)
            let admitted = try await blank.vigil(["device", "onboard"] + controller.connectionArguments)
            #expect(admitted.status == 0, "\(admitted.stderr)")
        } catch {
            await controller.stop()
            throw error
        }
        await controller.stop()
    }

    /// Provisions the TPM, boots it as the GCE machine, and onboards it with a fresh enrollment token for
    /// `group`; returns the device id.
    static func bootAndOnboard(_ device: TestDevice, _ controller: ControllerHarness, group: String) async throws
        -> String
    {
        let provision = try await device.vigil(["tpm", "provision"])
        #expect(provision.status == 0, "\(provision.stderr)")
        let replay = try await device.vigil(["tpm", "replay-log", ControllerFixtures.eventLog])
        #expect(replay.status == 0, "\(replay.stderr)")
        let token = try await device.vigil(
            ["admin", "enroll-token", "create", "--group", group, "--expires", "10m"] + controller.adminArguments)
        #expect(token.status == 0, "\(token.stderr)")
        let onboard = try await device.vigil(
            [
                "device", "onboard", "--json", "--enroll-token",
                token.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
            ]
                + controller.connectionArguments)
        #expect(onboard.status == 0, "\(onboard.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(onboard.stdout.utf8)) as? [String: Any]
        return try #require(json?["device_id"] as? String, "\(onboard.stdout)")
    }
}
