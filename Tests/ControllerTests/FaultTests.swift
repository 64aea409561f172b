import Controller
import ControllerProtocol
import Foundation
import Logging
import ProcessSupport
import Testing
import VigilTestSupport

/// Faults under load (issue 12): `vigil loadtest` (simulated devices, the real API) runs against `vigil controller
/// serve` processes while one is killed with SIGKILL, or while PostgreSQL restarts. Afterwards every signed result
/// the load generator received is in the database, every attestation has its audit entry and the chain verifies;
/// during a database restart requests fail with 503 and recover without restarting the controller.
@Suite(.serialized, .enabled(if: SoftwareTPM.canRun, "swtpm is not installed"))
struct FaultTests {
    /// `vigil controller serve` as a child process.
    final class Serve: Sendable {
        let process: ChildProcess
        let port: Int
        let out: String
        var url: String { "https://127.0.0.1:\(port)" }

        init(state: String, db: String?, log: String) throws {
            port = try SoftwareTPM.freePortPair()
            out = log + ".out"
            var arguments = [
                "controller", "serve", "--state-dir", state, "--listen", "127.0.0.1:\(port)", "--log-level", "error",
                // The simulated devices attest several times a second each: far above a real device's limits.
                "--device-nonces-per-minute", "100000", "--evidence-burst", "100000",
                // A request caught in the database's restart is answered within 5 s, whatever it waits for.
                "--request-deadline", "5",
            ]
            if let db { arguments += ["--db", db] }
            process = try ChildProcess(
                ProcessRunner.vigilExecutable, arguments, standardOutput: .file(out), standardError: .file(log))
        }

        /// SIGTERM, and SIGKILL if it has not exited within 10 s (no controller outlives its test).
        func stop() {
            process.kill(SIGTERM)
            if process.wait(timeoutSeconds: 10) == nil {
                process.kill(SIGKILL)
                _ = process.wait(timeoutSeconds: 10)
            }
        }

        /// Waits for its banner; false if it did not come within 60 s.
        func ready() async -> Bool {
            for _ in 0..<1200 {
                if let text = try? String(contentsOfFile: out, encoding: .utf8), text.contains("database:") {
                    return true
                }
                if !process.isRunning { return false }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return false
        }
    }

    /// A `vigil loadtest --json --results-out` child process.
    final class LoadTest: Sendable {
        let process: ChildProcess
        let results: String
        let report: String

        init(_ urls: [String], state: String, directory: String, devices: Int, seconds: Int) throws {
            results = directory + "/results-\(UUID().uuidString).txt"
            report = results + ".json"
            process = try ChildProcess(
                ProcessRunner.vigilExecutable,
                [
                    "loadtest", "--controller", urls.joined(separator: ","), "--ca", state + "/ca.pem",
                    "--token-file", state + "/admin-token", "--devices", String(devices), "--duration", String(seconds),
                    "--concurrency", "8", "--eventlog", ControllerFixtures.eventLog, "--json", "--results-out", results,
                ], standardOutput: .file(report), standardError: .file(report + ".err"))
        }

        /// The number of results received so far.
        var received: Int {
            ((try? String(contentsOfFile: results, encoding: .utf8)) ?? "").split(separator: "\n").count
        }

        /// Waits until at least `count` results were received (the run is under way); false after 120 s.
        func waitForResults(_ count: Int) async -> Bool {
            for _ in 0..<2400 {
                if received >= count { return true }
                if !process.isRunning { return false }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return false
        }

        /// Waits for the end and returns the JSON report.
        func finish() async throws -> [String: Any] {
            for _ in 0..<2400 where process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
            let text = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
            let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            let errors = (try? String(contentsOfFile: report + ".err", encoding: .utf8)) ?? ""
            return try #require(json, "no report: \(text)\(errors)")
        }

        /// Every result received, as the controller signed it.
        var tokens: [String] {
            ((try? String(contentsOfFile: results, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
    }

    /// Assigns the load test's group a policy: the strict Secure Boot policy, every rule of it, except that the
    /// simulated devices have no EK certificate.
    static func preparePolicy(_ serve: Serve, state: String, directory: String) async throws {
        let yaml = """
            id: bench
            version: 1
            extends: strict-secureboot-linux
            identity:
              ek_certificate: optional
            """
        try yaml.write(toFile: directory + "/bench.yaml", atomically: true, encoding: .utf8)
        for (name, text) in zip(
            ["strict-secureboot-linux.yaml", "base-hygiene.yaml"], try ControllerFixtures.fleetParents())
        {
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
        let admin = ["--controller", serve.url, "--ca", state + "/ca.pem", "--token-file", state + "/admin-token"]
        for command in [
            ["admin", "policy", "add", "bench", directory + "/bench.yaml"],
            ["admin", "policy", "assign", "bench", "--group", "loadtest"],
        ] {
            let r = try ProcessRunner.run(ProcessRunner.vigilExecutable, command + admin)
            #expect(r.status == 0, "\(command): \(r.stderr)")
        }
    }

    /// Every received result is a stored attestation; every attestation has its audit entry and the chain holds.
    static func checkNothingLost(_ backend: any SQLBackend, tokens: [String]) async throws {
        var missing = 0
        for token in tokens {
            let found = try await backend.transaction { tx throws(ControllerError) in
                try await tx.first("SELECT id FROM attestations WHERE result_token = ?", [.text(token)]) != nil
            }
            if !found { missing += 1 }
        }
        #expect(missing == 0, "\(missing) of \(tokens.count) results the load generator received are not stored")
        let counts = try await backend.transaction { tx throws(ControllerError) in
            (
                try await tx.first("SELECT COUNT(*) AS n FROM attestations", [])?.requiredInteger("n") ?? -1,
                try await tx.first("SELECT COUNT(*) AS n FROM audit WHERE action = 'attest'", [])?
                    .requiredInteger("n") ?? -1
            )
        }
        #expect(counts.0 == counts.1, "attestations \(counts.0) vs audit entries \(counts.1)")
        let (report, _) = try await AuditLog.verify(backend)
        #expect(report.intact, "\(report)")
    }

    static var quietLogger: Logger {
        var logger = Logger(label: "vigil.fault-test")
        logger.logLevel = .critical
        return logger
    }

    @Test func aSQLiteControllerKilledDuringALoadRunLosesNoVerdictAndServesOn() async throws {
        let directory = try ProcessRunner.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = directory + "/state"
        var serve = try Serve(state: state, db: nil, log: directory + "/serve-0.log")
        #expect(await serve.ready(), "the controller did not start")
        try await Self.preparePolicy(serve, state: state, directory: directory)

        let load = try LoadTest([serve.url], state: state, directory: directory, devices: 16, seconds: 6)
        #expect(await load.waitForResults(20), "no results before the kill")
        serve.process.kill(SIGKILL)
        _ = serve.process.wait(timeoutSeconds: 10)
        let report = try await load.finish()
        let tokens = load.tokens
        #expect(tokens.count >= 20)
        // Requests after the kill failed to connect; none was answered wrongly.
        let errors = report["errors"] as? [String: Int] ?? [:]
        #expect(Set(errors.keys).isSubset(of: ["connection_failed"]), "\(errors)")

        let backend = try await SQLiteBackend.open(path: state + "/controller.db", logger: Self.quietLogger)
        try await Self.checkNothingLost(backend, tokens: tokens)
        await backend.close()

        // Restarted, it serves on.
        serve = try Serve(state: state, db: nil, log: directory + "/serve-1.log")
        #expect(await serve.ready(), "the controller did not restart")
        let again = try LoadTest([serve.url], state: state, directory: directory, devices: 4, seconds: 2)
        let after = try await again.finish()
        #expect((after["attestations"] as? Int ?? 0) > 0, "\(after)")
        #expect((after["errors"] as? [String: Int] ?? [:]).isEmpty, "\(after)")
        serve.stop()
    }

    @Test(.enabled(if: ControllerHarness.Database.available.contains(.postgres), "no PostgreSQL"))
    func oneOfTwoInstancesKilledDuringALoadRunLosesNothingAndTheOtherServesOn() async throws {
        let directory = try ProcessRunner.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = try await PostgresTestDatabase.create(logger: Self.quietLogger)
        // One signing identity: the second instance runs on a copy of the first's state folder.
        let first = try Serve(state: directory + "/a", db: database, log: directory + "/a.log")
        #expect(await first.ready(), "the first instance did not start")
        try FileManager.default.copyItem(atPath: directory + "/a", toPath: directory + "/b")
        let second = try Serve(state: directory + "/b", db: database, log: directory + "/b.log")
        #expect(await second.ready(), "the second instance did not start")
        try await Self.preparePolicy(first, state: directory + "/a", directory: directory)

        let load = try LoadTest(
            [first.url, second.url], state: directory + "/a", directory: directory, devices: 16, seconds: 6)
        #expect(await load.waitForResults(20), "no results before the kill")
        second.process.kill(SIGKILL)
        _ = second.process.wait(timeoutSeconds: 10)
        let report = try await load.finish()
        let tokens = load.tokens
        let timeline = report["timeline"] as? [[Int]] ?? []
        // The surviving instance goes on passing devices after the kill (the last whole second of the run).
        #expect((timeline.dropLast().last?.first ?? 0) > 0, "\(timeline)")
        let errors = report["errors"] as? [String: Int] ?? [:]
        #expect(Set(errors.keys).isSubset(of: ["connection_failed"]), "\(errors)")

        let backend = try await PostgresBackend.open(url: database, logger: Self.quietLogger)
        try await Self.checkNothingLost(backend, tokens: tokens)
        await backend.close()
        first.stop()
    }

    @Test(.enabled(if: SoftwareTPM.isCI || getuid() == 0, "a private PostgreSQL cluster needs root (CI runs as root)"))
    func aPostgreSQLRestartFailsRequestsWith503AndTheControllerRecoversByItself() async throws {
        let directory = try ProcessRunner.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A cluster of its own: restarting the suite's shared one would fail other tests running meanwhile.
        let cluster = try PrivateCluster.start()
        defer { cluster.stop() }
        let database = try await PostgresTestDatabase.create(base: cluster.url, logger: Self.quietLogger)
        let serve = try Serve(state: directory + "/state", db: database, log: directory + "/serve.log")
        #expect(await serve.ready(), "the controller did not start")
        try await Self.preparePolicy(serve, state: directory + "/state", directory: directory)

        let load = try LoadTest(
            [serve.url], state: directory + "/state", directory: directory, devices: 16, seconds: 10)
        #expect(await load.waitForResults(20), "no results before the restart")
        let restart = try cluster.restart()
        #expect(restart.status == 0, "\(restart.stdout)\(restart.stderr)")
        let report = try await load.finish()
        #expect(serve.process.isRunning, "the controller did not survive its database's restart")
        let errors = report["errors"] as? [String: Int] ?? [:]
        // While the database was down: 503 database_unavailable; never a wrong answer.
        #expect(Set(errors.keys).isSubset(of: ["database_unavailable", "request_timeout"]), "\(errors)")
        let timeline = report["timeline"] as? [[Int]] ?? []
        #expect((timeline.dropLast().last?.first ?? 0) > 0, "no pass after the restart: \(timeline)")
        let backend = try await PostgresBackend.open(url: database, logger: Self.quietLogger)
        try await Self.checkNothingLost(backend, tokens: load.tokens)
        await backend.close()
        serve.stop()
    }
}

/// A PostgreSQL cluster of one test's own (scripts/postgres.sh's functions, run as the postgres user).
struct PrivateCluster {
    let bin: String
    let directory: String
    let url: String

    static func start() throws -> PrivateCluster {
        let script = SoftwareTPM.repositoryRoot.appendingPathComponent("scripts/postgres.sh").path
        let r = try ProcessRunner.run(
            "bash",
            [
                "-c",
                "source '\(script)' && vigil_postgres_start >/dev/null && echo \"$VIGIL_PG_BIN $VIGIL_PG_DIR $VIGIL_TEST_POSTGRES\"",
            ])
        let parts = r.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard r.status == 0, parts.count == 3 else {
            throw HarnessError(description: "cannot start a private PostgreSQL: \(r.stdout)\(r.stderr)")
        }
        return PrivateCluster(bin: parts[0], directory: parts[1], url: parts[2])
    }

    private var asPostgres: [String] { getuid() == 0 ? ["runuser", "-u", "postgres", "--"] : [] }

    /// `pg_ctl restart -m fast`: connections are cut, the server comes back with the same options.
    func restart() throws -> ProcessResult {
        let command =
            asPostgres + [
                bin + "/pg_ctl", "-D", directory + "/data", "-l", directory + "/log", "-m", "fast", "-w", "restart",
            ]
        return try ProcessRunner.run(command[0], Array(command.dropFirst()), timeoutSeconds: 60)
    }

    func stop() {
        let command = asPostgres + [bin + "/pg_ctl", "-D", directory + "/data", "-m", "immediate", "stop"]
        _ = try? ProcessRunner.run(command[0], Array(command.dropFirst()), timeoutSeconds: 60)
        try? FileManager.default.removeItem(atPath: directory)
    }
}
