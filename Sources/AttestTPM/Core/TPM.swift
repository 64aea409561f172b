import Attest
internal import CTSS2
public import Logging
import NIOCore
import NIOPosix

/// A TPM 2.0, reached through ESAPI (libtss2-esys). The one owner of the non-thread-safe
/// `ESYS_CONTEXT`: every TPM command runs on this actor.
///
/// ESAPI calls block (an RSA primary takes seconds on real TPMs), so the actor runs on a dedicated
/// NIO event-loop thread rather than the cooperative pool. `ESYS_TR` handles never leave the actor:
/// transient objects and sessions are used inside scoped calls (``withPrimary(_:template:authValue:_:)``,
/// ``withLoaded(parent:private:public:authValue:_:)``, ``withPolicySession(bind:salt:_:)``) that flush
/// them on every exit path.
public actor TPM {
    /// Threads for TPM actors; process-wide and never shut down (like NIO's singletons). They spend their time
    /// blocked in ESAPI waiting for a TPM, not computing, so there are more of them than cores: actors on
    /// different TPMs (a test run has dozens of simulators) rarely wait behind each other's slow commands.
    private static let threads = MultiThreadedEventLoopGroup(numberOfThreads: 8)

    private let loop: any EventLoop
    var context: ESYSContext
    public nonisolated let tcti: TCTIConfiguration
    let logger: Logger
    /// TPM_PT_NV_BUFFER_MAX, read once.
    var cachedNVBufferMax: Int?
    var cachedActiveBanks: [TPMAlgorithmID]?

    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        loop.executor.asUnownedSerialExecutor()
    }

    /// How long the first command may take before the TPM is declared unresponsive.
    public static let defaultResponseTimeoutMilliseconds: Int32 = 3000
    /// How long any later command may wait for its response before it fails with ``TPMError/Code/timeout``
    /// (after which this connection refuses further commands): generous enough for RSA key generation on a
    /// slow TPM, short enough that a wedged TPM or simulator never hangs the agent.
    public static let defaultCommandTimeoutMilliseconds: Int32 = 120_000

    private init(context: consuming ESYSContext, tcti: TCTIConfiguration, loop: any EventLoop, logger: Logger) {
        self.context = context
        self.tcti = tcti
        self.loop = loop
        self.logger = logger
    }

    /// Connects, checks that the TPM answers within `timeoutMilliseconds`, and issues `TPM2_Startup(CLEAR)`
    /// if the TPM has not been started (a simulator; firmware starts real TPMs).
    ///
    /// Never falls back to anything: if no TPM answers, this throws ``TPMError/Code/unavailable`` or
    /// ``TPMError/Code/timeout`` with a one-line reason. Every later command is bounded by
    /// `commandTimeoutMilliseconds` (see ``defaultCommandTimeoutMilliseconds``).
    public static func open(
        _ tcti: TCTIConfiguration,
        timeoutMilliseconds: Int32 = defaultResponseTimeoutMilliseconds,
        commandTimeoutMilliseconds: Int32 = defaultCommandTimeoutMilliseconds,
        logger: Logger = Logger(label: "vigil.tpm")
    ) async throws(TPMError) -> TPM {
        let loop = threads.next()
        let context: ESYSContext
        do {
            context = try ESYSContext(
                tcti: tcti, connectTimeoutMilliseconds: timeoutMilliseconds,
                commandTimeoutMilliseconds: commandTimeoutMilliseconds)
        }
        let tpm = TPM(context: context, tcti: tcti, loop: loop, logger: logger)
        try await tpm.probeAndStartup(timeoutMilliseconds: timeoutMilliseconds)
        if tcti.name == "swtpm" || tcti.name == "mssim" {
            try await tpm.flushStaleContexts()
        }
        return tpm
    }

    /// Whether a command went unanswered past the command timeout. The connection then refuses every
    /// further command (the TPM still owes an answer); open a new ``TPM`` to go on.
    public var isClosedByTimeout: Bool { context.deadlineExpired }

    /// The TPM commands sent on this connection so far (including ESAPI's own, e.g. TPM2_ReadPublic when it
    /// resolves a handle): what a measured path costs in round trips.
    public var commandsSent: Int { context.commandsSent }

    /// Every libtss2 call of the actor goes through here: ``tss2Call(_:logger:_:)``, with a command that went
    /// unanswered past the command timeout reported as ``TPMError/Code/timeout`` rather than a TCTI I/O error.
    func tss2Call(_ function: StaticString, logger: Logger? = nil, _ body: () -> TSS2_RC) throws(TPMError) {
        do {
            try AttestTPM.tss2Call(function, logger: logger, body)
        } catch {
            guard context.deadlineExpired else { throw error }
            throw TPMError(
                code: .timeout,
                reason:
                    "\(function): the TPM (\(tcti)) did not answer within \(context.commandTimeoutMilliseconds) ms; "
                    + "this connection is closed to further commands",
                tss2: error.tss2)
        }
    }

    /// A simulator reached directly has no resource manager: transient objects and sessions that a killed
    /// process left loaded stay there until the TPM resets, and eventually exhaust its slots
    /// (TPM_RC_OBJECT_MEMORY). Vigil treats a simulator as its own and flushes them at open; through
    /// `/dev/tpmrm0` the kernel's resource manager does this for every process.
    ///
    /// Corresponding ESAPI calls: `Esys_TR_FromTPMPublic`, `Esys_FlushContext` (TPM2_FlushContext, Part 3 §28.4).
    func flushStaleContexts() throws(TPMError) {
        let ctx = context.raw
        var flushed = 0
        for first in [TPMHandle.transientFirst, .hmacSessionFirst, .policySessionFirst] {
            for handle in try handles(from: first) {
                var tr: ESYS_TR = ESYS.none
                guard Esys_TR_FromTPMPublic(ctx, handle.rawValue, ESYS.none, ESYS.none, ESYS.none, &tr) == 0 else {
                    continue
                }
                if Esys_FlushContext(ctx, tr) == 0 {
                    flushed += 1
                } else {
                    closeReference(tr)
                }
            }
        }
        if flushed > 0 {
            logger.info("flushed stale TPM contexts", metadata: ["tpm.flushed": "\(flushed)", "tpm.tcti": "\(tcti)"])
        }
    }

    /// Sends TPM2_GetCapability with a bounded wait (ESAPI's async API and `Esys_SetTimeout`), then
    /// TPM2_Startup(CLEAR) if the TPM answers TPM_RC_INITIALIZE.
    private func probeAndStartup(timeoutMilliseconds: Int32) throws(TPMError) {
        let ctx = context.raw
        try tss2Call("Esys_GetCapability_Async", logger: logger) {
            Esys_GetCapability_Async(
                ctx, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE),
                TPMCapability.tpmProperties.rawValue, TPMProperty.manufacturer.rawValue, 1)
        }
        _ = Esys_SetTimeout(ctx, timeoutMilliseconds)
        var more: UInt8 = 0
        var data: UnsafeMutablePointer<TPMS_CAPABILITY_DATA>? = nil
        let rc = Esys_GetCapability_Finish(ctx, &more, &data)
        Esys_Free(data)
        _ = Esys_SetTimeout(ctx, -1)
        if rc == 0 { return }
        let error = TSS2Error(rawValue: rc)
        if error.isTPM(.initialize) {
            try startup(clear: true)
            return
        }
        // TSS2_BASE_RC_TRY_AGAIN (9) in any layer: nothing came back in time.
        if rc & 0xFFFF == 9 {
            throw TPMError(
                code: .timeout, reason: "TCTI \(tcti): the TPM did not answer within \(timeoutMilliseconds) ms",
                tss2: error)
        }
        throw TPMError(code: .unavailable, reason: "TCTI \(tcti): the TPM did not answer: \(error)", tss2: error)
    }

    /// Resets the TPM's state for a fresh boot (`TPM_SU_CLEAR`) or resumes it (`TPM_SU_STATE`).
    /// TPM_RC_INITIALIZE (already started) is not an error.
    ///
    /// Corresponding ESAPI call: `Esys_Startup` (TPM2_Startup, Part 3 §9.3).
    public func startup(clear: Bool = true) throws(TPMError) {
        let ctx = context.raw
        do {
            try tss2Call("Esys_Startup", logger: logger) { Esys_Startup(ctx, clear ? 0x0000 : 0x0001) }
        } catch let e where e.isTPM(.initialize) {
            return
        }
    }
}
