import ArgumentParser
import Crypto
import Foundation
import Node
import Vault

/// `vigil demo`: the whole story on one machine, with real parts: a swtpm booted "as" a real machine, the
/// controller (SQLite) with a policy captured for that machine, and `vigil node run` with the network stack and
/// a workload that reads a released secret; then a tampered boot closes everything. Needs root (network
/// namespaces, nftables, tmpfs, a loop-mounted ext4 with fscrypt).
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract:
            "Swtpm + controller + node agent: attest, unlock, network, workload; then a tampered boot closes it all.")
    @Option(help: "The swtpm fixtures (state and vendor CA).") var fixtures = "swtpm-fixtures"
    @Option(help: "A real machine's event log to boot the simulator as.")
    var eventlog = "Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin"
    @Option(help: "Seconds to wait for each step.") var timeout: Double = 60
    @Flag(help: "End with a JSON summary object (the timeline still goes to stderr).") var json = false
    @Flag(
        help:
            "Before the node starts, time the same path as separate CLI commands (attest, vault unlock, fetch-secret), for scripts/benchmark-node.sh."
    )
    var measurePeer = false

    struct Summary: Encodable {
        var attested = false
        var vaultUnlocked = false
        var workloadRan = false
        var tamperDetected = false
        var pluginsStopped = false
        var vaultLocked = false
        var leftovers: [String] = []
        var startToGateMs: Double?
        var startToFirstWorkloadMs: Double?
        var tpmCommandsToGate: Int?
        var closeMs: Double?
        var peerCLIMs: Double?
    }

    func run() async throws {
        try await reportingErrors {
            var demo = try Demo(json: json, timeout: timeout, fixtures: fixtures, eventlog: eventlog)
            demo.measurePeer = measurePeer
            var summary = Summary()
            do {
                try await demo.play(&summary)
            } catch {
                demo.say("demo failed: \(error)")
                demo.cleanUp(&summary)
                if json { try printAPIJSON(summary) }
                throw ExitCode(1)
            }
            demo.cleanUp(&summary)
            if json { try printAPIJSON(summary) }
            let ok =
                summary.attested && summary.vaultUnlocked && summary.workloadRan && summary.tamperDetected
                && summary.pluginsStopped && summary.vaultLocked && summary.leftovers.isEmpty
            if !ok { throw ExitCode(1) }
        }
    }
}

/// The demo's moving parts and its narration.
struct Demo {
    let json: Bool
    let timeout: Double
    let fixtures: String
    let eventlog: String
    let vigil: String
    let work: String
    var children: [Process] = []
    var swtpm: Process?
    var node: Process?
    var controller: Process?
    var mounted = false
    var nodeMarker = ""
    var measurePeer = false
    let started = Date()

    init(json: Bool, timeout: Double, fixtures: String, eventlog: String) throws {
        self.json = json
        self.timeout = timeout
        self.fixtures = URL(fileURLWithPath: fixtures).standardizedFileURL.path
        self.eventlog = URL(fileURLWithPath: eventlog).standardizedFileURL.path
        vigil =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        guard getuid() == 0 else {
            throw ValidationError("vigil demo needs root: network namespaces, nftables, tmpfs and a loop-mounted ext4")
        }
        for tool in ["swtpm", "ip", "nft", "mkfs.ext4", "mount", "truncate"] where Demo.which(tool) == nil {
            throw ValidationError("vigil demo needs \(tool) (scripts/demo.sh installs it)")
        }
        for path in [self.fixtures + "/state", self.fixtures + "/ca", self.eventlog]
        where !FileManager.default.fileExists(atPath: path) {
            throw ValidationError(
                "\(path) is missing: run vigil demo from the repository's root, or pass --fixtures/--eventlog")
        }
        let template = NSTemporaryDirectory() + "vigil-demo-XXXXXX"
        var buffer = Array(template.utf8CString)
        guard let dir = mkdtemp(&buffer) else { throw ValidationError("mkdtemp failed") }
        work = String(cString: dir)
        chmod(work, 0o711)  // the workload runs as nobody: it must reach its secrets and the vault below
    }

    static func which(_ tool: String) -> String? {
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/bin"]
        where FileManager.default.isExecutableFile(atPath: dir + "/" + tool) {
            return dir + "/" + tool
        }
        return nil
    }

    func say(_ line: String) {
        let text = "\(Demo.clock()) [demo] \(line)\n"
        (json ? FileHandle.standardError : FileHandle.standardOutput).write(Data(text.utf8))
    }
    func heading(_ line: String) {
        (json ? FileHandle.standardError : FileHandle.standardOutput).write(Data("\n== \(line)\n".utf8))
    }
    static func clock() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "HH:mm:ss.SSS"
        return f.string(from: Date())
    }

    // MARK: Processes

    /// A process for `argv` (argv[0] a path, or a tool looked up in the system folders) with this environment plus
    /// `env`.
    static func process(_ argv: [String], env: [String: String]) -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0].hasPrefix("/") ? argv[0] : (Demo.which(argv[0]) ?? argv[0]))
        p.arguments = Array(argv.dropFirst())
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        return p
    }

    /// Runs a command to completion; throws with its output when it fails.
    @discardableResult
    func run(_ argv: [String], env: [String: String] = [:], allowFailure: Bool = false) throws -> (
        status: Int32, output: String
    ) {
        let p = Demo.process(argv, env: env)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        if p.terminationStatus != 0 && !allowFailure {
            throw ValidationError(
                "\(argv.prefix(4).joined(separator: " ")) … exited \(p.terminationStatus): \(text.suffix(1500))")
        }
        return (p.terminationStatus, text)
    }

    /// Starts a background process with its output in `log`.
    func spawn(_ argv: [String], log: String, env: [String: String] = [:]) throws -> Process {
        let p = Demo.process(argv, env: env)
        _ = FileManager.default.createFile(atPath: log, contents: nil, attributes: [.posixPermissions: 0o600])
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }

    func waitFor(_ what: String, _ condition: () throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("timed out after \(Int(timeout)) s waiting for \(what)")
    }

    static func freePort(pair: Bool) -> Int {
        for _ in 0..<100 {
            let p = Int.random(in: 20000..<60000)
            if isFree(p) && (!pair || isFree(p + 1)) { return p }
        }
        return 23456
    }
    static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        } == 0
    }

    // MARK: The story

    mutating func play(_ summary: inout DemoCommand.Summary) async throws {
        heading(
            "a software TPM (swtpm) from \(fixtures), booted as a real machine (\(URL(fileURLWithPath: eventlog).lastPathComponent))"
        )
        let port = Demo.freePort(pair: true)
        try run(["cp", "-r", fixtures + "/state", work + "/tpm"])
        swtpm = try spawn(
            [
                "swtpm", "socket", "--tpm2", "--tpmstate", "dir=\(work)/tpm", "--server",
                "type=tcp,port=\(port),bindaddr=127.0.0.1", "--ctrl", "type=tcp,port=\(port + 1),bindaddr=127.0.0.1",
                "--flags", "not-need-init,startup-clear",
            ], log: work + "/swtpm.log")
        let tcti = "swtpm:host=127.0.0.1,port=\(port)"
        let env = ["VIGIL_TCTI": tcti]
        try await waitFor("swtpm") { !Demo.isFree(port) }
        try run([vigil, "tpm", "replay-log", eventlog], env: env)
        try run([vigil, "tpm", "provision"], env: env)
        say("TPM provisioned: EK (vendor certificate), AK, device key; PCRs hold the machine's boot")

        heading("the controller (SQLite), the vendor's EK CA, and a policy captured for this machine")
        let cport = Demo.freePort(pair: false)
        let ctl = work + "/controller"
        controller = try spawn(
            [
                vigil, "controller", "serve", "--state-dir", ctl, "--listen", "127.0.0.1:\(cport)", "--log-level",
                "warning",
            ],
            log: work + "/controller.log")
        try await waitFor("the controller") {
            String(decoding: FileManager.default.contents(atPath: work + "/controller.log") ?? Data(), as: UTF8.self)
                .contains("database:")
        }
        let c = ["--controller", "https://127.0.0.1:\(cport)", "--ca", ctl + "/ca.pem"]
        let t = c + ["--token-file", ctl + "/admin-token"]
        try run([vigil, "admin", "ek-ca", "add", "swtpm-vendor", fixtures + "/ca"] + t)
        let nonce = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        try run(
            [vigil, "tpm", "evidence", "--nonce", nonce, "--eventlog", eventlog, "--out", work + "/golden.json"],
            env: env)
        let captured = try run([
            vigil, "policy", "from-evidence", "--evidence", work + "/golden.json", "--nonce", nonce, "--id",
            "golden-gce-rhel8",
        ]).output
        try captured.write(toFile: work + "/golden-gce-rhel8.yaml", atomically: true, encoding: .utf8)
        try """
        id: demo-fleet
        version: 1
        description: The boot captured on the golden machine, with an EK certificate that chains to the vendor.
        extends: golden-gce-rhel8
        identity:
          ek_ca: swtpm-vendor

        """.write(toFile: work + "/demo-fleet.yaml", atomically: true, encoding: .utf8)
        try run([vigil, "admin", "policy", "add", "demo-fleet", work + "/demo-fleet.yaml"] + t)
        try run([vigil, "admin", "policy", "assign", "demo-fleet", "--group", "edge"] + t)
        let token = try run([vigil, "admin", "enroll-token", "create", "--group", "edge", "--expires", "10m"] + t)
            .output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let idJSON = try run([vigil, "device", "id", "--json"], env: env).output
        guard let idObject = try JSONSerialization.jsonObject(with: Data(idJSON.utf8)) as? [String: Any],
            let device = idObject["device_id"] as? String
        else { throw ValidationError("vigil device id --json: \(idJSON.prefix(200))") }
        var secret = [UInt8](repeating: 0, count: 32)
        for i in secret.indices { secret[i] = UInt8.random(in: 0...255) }
        let secretFile = work + "/demo-secret"
        _ = FileManager.default.createFile(
            atPath: secretFile, contents: Data(secret), attributes: [.posixPermissions: 0o600])
        heading("[device] onboarding: EK certificate chain, AK credential activation, TPM2_Certify of the device key")
        let onboard = try run([vigil, "device", "onboard", "--enroll-token", token, "--json"] + c, env: env).output
        say("onboarded: \(onboard.trimmingCharacters(in: .whitespacesAndNewlines))")
        try run([vigil, "admin", "secret", "put", "demo-secret", "--device", device, "--file", secretFile] + t)
        unlink(secretFile)
        let expectedDigest = Demo.sha256(secret)
        say(
            "policy demo-fleet@1 (extends the captured golden-gce-rhel8) assigned to group edge; secret demo-secret put for \(device)"
        )

        heading("a vault: fscrypt on a loop-mounted ext4, its key sealed by the TPM to this boot's PCRs")
        let mnt = work + "/mnt"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        try run(["truncate", "-s", "64M", work + "/disk.img"])
        try run(["mkfs.ext4", "-q", "-F", "-O", "encrypt", work + "/disk.img"])
        try run(["mount", "-o", "loop", work + "/disk.img", mnt])
        mounted = true
        let vault = mnt + "/vault"
        try FileManager.default.createDirectory(atPath: vault, withIntermediateDirectories: true)
        try run([vigil, "vault", "create", vault], env: env)
        try run([vigil, "vault", "lock", vault], env: env)
        say("vault \(vault) created and locked")

        if measurePeer {
            // The peer: the same path as one CLI process per step (what a boot script would run).
            let begin = Date()
            try run([vigil, "device", "attest", "--eventlog", eventlog] + c, env: env)
            try run([vigil, "vault", "unlock", vault], env: env)
            try run([vigil, "device", "fetch-secret", "demo-secret", "--out", work + "/peer-secret"] + c, env: env)
            summary.peerCLIMs = Date().timeIntervalSince(begin) * 1000
            unlink(work + "/peer-secret")
            try run([vigil, "vault", "lock", vault], env: env)
            say(
                String(
                    format: "peer: attest + vault unlock + fetch-secret as three CLI commands: %.0f ms",
                    summary.peerCLIMs ?? 0))
        }

        heading("vigil node run: the core attests first; the network stack and the workload manager are plugins")
        let hostPort = Demo.freePort(pair: false)
        let manifest = """
            networks:
              - name: demo
                address: 10.77.0.2/24
                host_address: 10.77.0.1/24
                allow:
                  - {peer: 10.77.0.1/32, port: \(hostPort), protocol: tcp}
            workloads:
              - name: reader
                command: /bin/sh
                arguments:
                  - -c
                  - |
                    digest=$(sha256sum "$VIGIL_SECRETS_DIR/demo-secret" | cut -c1-64)
                    echo "$digest" > "$VIGIL_DATA_DIR/secret.sha256"
                    echo "reader: read demo-secret ($(wc -c < "$VIGIL_SECRETS_DIR/demo-secret") bytes, sha256 $digest) from $VIGIL_SECRETS_DIR"
                    echo "reader: network: $(ip -br addr show dev vgn-demo | tr -s ' ')"
                    echo "reader: wrote $VIGIL_DATA_DIR/secret.sha256 inside the vault"
                    exec sleep 3600
                secrets: [demo-secret]
                network: demo
                data: reader
                restart: on-failure
                stop_timeout: 3
                user: nobody

            """
        try manifest.write(toFile: work + "/manifest.yaml", atomically: true, encoding: .utf8)
        let state = work + "/node"
        nodeMarker = RuntimeRecord.marker(stateDirectory: state)
        let nodeLog = work + "/node.log"
        node = try spawn(
            [
                vigil, "node", "run", "--tcti", tcti, "--state-dir", state, "--manifest", work + "/manifest.yaml",
                "--vault", vault, "--eventlog", eventlog, "--interval", "300",
                "--watch-interval", "1", "--stop-deadline", "5",
            ] + c, log: nodeLog)
        var shown = 0
        func follow() -> [String] {
            let lines = String(decoding: FileManager.default.contents(atPath: nodeLog) ?? Data(), as: UTF8.self)
                .split(separator: "\n").map(String.init)
            let new = Array(lines.dropFirst(shown))
            shown = lines.count
            for l in new { (json ? FileHandle.standardError : FileHandle.standardOutput).write(Data((l + "\n").utf8)) }
            return lines
        }
        let workloadLog = state + "/logs/reader.log"
        try await waitFor("the gate to open and the workload to read its secret") {
            _ = follow()
            let status = try? NodeStatus.read(stateDirectory: state)
            let out = String(decoding: FileManager.default.contents(atPath: workloadLog) ?? Data(), as: UTF8.self)
            return status?.gateOpen == true && out.contains("wrote")
        }
        let status = try NodeStatus.read(stateDirectory: state)
        summary.attested = status.lastVerdict?.pass == true
        summary.vaultUnlocked = try SealedVaults.isUnlocked(SealedVaults.open(vault))
        let out = String(decoding: FileManager.default.contents(atPath: workloadLog) ?? Data(), as: UTF8.self)
        for line in out.split(separator: "\n") { say("workload \(line)") }
        let stored = (try? String(contentsOfFile: vault + "/reader/secret.sha256", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        summary.workloadRan = out.contains(expectedDigest) && stored == expectedDigest
        let namespaces = try run(["ip", "netns", "list"]).output
        say(
            "network namespace vigil-demo \(namespaces.contains("vigil-demo") ? "is up" : "IS MISSING"); the workload's digest of the secret \(summary.workloadRan ? "matches" : "DOES NOT MATCH") the one the security team put"
        )
        summary.startToGateMs = status.timings.startToGateMs
        summary.startToFirstWorkloadMs = status.timings.startToFirstWorkloadMs
        summary.tpmCommandsToGate = status.timings.tpmCommandsToGate
        say(
            String(
                format: "node start → gate open: %.0f ms; → first workload: %.0f ms; %d TPM commands",
                status.timings.startToGateMs ?? -1, status.timings.startToFirstWorkloadMs ?? -1,
                status.timings.tpmCommandsToGate ?? -1))

        heading("a tampered boot: an unapproved measurement in PCR 4, then the node re-attests")
        let digest = Demo.sha256(Array("rootkit-loader".utf8))
        try run(["tpm2_pcrextend", "4:sha256=\(digest)"], env: ["TPM2TOOLS_TCTI": tcti])
        say("PCR 4 extended with sha256(\"rootkit-loader\"), outside the event log")
        try run([vigil, "node", "attest-now", "--state-dir", state])
        try await waitFor("the gate to close") {
            _ = follow()
            let s = try? NodeStatus.read(stateDirectory: state)
            return s?.gateOpen == false && s?.phase == "waiting"
        }
        _ = follow()
        let closed = try NodeStatus.read(stateDirectory: state)
        let failures = closed.lastVerdict?.failures ?? []
        summary.tamperDetected = closed.lastVerdict?.pass == false && failures.contains { $0.contains("PCR 4") }
        for f in failures { say("failed rule: \(f)") }
        summary.closeMs = closed.timings.lastCloseMs
        let stillRunning = RuntimeRecord.processes(carrying: nodeMarker)
        let netnsAfter = try run(["ip", "netns", "list"]).output
        let mountsAfter = String(
            decoding: FileManager.default.contents(atPath: "/proc/self/mountinfo") ?? Data(), as: UTF8.self)
        summary.pluginsStopped =
            stillRunning.isEmpty && !netnsAfter.contains("vigil-demo") && !mountsAfter.contains(state + "/run")
        summary.vaultLocked = !(try SealedVaults.isUnlocked(SealedVaults.open(vault)))
        say(
            "workload processes left: \(stillRunning.count); namespace vigil-demo \(netnsAfter.contains("vigil-demo") ? "STILL UP" : "gone"); secrets tmpfs \(mountsAfter.contains(state + "/run") ? "STILL MOUNTED" : "unmounted"); vault \(summary.vaultLocked ? "locked" : "STILL UNLOCKED")"
        )
        if let ms = closed.timings.lastCloseMs {
            say(String(format: "gate closing (plugins stopped, secrets wiped, vault locked): %.0f ms", ms))
        }

        heading("vigil node status")
        say(try run([vigil, "node", "status", "--state-dir", state]).output.trimmingCharacters(in: .newlines))
    }

    mutating func cleanUp(_ summary: inout DemoCommand.Summary) {
        if let node, node.isRunning {
            node.terminate()  // SIGTERM: the agent closes its gate and exits
            let deadline = Date().addingTimeInterval(20)
            while node.isRunning && Date() < deadline { usleep(50_000) }
            if node.isRunning { kill(node.processIdentifier, SIGKILL) }
        }
        for p in [controller, swtpm].compactMap({ $0 }) where p.isRunning {
            p.terminate()
            let deadline = Date().addingTimeInterval(5)
            while p.isRunning && Date() < deadline { usleep(50_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        if !nodeMarker.isEmpty, !RuntimeRecord.processes(carrying: nodeMarker).isEmpty {
            summary.leftovers.append("workload processes")
        }
        if let ns = try? run(["ip", "netns", "list"]).output, ns.contains("vigil-demo") {
            summary.leftovers.append("network namespace vigil-demo")
            _ = try? run(["ip", "netns", "del", "vigil-demo"], allowFailure: true)
        }
        if mounted {
            let info = String(
                decoding: FileManager.default.contents(atPath: "/proc/self/mountinfo") ?? Data(), as: UTF8.self)
            if info.contains(work + "/node/run") { summary.leftovers.append("secret tmpfs mounts") }
            _ = try? run(["umount", work + "/mnt"], allowFailure: true)
        }
        _ = try? run(["rm", "-rf", work], allowFailure: true)
        say(
            summary.leftovers.isEmpty
                ? "clean: no process, namespace, mount or key left behind"
                : "LEFT BEHIND: \(summary.leftovers.joined(separator: ", "))")
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
