import Attest
public import ControllerProtocol
import Crypto
import Foundation
import Logging
import Policy

extension Controller {
    /// `POST /v1/attest/nonce`: a fresh 32-byte nonce bound to the device, single-use, expiring after
    /// ``Configuration/nonceLifetime``, with the PCRs its policy needs quoted.
    public func issueNonce(authorization: String?, method: String, path: String, body: [UInt8])
        async throws(ControllerError) -> Attestation.NonceGrant
    {
        let started = ContinuousClock.now
        let device = try await authenticate(authorization: authorization, method: method, path: path, body: body)
        let issued = try await recordNonce(device: device.id, group: device.group, note: "")
        stages.record("issue_nonce", since: started)
        return Attestation.NonceGrant(
            nonce: Hex.encode(issued.nonce), pcrSelection: issued.selection.description, expiresAt: issued.expires)
    }

    /// Issues a fresh 32-byte nonce to `device`, single-use and expiring after ``Configuration/nonceLifetime``, with
    /// the PCRs its policy needs quoted; recorded and audited in one transaction (`note` goes in the audit entry).
    func recordNonce(device: DeviceID, group: GroupName, note: String) async throws(ControllerError) -> (
        nonce: [UInt8], selection: TPMLPCRSelection, expires: Date
    ) {
        let now = clock()
        return try await backend.transaction { [self] tx throws(ControllerError) in
            try await enforceNonceRate(tx, device: device, now: now)
            var selection = TPMLPCRSelection(parsingSpec: configuration.defaultSelection) ?? TPMLPCRSelection([])
            if let policy = try await assignedPolicy(tx, device: device, group: group) {
                let required = PolicyEngine.requiredSelection(for: policy.document)
                if !required.nonEmpty.isEmpty { selection = TPMLPCRSelection(required.nonEmpty) }
            }
            let nonce = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
            let expires = now.addingTimeInterval(configuration.nonceLifetime)
            // Nonces are kept a day after they expire (so a late replay is named "used" or "expired", not unknown),
            // then swept every few seconds.
            if sweeps.due("nonces", at: now) {
                try await tx.execute(
                    "DELETE FROM nonces WHERE expires_at < ?", [.integer(now.sqlMilliseconds - 86_400_000)])
            }
            try await tx.execute(
                "INSERT INTO nonces (nonce, device_id, selection, issued_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, NULL)",
                [
                    .text(Hex.encode(nonce)), .text(device.rawValue), .text(selection.description),
                    .integer(now.sqlMilliseconds), .integer(expires.sqlMilliseconds),
                ])
            try await AuditLog.append(
                tx, backend: backend, at: now, actor: .device(device), action: "nonce", subject: device.rawValue,
                outcome: "ok", detail: "\(note)selection \(selection); expires \(expires.timeIntervalSince1970)")
            return (nonce, selection, expires)
        }
    }

    /// Refuses a nonce to a device that was issued ``Configuration/noncesPerDevicePerMinute`` in the last 60 s, with
    /// when the oldest of them leaves the window. Counted under a lock of the device's own (an advisory lock on
    /// PostgreSQL), so concurrent requests to several instances cannot all squeeze under the limit, and a flooding
    /// device waits only on itself. Refusals are not audited: a flooding device must not grow the chain.
    func enforceNonceRate(_ tx: any SQLTransaction, device: DeviceID, now: Date) async throws(ControllerError) {
        try await backend.lock(tx, key: "nonce-rate:\(device.rawValue)")
        let windowStart = now.sqlMilliseconds - 60_000
        guard
            let row = try await tx.first(
                "SELECT COUNT(*) AS n, MIN(issued_at) AS oldest FROM nonces WHERE device_id = ? AND issued_at > ?",
                [.text(device.rawValue), .integer(windowStart)]),
            try row.requiredInteger("n") >= Int64(configuration.noncesPerDevicePerMinute)
        else { return }
        let oldest = try row.integer("oldest") ?? now.sqlMilliseconds
        let wait = Int((oldest - windowStart + 999) / 1000)
        logger.warning(
            "nonce rate limit", metadata: ["device": "\(device)", "limit": "\(configuration.noncesPerDevicePerMinute)"])
        throw .rateLimited(
            "nonce_rate_limited",
            "device \(device) was issued \(configuration.noncesPerDevicePerMinute) nonces in the last 60 s, its limit; try again in \(max(1, wait)) s",
            retryAfter: wait)
    }

    /// `POST /v1/attest`: consumes the nonce, verifies the evidence with what the controller holds (the bound
    /// AK, the policy's PCRs and EK anchors, the last accepted quote), evaluates the device's policy, stores the
    /// verdict and returns it with a signed result. Evidence that cannot be verified is refused with the
    /// forgery named, and recorded as the device's latest (failed) attestation.
    public func attest(authorization: String?, method: String, path: String, body: [UInt8])
        async throws(ControllerError) -> Attestation.Outcome
    {
        let started = ContinuousClock.now
        let device = try await stages.time("authenticate") { () async throws(ControllerError) in
            try await authenticate(authorization: authorization, method: method, path: path, body: body)
        }
        try admitEvidence(from: device.id)
        let evidenceDigest = Hex.encode(SHA256.hash(data: body))
        do {
            let outcome = try await attestAuthenticated(device, body: body, evidenceDigest: evidenceDigest)
            stages.record("total", since: started)
            return outcome
        } catch {
            // A race with another accepted attestation of the same device says nothing about this device's boot:
            // it is not recorded as its latest (failed) attestation.
            // Nor does the controller's own failure (its database restarting, …).
            await recordRefusal(
                device: device.id, error, evidenceDigest: evidenceDigest,
                latest: !["attestation_raced", "policy_changed"].contains(error.code) && error.status < 500)
            throw error
        }
    }

    private func attestAuthenticated(_ device: DeviceRecord, body: [UInt8], evidenceDigest: String)
        async throws(ControllerError) -> Attestation.Outcome
    {
        guard body.count <= EvidenceBundle.maxSize else {
            throw .tooLarge("evidence: \(body.count) bytes, more than \(EvidenceBundle.maxSize)")
        }
        let bundle: EvidenceBundle
        let parseStart = ContinuousClock.now
        do { bundle = try EvidenceBundle(json: body) } catch {
            throw .invalid("evidence is malformed: \(error.reason)")
        }
        stages.record("parse", since: parseStart)
        // The nonce: the bundle's copy only finds the controller's record; the record is what is checked. Spent
        // in its own transaction, which also reads the policy and its EK anchors.
        let (issued, assigned) = try await stages.time("nonce_and_policy") { () async throws(ControllerError) in
            try await consumeNonce(bundle.nonce, device: device.id, readingPolicyFor: device.group)
        }
        guard let (policy, anchors, anchorsDigest) = try assigned.get() else {
            throw .conflict(
                "no_policy",
                "no policy assigned to \(device.id) or its group \(device.group): there is no implicit accept")
        }
        // Verification, policy and signing hold no database lock: they are CPU work, and every other device's
        // attestation can be written meanwhile.
        let now = clock()
        let judgement = try await judge(
            bundle, device: device.id, nonce: issued.nonce, nonceIssuedAt: issued.issuedAt, policy: policy,
            anchors: anchors, binding: device.binding, previous: device.previousQuote, now: now,
            deviceKeyThumbprint: AttestationResult.thumbprint(device.deviceKey), akActivated: nil)
        return try await stages.time("store") { () async throws(ControllerError) in
            try await backend.transaction { [self] tx throws(ControllerError) in
                // The policy and the EK anchors are still the ones the evidence was judged by: a policy unassigned
                // or tightened, or a distrusted vendor bundle replaced, while it was verified wins.
                let current = try await assignedPolicy(tx, device: device.id, group: device.group)
                guard current?.label == policy.label,
                    try await self.anchorsDigest(tx, for: policy.document) == anchorsDigest
                else {
                    throw .conflict(
                        "policy_changed",
                        "the policy of \(device.id) or the EK CA bundle it names changed while this evidence was verified: ask for a new nonce"
                    )
                }
                // The device row, locked: a revoke (or a rebind) that committed since the request was authenticated
                // wins, and the last accepted quote must still be the one this quote was judged against (another
                // attestation of this device accepted meanwhile would make its clock check stale).
                let id = Controller.newAttestationID()
                let previousCondition =
                    device.previousQuoteText == nil ? "previous_quote IS NULL" : "previous_quote = ?"
                var binds: [SQLValue] = [
                    .text(StoredQuote.encode(judgement.verified.previousForNextAttestation)),
                    .integer(now.sqlMilliseconds), .text(id), .text(device.id.rawValue),
                    .text(Hex.encode(device.akName.bytes)),
                ]
                if let text = device.previousQuoteText { binds.append(.text(text)) }
                // The verdict row and its audit entry come last (see ``store``).
                guard
                    try await tx.first(
                        "UPDATE devices SET previous_quote = ?, last_seen = ?, last_attestation = ? WHERE device_id = ? AND status = 'active' AND ak_name = ? AND \(previousCondition) RETURNING device_id",
                        binds) != nil
                else {
                    let row = try await tx.first(
                        "SELECT status, ak_name FROM devices WHERE device_id = ?", [.text(device.id.rawValue)])
                    let status = try row?.requiredText("status")
                    let akName = try row?.requiredText("ak_name")
                    if status != "active" || akName != Hex.encode(device.akName.bytes) {
                        throw .forbidden(
                            "device_revoked",
                            "\(device.id) was revoked or rebound while this attestation was in progress")
                    }
                    // A failing verdict needs no clock comparison to stand: the quote proved a boot the policy
                    // refuses. It is stored and becomes the device's latest, without moving its last accepted quote.
                    if !judgement.verdict.pass {
                        try await tx.execute(
                            "UPDATE devices SET last_attestation = ?, last_seen = ? WHERE device_id = ?",
                            [.text(id), .integer(now.sqlMilliseconds), .text(device.id.rawValue)])
                        _ = try await store(
                            judgement, tx, device: device.id, evidenceDigest: evidenceDigest, now: now, id: id)
                        return Attestation.Outcome(
                            deviceID: device.id, pass: false, verdict: judgement.verdictJSON, result: judgement.token,
                            findings: judgement.verified.quote.clockFindings.map(\.description))
                    }
                    throw .conflict(
                        "attestation_raced",
                        "another attestation of \(device.id) was accepted while this one was being verified; its quote is now the one to compare clocks with: ask for a new nonce"
                    )
                }
                _ = try await store(
                    judgement, tx, device: device.id, evidenceDigest: evidenceDigest, now: now, id: id)
                return Attestation.Outcome(
                    deviceID: device.id, pass: judgement.verdict.pass, verdict: judgement.verdictJSON,
                    result: judgement.token, findings: judgement.verified.quote.clockFindings.map(\.description))
            }
        }
    }

    /// A fresh attestation id (128 random bits, hex).
    static func newAttestationID() -> String {
        Hex.encode(SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) })
    }

    /// What the controller concluded from one piece of evidence, before it is stored.
    struct Judgement: Sendable {
        let verified: VerifiedEvidence
        let verdict: Verdict
        let verdictJSON: String
        let policy: AssignedPolicy
        /// The signed attestation result (JWT).
        let token: String
        let expires: Date
        /// The key of what the evidence showed of the boot in `boot_records` (``BootRecord/key(eventLog:pcrs:)``).
        let bootKey: String
    }

    /// Verifies `bundle` with what only the controller supplies (its nonce and when it issued it, the policy's PCRs
    /// and EK anchors, the AK binding if there is one, the last accepted quote), refuses replayed or reset clocks,
    /// evaluates the policy and signs the result. Shared by Vigil's own API and EVE's.
    func judge(
        _ bundle: EvidenceBundle, device: DeviceID, nonce: [UInt8], nonceIssuedAt: Date, policy: AssignedPolicy,
        anchors: EKTrustAnchors?, binding: AKBinding?, previous: PreviousQuote?, now: Date,
        deviceKeyThumbprint: String, akActivated: Bool?
    ) async throws(ControllerError) -> Judgement {
        let verifier = EvidenceVerifier(
            nonce: nonce, nonceIssuedAt: nonceIssuedAt,
            requiredSelection: PolicyEngine.requiredSelection(for: policy.document), anchors: anchors,
            akBinding: binding, previous: previous, now: now)
        let verified: VerifiedEvidence
        let verifyStart = ContinuousClock.now
        do throws(AttestError) { verified = try await verifier.verify(bundle) } catch {
            throw .evidence(Self.code(error), "evidence refused: \(error.reason)")
        }
        stages.record("verify", since: verifyStart)
        // An old quote replayed, or a TPM whose counters were reset: never a fresh boot of the same TPM.
        for finding in verified.quote.clockFindings {
            switch finding {
            case .clockWentBackwards, .countersWentBackwards:
                throw .evidence(
                    "stale_clock",
                    "evidence refused: \(finding) since the last accepted quote (a replayed quote or a cleared TPM)")
            default: break
            }
        }
        let policyStart = ContinuousClock.now
        let verdict = PolicyEngine.evaluate(verified, policy.document)
        stages.record("policy", since: policyStart)
        let appraisal = EARAppraisal(verdict)
        let expires = now.addingTimeInterval(configuration.resultLifetime)
        let result = AttestationResult(
            issuer: "vigil-controller:\(state.caFingerprint.prefix(16))", device: device, issuedAt: now,
            expires: expires, nonce: Hex.encode(nonce), pass: verdict.pass,
            appraisal: .init(
                status: appraisal.status, trustVector: appraisal.trustVector, policyID: "policy:\(policy.label)"),
            policy: policy.label, pcrDigest: Hex.encode(verified.quote.pcrDigest),
            failedRules: verdict.failures.map(\.rule), deviceKeyThumbprint: deviceKeyThumbprint,
            offlineGrace: verdict.pass ? policy.document.freshness?.offlineGraceSeconds : nil,
            akActivated: akActivated)
        let signStart = ContinuousClock.now
        let token = try await AttestationResult.sign(result, key: state.resultSigningKey)
        stages.record("sign", since: signStart)
        let bootKey = BootRecord.key(eventLog: bundle.eventLog, pcrs: verified.quote.pcrs)
        return Judgement(
            verified: verified, verdict: verdict,
            verdictJSON: String(decoding: try Self.encodeVerdict(verdict), as: UTF8.self), policy: policy,
            token: token, expires: expires, bootKey: bootKey)
    }

    /// Stores a judgement in the verdict history with its audit entry; returns the attestation's id.
    /// The audit entry is the transaction's last statement: on PostgreSQL the audit chain's lock is held from it to
    /// the commit, so nothing else may come after it.
    func store(
        _ j: Judgement, _ tx: any SQLTransaction, device: DeviceID, evidenceDigest: String, now: Date,
        id: String = Controller.newAttestationID()
    ) async throws(ControllerError) -> String {
        // A device shows the same boot until it reboots or updates: one stored record serves all its attestations,
        // and only a boot not stored yet is decoded (an indexed lookup otherwise).
        if try await tx.first("SELECT sha256 FROM boot_records WHERE sha256 = ?", [.text(j.bootKey)]) == nil {
            let start = ContinuousClock.now
            let record = try BootRecord(j.verified).encoded()
            stages.record("boot_record", since: start)
            try await tx.execute(
                "INSERT INTO boot_records (sha256, record, created_at) VALUES (?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
                [.text(j.bootKey), .text(record), .integer(now.sqlMilliseconds)])
        }
        try await tx.execute(
            "INSERT INTO attestations (id, device_id, at, pass, policy, verdict, refusal, evidence_sha256, result_token, expires_at, boot_sha256) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
            [
                .text(id), .text(device.rawValue), .integer(now.sqlMilliseconds),
                .integer(j.verdict.pass ? 1 : 0), .text(j.policy.label), .text(j.verdictJSON), .text(evidenceDigest),
                .text(j.token), .integer(j.expires.sqlMilliseconds), .text(j.bootKey),
            ])
        let failures = j.verdict.failures.map(\.line)
        try await AuditLog.append(
            tx, backend: backend, at: now, actor: .device(device), action: "attest", subject: device.rawValue,
            outcome: j.verdict.pass ? "pass" : "fail",
            detail: "policy \(j.policy.label); evidence sha256 \(evidenceDigest)"
                + (failures.isEmpty ? "" : "; failed: " + failures.joined(separator: " | ")))
        logger.info(
            "attestation",
            metadata: [
                "device": "\(device)", "pass": "\(j.verdict.pass)", "policy": "\(j.policy.label)",
                "failed": "\(j.verdict.failures.map(\.rule).joined(separator: ","))",
            ])
        return id
    }

    /// Marks the nonce used, in its own transaction (a nonce is spent whatever the evidence turns out to be),
    /// and returns it with its issue time. Refuses, by name, a nonce that is not hex, unknown, another
    /// device's, used, or expired.
    func consumeNonce(_ text: String, device: DeviceID) async throws(ControllerError) -> (
        nonce: [UInt8], issuedAt: Date
    ) {
        try await consumeNonce(text, device: device, readingPolicyFor: nil).issued
    }

    /// ``consumeNonce(_:device:)``, and in the same transaction, when `group` is given, the device's assigned policy
    /// and the EK anchors it names (nil when none is assigned: the nonce is spent all the same).
    /// A failure to read the policy is returned, not thrown: the nonce is spent all the same.
    func consumeNonce(_ text: String, device: DeviceID, readingPolicyFor group: GroupName?)
        async throws(ControllerError) -> (
            issued: (nonce: [UInt8], issuedAt: Date),
            policy: Result<(AssignedPolicy, EKTrustAnchors?, String?)?, ControllerError>
        )
    {
        guard text.utf8.count == 64, let nonce = Hex.decode(text) else {
            throw .evidence("nonce_unknown", "the evidence's nonce is not a 32-byte nonce this controller issued")
        }
        let key = Hex.encode(nonce)
        let now = clock()
        return try await backend.transaction { [self] tx throws(ControllerError) in
            let consumed = try await tx.query(
                "UPDATE nonces SET used_at = ? WHERE nonce = ? AND device_id = ? AND used_at IS NULL AND expires_at > ? RETURNING issued_at",
                [.integer(now.sqlMilliseconds), .text(key), .text(device.rawValue), .integer(now.sqlMilliseconds)])
            if let row = consumed.first {
                let issued = (nonce, Date(sqlMilliseconds: try row.requiredInteger("issued_at")))
                guard let group else { return (issued, .success(nil)) }
                do throws(ControllerError) {
                    guard let policy = try await assignedPolicy(tx, device: device, group: group) else {
                        return (issued, .success(nil))
                    }
                    let anchors = try await anchors(tx, for: policy.document)
                    return (issued, .success((policy, anchors, try await anchorsDigest(tx, for: policy.document))))
                } catch {
                    return (issued, .failure(error))
                }
            }
            guard
                let row = try await tx.first(
                    "SELECT device_id, expires_at, used_at FROM nonces WHERE nonce = ?", [.text(key)])
            else { throw .evidence("nonce_unknown", "the evidence's nonce was not issued by this controller") }
            if try row.requiredText("device_id") != device.rawValue {
                throw .evidence("nonce_foreign", "the evidence's nonce was issued to another device")
            }
            if try row.integer("used_at") != nil {
                throw .evidence("nonce_used", "the evidence's nonce was already used (a replayed attestation)")
            }
            throw .evidence("nonce_expired", "the evidence's nonce expired before the evidence arrived")
        }
    }

    /// Records evidence that was refused as the device's latest attestation (it did not pass), with the reason.
    /// `latest: false` keeps it in the history without making it the device's latest attestation.
    func recordRefusal(device: DeviceID, _ error: ControllerError, evidenceDigest: String, latest: Bool = true) async {
        let now = clock()
        do {
            try await backend.transaction { [backend] tx throws(ControllerError) in
                let id = Hex.encode(SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) })
                try await tx.execute(
                    "INSERT INTO attestations (id, device_id, at, pass, policy, verdict, refusal, evidence_sha256, result_token, expires_at) VALUES (?, ?, ?, 0, NULL, NULL, ?, ?, NULL, NULL)",
                    [
                        .text(id), .text(device.rawValue), .integer(now.sqlMilliseconds),
                        .text("\(error.code): \(error.reason)"), .text(evidenceDigest),
                    ])
                if latest {
                    try await tx.execute(
                        "UPDATE devices SET last_attestation = ?, last_seen = ? WHERE device_id = ?",
                        [.text(id), .integer(now.sqlMilliseconds), .text(device.rawValue)])
                    // An EVE device's integrity token is withdrawn with it.
                    try await tx.execute(
                        "UPDATE eve_devices SET last_attestation = ?, last_seen = ?, integrity_token_sha256 = NULL WHERE device_id = ?",
                        [.text(id), .integer(now.sqlMilliseconds), .text(device.rawValue)])
                }
                try await AuditLog.append(
                    tx, backend: backend, at: now, actor: .device(device), action: "attest", subject: device.rawValue,
                    outcome: "refused:\(error.code)", detail: error.reason)
            }
        } catch {
            logger.error("could not record a refused attestation", metadata: ["error": "\(error)"])
        }
        logger.notice("attestation refused", metadata: ["device": "\(device)", "code": "\(error.code)"])
    }

    /// The stable name of a verifier refusal (`signature_invalid`, `ak_not_bound`, …).
    static func code(_ error: AttestError) -> String {
        var out = ""
        for c in error.code.description {
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
        return out
    }

    static func encodeVerdict(_ verdict: Verdict) throws(ControllerError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { return Array(try encoder.encode(verdict)) } catch { throw .internalFailure("verdict: \(error)") }
    }

    /// Takes one token from the device's evidence bucket (after its request signature verified, so nobody can
    /// drain another device's bucket), or refuses with when the next one comes.
    func admitEvidence(from device: DeviceID) throws(ControllerError) {
        if let wait = evidenceLimiter.admit(device.rawValue, now: clock()) {
            throw .rateLimited(
                "evidence_rate_limited",
                "device \(device) sent evidence faster than its limit (\(configuration.evidenceBurstPerDevice) at once, \(configuration.noncesPerDevicePerMinute) a minute); try again in \(wait) s",
                retryAfter: wait)
        }
    }
}
