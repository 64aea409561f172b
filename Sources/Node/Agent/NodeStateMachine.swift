public import Attest
public import Foundation

/// The node agent's state machine: pure (no I/O, no clock of its own), so every event can be tested in every
/// phase. The agent feeds it ``Event``s (results of the actions it asked for, timers, signals, the watch on the
/// TPM and the controller) and performs the ``Action``s it returns.
///
/// The gate opens only at the end of the chain: attested (a pass, verified result) → vaults unlocked → secrets
/// released → plugins started. Anything that withdraws that proof (a failed or expired verdict, a revocation, a
/// TPM reset or restart, an unreachable controller past the policy's offline grace, shutdown) closes it: plugins
/// stop, secrets are wiped, vaults lock. An event a phase does not expect is ignored, never a crash.
public struct NodeStateMachine: Sendable {
    /// Where the agent is.
    public enum Phase: String, Sendable, CaseIterable, Codable {
        /// Undoing what a previous run left (workloads, mounts, networks, unlocked vaults).
        case recovering
        /// Opening the TPM and onboarding (idempotent).
        case connecting
        /// Quote over a fresh controller nonce, event log, verdict.
        case attesting
        /// Unsealing the vaults (or recovering them from escrow).
        case unlocking
        /// Fetching the plugins' secrets, wrapped to this TPM.
        case releasing
        /// Starting plugins in order.
        case starting
        /// The gate is open: plugins run on a passing, unexpired attestation.
        case open
        /// Stopping plugins, wiping secrets, locking vaults.
        case closing
        /// The gate is closed; the next attempt is scheduled.
        case waiting
        /// Shut down.
        case stopped
    }

    /// The proof a gate opens on.
    public struct Pass: Sendable, Hashable {
        /// The result's nonce (the attestation's id).
        public var nonce: String
        /// The policy, `name@version`.
        public var policy: String
        /// When the signed result expires.
        public var expires: Date
        /// Until when the gate may stay open while the controller cannot be reached (nil: not at all).
        public var offlineUntil: Date?
        /// The TPM's reset and restart counters when it passed.
        public var resetCount: UInt32
        /// The TPM's restart counter when it passed.
        public var restartCount: UInt32
        /// A pass.
        public init(
            nonce: String, policy: String, expires: Date, offlineUntil: Date?, resetCount: UInt32, restartCount: UInt32
        ) {
            self.nonce = nonce
            self.policy = policy
            self.expires = expires
            self.offlineUntil = offlineUntil
            self.resetCount = resetCount
            self.restartCount = restartCount
        }
    }

    /// What happened.
    public enum Event: Sendable {
        /// Recovery finished.
        case recovered
        /// The TPM is open and the device is onboarded.
        case connected
        /// The controller passed the device (result verified).
        case passed(Pass)
        /// The controller failed the device or refused its evidence (the rules or reason).
        case failed(String)
        /// The controller could not be reached.
        case unreachable(String)
        /// The vaults are unlocked.
        case unlocked
        /// The secrets are released.
        case released
        /// Every plugin started.
        case started
        /// A local step failed (TPM, vault, plugin).
        case stepFailed(String)
        /// Closing finished.
        case closed
        /// A scheduled attempt is due.
        case timer
        /// Re-attest now (SIGUSR1, `vigil node attest-now`).
        case attestNow
        /// The controller refused the device as revoked.
        case revoked(String)
        /// The periodic watch: the time, the TPM's counters (nil: the TPM did not answer), whether the controller
        /// answered and whether it still stands behind a pass.
        case tick(now: Date, clock: TPMSClockInfo?, controller: ControllerView)
        /// SIGTERM / SIGINT.
        case shutdown
    }

    /// What the periodic watch learned from the controller.
    public enum ControllerView: Sendable, Hashable {
        /// It answered: its latest verdict for this device is (or is not) an unexpired pass.
        case answered(latestPass: Bool)
        /// It refused this device's report (unknown device, rebound keys, …): it no longer stands behind it.
        case refused(String)
        /// It could not be reached.
        case unreachable
        /// Not asked this time.
        case unknown
    }

    /// When to try again.
    public enum Delay: Sendable, Hashable {
        /// At once.
        case now
        /// After the re-attestation interval (jittered by the agent).
        case interval
        /// Exponential backoff: the attempt number (jittered by the agent).
        case backoff(Int)
    }

    /// What the agent must do.
    public enum Action: Sendable, Hashable {
        case recover, connect, attest, unlockVaults, releaseSecrets, startPlugins
        /// Stop plugins (deadline, then kill), wipe secrets, lock vaults.
        case closeGate(String)
        /// Schedule ``Event/timer``.
        case schedule(Delay)
        /// Exit the service.
        case exit
    }

    /// The phase.
    public private(set) var phase: Phase = .recovering
    /// Whether plugins may run.
    public private(set) var gateOpen = false
    /// Why the gate is as it is.
    public private(set) var reason = "starting"
    /// The pass the gate is open on.
    public private(set) var pass: Pass?
    /// Consecutive failed attempts (for backoff).
    public private(set) var attempt = 0
    /// Whether the controller was unreachable at the last re-attestation while the gate stayed open on grace.
    public private(set) var offline = false
    var shuttingDown = false
    var retryAfterClose: Delay = .backoff(1)

    /// A machine in ``Phase/recovering``; the agent starts it with ``Action/recover``.
    public init() {}

    /// The first action.
    public static let firstAction = Action.recover

    /// Handles `event` and returns what to do.
    public mutating func handle(_ event: Event) -> [Action] {
        if case .shutdown = event {
            guard !shuttingDown else { return [] }
            shuttingDown = true
            switch phase {
            case .stopped: return []
            case .closing: return []  // exits when closing finishes
            case .recovering, .connecting, .attesting, .unlocking, .releasing, .starting:
                // A step in flight finishes first; its result event then closes (handled below).
                return []
            case .open, .waiting:
                return close("shutting down", then: .now)
            }
        }
        switch (phase, event) {
        case (.recovering, .recovered):
            if shuttingDown { return finish() }
            phase = .connecting
            return [.connect]
        case (.recovering, .stepFailed(let why)):
            // Recovery is best effort; what it could not undo is reported, and the gate stays closed meanwhile.
            reason = "recovery: \(why)"
            if shuttingDown { return finish() }
            phase = .connecting
            return [.connect]

        case (.connecting, .connected):
            if shuttingDown { return close("shutting down", then: .now) }
            phase = .attesting
            return [.attest]
        case (.connecting, .unreachable(let why)), (.connecting, .stepFailed(let why)), (.connecting, .failed(let why)):
            return retry("cannot connect: \(why)")
        case (.connecting, .revoked(let why)):
            return retry("revoked: \(why)")

        case (.attesting, .passed(let p)):
            attempt = 0
            offline = false
            let previous = pass
            pass = p
            if shuttingDown { return close("shutting down", then: .now) }
            if gateOpen, let previous,
                previous.resetCount != p.resetCount || previous.restartCount != p.restartCount
            {
                // A TPM reset between two quotes, boot measurements replayed: the new pass is not the same boot.
                return close(
                    "the TPM was reset or restarted between two attestations (resetCount \(previous.resetCount) → \(p.resetCount), restartCount \(previous.restartCount) → \(p.restartCount))",
                    then: .now)
            }
            if gateOpen {
                phase = .open
                reason = "passed under \(p.policy)"
                return [.schedule(.interval)]
            }
            phase = .unlocking
            reason = "passed under \(p.policy); unlocking"
            return [.unlockVaults]
        case (.attesting, .failed(let why)):
            attempt += 1
            return close("attestation failed: \(why)", then: .backoff(attempt))
        case (.attesting, .revoked(let why)):
            attempt += 1
            return close("revoked: \(why)", then: .backoff(attempt))
        case (.attesting, .unreachable(let why)), (.attesting, .stepFailed(let why)):
            attempt += 1
            if case .unreachable = event, gateOpen, let p = pass, let until = p.offlineUntil, until > lastNow,
                p.expires > lastNow, !shuttingDown
            {
                // The policy grants an offline grace and the signed result still holds: keep going, retry.
                phase = .open
                offline = true
                reason = "controller unreachable (\(why)); offline grace until \(until)"
                return [.schedule(.backoff(attempt))]
            }
            return close("cannot attest: \(why)", then: .backoff(attempt))

        case (.unlocking, .unlocked):
            if shuttingDown { return close("shutting down", then: .now) }
            phase = .releasing
            return [.releaseSecrets]
        case (.releasing, .released):
            if shuttingDown { return close("shutting down", then: .now) }
            phase = .starting
            return [.startPlugins]
        case (.starting, .started):
            if shuttingDown { return close("shutting down", then: .now) }
            phase = .open
            gateOpen = true
            reason = "passed under \(pass?.policy ?? "?")"
            return [.schedule(.interval)]
        case (.unlocking, .stepFailed(let why)), (.releasing, .stepFailed(let why)), (.starting, .stepFailed(let why)),
            (.unlocking, .failed(let why)), (.releasing, .failed(let why)), (.starting, .failed(let why)),
            (.unlocking, .unreachable(let why)), (.releasing, .unreachable(let why)):
            attempt += 1
            return close("cannot open the gate: \(why)", then: .backoff(attempt))
        case (.unlocking, .revoked(let why)), (.releasing, .revoked(let why)), (.starting, .revoked(let why)):
            attempt += 1
            return close("revoked: \(why)", then: .backoff(attempt))

        case (.open, .timer), (.open, .attestNow):
            phase = .attesting
            return [.attest]
        case (.open, .revoked(let why)):
            return close("revoked: \(why)", then: .backoff(1))
        case (.open, .failed(let why)):
            return close("attestation failed: \(why)", then: .backoff(1))

        case (.closing, .closed):
            gateOpen = false
            pass = nil
            offline = false
            if shuttingDown { return finish() }
            phase = .waiting
            return [.schedule(retryAfterClose)]

        case (.waiting, .timer), (.waiting, .attestNow):
            phase = .connecting
            return [.connect]

        case (_, .tick(let now, let clock, let controller)):
            lastNow = now
            return watch(now: now, clock: clock, controller: controller)

        default:
            return []  // not expected in this phase (a stale timer, a late answer): ignored
        }
    }

    /// The time of the last tick (the machine has no clock of its own).
    var lastNow = Date.distantPast

    /// The periodic watch: while anything of value may be out (the gate open, or on its way to open), a TPM
    /// that was reset or restarted, an expired result, a grace that ran out, or a controller that no longer
    /// stands behind the pass closes the gate.
    mutating func watch(now: Date, clock: TPMSClockInfo?, controller: ControllerView) -> [Action] {
        // While a re-attestation runs the gate is still open: the same withdrawals apply.
        guard gateOpen, phase == .open || phase == .attesting, let p = pass else { return [] }
        guard let clock else { return close("the TPM does not answer", then: .backoff(1)) }
        if clock.resetCount != p.resetCount || clock.restartCount != p.restartCount {
            return close(
                "the TPM was reset or restarted (resetCount \(p.resetCount) → \(clock.resetCount), restartCount \(p.restartCount) → \(clock.restartCount)): its PCRs are no longer the attested boot's",
                then: .now)
        }
        if now >= p.expires {
            return close("the attestation result expired at \(p.expires)", then: .now)
        }
        if offline, let until = p.offlineUntil, now >= until {
            return close("controller unreachable past the policy's offline grace (\(until))", then: .backoff(attempt))
        }
        if offline, p.offlineUntil == nil {
            return close("controller unreachable and the policy grants no offline grace", then: .backoff(attempt))
        }
        if case .answered(latestPass: false) = controller {
            return close("the controller's latest verdict for this device is not an unexpired pass", then: .now)
        }
        if case .refused(let why) = controller {
            return close("the controller refused this device's report: \(why)", then: .backoff(1))
        }
        if case .unreachable = controller, phase == .open, !offline {
            // Not a verdict yet: attest at once; if that cannot reach the controller either, the offline grace
            // (or its absence) decides.
            phase = .attesting
            return [.attest]
        }
        return []
    }

    mutating func close(_ why: String, then retry: Delay) -> [Action] {
        reason = why
        retryAfterClose = retry
        phase = .closing
        return [.closeGate(why)]
    }

    mutating func retry(_ why: String) -> [Action] {
        attempt += 1
        reason = why
        if shuttingDown { return finish() }
        phase = .waiting
        return [.schedule(.backoff(attempt))]
    }

    mutating func finish() -> [Action] {
        phase = .stopped
        gateOpen = false
        return [.exit]
    }
}
