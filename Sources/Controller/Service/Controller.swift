import Attest
import ControllerProtocol
import Crypto
public import Foundation
public import Logging
import Policy
import SwiftASN1
import X509

/// The fleet's verifier: onboarding, nonces, verdicts, secret release and the security team's API, over a
/// ``SQLBackend``. HTTP is a thin layer over it (``ControllerServer``); tests drive the same methods.
///
/// What the controller decides is worth what the TPM proved, so nothing it checks comes from the request: the
/// nonce is looked up from its own store (the bundle's copy is only a key to find it), the AK is the one
/// credential activation bound, the required PCRs and EK anchors come from the device's assigned policy, and the
/// previous quote is the last one it accepted.
public final class Controller: Sendable {
    /// Lifetimes and limits.
    public struct Configuration: Sendable {
        /// How long a nonce may be used (default 60 s).
        public var nonceLifetime: TimeInterval = 60
        /// How long an attestation result is relied on, and secrets released on it (default 15 min).
        public var resultLifetime: TimeInterval = 15 * 60
        /// How long a signed revocation list is valid (default 5 min): a relying party refuses an older one, so an old
        /// list cannot hide a later revocation.
        public var revocationListLifetime: TimeInterval = 5 * 60
        /// How long an onboarding challenge may be answered (default 5 min).
        public var challengeLifetime: TimeInterval = 5 * 60
        /// The PCRs quoted when a device has no policy (it then fails "no policy assigned" anyway).
        public var defaultSelection = "sha256:0,1,2,3,4,5,6,7"
        /// How many nonces one device may be issued in any 60 s (default 60), counted in the database so the limit
        /// holds across instances; more are refused with 429 `nonce_rate_limited` and `Retry-After`.
        public var noncesPerDevicePerMinute = 60
        /// How many evidence submissions one device may make in a burst (default 20), refilled at
        /// ``noncesPerDevicePerMinute`` per minute; counted per instance, before the body is parsed, so junk
        /// evidence cannot keep a controller parsing. More are refused with 429 `evidence_rate_limited`.
        public var evidenceBurstPerDevice = 20
        /// How many API requests one instance handles at once (default 256); more are answered at once with 503
        /// `overloaded` and `Retry-After: 1` instead of queueing without bound (health and metrics are exempt).
        public var maximumInFlight = 256
        /// How long a request may take, its body's arrival included (default 60 s): past it the caller gets 503
        /// `request_timeout` with `Retry-After`, whatever the handler is waiting for (a database that restarted
        /// and a connection pool that has not handed out a connection yet), and a client trickling its body
        /// holds no slot longer.
        public var requestDeadline: TimeInterval = 60

        /// The defaults.
        public init() {}
    }

    /// Where the state lives.
    public let backend: any SQLBackend
    /// Keys and certificates.
    public let state: ControllerState
    /// Lifetimes.
    public let configuration: Configuration
    let logger: Logger
    let clock: @Sendable () -> Date
    let policies = PolicyCache()
    /// Per-device evidence token buckets (this instance's).
    let evidenceLimiter: DeviceRateLimiter
    /// Where attestations spend their time (to `metrics`, when given).
    let stages: StageTimes
    /// When expired rows were last swept (this instance's).
    let sweeps = SweepSchedule()

    /// A controller over `backend` with `state`'s keys. `clock` is the controller's time (tests move it);
    /// `metrics`, when given, gets the per-stage timing of attestations (`vigil_attestation_stage_seconds`).
    public init(
        backend: any SQLBackend, state: ControllerState, configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "vigil.controller"), clock: @escaping @Sendable () -> Date = { Date() },
        metrics: ControllerMetrics? = nil
    ) {
        stages = StageTimes(metrics: metrics)
        self.backend = backend
        self.state = state
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        evidenceLimiter = DeviceRateLimiter(
            burst: configuration.evidenceBurstPerDevice, perMinute: configuration.noncesPerDevicePerMinute)
    }

    /// Stores the bootstrap admin token's hash (first start) and returns the token when it was just created.
    public func bootstrap() async throws(ControllerError) -> String? {
        let (token, created) = try state.bootstrapAdminToken()
        let hash = TokenHash.hash(token)
        let now = clock()
        try await backend.transaction { [backend] tx throws(ControllerError) in
            let inserted = try await tx.query(
                "INSERT INTO api_tokens (token_sha256, role, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING token_sha256",
                [.text(hash), .text(Admin.Role.admin.rawValue), .integer(now.sqlMilliseconds)])
            if !inserted.isEmpty {
                try await AuditLog.append(
                    tx, backend: backend, at: now, actor: .controller, action: "token.bootstrap",
                    subject: "admin:\(hash.prefix(12))", outcome: "ok", detail: "bootstrap admin token (admin-token)")
            }
        }
        return created ? token : nil
    }

    // MARK: Device authentication

    /// A device as the controller stores it.
    struct DeviceRecord: Sendable {
        let id: DeviceID
        let ekFingerprint: EKFingerprint
        let ekPublic: TPMTPublic
        let akPublic: TPMTPublic
        let akName: TPMName
        let deviceKey: P256.Signing.PublicKey
        let group: GroupName
        let revoked: Bool
        let activatedAt: Date
        let onboardedAt: Date
        let previousQuote: PreviousQuote?
        /// The stored form of ``previousQuote``, to check it is still the last accepted one when a verdict is stored.
        let previousQuoteText: String?

        var binding: AKBinding {
            AKBinding(akName: akName, ekPublicKeySHA256: ekFingerprint.hex, activatedAt: activatedAt)
        }

        static let columns =
            "device_id, ek_fingerprint, ek_public, ak_public, ak_name, device_public, group_name, status, activated_at, onboarded_at, previous_quote"

        init(row: SQLRow) throws(ControllerError) {
            guard let id = DeviceID(try row.requiredText("device_id")),
                let fp = EKFingerprint(try row.requiredText("ek_fingerprint")),
                let group = GroupName(try row.requiredText("group_name"))
            else { throw .internalFailure("database: a device row has an invalid id, fingerprint or group") }
            self.id = id
            ekFingerprint = fp
            self.group = group
            do {
                ekPublic = try TPMTPublic(tpmPublicBytes: try Self.base64(row.requiredText("ek_public")))
                akPublic = try TPMTPublic(tpmPublicBytes: try Self.base64(row.requiredText("ak_public")))
                let device = try TPMTPublic(tpmPublicBytes: try Self.base64(row.requiredText("device_public")))
                deviceKey = try Controller.deviceSigningKey(device)
                akName = try akPublic.name()
            } catch let e as ControllerError {
                throw e
            } catch {
                throw .internalFailure("database: device \(id) has an unreadable key: \(error)")
            }
            revoked = try row.requiredText("status") == "revoked"
            activatedAt = Date(sqlMilliseconds: try row.requiredInteger("activated_at"))
            onboardedAt = Date(sqlMilliseconds: try row.requiredInteger("onboarded_at"))
            previousQuoteText = try row.text("previous_quote")
            previousQuote = try previousQuoteText.flatMap(StoredQuote.decode)
        }

        static func base64(_ s: String) throws(ControllerError) -> [UInt8] {
            guard let d = Data(base64Encoded: s) else { throw .internalFailure("database: not base64") }
            return Array(d)
        }
    }

    /// The device key as a P-256 verification key: an ECC P-256, fixedTPM, fixedParent, sensitiveDataOrigin,
    /// signing-only key (TPM 2.0 Part 2 §8.3), i.e. one created in this TPM that never leaves it.
    static func deviceSigningKey(_ p: TPMTPublic) throws(ControllerError) -> P256.Signing.PublicKey {
        let required: TPMAObject = [.fixedTPM, .fixedParent, .sensitiveDataOrigin, .sign]
        guard p.objectAttributes.contains(required), !p.objectAttributes.contains(.decrypt) else {
            throw .invalid(
                "device_public: the device key must be fixedTPM, fixedParent, sensitiveDataOrigin and sign-only (attributes \(p.objectAttributes))"
            )
        }
        guard case .ecc(let ecc) = p.parameters, ecc.curve == .nistP256 else {
            throw .invalid("device_public: the device key must be an ECC NIST P-256 key")
        }
        guard let certKey = try? p.certificatePublicKey(), let key = P256.Signing.PublicKey(certKey) else {
            throw .invalid("device_public: not a valid P-256 public key")
        }
        return key
    }

    /// Authenticates a device request (``DeviceRequestSignature``): the device exists and is not revoked, the
    /// signature verifies with its device key, the time is near, and the request id is new. Returns the device.
    func authenticate(authorization: String?, method: String, path: String, body: [UInt8])
        async throws(ControllerError) -> DeviceRecord
    {
        guard let authorization else {
            throw .unauthenticated("no Authorization header: device requests are signed by the TPM device key")
        }
        let signature: DeviceRequestSignature
        do { signature = try DeviceRequestSignature(headerValue: authorization) } catch {
            throw ControllerError(error)
        }
        let now = clock()
        // The body (up to 8 MiB) is hashed before the transaction: nothing slow runs while the database is held.
        let text = DeviceRequestSignature.signedText(
            method: method, path: path, deviceID: signature.deviceID, timestamp: signature.timestamp,
            requestID: signature.requestID, body: body)
        let device = try await backend.transaction { [sweeps] tx throws(ControllerError) in
            guard
                let row = try await tx.first(
                    "SELECT \(DeviceRecord.columns) FROM devices WHERE device_id = ?",
                    [.text(signature.deviceID.rawValue)])
            else {
                throw .unauthenticated("unknown device \(signature.deviceID): onboard it first")
            }
            let device = try DeviceRecord(row: row)
            do throws(ControllerProtocolError) {
                try signature.verify(signedText: text, key: device.deviceKey, now: now)
            } catch {
                throw ControllerError(error)
            }
            try await Self.claimRequestID(tx, signature, now: now, sweep: sweeps.due("request_ids", at: now))
            return device
        }
        if device.revoked {
            // The device is told, and the attempt is on record (in its own transaction: the refusal is thrown).
            let error = ControllerError.forbidden(
                "device_revoked", "device \(device.id) is revoked: the controller no longer serves it")
            await auditRefusal(actor: .device(device.id), action: "request", subject: path, error)
            throw error
        }
        return device
    }

    /// Records a request id as used (once per device, kept until the signature's time window has passed). Expired
    /// ids are swept when `sweep` says (every few seconds, not on every request: an expired id can only match a
    /// request whose signature time is outside the window, which is refused before this).
    static func claimRequestID(
        _ tx: any SQLTransaction, _ signature: DeviceRequestSignature, now: Date, sweep: Bool = true
    ) async throws(ControllerError) {
        if sweep {
            try await tx.execute("DELETE FROM request_ids WHERE expires_at < ?", [.integer(now.sqlMilliseconds)])
        }
        let expires = Date(timeIntervalSince1970: Double(signature.timestamp) + DeviceRequestSignature.maximumClockSkew)
        let fresh = try await tx.query(
            "INSERT INTO request_ids (device_id, request_id, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING request_id",
            [.text(signature.deviceID.rawValue), .text(signature.requestID), .integer(expires.sqlMilliseconds + 1000)])
        guard !fresh.isEmpty else {
            throw .unauthenticated("request id \(signature.requestID) was already used: a replayed request")
        }
    }

    // MARK: Policies

    /// The policy assigned to `device` (directly, else through its group), parsed.
    func assignedPolicy(_ tx: any SQLTransaction, device: DeviceID, group: GroupName)
        async throws(ControllerError) -> AssignedPolicy?
    {
        var found = try await tx.first(
            "SELECT policy_name, policy_version FROM assignments WHERE target = ?", [.text("device:\(device)")])
        if found == nil {
            found = try await tx.first(
                "SELECT policy_name, policy_version FROM assignments WHERE target = ?", [.text("group:\(group)")])
        }
        guard let row = found else { return nil }
        guard let name = PolicyName(try row.requiredText("policy_name")) else {
            throw .internalFailure("database: an assignment names an invalid policy")
        }
        let version = Int(try row.requiredInteger("policy_version"))
        if let cached = await policies.get(name, version) { return cached }
        guard
            let p = try await tx.first(
                "SELECT yaml, parents FROM policies WHERE name = ? AND version = ?",
                [.text(name.rawValue), .integer(Int64(version))])
        else { throw .internalFailure("database: policy \(name)@\(version) is assigned but not stored") }
        let parents =
            (try? APIJSON.decode([String].self, from: Array(try p.requiredText("parents").utf8), limit: 8 << 20)) ?? []
        let document = try Self.loadPolicy(
            yaml: try p.requiredText("yaml"), parents: parents, label: "\(name)@\(version)")
        let assigned = AssignedPolicy(name: name, version: version, document: document)
        await policies.put(assigned)
        return assigned
    }

    /// The SHA-256 of the EK CA bundle a policy names, as stored (nil when it names none; `missing` when the bundle
    /// is not there): whether the anchors changed between two transactions.
    func anchorsDigest(_ tx: any SQLTransaction, for policy: AttestationPolicy) async throws(ControllerError)
        -> String?
    {
        guard let name = policy.identity?.ekCA else { return nil }
        guard let row = try await tx.first("SELECT certificates FROM ek_ca_bundles WHERE name = ?", [.text(name)])
        else { return "missing" }
        return Hex.encode(SHA256.hash(data: Array(try row.requiredText("certificates").utf8)))
    }

    /// The EK anchors a policy names (`identity.ek_ca` is a bundle name at the controller); nil when it names none.
    func anchors(_ tx: any SQLTransaction, for policy: AttestationPolicy) async throws(ControllerError)
        -> EKTrustAnchors?
    {
        guard let name = policy.identity?.ekCA else { return nil }
        guard
            let row = try await tx.first("SELECT certificates FROM ek_ca_bundles WHERE name = ?", [.text(name)])
        else {
            throw .conflict(
                "ek_ca_missing",
                "the policy names EK CA bundle \(name.debugDescription.prefix(80)), which has not been uploaded (vigil admin ek-ca add)"
            )
        }
        let encoded = try row.requiredText("certificates").split(separator: ",")
        var certificates: [Certificate] = []
        for der in encoded {
            guard let bytes = Data(base64Encoded: String(der)), let cert = try? Certificate(derEncoded: Array(bytes))
            else { throw .internalFailure("database: EK CA bundle \(name) holds an unreadable certificate") }
            certificates.append(cert)
        }
        return EKTrustAnchors(certificates: certificates, source: "EK CA bundle \(name)")
    }

    /// A stored policy version with its parsed document.
    struct AssignedPolicy: Sendable {
        let name: PolicyName
        let version: Int
        let document: AttestationPolicy
        var label: String { "\(name)@\(version)" }
    }

    /// Parsed policy versions (a version never changes once stored).
    actor PolicyCache {
        private var entries: [String: AssignedPolicy] = [:]
        func get(_ name: PolicyName, _ version: Int) -> AssignedPolicy? { entries["\(name)@\(version)"] }
        func put(_ p: AssignedPolicy) { entries[p.label] = p }
    }
}

/// The last accepted quote's clock, as the controller stores it (JSON).
enum StoredQuote {
    struct Stored: Codable {
        var clock: UInt64
        var resetCount: UInt32
        var restartCount: UInt32
        var safe: Bool
        var firmwareVersion: UInt64
    }

    static func encode(_ q: PreviousQuote) -> String {
        let s = Stored(
            clock: q.clockInfo.clock, resetCount: q.clockInfo.resetCount, restartCount: q.clockInfo.restartCount,
            safe: q.clockInfo.safe, firmwareVersion: q.firmwareVersion)
        return (try? APIJSON.encode(s)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    static func decode(_ text: String) throws(ControllerError) -> PreviousQuote? {
        guard !text.isEmpty else { return nil }
        guard let s = try? APIJSON.decode(Stored.self, from: Array(text.utf8), limit: 4096) else {
            throw .internalFailure("database: an unreadable previous quote")
        }
        return PreviousQuote(
            clockInfo: TPMSClockInfo(
                clock: s.clock, resetCount: s.resetCount, restartCount: s.restartCount, safe: s.safe),
            firmwareVersion: s.firmwareVersion)
    }
}
