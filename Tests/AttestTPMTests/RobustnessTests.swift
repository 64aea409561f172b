import Attest
import AttestTPM
import Crypto
import Foundation
import ProcessSupport
import Testing
import VigilTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// No leaked TPM objects or sessions, and a TPM that is not there fails fast and cleanly.
@Suite(.enabled(if: SoftwareTPM.canRun, "swtpm is not installed (apt-get install swtpm swtpm-tools)"))
struct RobustnessTests {
    /// Transient objects and sessions loaded in the TPM right now (TPM_CAP_HANDLES).
    static func loaded(_ tpm: TPM) async throws -> [TPMHandle] {
        try await tpm.handles(from: .transientFirst) + tpm.handles(from: .hmacSessionFirst)
            + tpm.handles(from: .policySessionFirst)
    }

    @Test func hundredsOfMixedOperationsIncludingFailuresLeaveNoObjectOrSessionLoaded() async throws {
        try await SoftwareTPM.with { tpm, _ in
            _ = try await IdentityProvisioner(tpm: tpm).provision()
            #expect(try await Self.loaded(tpm).isEmpty)
            // The check can see a leak: an object created without a scope shows up until flushed.
            let stray = try await tpm.createPrimary(.owner, template: IdentityKeyTemplates.srk)
            #expect(try await Self.loaded(tpm).count == 1)
            await tpm.flushContext(stray)
            #expect(try await Self.loaded(tpm).isEmpty)
            let selection = TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: [0, 16])])
            var operations = 0, failures = 0
            for round in 0..<40 {
                // Sealed to the PCRs as they are now.
                let sealPolicy = try await tpm.withPolicySession(trial: true) { tpm, s throws(TPMError) in
                    try tpm.policyPCR(s, selection: selection)
                    return try tpm.policyGetDigest(s)
                }
                let sealed = TPMTPublic(
                    nameAlg: .sha256, objectAttributes: [.fixedTPM, .fixedParent, .noDA], authPolicy: sealPolicy,
                    parameters: .keyedHash(scheme: .null, unique: []))
                // 1. A quote with the persistent AK.
                _ = try await tpm.withPersistent(IdentityKeyTemplates.akHandle) { tpm, ak throws(TPMError) in
                    try tpm.quote(signingKey: ak, qualifyingData: [UInt8(round)], selection: selection)
                }
                // 2. A transient key: create, load, sign.
                _ = try await tpm.withPersistent(IdentityKeyTemplates.srkHandle) { tpm, srk throws(TPMError) in
                    let blob = try tpm.create(parent: srk, template: IdentityKeyTemplates.deviceKey)
                    return try tpm.withLoaded(parent: srk, blob) { tpm, key throws(TPMError) in
                        try tpm.sign(key, digest: [UInt8](repeating: UInt8(round), count: 32))
                    }
                }
                // 3. Seal, then unseal in a salted policy session, failing on odd rounds after a PCR extend.
                do {
                    _ = try await tpm.withPersistent(IdentityKeyTemplates.srkHandle) { tpm, srk throws(TPMError) in
                        let blob = try tpm.create(parent: srk, template: sealed, sealedData: SecretBytes([1, 2, 3]))
                        return try tpm.withLoaded(parent: srk, blob) { tpm, item throws(TPMError) in
                            try tpm.withPolicySession(salt: srk) { tpm, session throws(TPMError) in
                                if round % 2 == 1 {
                                    try tpm.pcrExtend(16, digests: [.sha256: [UInt8](repeating: 7, count: 32)])
                                }
                                try tpm.policyPCR(session, selection: selection)
                                return try tpm.unseal(item, session: session).count
                            }
                        }
                    }
                } catch let error as TPMError {
                    #expect(error.isTPM(.policyFail))
                    failures += 1
                }
                // 4. An HMAC session with parameter encryption around a failing command.
                do {
                    _ = try await tpm.withHMACSession { tpm, _ throws(TPMError) in
                        try tpm.nvRead(TPMHandle(0x01C0_0002), offset: 60000, size: 10)
                    }
                } catch {
                    failures += 1
                }
                // 5. A transient primary that throws inside its scope.
                do {
                    try await tpm.withPrimary(.owner, template: IdentityKeyTemplates.srk) { tpm, key throws(TPMError) in
                        _ = try tpm.sign(key, digest: [UInt8](repeating: 0, count: 32))  // a storage key cannot sign
                    }
                } catch {
                    failures += 1
                }
                // 6. Reads.
                _ = try await tpm.pcrRead(selection)
                _ = try await tpm.getRandom(16)
                operations += 7
            }
            #expect(operations == 280)
            #expect(failures == 100)  // 20 policy failures, 40 NV range errors, 40 wrong-key-type errors
            let left = try await Self.loaded(tpm)
            #expect(left.isEmpty, "left loaded: \(left)")
        }
    }

    @Test func aTCTIThatPointsNowhereFailsInOneLineWithinFiveSeconds() async throws {
        // A closed port, a missing device, an unknown TCTI, a bad port, and a server that accepts
        // connections but never answers.
        let silent = try SilentServer()
        defer { silent.stop() }

        let port = try SoftwareTPM.freePortPair()
        let configurations = [
            "swtpm:host=127.0.0.1,port=\(port)",
            "mssim:host=127.0.0.1,port=\(port)",
            "device:/dev/vigil-no-such-tpm",
            "nosuch:thing",
            "swtpm:host=127.0.0.1,port=99999",
            "swtpm:host=127.0.0.1,port=\(silent.port)",
        ]
        for text in configurations {
            let start = Date()
            let error = await #expect(throws: TPMError.self) {
                _ = try await TPM.open(try TCTIConfiguration(parsing: text))
            }
            let elapsed = Date().timeIntervalSince(start)
            #expect(elapsed < 5, "\(text) took \(elapsed) s")
            let reason = error?.reason ?? ""
            #expect(!reason.isEmpty && !reason.contains("\n"), "\(text): \(reason)")
            let codes: [TPMError.Code] = [.unavailable, .timeout, .invalidArgument]
            #expect(error.map { codes.contains($0.code) } == true, "\(text): \(String(describing: error))")
        }
    }

    /// A simulator that stops answering in the middle of a session (SIGSTOP: the socket stays open, nothing
    /// comes back) fails the next command within the command timeout instead of hanging the caller.
    @Test func aTPMThatStopsAnsweringMidSessionFailsTheCommandWithinItsTimeout() async throws {
        let simulator = try SoftwareTPM()
        defer { simulator.stop() }
        let tpm = try await TPM.open(simulator.tcti, commandTimeoutMilliseconds: 5000)
        #expect(try await tpm.getRandom(8).count == 8)
        #expect(await tpm.isClosedByTimeout == false)
        kill(simulator.processIdentifier, SIGSTOP)
        defer { kill(simulator.processIdentifier, SIGCONT) }
        let start = Date()
        let error = await #expect(throws: TPMError.self) { _ = try await tpm.getRandom(8) }
        // Not a timing assertion: it only tells "waited for the deadline" (5 s) from "hung" (for ever).
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed >= 4.9 && elapsed < 60, "took \(elapsed) s")
        #expect(error?.code == .timeout, "\(String(describing: error))")
        #expect(error?.description.contains("Esys_GetRandom") == true, "\(String(describing: error))")
        #expect(await tpm.isClosedByTimeout)
        // The TPM still owes that answer: the connection refuses further commands without sending them, so
        // without waiting for another deadline.
        let next = await #expect(throws: TPMError.self) { _ = try await tpm.getRandom(8) }
        #expect(next?.code == .timeout)
        #expect(next?.description.contains("closed to further commands") == true, "\(String(describing: next))")
        // That message is the proof it was not sent; the elapsed time is only a hint (on a loaded test process
        // the call can queue behind another TPM's slow command on a shared thread).
    }

    /// Test children (swtpm, vigil, tpm2-tools) inherit only stdin/stdout/stderr: a TPM connection that leaked
    /// into another test's long-lived swtpm would keep its simulator's only client slot busy, and every later
    /// command to it would wait for the command timeout (seen under load before ChildProcess closed them).
    @Test func childProcessesInheritOnlyTheirStandardDescriptors() throws {
        let leaky = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)  // no SOCK_CLOEXEC, like libtss2's sockets
        defer { close(leaky) }
        #expect(fcntl(leaky, F_GETFD) & FD_CLOEXEC == 0)
        let result = try ProcessRunner.run("/bin/sh", ["-c", "ls /proc/$$/fd"])
        let descriptors = result.stdout.split(separator: "\n").compactMap { Int32($0) }.sorted()
        #expect(descriptors == [0, 1, 2], "the child had \(descriptors)")
    }

    /// A simulator whose control channel answers while its TPM port accepts and stays silent: the swtpm TCTI
    /// ignores ESAPI's first-command timeout, so TCTIDeadline waits for the first byte itself and the open fails
    /// after the 3 s probe deadline, not after the 120 s command deadline.
    @Test func aSilentTPMBehindAWorkingControlChannelFailsAtTheProbeDeadline() async throws {
        let server = try SilentServer(answeringControlChannel: true)
        defer { server.stop() }
        let start = Date()
        let error = await #expect(throws: TPMError.self) {
            _ = try await TPM.open(try TCTIConfiguration(parsing: "swtpm:host=127.0.0.1,port=\(server.port)"))
        }
        #expect(error?.code == .timeout, "\(String(describing: error))")
        #expect(
            error?.reason.hasSuffix("the TPM did not answer within 3000 ms") == true, "\(String(describing: error))")
        // Not a timing assertion: it tells the probe deadline (3 s) from the command deadline (120 s).
        #expect(Date().timeIntervalSince(start) < 60)
    }

    @Test func theCLIReportsAMissingTPMOnOneLineOfStderr() throws {
        let port = try SoftwareTPM.freePortPair()
        let result = try ProcessRunner.run(
            ProcessRunner.vigilExecutable, ["tpm", "info", "--tcti", "swtpm:host=127.0.0.1,port=\(port)"])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        let expected = "vigil: TCTI swtpm:host=127.0.0.1,port=\(port): nothing answers"
        #expect(result.stderr.hasPrefix(expected), "\(result.stderr)")
    }

    @Test func secretsPrintRedacted() {
        let secret = SecretBytes(utf8: "hunter2")
        #expect("\(secret)" == "<redacted 7 bytes>")
        #expect(String(reflecting: secret) == "<redacted 7 bytes>")
        #expect(secret.constantTimeEquals(Array("hunter2".utf8)))
    }

    @Test func rebootResetsPCRsAndIncrementsResetCountInQuotes() async throws {
        let simulator = try SoftwareTPM()
        defer { simulator.stop() }
        func quoteClock() async throws -> TPMSClockInfo {
            let tpm = try await simulator.open()
            _ = try await IdentityProvisioner(tpm: tpm).provision()
            let signed = try await tpm.withPersistent(IdentityKeyTemplates.akHandle) { tpm, ak throws(TPMError) in
                try tpm.quote(
                    signingKey: ak, qualifyingData: [9],
                    selection: TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: [0])]))
            }
            return try TPMSAttest(bytes: signed.attest).clockInfo
        }
        let before = try await quoteClock()
        try simulator.reboot()
        let after = try await quoteClock()
        #expect(after.resetCount == before.resetCount + 1)
    }
}

/// A TCP server on 127.0.0.1 that accepts connections and never answers (both the port and port + 1,
/// like a swtpm that hangs). With `answeringControlChannel`, port + 1 answers every request with 8 zero
/// bytes (a swtpm whose control channel works while its TPM does not).
final class SilentServer: @unchecked Sendable {
    // @unchecked Sendable: `fds` is set in init; `stopped` is only written under `lock`.
    let port: Int
    private var fds: [Int32] = []
    private let lock = NSLock()
    private var stopped = false

    init(answeringControlChannel: Bool = false) throws {
        let port = try SoftwareTPM.freePortPair()
        self.port = port
        for p in [port, port + 1] {
            guard let fd = SoftwareTPM.boundSocket(port: p), listen(fd, 8) == 0 else {
                throw SoftwareTPM.StartError(description: "cannot listen on \(p)")
            }
            fds.append(fd)
        }
        if answeringControlChannel {
            let control = fds[1]
            Thread.detachNewThread { [self] in
                while !isStopped {
                    var pfd = pollfd(fd: control, events: Int16(POLLIN), revents: 0)
                    guard poll(&pfd, 1, 100) > 0 else { continue }
                    let client = accept(control, nil, nil)
                    guard client >= 0 else { continue }
                    var request = [UInt8](repeating: 0, count: 64)
                    var cpfd = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
                    if poll(&cpfd, 1, 1000) > 0,
                        request.withUnsafeMutableBytes({ recv(client, $0.baseAddress, $0.count, 0) }) > 0
                    {
                        let answer = [UInt8](repeating: 0, count: 8)
                        _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    }
                    close(client)
                }
            }
        }
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    func stop() {
        lock.withLock { stopped = true }
        usleep(150_000)  // the control thread notices within one 100 ms poll
        for fd in fds { close(fd) }
    }
}

/// `vigil tpm provision` killed with SIGKILL at every point of its run: each time, the next run completes the
/// identity, never finds a half-made object it cannot use, and leaves nothing loaded. Between kills the
/// identity is removed again, so every kill lands in a full provisioning, 5 ms later than the one before,
/// until a run finishes before its kill.
@Suite(.enabled(if: SoftwareTPM.canRun, "swtpm is not installed (apt-get install swtpm swtpm-tools)"))
struct ProvisioningCrashTests {
    @Test func killNineAtEveryStepOfProvisioningThenProvisionCompletesTheIdentity() async throws {
        let simulator = try SoftwareTPM()
        defer { simulator.stop() }
        let vigil = ProcessRunner.vigilExecutable
        var kills = 0
        var completedUnkilled = false
        for step in 0..<200 where !completedUnkilled {
            let process = try ChildProcess(
                vigil, ["tpm", "provision"],
                environment: ChildProcess.currentEnvironment().merging(["VIGIL_TCTI": simulator.tctiString]) { _, n in n
                })
            usleep(UInt32(step * 5_000))
            if process.isRunning {
                process.kill(SIGKILL)
                kills += 1
            }
            let ended = try #require(process.wait(timeoutSeconds: 120), "vigil tpm provision did not end")
            completedUnkilled = ended == .exited(0)

            // Whatever the kill left, one run completes the identity and the next changes nothing.
            let tpm = try await simulator.open()
            _ = try await IdentityProvisioner(tpm: tpm).provision()
            let again = try await IdentityProvisioner(tpm: tpm).provision()
            #expect(!again.changed, "after a kill at step \(step): \(again.items)")
            let device = try #require(try await tpm.readPublic(IdentityKeyTemplates.deviceKeyHandle))
            let der = try #require(try await tpm.nvReadAll(IdentityKeyTemplates.deviceCertificateIndex))
            #expect(DeviceCertificate.validStored(der, for: device.publicArea) != nil)
            #expect(try await RobustnessTests.loaded(tpm).isEmpty)
            // Back to the factory state for the next, later kill.
            for handle in [
                IdentityKeyTemplates.srkHandle, IdentityKeyTemplates.akHandle, IdentityKeyTemplates.deviceKeyHandle,
                EndorsementKeyTemplate.eccNISTP256.persistentHandle,
            ] {
                try await tpm.evictPersistent(handle)
            }
            try await tpm.nvUndefineSpace(IdentityKeyTemplates.deviceCertificateIndex)
        }
        #expect(kills >= 1)
        print("provisioning killed at \(kills) points before a run completed on its own")
        #expect(completedUnkilled)
    }
}
