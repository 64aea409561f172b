import Controller
import ControllerProtocol
import Foundation
import Logging
import ProcessSupport
import Testing
import VigilTestSupport

/// Nothing is lost: `vigil controller serve` is killed with SIGKILL at random moments — during its first start
/// (keys and certificates being written) and while a device attests, fetches secrets and the team puts secrets —
/// and restarted each time. After every kill the audit chain verifies, every stored attestation and secret has
/// its audit entry and no entry lacks its row, and the controller serves on. Its log (at trace level) never
/// holds a token, a secret or a proof.
@Suite(.enabled(if: SoftwareTPM.canRun, "swtpm is not installed"))
struct ControllerCrashTests {
    /// A `vigil controller serve` child process on SQLite in `directory`.
    final class ServeProcess: Sendable {
        let process: ChildProcess
        let port: Int
        let log: String

        init(directory: String, round: Int) throws {
            port = try SoftwareTPM.freePortPair()
            log = directory + "/serve-\(round).log"
            process = try ChildProcess(
                ProcessRunner.vigilExecutable,
                [
                    "controller", "serve", "--state-dir", directory + "/state", "--listen", "127.0.0.1:\(port)",
                    "--log-level", "trace",
                ], standardOutput: .file(directory + "/serve-\(round).out"), standardError: .file(log))
        }

        /// Waits until it printed its banner (it is serving); false if it did not within `seconds`.
        func ready(_ directory: String, round: Int, seconds: Double = 30) async -> Bool {
            let out = directory + "/serve-\(round).out"
            for _ in 0..<Int(seconds * 20) {
                if let text = try? String(contentsOfFile: out, encoding: .utf8), text.contains("database:") {
                    return true
                }
                if !process.isRunning { return false }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return false
        }
    }

    @Test func killNineDuringFirstStartAndUnderLoadLosesNothing() async throws {
        let device = try TestDevice()
        defer { device.stop() }
        let dir = device.path("controller")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var round = 0

        // 1. Killed while it creates its CA, TLS certificate, keys and database: each restart completes it.
        for delay in [0, 5, 15, 40, 80] {
            let serve = try ServeProcess(directory: dir, round: round)
            try await Task.sleep(for: .milliseconds(delay))
            serve.process.kill(SIGKILL)
            _ = serve.process.wait(timeoutSeconds: 10)
            round += 1
        }
        var serve = try ServeProcess(directory: dir, round: round)
        #expect(await serve.ready(dir, round: round), "the controller did not start after killed first starts")
        func args(_ s: ServeProcess) -> [String] {
            ["--controller", "https://127.0.0.1:\(s.port)", "--ca", dir + "/state/ca.pem"]
        }
        func admin(_ s: ServeProcess) -> [String] { args(s) + ["--token-file", dir + "/state/admin-token"] }

        // The fleet and the device.
        #expect(try await device.vigil(["tpm", "provision"]).status == 0)
        #expect(try await device.vigil(["tpm", "replay-log", ControllerFixtures.eventLog]).status == 0)
        #expect(
            try await device.vigil(
                [
                    "admin", "ek-ca", "add", "swtpm-vendor",
                    SoftwareTPM.repositoryRoot.appendingPathComponent("swtpm-fixtures/ca").path,
                ] + admin(serve)
            ).status == 0)
        try ControllerFixtures.fleetPolicy.write(
            toFile: device.path("fleet-lab.yaml"), atomically: true, encoding: .utf8)
        for (name, text) in zip(
            ["strict-secureboot-linux.yaml", "base-hygiene.yaml"], try ControllerFixtures.fleetParents())
        {
            try text.write(toFile: device.path(name), atomically: true, encoding: .utf8)
        }
        #expect(
            try await device.vigil(
                ["admin", "policy", "add", "fleet-lab", device.path("fleet-lab.yaml")] + admin(serve)
            )
            .status == 0)
        #expect(
            try await device.vigil(["admin", "policy", "assign", "fleet-lab", "--group", "lab"] + admin(serve)).status
                == 0)
        let token = try await device.vigil(["admin", "enroll-token", "create", "--group", "lab"] + admin(serve))
        let enrollToken = token.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let onboard = try await device.vigil(
            ["device", "onboard", "--json", "--enroll-token", enrollToken] + args(serve))
        #expect(onboard.status == 0, "\(onboard.stderr)")
        let id = try #require(
            (try JSONSerialization.jsonObject(with: Data(onboard.stdout.utf8)) as? [String: Any])?["device_id"]
                as? String)
        let secret = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
        try secret.write(to: URL(fileURLWithPath: device.path("secret.bin")))

        // 2. Under load: attest, put a secret, fetch it, over and over; killed at a random moment each round.
        for _ in 0..<6 {
            let s = serve
            let load = Task {
                for _ in 0..<20 where s.process.isRunning {
                    _ = try await device.vigil(
                        ["device", "attest", "--eventlog", ControllerFixtures.eventLog] + args(s))
                    _ = try await device.vigil(
                        ["admin", "secret", "put", "disk-key", "--device", id, "--file", device.path("secret.bin")]
                            + admin(s))
                    _ = try await device.vigil(
                        ["device", "fetch-secret", "disk-key", "--out", device.path("fetched.bin")] + args(s))
                }
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 300...1500)))
            serve.process.kill(SIGKILL)
            _ = serve.process.wait(timeoutSeconds: 10)
            _ = await load.result

            // What is on disk after the kill is whole.
            try await Self.checkConsistency(dir + "/state/controller.db")
            round += 1
            serve = try ServeProcess(directory: dir, round: round)
            #expect(await serve.ready(dir, round: round), "the controller did not restart")
        }

        // 3. It serves on: a pass, the secret, an intact chain.
        let pass = try await device.vigil(
            ["device", "attest", "--eventlog", ControllerFixtures.eventLog] + args(serve))
        #expect(pass.status == 0, "\(pass.stdout)\(pass.stderr)")
        #expect(
            try await device.vigil(
                ["admin", "secret", "put", "disk-key", "--device", id, "--file", device.path("secret.bin")]
                    + admin(serve)
            ).status == 0)
        let fetched = try await device.vigil(
            ["device", "fetch-secret", "disk-key", "--out", device.path("final.bin")] + args(serve))
        #expect(fetched.status == 0, "\(fetched.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: device.path("final.bin"))) == secret)
        let audit = try await device.vigil(["admin", "audit", "verify"] + admin(serve))
        #expect(audit.status == 0, "\(audit.stdout)")
        serve.process.kill(SIGTERM)
        _ = serve.process.wait(timeoutSeconds: 10)

        // 4. No token, secret or proof in any log line the controller wrote.
        let adminToken = try String(contentsOfFile: dir + "/state/admin-token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var logs = ""
        for r in 0...round {
            logs += (try? String(contentsOfFile: dir + "/serve-\(r).log", encoding: .utf8)) ?? ""
            logs += (try? String(contentsOfFile: dir + "/serve-\(r).out", encoding: .utf8)) ?? ""
        }
        #expect(!logs.isEmpty)
        for needle in [
            adminToken, enrollToken, secret.base64EncodedString(), secret.map { String(format: "%02x", $0) }.joined(),
        ] {
            #expect(!logs.contains(needle), "a secret value is in the controller's log")
        }
        #expect(!logs.contains("vat_") && !logs.contains("vet_"), "a token is in the controller's log")
    }

    /// Every attestation row has its audit entry and the reverse; every secret version likewise; the chain holds.
    static func checkConsistency(_ path: String) async throws {
        var logger = Logger(label: "crash-check")
        logger.logLevel = .critical
        let db = try await SQLiteBackend.open(path: path, logger: logger)
        let counts = try await db.transaction { tx throws(ControllerError) in
            func n(_ sql: String) async throws(ControllerError) -> Int64 {
                try await tx.first(sql, [])?.requiredInteger("n") ?? -1
            }
            return (
                try await n("SELECT COUNT(*) AS n FROM attestations"),
                try await n("SELECT COUNT(*) AS n FROM audit WHERE action = 'attest'"),
                try await n("SELECT COUNT(*) AS n FROM secrets"),
                try await n("SELECT COUNT(*) AS n FROM audit WHERE action = 'secret.put' AND outcome = 'ok'")
            )
        }
        let (report, _) = try await AuditLog.verify(db)
        await db.close()
        #expect(counts.0 == counts.1, "attestations \(counts.0) vs audit entries \(counts.1)")
        #expect(counts.2 == counts.3, "secret versions \(counts.2) vs audit entries \(counts.3)")
        #expect(report.intact, "\(report)")
    }
}
