import Attest
import AttestTPM
import Controller
import ControllerProtocol
import Crypto
import Foundation
import Node
import ProcessSupport
import Testing
import Vault
import VigilTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// `vigil node run` against real parts: a swtpm booted as a real machine, the controller in-process over TLS,
/// an fscrypt vault on a loop-mounted ext4, network namespaces with nftables, workloads as child processes. Each
/// test builds the fault it names from the real thing (a PCR extended in the TPM, swtpm reset, the controller
/// stopped, a revocation, SIGKILL) and checks what the node did about it, from the outside (processes, namespaces,
/// mounts, the vault's key, the controller's device record).
@Suite(
    .serialized,
    .enabled(if: SoftwareTPM.canRun, "swtpm is not installed"),
    .enabled(if: geteuid() == 0 || SoftwareTPM.isCI, "needs root: network namespaces, nftables, tmpfs, loop mounts"))
struct NodeAgentTests {
    /// A device onboarded at `controller` (fleet policy), with secret `app-token` put for it.
    static func prepare(_ controller: ControllerHarness, _ device: TestDevice) async throws -> (
        id: String, secret: [UInt8]
    ) {
        try await controller.prepareFleet()
        let id = try await ControllerEndToEndTests.bootAndOnboard(device, controller, group: "lab")
        let secret = Array(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        let file = device.path("app-token")
        try Data(secret).write(to: URL(fileURLWithPath: file))
        let put = try await device.vigil(
            ["admin", "secret", "put", "app-token", "--device", id, "--file", file] + controller.adminArguments)
        #expect(put.status == 0, "\(put.stderr)")
        return (id, secret)
    }

    /// A unique network (name and /24) per test, so nothing collides with another run on the host.
    static func network() -> (name: String, inner: String, host: String) {
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        let name = "t" + String((0..<6).map { _ in letters[Int.random(in: 0..<letters.count)] })
        let a = Int.random(in: 100...199)
        let b = Int.random(in: 1...250)
        return (name, "10.\(a).\(b).2", "10.\(a).\(b).1")
    }

    @Test func theGateOpensOnlyOnAPassAndATamperedBootClosesEverything() async throws {
        let controller = try await ControllerHarness.start(.sqlite)
        let device = try TestDevice()
        let fs = try Ext4Image()
        let net = Self.network()
        let allowed = try Listener()
        let blocked = try Listener()
        var node: NodeRun?
        defer {
            node?.stop()
            device.stop()
        }
        do {
            try #require(fs.mounted, "\(fs.failure ?? "")")
            let (id, secret) = try await Self.prepare(controller, device)
            let vault = fs.mountPoint + "/vault"
            try FileManager.default.createDirectory(atPath: vault, withIntermediateDirectories: false)
            #expect(try await device.vigil(["vault", "create", vault]).status == 0)
            #expect(try await device.vigil(["vault", "lock", vault]).status == 0)
            let manifest = """
                networks:
                  - name: \(net.name)
                    address: \(net.inner)/24
                    host_address: \(net.host)/24
                    allow:
                      - {peer: \(net.host), port: \(allowed.port), protocol: tcp}
                workloads:
                  - name: probe
                    command: /bin/bash
                    arguments:
                      - -c
                      - |
                        echo "digest $(sha256sum < "$VIGIL_SECRETS_DIR/app-token" | cut -c1-64)"
                        echo "mode $(stat -c %a "$VIGIL_SECRETS_DIR/app-token")"
                        echo "fs $(stat -f -c %T "$VIGIL_SECRETS_DIR")"
                        test -s "$VIGIL_ATTESTATION_RESULT" && echo "result present"
                        echo written > "$VIGIL_DATA_DIR/data.txt" && echo "data written"
                        (exec 3<>/dev/tcp/\(net.host)/\(allowed.port)) && echo "allowed port: connected" || echo "allowed port: refused"
                        timeout 2 bash -c '(exec 3<>/dev/tcp/\(net.host)/\(blocked.port))' && echo "blocked port: connected" || echo "blocked port: refused"
                        nft list ruleset > /dev/null 2>&1 && echo "nft: allowed" || echo "nft: refused"
                        echo "uid $(id -u)"
                        echo ready
                        exec sleep 600
                    secrets: [app-token]
                    network: \(net.name)
                    data: probe
                    user: nobody
                """
            node = try NodeRun.start(device, controller, manifest: manifest, vaults: [vault])
            let open = try await node!.waitFor("the gate to open") { $0.gateOpen }
            #expect(open.lastVerdict?.pass == true)
            #expect(open.lastVerdict?.policy == "fleet-lab@1")
            let out = try await node!.waitForWorkloadOutput("probe", containing: "ready")
            let digest = SHA256.hash(data: secret).map { String(format: "%02x", $0) }.joined()
            #expect(out.contains("digest \(digest)"), "\(out)")
            #expect(out.contains("mode 400"), "\(out)")
            #expect(out.contains("nft: refused"), "no capabilities: it cannot touch its namespace's rules\n\(out)")
            #expect(out.contains("uid 65534"), "\(out)")
            #expect(out.contains("fs tmpfs"), "\(out)")
            #expect(out.contains("result present"), "\(out)")
            #expect(out.contains("data written"), "\(out)")
            #expect(out.contains("allowed port: connected"), "\(out)")
            #expect(out.contains("blocked port: refused"), "\(out)")
            #expect(try String(contentsOfFile: vault + "/probe/data.txt", encoding: .utf8) == "written\n")
            #expect(try SealedVaults.isUnlocked(SealedVaults.open(vault)))
            #expect(NodeRun.namespaces().contains("vigil-\(net.name)"))
            #expect(!RuntimeRecord.processes(carrying: node!.marker).isEmpty)
            // The controller's device record carries the node's own account.
            let detail = try await controller.controller.showDevice(try await controller.admin(), DeviceID(id)!)
            #expect(detail.node?.gateOpen == true, "\(String(describing: detail.node))")

            // A tampered boot: one unapproved measurement in PCR 4, then attest now.
            let tpm = try await device.open()
            try await tpm.pcrExtend(4, digests: [.sha256: Array(SHA256.hash(data: Array("rootkit".utf8)))])
            _ = consume tpm
            #expect(try await node!.attestNow().status == 0)
            let closed = try await node!.waitFor("the gate to close") { !$0.gateOpen && $0.phase == "waiting" }
            #expect(closed.lastVerdict?.pass == false)
            #expect(
                closed.lastVerdict?.failures.contains { $0.contains("PCR 4") } == true,
                "\(String(describing: closed.lastVerdict))")
            // Two paths close the gate on this verdict and either may be first: the failed attestation itself, or
            // the node report sent meanwhile, whose answer says the latest verdict is no longer a pass.
            #expect(Self.closedOnTheFailedVerdict(closed.reason), "\(closed.reason)")
            #expect(RuntimeRecord.processes(carrying: node!.marker).isEmpty)
            #expect(!NodeRun.namespaces().contains("vigil-\(net.name)"))
            #expect(!NodeRun.mounts().contains(node!.state + "/run"))
            #expect(!(try SealedVaults.isUnlocked(SealedVaults.open(vault))))
            #expect(!FileManager.default.fileExists(atPath: vault + "/probe/data.txt"))  // encrypted names now
            // The node tells the controller at once (not only at its next watch).
            var recorded: Admin.DeviceDetail?
            for _ in 0..<30 {
                recorded = try await controller.controller.showDevice(try await controller.admin(), DeviceID(id)!)
                if recorded?.node?.gateOpen == false { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(recorded?.node?.gateOpen == false, "\(String(describing: recorded?.node))")
            #expect(
                Self.closedOnTheFailedVerdict(recorded?.node?.reason ?? ""), "\(String(describing: recorded?.node))")
        } catch {
            Issue.record("\(error)\n\(node?.log ?? "")")
        }
        node?.stop()
        await controller.stop()
    }

    /// Whether a gate-closing reason is one of the two this failed verdict can give.
    static func closedOnTheFailedVerdict(_ reason: String) -> Bool {
        reason.contains("attestation failed")
            || reason.contains("latest verdict for this device is not an unexpired pass")
    }

    @Test func aControllerDownAtBootStartsNothingUntilItComesBack() async throws {
        let controller = try await ControllerHarness.start(.sqlite)
        let device = try TestDevice()
        var node: NodeRun?
        defer {
            node?.stop()
            device.stop()
        }
        do {
            _ = try await Self.prepare(controller, device)
            await controller.stopServing()
            node = try NodeRun.start(
                device, controller, manifest: Self.sleeper, vaults: [], extra: ["--backoff-max", "2"])
            // Waited for, not slept on: on a loaded machine the first connection attempt can come late.
            let down = try await node!.waitFor("the first attempt to reach the controller to fail", seconds: 30) {
                $0.reason.contains("cannot connect")
            }
            #expect(!down.gateOpen)
            #expect(down.phase == "waiting" || down.phase == "connecting", "\(down.phase)")
            #expect(down.reason.contains("cannot connect"), "\(down.reason)\n\(node!.log)")
            #expect(RuntimeRecord.processes(carrying: node!.marker).isEmpty)
            #expect(!FileManager.default.fileExists(atPath: node!.state + "/logs/sleeper.log"))

            try await controller.serveAgain()
            _ = try await node!.waitFor("the gate to open once the controller is back") { $0.gateOpen }
            #expect(!RuntimeRecord.processes(carrying: node!.marker).isEmpty)

            // Restarted mid-run: the node notices nothing until it attests; then it attests against the new
            // instance (same database: nonces and the previous quote carry over) and stays open.
            await controller.stopServing()
            try await controller.serveAgain()
            #expect(try await node!.attestNow().status == 0)
            // (A watch that found it down re-attests at once; the gate is open again as soon as it answers.)
            _ = try await node!.waitFor("the gate open on the restarted controller", seconds: 15) {
                $0.gateOpen && $0.lastVerdict?.pass == true && $0.phase == "open"
            }

            // Down while the gate is open, with no offline grace in the policy: the next attestation closes it.
            await controller.stopServing()
            #expect(try await node!.attestNow().status == 0)
            let cut = try await node!.waitFor("the gate to close") { !$0.gateOpen }
            #expect(cut.reason.contains("cannot attest"), "\(cut.reason)")
            #expect(RuntimeRecord.processes(carrying: node!.marker).isEmpty)
            try await controller.serveAgain()
            _ = try await node!.waitFor("the gate to reopen") { $0.gateOpen }
        } catch {
            Issue.record("\(error)\n\(node?.log ?? "")")
        }
        node?.stop()
        await controller.stop()
    }

    @Test func aWorkloadThatIgnoresSIGTERMIsKilledAtItsDeadline() async throws {
        let controller = try await ControllerHarness.start(.sqlite)
        let device = try TestDevice()
        var node: NodeRun?
        defer {
            node?.stop()
            device.stop()
        }
        do {
            _ = try await Self.prepare(controller, device)
            let manifest = """
                workloads:
                  - name: stubborn
                    command: /bin/bash
                    arguments: [-c, "trap '' TERM; echo ready; while :; do sleep 0.2; done"]
                    stop_timeout: 2
                  - name: restarter
                    command: /bin/bash
                    arguments: [-c, "echo run >> \\"$VIGIL_SECRETS_DIR/../runs\\" 2>/dev/null; exit 3"]
                    restart: on-failure
                    max_restarts: 2
                """
            node = try NodeRun.start(device, controller, manifest: manifest, vaults: [])
            _ = try await node!.waitFor("the gate to open") { $0.gateOpen }
            _ = try await node!.waitForWorkloadOutput("stubborn", containing: "ready")
            let workloads = try await node!.waitFor("the restart limit") {
                ($0.plugins["workloads"] ?? "").contains("restart limit 2 reached")
            }
            #expect(
                workloads.plugins["workloads"]?.contains("restarter exited (exit 3)") == true, "\(workloads.plugins)")
            let pids = RuntimeRecord.processes(carrying: node!.marker)
            #expect(!pids.isEmpty)
            let started = Date()
            node!.stop()  // SIGTERM: the agent closes the gate
            let elapsed = Date().timeIntervalSince(started)
            #expect(elapsed >= 2, "the stubborn workload was given its 2 s")
            #expect(elapsed < 10)
            #expect(RuntimeRecord.processes(carrying: node!.marker).isEmpty)
            #expect(node!.log.contains("stubborn killed at the 2 s deadline"), "\(node!.log)")
        } catch {
            Issue.record("\(error)\n\(node?.log ?? "")")
        }
        await controller.stop()
    }

    @Test func anAgentKilledWithSIGKILLLeavesNothingOpenAfterItsRestart() async throws {
        let controller = try await ControllerHarness.start(.sqlite)
        let device = try TestDevice()
        let fs = try Ext4Image()
        let net = Self.network()
        var node: NodeRun?
        defer {
            node?.stop()
            device.stop()
        }
        do {
            try #require(fs.mounted, "\(fs.failure ?? "")")
            _ = try await Self.prepare(controller, device)
            let vault = fs.mountPoint + "/vault"
            try FileManager.default.createDirectory(atPath: vault, withIntermediateDirectories: false)
            #expect(try await device.vigil(["vault", "create", vault]).status == 0)
            let manifest = """
                networks:
                  - {name: \(net.name), address: \(net.inner)/24, host_address: \(net.host)/24}
                workloads:
                  - name: child
                    command: /bin/bash
                    arguments: [-c, "setsid sleep 600 & echo ready; exec sleep 600"]
                    secrets: [app-token]
                    network: \(net.name)
                    data: child
                """
            node = try NodeRun.start(device, controller, manifest: manifest, vaults: [vault])
            _ = try await node!.waitFor("the gate to open") { $0.gateOpen }
            _ = try await node!.waitForWorkloadOutput("child", containing: "ready")
            let orphans = RuntimeRecord.processes(carrying: node!.marker)
            #expect(orphans.count >= 2, "the workload and the child it moved to its own session")
            node!.kill()  // SIGKILL: nothing is closed
            #expect(RuntimeRecord.processes(carrying: node!.marker).count >= 2)
            #expect(try SealedVaults.isUnlocked(SealedVaults.open(vault)))
            #expect(NodeRun.mounts().contains(node!.state + "/run"))

            // The next run undoes all of it first (checked before the gate reopens on the same state).
            let second = try NodeRun.start(device, controller, manifest: manifest, vaults: [vault], state: node!.state)
            node = second
            let reopened = try await second.waitFor("the gate to reopen") { $0.gateOpen }
            let recovered = reopened.recovered.joined(separator: "; ")
            #expect(recovered.contains("killed"), "\(recovered)")
            #expect(recovered.contains("unmounted"), "\(recovered)")
            #expect(recovered.contains("deleted networks vigil-\(net.name)"), "\(recovered)")
            #expect(recovered.contains("locked vaults \(vault)"), "\(recovered)")
            for pid in orphans { #expect(!NodeRun.alive(pid), "pid \(pid) of the killed run is still alive") }
        } catch {
            Issue.record("\(error)\n\(node?.log ?? "")")
        }
        node?.stop()
        await controller.stop()
    }

    /// Both ways a TPM comes back reset: swtpm's CMD_INIT through its control channel, and the swtpm process
    /// itself restarted on the same state (TPM2_Startup CLEAR; the node's connection breaks).
    @Test(arguments: ["CMD_INIT", "process restart"])
    func aTPMResetClosesTheGateAndTheNodeReattestsAfterTheReboot(_ how: String) async throws {
        let controller = try await ControllerHarness.start(.sqlite)
        let device = try TestDevice()
        var node: NodeRun?
        defer {
            node?.stop()
            device.stop()
        }
        do {
            _ = try await Self.prepare(controller, device)
            node = try NodeRun.start(
                device, controller, manifest: Self.sleeper, vaults: [], extra: ["--backoff-max", "2"])
            _ = try await node!.waitFor("the gate to open") { $0.gateOpen }
            if how == "CMD_INIT" {
                try device.simulator.reboot()  // swtpm CMD_INIT: resetCount + 1, PCRs back to zero
            } else {
                try device.simulator.restart()  // a new swtpm process on the same state: Startup(CLEAR)
            }
            _ = try await node!.waitFor("the gate to close") { !$0.gateOpen }
            // The reason is in the timeline (the status moves on: the re-attestation that follows fails until the
            // machine boots its chain again).
            // (A command already in flight on the old connection when swtpm reset gets TPM_RC_INITIALIZE: the TPM
            // "does not answer" then, which closes the gate just the same.)
            #expect(
                node!.log.contains("GATE CLOSED: the TPM was reset or restarted (resetCount")
                    || node!.log.contains("GATE CLOSED: the TPM does not answer"), "\(node!.log)")
            #expect(RuntimeRecord.processes(carrying: node!.marker).isEmpty)
            // The rebooted machine boots the same chain again: the node passes and reopens.
            #expect(try await device.vigil(["tpm", "replay-log", ControllerFixtures.eventLog]).status == 0)
            _ = try await node!.waitFor("the gate to reopen after the reboot") { $0.gateOpen }
        } catch {
            Issue.record("\(error)\n\(node?.log ?? "")")
        }
        node?.stop()
        await controller.stop()
    }

    @Test func aRevocationClosesTheGateWithinAWatch() async throws {
        let controller = try await ControllerHarness.start(.sqlite)
        let device = try TestDevice()
        var node: NodeRun?
        defer {
            node?.stop()
            device.stop()
        }
        do {
            let (id, _) = try await Self.prepare(controller, device)
            node = try NodeRun.start(device, controller, manifest: Self.sleeper, vaults: [])
            _ = try await node!.waitFor("the gate to open") { $0.gateOpen }
            try await controller.controller.revokeDevice(try await controller.admin(), DeviceID(id)!)
            let revokedAt = Date()
            let closed = try await node!.waitFor("the gate to close") { !$0.gateOpen }
            #expect(Date().timeIntervalSince(revokedAt) < 5)
            #expect(closed.reason.contains("revoked"), "\(closed.reason)")
            #expect(RuntimeRecord.processes(carrying: node!.marker).isEmpty)
        } catch {
            Issue.record("\(error)\n\(node?.log ?? "")")
        }
        node?.stop()
        await controller.stop()
    }

    @Test func anOfflineGraceKeepsTheGateThroughANetworkCutUntilItRunsOut() async throws {
        let controller = try await ControllerHarness.start(.sqlite)
        let device = try TestDevice()
        var node: NodeRun?
        var cut: NetworkCut?
        defer {
            cut?.restore()
            node?.stop()
            device.stop()
        }
        do {
            _ = try await Self.prepare(controller, device)
            // A policy version that grants 15 s of offline grace.
            let admin = try await controller.admin()
            _ = try await controller.controller.addPolicy(
                admin, name: PolicyName("fleet-lab")!,
                Admin.PolicyUpload(
                    yaml: ControllerFixtures.fleetPolicy.replacingOccurrences(of: "version: 1", with: "version: 2")
                        + "freshness:\n  offline_grace_seconds: 15\n",
                    parents: try ControllerFixtures.fleetParents()))
            _ = try await controller.controller.assignPolicy(
                admin, name: PolicyName("fleet-lab")!, Admin.PolicyAssignment(device: nil, group: "lab", version: 2))
            node = try NodeRun.start(
                device, controller, manifest: Self.sleeper, vaults: [], extra: ["--backoff-max", "1"])
            _ = try await node!.waitFor("the gate to open") { $0.gateOpen && $0.lastVerdict?.policy == "fleet-lab@2" }
            // The cut: nftables drops the node's packets to the controller's port (the TPM's port stays open).
            cut = try NetworkCut(port: controller.port)
            #expect(try await node!.attestNow().status == 0)
            let within = try await node!.waitFor("the node to go on under its offline grace") {
                $0.reason.contains("offline grace")
            }
            #expect(within.gateOpen, "within the grace: \(within.reason)")
            #expect(!RuntimeRecord.processes(carrying: node!.marker).isEmpty)
            let closed = try await node!.waitFor("the grace to run out") { !$0.gateOpen }
            #expect(closed.reason.contains("grace") || closed.reason.contains("cannot attest"), "\(closed.reason)")
            cut?.restore()
            cut = nil
            _ = try await node!.waitFor("the gate to reopen once the network is back") { $0.gateOpen }
        } catch {
            Issue.record("\(error)\n\(node?.log ?? "")")
        }
        node?.stop()
        await controller.stop()
    }

    /// The README's demo, as CI runs it: `vigil demo --json` reports every field true and leaves nothing behind.
    @Test(.enabled(if: SoftwareTPM.canRunTPM2Tools, "tpm2-tools is not installed"))
    func theDemoReportsEveryFieldTrue() async throws {
        let root = SoftwareTPM.repositoryRoot.path
        let r = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(
                    with: Result {
                        try ProcessRunner.run(
                            ProcessRunner.vigilExecutable,
                            [
                                "demo", "--json", "--fixtures", root + "/swtpm-fixtures", "--eventlog",
                                ControllerFixtures.eventLog,
                            ], environment: ["TSS2_LOG": "all+none"], timeoutSeconds: 300)
                    })
            }
        }
        #expect(r.status == 0, "\(r.stderr.suffix(4000))")
        let summary = try #require(
            try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        for field in [
            "attested", "vault_unlocked", "workload_ran", "tamper_detected", "plugins_stopped", "vault_locked",
        ] {
            #expect(summary[field] as? Bool == true, "\(field): \(r.stdout)\n\(r.stderr.suffix(4000))")
        }
        #expect((summary["leftovers"] as? [Any])?.isEmpty == true, "\(r.stdout)")
        #expect(r.stderr.contains("GATE OPEN") && r.stderr.contains("GATE CLOSED"), "\(r.stderr.suffix(4000))")
    }

    static let sleeper = """
        workloads:
          - name: sleeper
            command: /bin/sleep
            arguments: ["600"]
        """
}

/// `vigil node run` as a child process, its state directory and its output.
final class NodeRun: @unchecked Sendable {
    let child: ChildProcess
    let state: String
    let device: TestDevice
    var marker: String { RuntimeRecord.marker(stateDirectory: state) }

    init(child: ChildProcess, state: String, device: TestDevice) {
        self.child = child
        self.state = state
        self.device = device
    }

    static func start(
        _ device: TestDevice, _ controller: ControllerHarness, manifest: String, vaults: [String],
        extra: [String] = [], state: String? = nil
    ) throws -> NodeRun {
        let state = state ?? device.path("node-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let manifestPath = state + ".manifest.yaml"
        try manifest.write(toFile: manifestPath, atomically: true, encoding: .utf8)
        var arguments = [
            "node", "run", "--tcti", device.simulator.tctiString, "--state-dir", state, "--manifest", manifestPath,
            "--eventlog", ControllerFixtures.eventLog, "--watch-interval", "0.5", "--interval", "300",
            "--stop-deadline", "5",
        ]
        for v in vaults { arguments += ["--vault", v] }
        arguments += controller.connectionArguments + extra
        let run = state + ".run-\(UUID().uuidString.prefix(4))"
        let child = try ChildProcess(
            ProcessRunner.vigilExecutable, arguments,
            environment: ChildProcess.currentEnvironment().merging(["TSS2_LOG": "all+none"]) { $1 },
            standardOutput: .file(run + ".out"), standardError: .file(run + ".err"))
        let node = NodeRun(child: child, state: state, device: device)
        node.outputs = [run + ".out", run + ".err"]
        return node
    }
    var outputs: [String] = []

    /// Everything the node printed.
    var log: String {
        outputs.map { String(decoding: FileManager.default.contents(atPath: $0) ?? Data(), as: UTF8.self) }
            .joined(separator: "\n")
    }

    /// The status this run wrote (a killed run's last status is not this one's).
    func status() -> NodeStatus? {
        guard let s = try? NodeStatus.read(stateDirectory: state), s.pid == child.pid else { return nil }
        return s
    }

    func waitFor(_ what: String, seconds: Double = 45, _ condition: (NodeStatus) -> Bool) async throws -> NodeStatus {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let s = status(), condition(s) { return s }
            guard child.isRunning else { throw HarnessError(description: "the node exited while waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError(
            description: "timed out waiting for \(what); last status: \(String(describing: status()?.reason))")
    }

    func waitForWorkloadOutput(_ name: String, containing text: String, seconds: Double = 30) async throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        let path = state + "/logs/\(name).log"
        while Date() < deadline {
            let out = String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
            if out.contains(text) { return out }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError(description: "workload \(name) never printed \(text)")
    }

    func attestNow() async throws -> ProcessResult {
        try await device.vigil(["node", "attest-now", "--state-dir", state])
    }

    /// SIGTERM, and waits for the agent to close its gate and exit.
    func stop() {
        guard child.isRunning else { return }
        child.kill(SIGTERM)
        if child.wait(timeoutSeconds: 30) == nil {
            child.kill(SIGKILL)
            _ = child.wait(timeoutSeconds: 10)
        }
        for pid in RuntimeRecord.processes(carrying: marker) { Glibc.kill(pid, SIGKILL) }
    }

    /// SIGKILL: the agent gets no chance to close anything.
    func kill() {
        child.kill(SIGKILL)
        _ = child.wait(timeoutSeconds: 10)
    }

    /// Whether `pid` runs (a zombie waiting for a reaper that is not us does not).
    static func alive(_ pid: Int32) -> Bool {
        guard let stat = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return false }
        let text = String(decoding: stat, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return false }
        return text[text.index(after: close)...].trimmingCharacters(in: .whitespaces).first != "Z"
    }

    static func namespaces() -> String {
        (try? ProcessRunner.run("ip", ["netns", "list"]).stdout) ?? ""
    }

    static func mounts() -> String {
        String(decoding: FileManager.default.contents(atPath: "/proc/self/mountinfo") ?? Data(), as: UTF8.self)
    }
}

/// A TCP listener on every address of the host (the node's veth peer reaches it), accepting in the background.
final class Listener: @unchecked Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = INADDR_ANY
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw HarnessError(description: "listener: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
        let listening = self.fd
        Thread.detachNewThread {
            while true {
                let c = accept(listening, nil, nil)
                if c < 0 { return }
                close(c)
            }
        }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}

/// Drops TCP to a local port with nftables (its own table, deleted on restore): the network between node and
/// controller cut, while everything else (the TPM's socket) keeps working.
final class NetworkCut: @unchecked Sendable {
    let table: String

    init(port: Int) throws {
        table = "vigilcut\(port)"
        let rules = """
            table inet \(table) {
              chain output {
                type filter hook output priority -10; policy accept;
                tcp dport \(port) drop
              }
            }
            """
        let path = NSTemporaryDirectory() + "\(table).nft"
        try rules.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try ProcessRunner.run("nft", ["-f", path])
        guard r.status == 0 else { throw HarnessError(description: "nft: \(r.stderr)") }
    }

    func restore() {
        _ = try? ProcessRunner.run("nft", ["delete", "table", "inet", table])
    }
}
