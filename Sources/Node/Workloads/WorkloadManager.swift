import AttestTPM
import ControllerProtocol
public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The workload-manager plugin: runs the manifest's workloads as supervised child processes while the gate is
/// open. Each sees its secrets as 0600 files in a private tmpfs (`$VIGIL_SECRETS_DIR`, with the gate's signed
/// result in `.attestation-result.jwt`, also named by `$VIGIL_ATTESTATION_RESULT`), keeps its data in the vault (`$VIGIL_DATA_DIR`), runs inside its
/// network's namespace, and is restarted as its policy says. When the gate closes every workload gets SIGTERM,
/// then SIGKILL at its `stop_timeout` (or the core's deadline, whichever comes first), and its secrets are
/// overwritten and unmounted.
public actor WorkloadManager: NodePlugin {
    /// `workloads`.
    public nonisolated let name = "workloads"
    nonisolated let workloads: [NodeManifest.Workload]
    nonisolated let vaults: [String]

    final class Running: @unchecked Sendable {
        let spec: NodeManifest.Workload
        var process: ChildProcess?
        var restarts = 0
        var state = "starting"
        var stopping = false
        var killedAtDeadline: String?
        /// Whether `process` has not been reaped yet (only then may its group be signalled).
        var alive = false
        var finished = false
        var mount: SecretMount?
        var supervisor: Task<Void, Never>?
        init(spec: NodeManifest.Workload) { self.spec = spec }
    }
    private var running: [Running] = []
    private var runtime: RuntimeRecord?
    /// When the first workload process was spawned in the current gate (for the node's timings).
    public private(set) var firstSpawnAt: Date?

    /// A manager for `workloads`, whose data lives in the first of `vaults`.
    public init(workloads: [NodeManifest.Workload], vaults: [String]) {
        self.workloads = workloads
        self.vaults = vaults
    }

    /// The secrets, networks and vault its workloads use.
    public nonisolated var requirements: PluginRequirements {
        var secrets: [SecretName] = []
        for w in workloads { for s in w.secrets where !secrets.contains(s) { secrets.append(s) } }
        var networks: [String] = []
        for w in workloads { if let n = w.network, !networks.contains(n) { networks.append(n) } }
        let needsVault = workloads.contains { $0.data != nil }
        return PluginRequirements(
            vaults: needsVault ? Array(vaults.prefix(1)) : [], secrets: secrets, networks: networks)
    }

    /// Mounts each workload's secrets, makes its data directory in the vault and spawns it (inside its network).
    public func start(_ context: PluginContext) async throws {
        runtime = context.runtime
        firstSpawnAt = nil
        for spec in workloads {
            let r = Running(spec: spec)
            running.append(r)
            let base = context.stateDirectory + "/run/workloads/" + spec.name
            var mine: [SecretName: SecretBytes] = [:]
            for s in spec.secrets {
                guard let bytes = context.secrets[s] else {
                    throw NodeError("workload \(spec.name): secret \(s) was not released")
                }
                mine[s] = bytes
            }
            let owner = try Self.account(spec.user)
            // Traversable (not listable) down to the workload's own mount, so a workload with its own user reaches
            // its secrets and nothing else.
            for dir in [
                context.stateDirectory, context.stateDirectory + "/run", context.stateDirectory + "/run/workloads",
                base,
            ] {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                guard chmod(dir, 0o711) == 0 else {
                    throw NodeError("workload \(spec.name): chmod \(dir): \(String(cString: strerror(errno)))")
                }
            }
            r.mount = try await SecretMount.create(
                at: base + "/secrets", secrets: mine, result: context.attestation.token, owner: (owner.uid, owner.gid),
                runtime: context.runtime)
            var dataDir: String?
            if let data = spec.data {
                guard let vault = context.vaults.first else {
                    throw NodeError("workload \(spec.name): data needs a vault")
                }
                let dir = vault + "/" + data
                try FileManager.default.createDirectory(
                    atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                // The directory must be the vault's, not a link a workload planted to elsewhere.
                let resolved = URL(fileURLWithPath: dir).resolvingSymlinksInPath().path
                let vaultResolved = URL(fileURLWithPath: vault).resolvingSymlinksInPath().path
                guard resolved.hasPrefix(vaultResolved + "/") else {
                    throw NodeError(
                        "workload \(spec.name): its data directory resolves outside the vault (\(resolved))")
                }
                guard chown(dir, owner.uid, owner.gid) == 0 else {
                    throw NodeError("workload \(spec.name): chown \(dir): \(String(cString: strerror(errno)))")
                }
                dataDir = dir
            }
            // Every workload runs without capabilities and cannot gain any (no_new_privs), as its own user when
            // the manifest names one: it cannot rewrite its namespace's nftables, leave its namespace, or open a
            // TPM that is not its own uid's to open.
            guard let setpriv = SystemTool.path("setpriv") else {
                throw NodeError("workload \(spec.name): setpriv (util-linux) is not installed")
            }
            var argv = [setpriv, "--no-new-privs", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all"]
            if spec.user != nil {
                argv += ["--reuid=\(owner.uid)", "--regid=\(owner.gid)", "--clear-groups"]
            }
            argv += ["--", spec.command] + spec.arguments
            if let network = spec.network {
                guard let ns = context.networks[network] else {
                    throw NodeError("workload \(spec.name): network \(network) is not up")
                }
                guard let ip = SystemTool.path("ip") else {
                    throw NodeError("workload \(spec.name): ip (iproute2) is not installed")
                }
                argv = [ip, "netns", "exec", ns] + argv
            }
            var env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", "LANG=C.UTF-8"]
            env += spec.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            env.append("VIGIL_WORKLOAD=\(spec.name)")
            env.append("VIGIL_SECRETS_DIR=\(base)/secrets")
            env.append("VIGIL_ATTESTATION_RESULT=\(base)/secrets/\(SecretMount.resultName)")
            if let dataDir { env.append("VIGIL_DATA_DIR=\(dataDir)") }
            env.append(context.runtime.marker)
            let logs = context.stateDirectory + "/logs"
            try FileManager.default.createDirectory(
                atPath: logs, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let log = logs + "/" + spec.name + ".log"
            // The first spawn happens here, so a workload that cannot start at all fails the gate's opening.
            let first = try ChildProcess.spawn(argv, environment: env, log: log)
            if firstSpawnAt == nil { firstSpawnAt = Date() }
            r.process = first
            r.alive = true
            r.state = "running (pid \(first.pid))"
            let command = argv
            let environment = env
            r.supervisor = Task { await self.supervise(r, first: first, argv: command, env: environment, log: log) }
        }
    }

    /// The uid and gid of `user` (a name or a number); root when nil.
    static func account(_ user: String?) throws -> (uid: UInt32, gid: UInt32) {
        guard let user else { return (0, 0) }
        if let entry = getpwnam(user) { return (entry.pointee.pw_uid, entry.pointee.pw_gid) }
        if let uid = UInt32(user), let entry = getpwuid(uid) { return (uid, entry.pointee.pw_gid) }
        if let uid = UInt32(user) { return (uid, uid) }
        throw NodeError("user \(user) does not exist")
    }

    /// Waits for the workload to end and restarts it as its policy says, until it is stopped.
    func supervise(_ r: Running, first: ChildProcess, argv: [String], env: [String], log: String) async {
        var process = first
        while true {
            let status = await process.waitForExit()
            r.alive = false
            let outcome = ChildProcess.describe(status)
            if r.stopping {
                r.state = r.killedAtDeadline ?? "stopped (\(outcome))"
                break
            }
            let restart: Bool
            switch r.spec.restart {
            case .never: restart = false
            case .onFailure: restart = !ChildProcess.succeeded(status)
            case .always: restart = true
            }
            guard restart, r.restarts < r.spec.maxRestarts else {
                r.state = "exited (\(outcome))" + (restart ? ", restart limit \(r.spec.maxRestarts) reached" : "")
                break
            }
            r.restarts += 1
            r.state = "restarting (\(outcome); restart \(r.restarts) of \(r.spec.maxRestarts))"
            let delay = min(10.0, 0.25 * Double(1 << min(r.restarts, 6)))
            try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            if r.stopping {
                r.state = "stopped"
                break
            }
            do {
                process = try ChildProcess.spawn(argv, environment: env, log: log)
                r.process = process
                r.alive = true
                r.state = "running (pid \(process.pid); restart \(r.restarts))"
            } catch {
                r.state = "failed: \(error)"
                break
            }
        }
        r.finished = true
    }

    /// SIGTERM to every workload's process group, SIGKILL at its `stop_timeout` (at most `deadline`), then the
    /// secrets overwritten and unmounted.
    public func stop(deadline: Duration) async {
        let all = running
        running = []
        for r in all {
            r.stopping = true
            if !r.finished && r.alive { r.process?.signalGroup(SIGTERM) }
        }
        let start = ContinuousClock.now
        let limit = deadline.components.seconds
        for r in all {
            let own = Duration.milliseconds(Int(min(r.spec.stopTimeout, Double(limit)) * 1000))
            while !r.finished && ContinuousClock.now - start < own {
                try? await Task.sleep(for: .milliseconds(20))
            }
            if !r.finished && r.alive {
                r.process?.signalGroup(SIGKILL)
                r.killedAtDeadline =
                    "killed at the \(Int(min(r.spec.stopTimeout, Double(limit)))) s deadline (SIGTERM ignored)"
            }
        }
        for r in all { await r.supervisor?.value }
        // Anything a workload forked into a new process group still carries the node's marker.
        if let runtime { _ = RuntimeRecord.killMarked(runtime.marker) }
        for r in all {
            if let runtime { await r.mount?.remove(runtime: runtime) }
            r.mount = nil
        }
        stoppedStates = Dictionary(uniqueKeysWithValues: all.map { ($0.spec.name, $0.state) })
    }
    private var stoppedStates: [String: String] = [:]

    /// Each workload's state (`running (pid …)`, `restarting …`, `stopped …`).
    public func state() async -> String {
        guard !running.isEmpty else {
            return stoppedStates.isEmpty
                ? "stopped"
                : "stopped: "
                    + stoppedStates.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "; ")
        }
        return running.map { "\($0.spec.name) \($0.state)" }.joined(separator: "; ")
    }

    /// Each workload's state, by name.
    public func workloadStates() -> [String: String] {
        Dictionary(uniqueKeysWithValues: running.map { ($0.spec.name, $0.state) })
    }
}
