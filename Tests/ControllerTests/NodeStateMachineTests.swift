import Attest
import AttestTPM
import Foundation
import Node
import ProcessSupport
import Testing

/// The node's state machine on its own: every event in every phase (no crash path, no gate opened by anything but
/// the whole chain), and each thing that must close the gate closing it.
struct NodeStateMachineTests {
    typealias M = NodeStateMachine
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let clock = TPMSClockInfo(clock: 1000, resetCount: 3, restartCount: 0, safe: true)
    static func pass(grace: TimeInterval? = nil) -> M.Pass {
        M.Pass(
            nonce: "aa", policy: "fleet@1", expires: now.addingTimeInterval(900),
            offlineUntil: grace.map { now.addingTimeInterval($0) }, resetCount: 3, restartCount: 0)
    }

    /// Every kind of event, with representative values.
    static let events: [M.Event] = [
        .recovered, .connected, .passed(pass()), .failed("pcrs.sha256.4"), .unreachable("refused"), .unlocked,
        .released, .started, .stepFailed("tpm"), .closed, .timer, .attestNow, .revoked("revoked"),
        .tick(now: now, clock: clock, controller: .answered(latestPass: true)),
        .tick(now: now, clock: nil, controller: .unknown),
        .tick(now: now.addingTimeInterval(1000), clock: clock, controller: .answered(latestPass: true)),
        .tick(
            now: now, clock: TPMSClockInfo(clock: 5, resetCount: 4, restartCount: 0, safe: true), controller: .unknown),
        .tick(now: now, clock: clock, controller: .answered(latestPass: false)),
        .tick(now: now, clock: clock, controller: .unreachable), .shutdown,
    ]

    /// The machine driven along the happy path to the gate, stopping at each phase on the way.
    static func machines() -> [(String, M)] {
        var out: [(String, M)] = []
        var m = M()
        out.append(("recovering", m))
        for e: M.Event in [.recovered, .connected, .passed(pass()), .unlocked, .released, .started] {
            _ = m.handle(e)
            out.append(("\(m.phase)", m))
        }
        var re = m
        _ = re.handle(.timer)
        out.append(("re-attesting", re))
        var closing = m
        _ = closing.handle(.revoked("x"))
        out.append(("closing", closing))
        var waiting = closing
        _ = waiting.handle(.closed)
        out.append(("waiting", waiting))
        var stopping = m
        _ = stopping.handle(.shutdown)
        out.append(("shutting down", stopping))
        var stopped = stopping
        _ = stopped.handle(.closed)
        out.append(("stopped", stopped))
        return out
    }

    @Test func everyEventInEveryPhaseIsHandledAndNeverOpensTheGateOutOfTurn() {
        for (name, machine) in Self.machines() {
            for event in Self.events {
                var m = machine
                let actions = m.handle(event)
                // The gate opens only on `.started` in `.starting`.
                if !machine.gateOpen && m.gateOpen {
                    #expect(machine.phase == .starting, "\(name): \(event) opened the gate")
                    if case .started = event {} else { Issue.record("\(name): \(event) opened the gate") }
                }
                // Plugins start only from `.starting`'s predecessor; secrets only after unlocking.
                if actions.contains(.startPlugins) { #expect(machine.phase == .releasing, "\(name): \(event)") }
                if actions.contains(.releaseSecrets) { #expect(machine.phase == .unlocking, "\(name): \(event)") }
                if actions.contains(.unlockVaults) {
                    #expect(machine.phase == .attesting && !machine.gateOpen, "\(name): \(event)")
                }
                // An open gate always has the pass it opened on.
                if m.gateOpen { #expect(m.pass != nil, "\(name): \(event)") }
                // At most one step at a time.
                let steps = actions.filter { a in
                    switch a {
                    case .schedule, .exit: false
                    default: true
                    }
                }
                #expect(steps.count <= 1, "\(name): \(event) → \(actions)")
            }
        }
    }

    /// A long random walk: whatever order events come in, the invariants hold, and a gate that opens was preceded
    /// by pass → unlocked → released → started, in that order, since it last closed.
    @Test func randomWalksKeepTheChain() {
        var generator = SplitMix64(seed: 0x5EED)
        for _ in 0..<200 {
            var m = M()
            var chain: [String] = []
            for _ in 0..<300 {
                let event = Self.events[Int(generator.next() % UInt64(Self.events.count))]
                let wasOpen = m.gateOpen
                let phase = m.phase
                _ = m.handle(event)
                switch (phase, event) {
                case (.attesting, .passed) where !wasOpen: chain = ["passed"]
                case (.unlocking, .unlocked): chain.append("unlocked")
                case (.releasing, .released): chain.append("released")
                case (.starting, .started): chain.append("started")
                default: break
                }
                if !wasOpen && m.gateOpen {
                    #expect(chain == ["passed", "unlocked", "released", "started"], "opened after \(chain)")
                }
                if m.phase == .stopped { #expect(!m.gateOpen) }
            }
        }
    }

    static func open(grace: TimeInterval? = nil) -> M {
        var m = M()
        for e: M.Event in [.recovered, .connected, .passed(pass(grace: grace)), .unlocked, .released, .started] {
            _ = m.handle(e)
        }
        return m
    }

    @Test(arguments: [
        ("revoked", M.Event.revoked("device revoked")),
        (
            "TPM reset",
            .tick(
                now: now, clock: TPMSClockInfo(clock: 1, resetCount: 4, restartCount: 0, safe: true),
                controller: .unknown)
        ),
        (
            "TPM restart",
            .tick(
                now: now, clock: TPMSClockInfo(clock: 1, resetCount: 3, restartCount: 1, safe: true),
                controller: .unknown)
        ),
        ("TPM gone", .tick(now: now, clock: nil, controller: .unknown)),
        ("result expired", .tick(now: now.addingTimeInterval(901), clock: clock, controller: .unknown)),
        ("controller withdrew the pass", .tick(now: now, clock: clock, controller: .answered(latestPass: false))),
        ("failed verdict pushed", .failed("pcrs.sha256.4")),
    ])
    func eachWithdrawalClosesAnOpenGate(_ name: String, _ event: M.Event) {
        var m = Self.open()
        #expect(m.gateOpen)
        let actions = m.handle(event)
        #expect(actions.count == 1)
        guard case .closeGate(let why) = actions.first else {
            Issue.record("\(name): \(actions)")
            return
        }
        #expect(!why.isEmpty)
        #expect(m.phase == .closing)
        _ = m.handle(.closed)
        #expect(!m.gateOpen && m.pass == nil && m.phase == .waiting)
    }

    @Test func aFailedReattestationClosesAndSchedulesABackoff() {
        var m = Self.open()
        #expect(m.handle(.timer) == [.attest])
        #expect(m.gateOpen)  // still open while re-attesting
        let actions = m.handle(.failed("pcrs.sha256.4 (PCR 4)"))
        #expect(actions == [.closeGate("attestation failed: pcrs.sha256.4 (PCR 4)")])
        #expect(m.handle(.closed) == [.schedule(.backoff(1))])
    }

    @Test func anUnreachableControllerKeepsTheGateOnlyWithinTheOfflineGrace() {
        // No grace: the re-attestation that cannot reach the controller closes the gate.
        var strict = Self.open()
        _ = strict.handle(.tick(now: Self.now, clock: Self.clock, controller: .unknown))
        _ = strict.handle(.timer)
        #expect(
            strict.handle(.unreachable("connection refused")).first.map {
                if case .closeGate = $0 { true } else { false }
            } == true)

        // 60 s of grace: the gate stays open and retries, until the grace runs out.
        var lenient = Self.open(grace: 60)
        _ = lenient.handle(.tick(now: Self.now.addingTimeInterval(10), clock: Self.clock, controller: .unknown))
        _ = lenient.handle(.timer)
        #expect(lenient.handle(.unreachable("connection refused")) == [.schedule(.backoff(1))])
        #expect(lenient.gateOpen && lenient.offline)
        #expect(
            lenient.handle(.tick(now: Self.now.addingTimeInterval(30), clock: Self.clock, controller: .unreachable))
                == [])
        let late = lenient.handle(
            .tick(now: Self.now.addingTimeInterval(61), clock: Self.clock, controller: .unreachable))
        #expect(late.first.map { if case .closeGate = $0 { true } else { false } } == true)

        // A pass again ends the offline state.
        var back = Self.open(grace: 60)
        _ = back.handle(.tick(now: Self.now.addingTimeInterval(10), clock: Self.clock, controller: .unknown))
        _ = back.handle(.timer)
        _ = back.handle(.unreachable("x"))
        _ = back.handle(.timer)
        _ = back.handle(.passed(Self.pass(grace: 60)))
        #expect(back.gateOpen && !back.offline)
    }

    @Test func shutdownClosesTheGateFromEveryPhaseAndExits() {
        for (name, machine) in Self.machines() where machine.phase != .stopped {
            var m = machine
            var actions = m.handle(.shutdown)
            // A step in flight finishes first; feed each phase's plausible result until the machine exits.
            for _ in 0..<10 where !actions.contains(.exit) {
                let next: M.Event
                switch m.phase {
                case .recovering: next = .recovered
                case .connecting: next = .connected
                case .attesting: next = .passed(Self.pass())
                case .unlocking: next = .unlocked
                case .releasing: next = .released
                case .starting: next = .started
                case .closing: next = .closed
                case .open, .waiting, .stopped: next = .timer
                }
                actions = m.handle(next)
            }
            #expect(actions.contains(.exit), "\(name): never exited")
            #expect(!m.gateOpen && m.phase == .stopped, "\(name)")
        }
    }

    @Test func backoffGrowsWithJitterAndTheIntervalIsJittered() {
        var c = NodeConfiguration(
            controllerURL: "https://x", caPEM: "", tcti: .init(name: "swtpm", configuration: ""),
            stateDirectory: "/tmp",
            eventLogPath: nil, enrollToken: nil, vaults: [])
        c.interval = 100
        c.jitter = 0.2
        c.backoffBase = 1
        c.backoffMax = 30
        #expect(c.seconds(for: .interval, random: 0) == 100)
        #expect(c.seconds(for: .interval, random: 0.999) > 80)
        #expect(c.seconds(for: .backoff(1), random: 0.999) < 1.01)
        #expect(c.seconds(for: .backoff(4), random: 0.999) > 7.9)
        #expect(c.seconds(for: .backoff(40), random: 0.999) <= 30)
        #expect(c.seconds(for: .backoff(40), random: 0) >= 15)
    }
}
