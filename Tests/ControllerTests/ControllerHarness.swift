import Attest
import AttestTPM
import Controller
import ControllerProtocol
import Foundation
import Logging
import ProcessSupport
import Synchronization
import VigilTestSupport

/// A controller served in-process over TLS on a free port, with its state in a temporary folder and its
/// database on the backend under test, plus a clock the test can move. Device-side steps run the real
/// `vigil` binary against private swtpm simulators.
final class ControllerHarness: Sendable {
    /// The databases the suite runs on. PostgreSQL when the test script started a cluster
    /// (`VIGIL_TEST_POSTGRES`); with CI=true its absence fails the run instead of skipping.
    enum Database: String, CaseIterable, Sendable, CustomStringConvertible {
        case sqlite, postgres
        var description: String { rawValue }

        static var available: [Database] {
            var list: [Database] = [.sqlite]
            if ProcessInfo.processInfo.environment["VIGIL_TEST_POSTGRES"] != nil || SoftwareTPM.isCI {
                list.append(.postgres)
            }
            return list
        }
    }

    let directory: URL
    let controller: Controller
    let url: String
    let caPath: String
    let adminTokenPath: String
    let resultKeyPath: String
    let backend: any SQLBackend
    private let offset = ClockOffset()
    private let server: Mutex<Task<Void, any Error>?>
    let port: Int
    private let logger: Logger
    /// The PostgreSQL database's URL, for another instance to open (nil on SQLite).
    let databaseURL: String?
    /// Whether ``stop()`` removes the state folder (not for a second instance sharing it).
    private let ownsDirectory: Bool

    static func start(_ database: Database = .sqlite, configuration: Controller.Configuration = .init()) async throws
        -> ControllerHarness
    {
        let directory = try ProcessRunner.temporaryDirectory()
        let state = try ControllerState.loadOrCreate(directory: directory.appendingPathComponent("state"))
        var logger = Logger(label: "vigil.controller.test")
        logger.logLevel = .critical  // refusals are the tests' subject; they say what they expect
        let backend: any SQLBackend
        var databaseURL: String?
        switch database {
        case .sqlite:
            backend = try await SQLiteBackend.open(
                path: directory.appendingPathComponent("controller.db").path, logger: logger)
        case .postgres:
            let url = try await PostgresTestDatabase.create(logger: logger)
            backend = try await PostgresBackend.open(url: url, logger: logger)
            databaseURL = url
        }
        return try await ControllerHarness(
            directory: directory, state: state, backend: backend, logger: logger, databaseURL: databaseURL,
            configuration: configuration, ownsDirectory: true)
    }

    /// Another controller instance on the same PostgreSQL database and the same state folder (the shared signing
    /// identity), with its own connection pool, served on its own port: what a second `vigil controller serve
    /// --db postgres://…` with a copy of the state folder is.
    func anotherInstance() async throws -> ControllerHarness {
        guard let databaseURL else { throw HarnessError(description: "another instance needs PostgreSQL") }
        let state = try ControllerState.loadOrCreate(directory: directory.appendingPathComponent("state"))
        let backend = try await PostgresBackend.open(url: databaseURL, logger: logger)
        return try await ControllerHarness(
            directory: directory, state: state, backend: backend, logger: logger, databaseURL: databaseURL,
            configuration: controller.configuration, ownsDirectory: false)
    }

    private init(
        directory: URL, state: ControllerState, backend: any SQLBackend, logger: Logger, databaseURL: String?,
        configuration: Controller.Configuration, ownsDirectory: Bool
    ) async throws {
        self.directory = directory
        self.backend = backend
        self.databaseURL = databaseURL
        self.ownsDirectory = ownsDirectory
        let offset = self.offset
        let controller = Controller(
            backend: backend, state: state, configuration: configuration, logger: logger,
            clock: { Date().addingTimeInterval(offset.value.withLock { $0 }) })
        self.controller = controller
        self.logger = logger
        _ = try await controller.bootstrap()
        let (task, port) = await Self.serve(controller, port: 0, logger: logger)
        server = Mutex(task)
        self.port = port
        url = "https://127.0.0.1:\(port)"
        caPath = directory.appendingPathComponent("state/ca.pem").path
        adminTokenPath = directory.appendingPathComponent("state/admin-token").path
        resultKeyPath = directory.appendingPathComponent("state/result-signing.pub.pem").path
    }

    static func serve(_ controller: Controller, port: Int, logger: Logger) async -> (Task<Void, any Error>, Int) {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task {
            defer { continuation.finish() }
            try await ControllerServer.serve(
                controller, host: "127.0.0.1", port: port, logger: logger, metrics: ControllerMetrics()
            ) { port in
                continuation.yield(port)
            }
        }
        var bound = 0
        for await p in ports {
            bound = p
            break
        }
        return (task, bound)
    }

    /// Stops answering (the state and database stay): a controller that is down.
    func stopServing() async {
        let task = server.withLock { task in
            defer { task = nil }
            return task
        }
        task?.cancel()
        _ = await task?.result
    }

    /// Answers again on the same port, with the same state and database: a controller restarted.
    func serveAgain() async throws {
        for _ in 0..<50 {
            let (task, bound) = await Self.serve(controller, port: port, logger: logger)
            if bound == port {
                server.withLock { $0 = task }
                return
            }
            task.cancel()
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError(description: "the controller could not listen on port \(port) again")
    }

    /// Moves the controller's clock forward.
    func advanceClock(by seconds: TimeInterval) { offset.value.withLock { $0 += seconds } }

    /// The bootstrap admin, for calling ``Controller`` directly.
    func admin() async throws -> Controller.AdminCaller {
        let token = try String(contentsOfFile: adminTokenPath, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return try await controller.authenticateAdmin(authorization: "Bearer \(token)", requires: .admin)
    }

    /// The fleet set-up most tests share: the swtpm vendor's EK CA as bundle `swtpm-vendor`, and policy
    /// `fleet-lab` (the strict Secure Boot policy requiring EK certificates that chain to that bundle) assigned to
    /// `group`.
    func prepareFleet(group: String = "lab") async throws {
        let admin = try await admin()
        let folder = SoftwareTPM.repositoryRoot.appendingPathComponent("swtpm-fixtures/ca")
        let pems = try ["root.pem", "intermediate.pem"].map {
            try String(contentsOf: folder.appendingPathComponent($0), encoding: .utf8)
        }
        _ = try await controller.putEKCABundle(
            admin, name: EKCABundleName("swtpm-vendor")!, Admin.EKCABundleUpload(certificates: pems))
        _ = try await controller.addPolicy(
            admin, name: PolicyName("fleet-lab")!,
            Admin.PolicyUpload(yaml: ControllerFixtures.fleetPolicy, parents: try ControllerFixtures.fleetParents()))
        _ = try await controller.assignPolicy(
            admin, name: PolicyName("fleet-lab")!, Admin.PolicyAssignment(device: nil, group: group, version: nil))
    }

    /// `--controller URL --ca FILE`.
    var connectionArguments: [String] { ["--controller", url, "--ca", caPath] }

    /// `--controller URL --ca FILE --token-file F`.
    var adminArguments: [String] { connectionArguments + ["--token-file", adminTokenPath] }

    func stop() async {
        await stopServing()
        await backend.close()
        if ownsDirectory { try? FileManager.default.removeItem(at: directory) }
    }
}

/// A harness that could not do what a test asked.
struct HarnessError: Error, CustomStringConvertible {
    let description: String
}

/// The test's shift of the controller's clock.
final class ClockOffset: Sendable {
    let value = Mutex<TimeInterval>(0)
}

/// A device under test: a private swtpm (from the committed fixture, or a blank TPM that manufactures fresh
/// seeds: another EK, another AK) and the `vigil` binary pointed at it.
final class TestDevice: Sendable {
    let simulator: SoftwareTPM
    let directory: URL

    init(fresh: Bool = false) throws {
        directory = try ProcessRunner.temporaryDirectory()
        if fresh {
            let blank = directory.appendingPathComponent("blank-state")
            try FileManager.default.createDirectory(at: blank, withIntermediateDirectories: true)
            simulator = try SoftwareTPM(state: blank)
        } else {
            simulator = try SoftwareTPM()
        }
    }

    /// Runs `vigil args…` against this TPM, off Swift's cooperative threads (the controller under test
    /// answers on them).
    func vigil(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessResult {
        let tcti = simulator.tctiString
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(
                    with: Result {
                        try ProcessRunner.run(
                            ProcessRunner.vigilExecutable, arguments,
                            environment: environment.merging(["VIGIL_TCTI": tcti, "TSS2_LOG": "all+none"]) { $1 })
                    })
            }
        }
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// The TPM actor (for steps the CLI does in one go, which a test splits to forge or delay one of them).
    func open() async throws -> TPM { try await simulator.open() }

    func stop() {
        simulator.stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// The GCE RHEL 8 Secure Boot log the demo boots the simulator with (origin: Tests/AttestTests/Fixtures).
enum ControllerFixtures {
    static let eventLog = SoftwareTPM.repositoryRoot.appendingPathComponent(
        "Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin"
    ).path
    static let strictPolicy = SoftwareTPM.repositoryRoot.appendingPathComponent(
        "policies/strict-secureboot-linux.yaml"
    ).path

    /// The strict policy with the EK chain required to the `swtpm-vendor` bundle (as the demo writes it).
    static let fleetPolicy = """
        id: fleet-lab
        version: 1
        description: The strict Secure Boot policy, with EK certificates that chain to the vendor bundle.
        extends: strict-secureboot-linux
        identity:
          ek_ca: swtpm-vendor

        """

    /// The documents `fleetPolicy` extends.
    static func fleetParents() throws -> [String] {
        try ["policies/strict-secureboot-linux.yaml", "policies/base-hygiene.yaml"].map {
            try String(contentsOf: SoftwareTPM.repositoryRoot.appendingPathComponent($0), encoding: .utf8)
        }
    }
}
