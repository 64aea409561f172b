import Attest
import AttestTPM
import ControllerClient
import ControllerProtocol
import Foundation
import Logging
public import ServiceLifecycle
import SystemSupport
import Vault

#if canImport(Glibc)
    import Glibc
#endif

/// The node agent (`vigil node run`): the security core that boots first. It recovers from a previous run,
/// onboards, attests over a fresh controller nonce, unlocks the vaults, has the controller release the plugins'
/// secrets to this TPM, and only then starts the plugins (the gate opens). It re-attests periodically (jittered)
/// and on demand (SIGUSR1), watches the TPM's reset and restart counters, the result's expiry and the
/// controller's view (which is also how a revocation arrives), and closes the gate on any of them. Its state is
/// in `status.json` and, at every watch, on the controller's device record.
///
/// One ``NodeStateMachine`` decides; this actor performs its actions one at a time. Run it in a `ServiceGroup`
/// (SIGTERM/SIGINT close the gate, then the service ends).
public actor NodeAgent: Service {
    let configuration: NodeConfiguration
    let plugins: [any NodePlugin]
    var machine = NodeStateMachine()
    let runtime: RuntimeRecord
    var tpm: TPM?
    var tpmOpening: Task<TPM, any Error>?
    var tpmUsers = 0
    var tpmCommands = 0
    var connection: ControllerConnection?
    var deviceID: DeviceID?
    var resultKeyPEM: String?
    var secrets: [SecretName: SecretBytes] = [:]
    var ticket: GateTicket?
    var gateAttestation: GateAttestation?
    var events: AsyncStream<NodeStateMachine.Event>.Continuation?
    var timerGeneration = 0
    var nextAttestation: Date?
    var status: NodeStatus
    let started = ContinuousClock.now
    let startedWall = Date()
    var closeStartedAt: ContinuousClock.Instant?
    let output: @Sendable (String) -> Void

    /// An agent with `plugins`, started in order when the gate opens and stopped in reverse when it closes.
    /// `output` receives the human-readable timeline (one line per event).
    public init(
        configuration: NodeConfiguration, plugins: [any NodePlugin],
        output: (@Sendable (String) -> Void)? = nil
    ) throws(NodeError) {
        var provided: Set<String> = []
        var names: Set<String> = []
        for p in plugins {
            guard names.insert(p.name).inserted else { throw NodeError("two plugins are named \(p.name)") }
            for n in p.requirements.networks where !provided.contains(n) {
                throw NodeError("plugin \(p.name) needs network \(n), which no earlier plugin provides")
            }
            for v in p.requirements.vaults where !configuration.vaults.contains(v) {
                throw NodeError("plugin \(p.name) needs vault \(v), which is not one of the node's --vault")
            }
            provided.formUnion(p.providedNetworks.keys)
        }
        self.configuration = configuration
        self.plugins = plugins
        self.output = output ?? { line in FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        runtime = RuntimeRecord(stateDirectory: configuration.stateDirectory)
        status = NodeStatus(
            pid: getpid(), deviceID: nil, phase: NodeStateMachine.Phase.recovering.rawValue, gateOpen: false,
            reason: "starting", updatedAt: Date(), lastVerdict: nil, nextAttestation: nil, plugins: [:],
            timings: .init(startedAt: Date()), recovered: [])
    }

    // MARK: The loop

    /// Runs until shutdown (graceful: the gate is closed first).
    public func run() async throws {
        try FileManager.default.createDirectory(
            atPath: configuration.stateDirectory, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        try Self.checkStateDirectory(configuration.stateDirectory)
        let (stream, continuation) = AsyncStream.makeStream(of: NodeStateMachine.Event.self)
        events = continuation
        let usr1 = Self.signalSource(SIGUSR1) { continuation.yield(.attestNow) }
        defer { usr1.cancel() }
        let watch = Task { await self.watchLoop() }
        defer { watch.cancel() }
        await withGracefulShutdownHandler {
            await self.loop(stream)
        } onGracefulShutdown: {
            continuation.yield(.shutdown)
        }
        watch.cancel()
        if machine.phase != .stopped {
            // The loop ended without the machine's exit (cancelled): close whatever may be open all the same.
            _ = await closeGate("the agent is stopping (cancelled)")
        }
        await connection?.shutdown()
        say("stopped")
    }

    func loop(_ stream: AsyncStream<NodeStateMachine.Event>) async {
        var pending: [NodeStateMachine.Action] = [NodeStateMachine.firstAction]
        var iterator = stream.makeAsyncIterator()
        while true {
            for action in pending {
                if action == .exit {
                    writeStatus()
                    return
                }
                if let event = await perform(action) { events?.yield(event) }
            }
            await closeTPMIfIdle()
            guard let event = await iterator.next() else { return }
            let before = (machine.phase, machine.gateOpen)
            pending = machine.handle(event)
            if (machine.phase, machine.gateOpen) != before || !pending.isEmpty {
                if machine.phase != before.0 { debugPhase(before.0) }
                writeStatus()
            }
            if machine.gateOpen != before.1 || (machine.phase == .waiting && before.0 == .closing) {
                Task { await self.watchOnce() }  // the controller's device record hears of the change at once
            }
        }
    }

    /// As root, the state directory drives mounts, `ip link del` and vault locks: it and every folder above it
    /// must be root's and writable by nobody else, and it must not be a symbolic link.
    static func checkStateDirectory(_ path: String) throws(NodeError) {
        guard geteuid() == 0 else { return }
        var current = URL(fileURLWithPath: path).standardizedFileURL.path
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: current) {
            throw NodeError("state directory \(path) is a symbolic link (to \(resolved))")
        }
        while true {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: current),
                let owner = attributes[.ownerAccountID] as? NSNumber,
                let mode = attributes[.posixPermissions] as? NSNumber
            else { throw NodeError("state directory: cannot inspect \(current)") }
            let sticky = mode.intValue & 0o1000 != 0
            guard owner.intValue == 0, mode.intValue & 0o022 == 0 || (sticky && current != path) else {
                throw NodeError(
                    "state directory: \(current) is owned by uid \(owner) or writable by others (mode \(String(mode.intValue & 0o7777, radix: 8))): it must be root's alone"
                )
            }
            if current == "/" { return }
            current = (current as NSString).deletingLastPathComponent
        }
    }

    /// Names the waits that no action announced (a connection that failed, a retry without a gate to close).
    func debugPhase(_ from: NodeStateMachine.Phase) {
        if machine.phase == .waiting, from != .closing {
            say("waiting: \(machine.reason)")
        }
    }

    // MARK: The TPM

    /// Runs `body` with the TPM, opened for the occasion and closed when nobody uses it: a simulator (swtpm)
    /// serves one client at a time, and a reset or restarted TPM is met with a fresh connection.
    func withTPM<R: Sendable>(_ body: (TPM) async throws -> R) async throws -> R {
        let t: TPM
        if let tpm {
            t = tpm
        } else {
            let opening = tpmOpening ?? Task { [tcti = configuration.tcti] in try await TPM.open(tcti) }
            tpmOpening = opening
            defer { tpmOpening = nil }
            t = try await opening.value
            tpm = t
        }
        tpmUsers += 1
        do {
            let r = try await body(t)
            await release(t)
            return r
        } catch {
            await release(t)
            throw error
        }
    }

    func release(_ t: TPM) async {
        tpmUsers -= 1
        await closeTPMIfIdle()
    }

    /// Closes the TPM connection when nobody uses it and the machine is not in the middle of opening the gate
    /// (one connection for the whole chain: fewer TPM round trips than one per step).
    func closeTPMIfIdle() async {
        guard tpmUsers == 0, let t = tpm else { return }
        switch machine.phase {
        case .connecting, .attesting, .unlocking, .releasing, .starting: return
        default: break
        }
        let sent = await t.commandsSent
        guard tpmUsers == 0, tpm === t else { return }
        tpmCommands += sent
        tpm = nil
    }

    // MARK: Actions

    func perform(_ action: NodeStateMachine.Action) async -> NodeStateMachine.Event? {
        switch action {
        case .recover: return await recover()
        case .connect: return await connect()
        case .attest: return await attest()
        case .unlockVaults: return await unlockVaults()
        case .releaseSecrets: return await releaseSecrets()
        case .startPlugins: return await startPlugins()
        case .closeGate(let why): return await closeGate(why)
        case .schedule(let delay):
            schedule(delay)
            return nil
        case .exit: return nil
        }
    }

    func recover() async -> NodeStateMachine.Event {
        let r = await runtime.recover(
            lockVault: { path in try Self.lockIfOpen(path) }, configuredVaults: configuration.vaults)
        var lines: [String] = []
        if !r.killed.isEmpty { lines.append("killed \(r.killed.count) workload process(es) of a previous run") }
        if !r.unmounted.isEmpty { lines.append("unmounted \(r.unmounted.joined(separator: ", "))") }
        if !r.networks.isEmpty { lines.append("deleted networks \(r.networks.joined(separator: ", "))") }
        if !r.vaults.isEmpty { lines.append("locked vaults \(r.vaults.joined(separator: ", "))") }
        status.recovered = lines + r.problems
        say(lines.isEmpty ? "start: nothing left open by a previous run" : "start: " + lines.joined(separator: "; "))
        return r.problems.isEmpty ? .recovered : .stepFailed(r.problems.joined(separator: "; "))
    }

    func connect() async -> NodeStateMachine.Event {
        do {
            if connection == nil {
                connection = try ControllerConnection(
                    url: configuration.controllerURL, caPEM: configuration.caPEM, connectSeconds: 3,
                    requestSeconds: Int64(configuration.requestTimeout))
            }
            guard let connection else { return .stepFailed("no connection") }
            let report = currentReport()
            let (id, onboarded) = try await withTPM { [configuration] tpm in
                let agent = DeviceAgent(tpm: tpm, connection: connection)
                let id = try await agent.deviceID()
                // Known to the controller already? A signed report answers; an unknown device onboards.
                do {
                    _ = try await agent.report(report)
                    return (id, false)
                } catch let e as ControllerClientError where e.status == 401 {
                    _ = try await agent.onboard(enrollToken: configuration.enrollToken)
                    return (id, true)
                }
            }
            if deviceID != id {
                if onboarded {
                    say("device \(id) onboarded (EK chain, credential activation, TPM2_Certify of the device key)")
                }
                deviceID = id
                status.deviceID = id.rawValue
                say("device \(id) known to \(configuration.controllerURL)")
            }
            if resultKeyPEM == nil { resultKeyPEM = try await pinnedResultKey(connection) }
            return .connected
        } catch {
            return classify(error)
        }
    }

    /// The controller's result key, fetched once over the pinned TLS connection and kept in the state directory
    /// (later runs use the kept copy: a controller that changes its key is refused until an operator removes it).
    func pinnedResultKey(_ connection: ControllerConnection) async throws -> String {
        let path = configuration.stateDirectory + "/result-signing.pub.pem"
        if let data = FileManager.default.contents(atPath: path), data.count < 16 * 1024 {
            return String(decoding: data, as: UTF8.self)
        }
        let (status, body) = try await connection.send(method: "GET", path: "/v1/result-key", body: nil)
        guard status == 200, body.count < 16 * 1024 else {
            throw ControllerClientError(status: status, body: body)
        }
        try AtomicFile.write(body, to: URL(fileURLWithPath: path), mode: 0o644)
        return String(decoding: body, as: UTF8.self)
    }

    func attest() async -> NodeStateMachine.Event {
        guard let connection, let deviceID, let resultKeyPEM else { return .stepFailed("not connected") }
        do {
            let log = try eventLog()
            let (outcome, nonce, clock) = try await withTPM { tpm in
                let (outcome, nonce) = try await DeviceAgent(tpm: tpm, connection: connection, deviceID: deviceID)
                    .attestReturningNonce(eventLog: log)
                return (outcome, nonce, try await tpm.readClock())
            }
            let failures = VaultRecovery.failedRuleList(outcome.verdict)
            guard outcome.pass else {
                status.lastVerdict = .init(pass: false, policy: nil, failures: failures, at: Date(), expires: nil)
                for f in failures { say("attestation FAILED: \(f)") }
                return .failed(failures.isEmpty ? "the policy failed" : Self.summary(failures))
            }
            // The result is checked here too (signature with the pinned key, expiry, subject): the gate opens on
            // what the controller signed, not on a flag in a JSON answer.
            let claims = try await AttestationResult.verify(outcome.result, publicKeyPEM: resultKeyPEM)
            guard claims.passed, claims.device == deviceID.rawValue else {
                return .failed("the signed result does not say pass for \(deviceID)")
            }
            // Held to this attestation's nonce: an older pass (replayed or cached) opens nothing.
            guard claims.nonce.lowercased() == nonce.lowercased() else {
                return .failed("the signed result answers nonce \(claims.nonce.prefix(16))…, not this attestation's")
            }
            // Deadlines on the node's monotonic clock (CLOCK_BOOTTIME, from the result's lifetime): setting the wall
            // clock back (a spoofed NTP on a stolen box) does not stretch them.
            let lifetime = max(0, claims.expiresDate.timeIntervalSince(claims.issuedAtDate))
            let grace = min(Double(claims.offlineGrace ?? 0), lifetime)
            let now = nodeNow()
            let pass = NodeStateMachine.Pass(
                nonce: claims.nonce, policy: claims.policy, expires: now.addingTimeInterval(lifetime),
                offlineUntil: grace > 0 ? now.addingTimeInterval(grace) : nil,
                resetCount: clock.resetCount, restartCount: clock.restartCount)
            let until = pass.offlineUntil.map { Date().addingTimeInterval($0.timeIntervalSince(now)) }
            gateAttestation = GateAttestation(
                token: outcome.result, policy: claims.policy, nonce: claims.nonce, expires: claims.expiresDate,
                offlineUntil: until)
            status.lastVerdict = .init(
                pass: true, policy: claims.policy, failures: [], at: Date(), expires: claims.expiresDate)
            say(
                "attestation passed under policy \(claims.policy) (result valid until \(Self.time(claims.expiresDate)))"
            )
            return .passed(pass)
        } catch {
            let event = classify(error)
            if case .failed(let why) = event {
                status.lastVerdict = .init(pass: false, policy: nil, failures: [why], at: Date(), expires: nil)
                say("attestation REFUSED: \(why)")
            }
            return event
        }
    }

    func unlockVaults() async -> NodeStateMachine.Event {
        guard let connection, let id = deviceID else { return .stepFailed("not connected") }
        for path in configuration.vaults {
            let vault = SealedVaults.open(path)
            do {
                try await runtime.willUnlock(path)
                if try SealedVaults.isUnlocked(vault) { continue }
                let log = try eventLog()
                let recovered = try await withTPM { tpm in
                    do {
                        try await vault.unlock(tpm: tpm)
                        return false
                    } catch let sealed {
                        guard try vault.read().escrow != nil else { throw sealed }
                        _ = try await VaultRecovery.recover(
                            vault, agent: DeviceAgent(tpm: tpm, connection: connection, deviceID: id), eventLog: log)
                        return true
                    }
                }
                say(
                    recovered
                        ? "vault \(path): local unseal refused; recovered from the controller's escrow on a fresh pass, resealed and unlocked"
                        : "vault \(path) unlocked (key unsealed by the TPM under its PCR policy)")
            } catch {
                return .stepFailed("vault \(path): \(error)")
            }
        }
        return .unlocked
    }

    func releaseSecrets() async -> NodeStateMachine.Event {
        guard let connection, let id = deviceID else { return .stepFailed("not connected") }
        var names: [SecretName] = []
        for p in plugins { for s in p.requirements.secrets where !names.contains(s) { names.append(s) } }
        do {
            let fetched = try await withTPM { tpm in
                var out: [SecretName: SecretBytes] = [:]
                for name in names {
                    out[name] = try await DeviceAgent(tpm: tpm, connection: connection, deviceID: id).fetchSecret(name)
                }
                return out
            }
            secrets = fetched
        } catch {
            secrets.removeAll()
            return classify(error)
        }
        if !names.isEmpty {
            say("released to this TPM: \(names.map(\.rawValue).joined(separator: ", "))")
        }
        return .released
    }

    func startPlugins() async -> NodeStateMachine.Event {
        guard let attestation = gateAttestation else { return .stepFailed("no attestation") }
        let ticket = GateTicket()
        self.ticket = ticket
        var networks: [String: String] = [:]
        for p in plugins {
            let r = p.requirements
            let context = PluginContext(
                attestation: attestation, secrets: secrets.filter { r.secrets.contains($0.key) }, vaults: r.vaults,
                networks: networks.filter { r.networks.contains($0.key) }, stateDirectory: configuration.stateDirectory,
                ticket: ticket, runtime: runtime)
            do {
                try await p.start(context)
            } catch {
                return .stepFailed("plugin \(p.name): \(error)")
            }
            networks.merge(p.providedNetworks) { a, _ in a }
            say("plugin \(p.name) started: \(await p.state())")
        }
        // The plugins hold what they were given; the core keeps no copy of the secrets while the gate is open.
        secrets.removeAll()
        let ms = (ContinuousClock.now - started).milliseconds
        if status.timings.startToGateMs == nil {
            status.timings.startToGateMs = ms
            status.timings.tpmCommandsToGate = tpmCommands + (await tpm?.commandsSent ?? 0)
            for p in plugins {
                if let w = p as? WorkloadManager, let at = await w.firstSpawnAt {
                    status.timings.startToFirstWorkloadMs = at.timeIntervalSince(status.timings.startedAt) * 1000
                }
            }
        }
        say("GATE OPEN (\(plugins.count) plugin(s) running)")
        return .started
    }

    func closeGate(_ why: String) async -> NodeStateMachine.Event {
        let begin = ContinuousClock.now
        ticket?.close()
        ticket = nil
        gateAttestation = nil
        for p in plugins.reversed() {
            await p.stop(deadline: configuration.stopDeadline)
            say("plugin \(p.name) stopped: \(await p.state())")
        }
        secrets.removeAll()  // SecretBytes wipe their pages when released
        for path in configuration.vaults {
            do {
                if try Self.lockIfOpen(path) { say("vault \(path) locked") }
                try await runtime.locked(path)
            } catch {
                // Kept in the runtime record: the next close or start tries again.
                say("vault \(path): NOT LOCKED: \(error)")
            }
        }
        status.timings.lastCloseMs = (ContinuousClock.now - begin).milliseconds
        say("GATE CLOSED: \(why)")
        return .closed
    }

    /// Locks the vault at `path` unless it is locked already (or is not a vault); true when it was open. Throws
    /// when files still hold it open (fscrypt: the key stays usable for them), so nobody reports it locked.
    static func lockIfOpen(_ path: String) throws -> Bool {
        let vault = SealedVaults.open(path)
        guard let metadata = try? vault.read() else { return false }
        guard try vault.state(metadata) != "locked" else { return false }
        guard try SealedVaults.lock(vault) else {
            throw NodeError("files inside are still open: the key is withdrawn for new opens, not yet for those")
        }
        return true
    }

    func schedule(_ delay: NodeStateMachine.Delay) {
        timerGeneration += 1
        let generation = timerGeneration
        let seconds = configuration.seconds(for: delay, random: Double.random(in: 0..<1))
        nextAttestation = Date().addingTimeInterval(seconds)
        status.nextAttestation = nextAttestation
        Task {
            try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            self.fire(generation)
        }
    }

    func fire(_ generation: Int) {
        guard generation == timerGeneration else { return }  // replaced by a later schedule
        events?.yield(.timer)
    }

    // MARK: The watch

    func watchLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int(configuration.watchInterval * 1000)))
            if Task.isCancelled { return }
            await watchOnce()
        }
    }

    func watchOnce() async {
        var clock: TPMSClockInfo?
        var view = NodeStateMachine.ControllerView.unknown
        let report = currentReport()
        let connection = self.connection
        let id = deviceID
        do {
            let (c, v, revoked) = try await withTPM { tpm in
                let clock = try await tpm.readClock()
                guard let connection, let id else {
                    return (clock, NodeStateMachine.ControllerView.unknown, String?.none)
                }
                do {
                    let directive = try await DeviceAgent(tpm: tpm, connection: connection, deviceID: id).report(report)
                    return (clock, .answered(latestPass: directive.latestPass), nil)
                } catch let e as ControllerClientError where e.code == "device_revoked" {
                    return (clock, .unknown, e.reason)
                } catch let e as ControllerClientError where e.status == nil || [502, 503, 504].contains(e.status ?? 0)
                {
                    return (clock, .unreachable, nil)
                } catch let e as ControllerClientError where e.status == 401 || e.status == 403 {
                    return (clock, .refused("\(e)"), nil)
                } catch {
                    return (clock, .unknown, nil)
                }
            }
            clock = c
            view = v
            if let revoked { events?.yield(.revoked(revoked)) }
        } catch {
            clock = nil  // the TPM did not answer (gone, reset, restarted): the machine closes an open gate
        }
        events?.yield(.tick(now: nodeNow(), clock: clock, controller: view))
        await refreshPluginStates()
        writeStatus()
    }

    func refreshPluginStates() async {
        for p in plugins { status.plugins[p.name] = await p.state() }
    }

    func currentReport() -> NodeReport.State {
        NodeReport.State(
            phase: machine.phase.rawValue, gateOpen: machine.gateOpen, reason: Self.truncated(machine.reason, 2048),
            plugins: Dictionary(
                status.plugins.prefix(32).map { (Self.truncated($0.key, 64), Self.truncated($0.value, 512)) }
            ) { a, _ in a }, nextAttestation: nextAttestation, attestation: gateAttestation?.nonce)
    }

    /// `text` cut to at most `bytes` UTF-8 bytes, at a character boundary (the controller counts bytes).
    static func truncated(_ text: String, _ bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        var out = ""
        var used = 0
        for c in text {
            let n = String(c).utf8.count
            guard used + n <= bytes - 3 else { break }
            out.append(c)
            used += n
        }
        return out + "…"
    }

    // MARK: Helpers

    /// The node's own time: the wall clock at start plus the monotonic time since (immune to the wall clock being
    /// set back or forward while it runs).
    func nodeNow() -> Date { startedWall.addingTimeInterval((ContinuousClock.now - started).milliseconds / 1000) }

    func eventLog() throws -> [UInt8]? {
        guard let path = configuration.eventLogPath else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NodeError("cannot read the event log \(path)")
        }
        guard data.count <= UnverifiedEventLog.maxLogSize else { throw NodeError("the event log \(path) is too large") }
        return Array(data)
    }

    /// Sorts an error into the event the machine understands.
    func classify(_ error: any Error) -> NodeStateMachine.Event {
        switch error {
        case let e as ControllerClientError:
            if e.code == "device_revoked" { return .revoked(e.reason) }
            if e.status == nil { return .unreachable(e.reason) }
            // Only a gateway that could not reach it counts as unreachable; a 500 is the controller's own answer.
            if let s = e.status, [502, 503, 504].contains(s) { return .unreachable("\(e)") }
            // Asked too often, or raced with another attestation of this device: nothing was judged; try again
            // after the back-off (a verdict, not this, is what closes the gate).
            if e.status == 429 || e.code == "attestation_raced" { return .unreachable("\(e)") }
            return .failed("\(e.code): \(e.reason)")
        case let e as TPMError:
            return .stepFailed("TPM: \(e)")
        default:
            return .stepFailed("\(error)")
        }
    }

    func writeStatus() {
        status.phase = machine.phase.rawValue
        status.gateOpen = machine.gateOpen
        status.reason = machine.reason
        status.updatedAt = Date()
        try? status.write(stateDirectory: configuration.stateDirectory)
    }

    func say(_ line: String) {
        output("\(Self.time(Date())) [node] \(line)")
    }

    /// `rule (PCR n) (event m), …`: the failed rules without their expected and found values (those are in the
    /// status and on the controller).
    static func summary(_ failures: [String]) -> String {
        failures.map { line in
            let head = line.split(separator: ":", maxSplits: 1).first.map(String.init) ?? line
            if let r = line.range(of: "(event ", options: .backwards), line.hasSuffix(")") {
                return head + " " + line[r.lowerBound...]
            }
            return head
        }.joined(separator: ", ")
    }

    static func time(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "HH:mm:ss.SSS"
        return f.string(from: date)
    }

    static func signalSource(_ signal: Int32, _ handler: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
        Glibc.signal(signal, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
        source.setEventHandler(handler: handler)
        source.resume()
        return source
    }
}

extension Duration {
    var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}
