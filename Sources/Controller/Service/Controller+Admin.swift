import Attest
public import ControllerProtocol
import Crypto
import Foundation
import Logging
import Policy
import SwiftASN1
import X509

extension Controller {
    /// The largest admin request body (policies, CA bundles, secrets).
    public static let maximumAdminBody = 1 << 20

    /// A security-team caller: its token's hash and role.
    public struct AdminCaller: Sendable {
        /// The first hex digits of the token's hash (for the audit log).
        public let tokenHash: String
        /// What it may do.
        public let role: Admin.Role
        var actor: AuditLog.Actor { .admin(tokenHash: tokenHash, role: role) }
    }

    /// Checks `Authorization: Bearer TOKEN` against the stored hashes and the role the action needs.
    public func authenticateAdmin(authorization: String?, requires role: Admin.Role) async throws(ControllerError)
        -> AdminCaller
    {
        guard let authorization, authorization.hasPrefix("Bearer "), authorization.utf8.count <= 256 else {
            throw .unauthenticated("admin requests carry Authorization: Bearer TOKEN")
        }
        let hash = TokenHash.hash(String(authorization.dropFirst("Bearer ".count)))
        let row = try await backend.transaction { tx throws(ControllerError) in
            try await tx.first("SELECT role FROM api_tokens WHERE token_sha256 = ?", [.text(hash)])
        }
        guard let row, let have = Admin.Role(rawValue: try row.requiredText("role")) else {
            await auditRefusal(
                actor: .anonymous, action: "admin", subject: "token", .unauthenticated("unknown admin token"))
            throw .unauthenticated("the token is not valid")
        }
        guard have >= role else {
            let caller = AdminCaller(tokenHash: String(hash.prefix(12)), role: have)
            let error = ControllerError.forbidden(
                "role_insufficient", "this needs the \(role.rawValue) role; the token has \(have.rawValue)")
            await auditRefusal(actor: caller.actor, action: "admin", subject: role.rawValue, error)
            throw error
        }
        return AdminCaller(tokenHash: String(hash.prefix(12)), role: have)
    }

    /// Runs an admin action in a transaction with its audit entry; a refusal is audited too.
    func adminAction<T: Sendable>(
        _ caller: AdminCaller, _ action: String, subject: String,
        _ body: @Sendable (any SQLTransaction, Date) async throws(ControllerError) -> (T, String)
    ) async throws(ControllerError) -> T {
        let now = clock()
        do {
            return try await backend.transaction { [backend] tx throws(ControllerError) in
                let (result, detail) = try await body(tx, now)
                try await AuditLog.append(
                    tx, backend: backend, at: now, actor: caller.actor, action: action, subject: subject,
                    outcome: "ok", detail: detail)
                return result
            }
        } catch {
            await auditRefusal(actor: caller.actor, action: action, subject: subject, error)
            throw error
        }
    }

    /// `vigil admin ek-ca add NAME DIR`: stores (or replaces) a named bundle of EK CA certificates.
    public func putEKCABundle(_ caller: AdminCaller, name: EKCABundleName, _ upload: Admin.EKCABundleUpload)
        async throws(ControllerError) -> Int
    {
        guard !upload.certificates.isEmpty, upload.certificates.count <= 256 else {
            throw .invalid("certificates: 1 to 256 certificates")
        }
        var ders: [String] = []
        var roots = 0
        for (i, text) in upload.certificates.enumerated() {
            let cert: Certificate
            if text.contains("-----BEGIN") {
                guard let c = try? Certificate(pemEncoded: text) else {
                    throw .invalid("certificates[\(i)]: not a PEM X.509 certificate")
                }
                cert = c
            } else {
                let der = try Self.base64(text, "certificates[\(i)]", limit: Self.maximumCertificate)
                guard let c = try? Certificate(derEncoded: der) else {
                    throw .invalid("certificates[\(i)]: not a DER X.509 certificate")
                }
                cert = c
            }
            if cert.issuer == cert.subject { roots += 1 }
            var s = DER.Serializer()
            do { try s.serialize(cert) } catch { throw .invalid("certificates[\(i)]: \(error)") }
            ders.append(Data(s.serializedBytes).base64EncodedString())
        }
        guard roots > 0 else {
            throw .invalid("the bundle has no root (self-issued) certificate: intermediates alone anchor nothing")
        }
        let count = ders.count
        let joined = ders.joined(separator: ",")
        let rootCount = roots
        return try await adminAction(caller, "ek-ca.put", subject: name.rawValue) { tx, now throws(ControllerError) in
            try await tx.execute("DELETE FROM ek_ca_bundles WHERE name = ?", [.text(name.rawValue)])
            try await tx.execute(
                "INSERT INTO ek_ca_bundles (name, certificates, updated_at) VALUES (?, ?, ?)",
                [.text(name.rawValue), .text(joined), .integer(now.sqlMilliseconds)])
            return (count, "\(count) certificates, \(rootCount) roots")
        }
    }

    /// `vigil admin policy add NAME FILE`: lints and stores a new version (never overwriting one).
    public func addPolicy(_ caller: AdminCaller, name: PolicyName, _ upload: Admin.PolicyUpload)
        async throws(ControllerError) -> Admin.PolicyVersion
    {
        let parents = upload.parents ?? []
        guard parents.count <= 8 else { throw .invalid("parents: at most 8 policies") }
        let document = try Self.loadPolicy(yaml: upload.yaml, parents: parents, label: name.rawValue)
        guard PolicyEngine.judgesBeyondSignature(document) else {
            throw .invalid(
                "policy \(name) judges nothing beyond the quote's signature: add PCR, boot or identity rules (accept_any is not for a fleet)"
            )
        }
        let parentsJSON = String(decoding: try Self.encode(parents), as: UTF8.self)
        let sha = Hex.encode(SHA256.hash(data: Array((upload.yaml + "\u{0}" + parentsJSON).utf8)))
        let yaml = upload.yaml
        return try await adminAction(caller, "policy.add", subject: name.rawValue) {
            [self] tx, now throws(ControllerError) in
            if let ca = document.identity?.ekCA {
                guard try await tx.first("SELECT name FROM ek_ca_bundles WHERE name = ?", [.text(ca)]) != nil else {
                    throw .invalid(
                        "policy \(name) names EK CA bundle \(ca.prefix(80).debugDescription), which is not uploaded: vigil admin ek-ca add \(ca.prefix(64)) DIR"
                    )
                }
            }
            _ = self
            let last =
                try await tx.first(
                    "SELECT MAX(version) AS v FROM policies WHERE name = ?", [.text(name.rawValue)])?.integer("v") ?? 0
            let version = last + 1
            try await tx.execute(
                "INSERT INTO policies (name, version, yaml, parents, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    .text(name.rawValue), .integer(version), .text(yaml), .text(parentsJSON), .text(sha),
                    .integer(now.sqlMilliseconds),
                ])
            return (
                Admin.PolicyVersion(
                    name: name.rawValue, version: Int(version), sha256: sha, createdAt: now, assignedTo: []),
                "version \(version) sha256 \(sha) (document \(document.id)@\(document.version))"
            )
        }
    }

    /// Parses a stored or uploaded policy with the documents it extends.
    static func loadPolicy(yaml: String, parents: [String], label: String) throws(ControllerError)
        -> AttestationPolicy
    {
        var others: [AttestationPolicy] = []
        for (i, text) in parents.enumerated() {
            do { others.append(try PolicyLoader.parse(text, file: "\(label) parent \(i + 1)")) } catch {
                throw .invalid("policy \(label): parent \(i + 1) does not parse: \(error)")
            }
        }
        do { return try PolicyLoader.load(text: yaml, file: label, others: others) } catch {
            throw .invalid("policy \(label) does not lint: \(error)")
        }
    }

    /// `vigil admin policy assign NAME --device ID | --group G`: pins a version to a device or group.
    public func assignPolicy(_ caller: AdminCaller, name: PolicyName, _ a: Admin.PolicyAssignment)
        async throws(ControllerError) -> Admin.PolicyVersion
    {
        let target: String
        switch (a.device, a.group) {
        case (let d?, nil): target = "device:\(d)"
        case (nil, let g?):
            guard let group = GroupName(g) else { throw .invalid("group: not a valid group name") }
            target = "group:\(group)"
        default: throw .invalid("assign to exactly one of device or group")
        }
        return try await adminAction(caller, "policy.assign", subject: name.rawValue) {
            tx, now throws(ControllerError) in
            if let d = a.device {
                guard
                    try await tx.first(
                        "SELECT device_id FROM devices WHERE device_id = ? UNION ALL SELECT device_id FROM eve_devices WHERE device_id = ?",
                        [.text(d.rawValue), .text(d.rawValue)]) != nil
                else { throw .notFound("no device \(d)") }
            }
            let row: SQLRow?
            if let v = a.version {
                row = try await tx.first(
                    "SELECT version, sha256, created_at FROM policies WHERE name = ? AND version = ?",
                    [.text(name.rawValue), .integer(Int64(v))])
            } else {
                row = try await tx.first(
                    "SELECT version, sha256, created_at FROM policies WHERE name = ? ORDER BY version DESC LIMIT 1",
                    [.text(name.rawValue)])
            }
            guard let row else { throw .notFound("no policy \(name)\(a.version.map { " version \($0)" } ?? "")") }
            let version = try row.requiredInteger("version")
            try await tx.execute("DELETE FROM assignments WHERE target = ?", [.text(target)])
            try await tx.execute(
                "INSERT INTO assignments (target, policy_name, policy_version, assigned_at) VALUES (?, ?, ?, ?)",
                [.text(target), .text(name.rawValue), .integer(version), .integer(now.sqlMilliseconds)])
            return (
                Admin.PolicyVersion(
                    name: name.rawValue, version: Int(version), sha256: try row.requiredText("sha256"),
                    createdAt: Date(sqlMilliseconds: try row.requiredInteger("created_at")), assignedTo: [target]),
                "\(name)@\(version) → \(target)"
            )
        }
    }

    /// `vigil admin policy list`: every version with its assignments.
    public func listPolicies(_ caller: AdminCaller) async throws(ControllerError) -> [Admin.PolicyVersion] {
        try await backend.transaction { tx throws(ControllerError) in
            let assignments = try await tx.query("SELECT target, policy_name, policy_version FROM assignments", [])
            var byVersion: [String: [String]] = [:]
            for a in assignments {
                byVersion[
                    "\(try a.requiredText("policy_name"))@\(try a.requiredInteger("policy_version"))", default: []
                ]
                .append(try a.requiredText("target"))
            }
            return try await tx.query(
                "SELECT name, version, sha256, created_at FROM policies ORDER BY name, version", []
            ).map { r throws(ControllerError) in
                let name = try r.requiredText("name")
                let version = try r.requiredInteger("version")
                return Admin.PolicyVersion(
                    name: name, version: Int(version), sha256: try r.requiredText("sha256"),
                    createdAt: Date(sqlMilliseconds: try r.requiredInteger("created_at")),
                    assignedTo: (byVersion["\(name)@\(version)"] ?? []).sorted())
            }
        }
    }

    /// `vigil admin device allow --ek-fingerprint HEX`.
    public func allowEK(_ caller: AdminCaller, _ request: Admin.AllowEK) async throws(ControllerError) {
        let group =
            try request.group.map { g throws(ControllerError) in
                guard let n = GroupName(g) else { throw .invalid("group: not a valid group name") }
                return n
            } ?? .default
        try await adminAction(caller, "device.allow", subject: request.ekFingerprint.hex) {
            tx, now throws(ControllerError) in
            try await tx.execute("DELETE FROM allowed_eks WHERE ek_fingerprint = ?", [.text(request.ekFingerprint.hex)])
            try await tx.execute(
                "INSERT INTO allowed_eks (ek_fingerprint, group_name, added_at) VALUES (?, ?, ?)",
                [.text(request.ekFingerprint.hex), .text(group.rawValue), .integer(now.sqlMilliseconds)])
            return ((), "group \(group)")
        }
    }

    /// `vigil admin device disallow --ek-fingerprint HEX`: withdraws an admission by EK (an onboarded device is
    /// not affected: revoke it).
    public func disallowEK(_ caller: AdminCaller, _ fingerprint: EKFingerprint) async throws(ControllerError) {
        try await adminAction(caller, "device.disallow", subject: fingerprint.hex) { tx, _ throws(ControllerError) in
            let gone = try await tx.query(
                "DELETE FROM allowed_eks WHERE ek_fingerprint = ? RETURNING ek_fingerprint", [.text(fingerprint.hex)])
            guard !gone.isEmpty else { throw .notFound("EK \(fingerprint.hex) is not allowed") }
            return ((), "admission withdrawn")
        }
    }

    /// `vigil admin enroll-token revoke TOKEN`: cancels an unused token.
    public func revokeEnrollToken(_ caller: AdminCaller, _ request: Admin.EnrollTokenRevoke)
        async throws(ControllerError)
    {
        let hash = TokenHash.hash(request.token)
        try await adminAction(caller, "enroll-token.revoke", subject: "enroll:\(hash.prefix(12))") {
            tx, now throws(ControllerError) in
            let done = try await tx.query(
                "UPDATE enroll_tokens SET used_at = ?, used_by = 'revoked' WHERE token_sha256 = ? AND used_at IS NULL RETURNING token_sha256",
                [.integer(now.sqlMilliseconds), .text(hash)])
            guard !done.isEmpty else { throw .notFound("no unused enrollment token with that value") }
            return ((), "revoked")
        }
    }

    /// `vigil admin enroll-token create`: a one-time token (shown once; its hash is stored).
    public func createEnrollToken(_ caller: AdminCaller, _ request: Admin.EnrollTokenRequest)
        async throws(ControllerError) -> Admin.IssuedToken
    {
        guard (60...(30 * 86400)).contains(request.expiresInSeconds) else {
            throw .invalid("expires_in_seconds: between 60 s and 30 days")
        }
        let group =
            try request.group.map { g throws(ControllerError) in
                guard let n = GroupName(g) else { throw .invalid("group: not a valid group name") }
                return n
            } ?? .default
        let token = TokenHash.newToken(prefix: "vet")
        let hash = TokenHash.hash(token)
        return try await adminAction(caller, "enroll-token.create", subject: "enroll:\(hash.prefix(12))") {
            tx, now throws(ControllerError) in
            let expires = now.addingTimeInterval(TimeInterval(request.expiresInSeconds))
            try await tx.execute(
                "INSERT INTO enroll_tokens (token_sha256, group_name, expires_at, used_at, used_by) VALUES (?, ?, ?, NULL, NULL)",
                [.text(hash), .text(group.rawValue), .integer(expires.sqlMilliseconds)])
            return (
                Admin.IssuedToken(token: token, expiresAt: expires, role: nil), "group \(group); expires \(expires)"
            )
        }
    }

    /// `vigil admin token create --role R`.
    public func createToken(_ caller: AdminCaller, _ request: Admin.TokenRequest) async throws(ControllerError)
        -> Admin.IssuedToken
    {
        let token = TokenHash.newToken(prefix: "vat")
        let hash = TokenHash.hash(token)
        return try await adminAction(caller, "token.create", subject: "admin:\(hash.prefix(12))") {
            tx, now throws(ControllerError) in
            try await tx.execute(
                "INSERT INTO api_tokens (token_sha256, role, created_at) VALUES (?, ?, ?)",
                [.text(hash), .text(request.role.rawValue), .integer(now.sqlMilliseconds)])
            return (
                Admin.IssuedToken(token: token, expiresAt: nil, role: request.role), "role \(request.role.rawValue)"
            )
        }
    }

    /// `vigil admin device revoke ID`: its results stop being accepted, its secrets stop being released, and
    /// its next request is answered `device_revoked`.
    public func revokeDevice(_ caller: AdminCaller, _ id: DeviceID) async throws(ControllerError) {
        try await adminAction(caller, "device.revoke", subject: id.rawValue) { tx, now throws(ControllerError) in
            let done = try await tx.query(
                "UPDATE devices SET status = 'revoked' WHERE device_id = ? RETURNING device_id", [.text(id.rawValue)])
            // An EVE device: its integrity token is withdrawn too, so stored volume keys are not accepted or released.
            let eve = try await tx.query(
                "UPDATE eve_devices SET status = 'revoked', integrity_token_sha256 = NULL WHERE device_id = ? RETURNING uuid",
                [.text(id.rawValue)])
            guard !done.isEmpty || !eve.isEmpty else { throw .notFound("no device \(id)") }
            // On the signed revocation list from now on (the first revocation's time is kept).
            try await tx.execute(
                "INSERT INTO revocations (device_id, revoked_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [.text(id.rawValue), .integer(now.sqlMilliseconds)])
            // Outstanding results are no longer honoured for secret release.
            try await tx.execute(
                "UPDATE attestations SET expires_at = 0 WHERE device_id = ?", [.text(id.rawValue)])
            try await tx.execute(
                "UPDATE nonces SET used_at = 0 WHERE device_id = ? AND used_at IS NULL", [.text(id.rawValue)])
            return ((), "revoked")
        }
    }

    /// `vigil admin secret put NAME --device ID --file F`: a new version, sealed at rest.
    public func putSecret(_ caller: AdminCaller, name: SecretName, _ upload: Admin.SecretUpload)
        async throws(ControllerError) -> Int
    {
        var value = try Self.base64(upload.value, "value", limit: SecretEnvelope.maximumSecretSize)
        defer { for i in value.indices { value[i] = 0 } }
        guard !value.isEmpty else { throw .invalid("value: the secret is empty") }
        let plaintext = value
        return try await adminAction(caller, "secret.put", subject: "\(name)@\(upload.device)") {
            [self] tx, now throws(ControllerError) in
            guard
                try await tx.first("SELECT device_id FROM devices WHERE device_id = ?", [.text(upload.device.rawValue)])
                    != nil
            else { throw .notFound("no device \(upload.device)") }
            let last =
                try await tx.first(
                    "SELECT MAX(version) AS v FROM secrets WHERE name = ? AND device_id = ?",
                    [.text(name.rawValue), .text(upload.device.rawValue)])?.integer("v") ?? 0
            let version = Int(last + 1)
            let sealed = try sealAtRest(plaintext, name: name, device: upload.device, version: version)
            try await tx.execute(
                "INSERT INTO secrets (name, device_id, version, sealed, created_at) VALUES (?, ?, ?, ?, ?)",
                [
                    .text(name.rawValue), .text(upload.device.rawValue), .integer(Int64(version)), .text(sealed),
                    .integer(now.sqlMilliseconds),
                ])
            return (version, "version \(version), \(plaintext.count) bytes")
        }
    }

    /// `vigil admin device list`.
    public func listDevices(_ caller: AdminCaller) async throws(ControllerError) -> [Admin.DeviceSummary] {
        try await backend.transaction { [self] tx throws(ControllerError) in
            var out: [Admin.DeviceSummary] = []
            for row in try await tx.query(
                """
                SELECT device_id, group_name, status, last_attestation FROM devices
                UNION ALL SELECT device_id, group_name, status, last_attestation FROM eve_devices
                ORDER BY device_id
                """, [])
            {
                out.append(try await summary(tx, row))
            }
            return out
        }
    }

    /// `vigil admin device show ID`: the verdict history, newest first, with rule, PCR and event.
    public func showDevice(_ caller: AdminCaller, _ id: DeviceID, limit: Int = 50) async throws(ControllerError)
        -> Admin.DeviceDetail
    {
        try await backend.transaction { [self] tx throws(ControllerError) in
            let history = try await tx.query(
                "SELECT at, pass, policy, verdict, refusal, evidence_sha256 FROM attestations WHERE device_id = ? ORDER BY at DESC LIMIT ?",
                [.text(id.rawValue), .integer(Int64(max(1, min(limit, 1000))))]
            ).map { r throws(ControllerError) in try Self.record(r) }
            if let eve = try await tx.first(
                "SELECT device_id, group_name, status, last_attestation, uuid, serial, device_cert, device_cert_sha256, certs, registered_at FROM eve_devices WHERE device_id = ?",
                [.text(id.rawValue)])
            {
                let certificate = try? Certificate(pemEncoded: try eve.requiredText("device_cert"))
                let identity = Admin.EVEIdentity(
                    uuid: try eve.requiredText("uuid"), serial: try eve.requiredText("serial"),
                    deviceCertificateSubject: certificate.map { "\($0.subject)" } ?? "?",
                    deviceCertificateSHA256: try eve.requiredText("device_cert_sha256"),
                    certificates: try EVEDeviceCertificates.decode(try eve.text("certs")).subjects)
                return Admin.DeviceDetail(
                    summary: try await summary(tx, eve), ekFingerprint: nil, akName: nil,
                    onboardedAt: Date(sqlMilliseconds: try eve.requiredInteger("registered_at")), history: history,
                    identityProof: "eve-device-certificate", eve: identity)
            }
            guard
                let row = try await tx.first(
                    "SELECT device_id, group_name, status, last_attestation, ek_fingerprint, ak_name, onboarded_at, node_state, node_state_at FROM devices WHERE device_id = ?",
                    [.text(id.rawValue)])
            else { throw .notFound("no device \(id)") }
            guard let fp = EKFingerprint(try row.requiredText("ek_fingerprint")) else {
                throw .internalFailure("database: invalid EK fingerprint")
            }
            // Stored after validation, but read back defensively: a row that does not decode is shown as absent.
            let node = try row.text("node_state").flatMap { text in
                try? APIJSON.decode(NodeReport.State.self, from: Array(text.utf8), limit: NodeReport.maximumBody)
            }
            return Admin.DeviceDetail(
                summary: try await summary(tx, row), ekFingerprint: fp, akName: try row.requiredText("ak_name"),
                onboardedAt: Date(sqlMilliseconds: try row.requiredInteger("onboarded_at")), history: history,
                node: node, nodeReportedAt: try row.integer("node_state_at").map { Date(sqlMilliseconds: $0) })
        }
    }

    func summary(_ tx: any SQLTransaction, _ row: SQLRow) async throws(ControllerError) -> Admin.DeviceSummary {
        guard let id = DeviceID(try row.requiredText("device_id")),
            let group = GroupName(try row.requiredText("group_name"))
        else { throw .internalFailure("database: invalid device row") }
        var last: Admin.AttestationRecord?
        if let lastID = try row.text("last_attestation"),
            let a = try await tx.first(
                "SELECT at, pass, policy, verdict, refusal, evidence_sha256 FROM attestations WHERE id = ?",
                [.text(lastID)])
        {
            last = try Self.record(a)
        }
        let policy = try await assignedPolicy(tx, device: id, group: group)
        return Admin.DeviceSummary(
            deviceID: id, group: group.rawValue, status: try row.requiredText("status"), policy: policy?.label,
            last: last)
    }

    static func record(_ r: SQLRow) throws(ControllerError) -> Admin.AttestationRecord {
        var failures: [Admin.RuleFailure] = []
        if let v = try r.text("verdict"), let verdict = try? JSONDecoder().decode(Verdict.self, from: Data(v.utf8)) {
            failures = verdict.failures.map {
                Admin.RuleFailure(
                    rule: $0.rule, bank: $0.bank, pcr: $0.pcr, event: $0.event, expected: $0.expected,
                    actual: $0.actual)
            }
        }
        return Admin.AttestationRecord(
            at: Date(sqlMilliseconds: try r.requiredInteger("at")), pass: try r.requiredInteger("pass") == 1,
            policy: try r.text("policy"), failures: failures, refusal: try r.text("refusal"),
            evidenceSHA256: try r.text("evidence_sha256"))
    }

    /// `vigil admin audit verify`: recomputes the chain; the head digest is in the audit log entry it writes.
    public func verifyAudit(_ caller: AdminCaller) async throws(ControllerError) -> Admin.AuditReport {
        let (report, head) = try await AuditLog.verify(backend)
        logger.info(
            "audit verified",
            metadata: ["entries": "\(report.entries)", "intact": "\(report.intact)", "head": "\(head)"])
        // The check itself goes on record with the head it saw: a later rewrite of the tail before this point
        // shows as a different head in this entry's own chain position.
        _ = try? await adminAction(caller, "audit.verify", subject: "audit") { _, _ throws(ControllerError) in
            (
                (),
                "\(report.intact ? "intact" : "broken at \(report.firstBroken ?? 0)"); \(report.entries) entries; head \(head)"
            )
        }
        return report
    }
}
