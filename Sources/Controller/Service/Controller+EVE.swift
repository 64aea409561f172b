import Attest
public import ControllerProtocol
import Crypto
public import EVEAPI
import Foundation
import Logging
import Policy
import SwiftASN1
import SwiftProtobuf
public import X509

/// An answer of the EVE API: an HTTP status and a body (a signed `AuthContainer`, or nothing).
public struct EVEResponse: Sendable {
    /// The HTTP status (APIv2.md's codes: 200, 201).
    public let status: Int
    /// The body: a serialized `AuthContainer` signed by the controller, or empty.
    public let body: [UInt8]
    /// For metrics: the attestation's outcome when this answered a quote (`pass`, or why not).
    public let attestation: (pass: Bool, reason: String)?

    init(status: Int, body: [UInt8] = [], attestation: (pass: Bool, reason: String)? = nil) {
        self.status = status
        self.body = body
        self.attestation = attestation
    }
}

/// EVE's device API (lf-edge/eve-api `APIv2.md`), answered by Vigil's verifier: an EVE device registers, fetches
/// the controller's certificates and its UUID, uploads its certificates and attests, unchanged.
///
/// What differs from Adam, EVE's open controller, and why:
/// - every request's `AuthContainer` signature is checked with the certificate the controller holds (the device's
///   registered certificate, found by `senderCertHash`; the onboarding certificate for `register`), and a device
///   may act only on its own UUID;
/// - nonces are single-use, per device and expiring (Adam hands out one reusable nonce per device);
/// - a quote is verified by ``EvidenceVerifier`` (signature, nonce, PCR digest, clock and reset counters against
///   the last accepted quote, every PCR the policy needs, the event log replayed) and judged by the device's group
///   policy, and a quote over no PCR fails;
/// - the integrity token is the signed attestation result (JWT), which any relying party checks offline;
/// - stored volume keys are accepted only with the device's current valid token and returned only on a pass.
///
/// EVE's protocol has no credential activation: the AK is vouched for only by the device certificate, so AK–EK
/// co-residence is not proven. The verdict says so (`ak_bound_to_ek` false; EAR instance-identity 0; the result's
/// `vigil.ak-activated` false) and a policy with `identity.ak_activated: required` refuses such devices.
extension Controller {
    /// The onboarding or device certificate's largest accepted PEM (register.proto's `pemCert` limits).
    static let eveDeviceCertificatePEM = 100...10_240
    /// The largest serial (register.proto).
    static let eveMaximumSerial = 256
    /// The most volume keys stored per device, and the largest one.
    static let eveMaximumStoredKeys = 16
    static let eveMaximumKeySize = 4096

    // MARK: Pre-registration (the security team)

    /// `vigil admin eve preregister`: EVE devices with this onboarding certificate and/or serial may register.
    public func preregisterEVE(_ caller: AdminCaller, _ request: Admin.EVEPreregistration)
        async throws(ControllerError)
    {
        var onboardingHash: String?
        if let pem = request.onboardingCertificate {
            guard pem.utf8.count <= Self.eveDeviceCertificatePEM.upperBound * 2 else {
                throw .tooLarge(
                    "onboarding_certificate: more than \(Self.eveDeviceCertificatePEM.upperBound * 2) bytes")
            }
            let cert: Certificate
            do { cert = try Certificate(pemEncoded: pem) } catch {
                throw .invalid("onboarding_certificate: not a PEM X.509 certificate (\(error))")
            }
            onboardingHash = Hex.encode(SHA256.hash(data: try UnverifiedAuthContainer.der(cert)))
        }
        let onboarding = onboardingHash
        let serial = try request.serial.map { s throws(ControllerError) in try Self.eveSerial(s, field: "serial") }
        guard onboarding != nil || serial != nil else {
            throw .invalid("give an onboarding certificate, a serial, or both")
        }
        let group =
            try request.group.map { g throws(ControllerError) in
                guard let n = GroupName(g) else { throw .invalid("group: not a valid group name") }
                return n
            } ?? .default
        try await adminAction(
            caller, "eve.preregister", subject: onboarding.map { "onboarding:\($0.prefix(16))" } ?? "serial"
        ) {
            tx, now throws(ControllerError) in
            try await tx.execute(
                "INSERT INTO eve_preregistrations (id, onboarding_sha256, serial, group_name, created_at) VALUES (?, ?, ?, ?, ?)",
                [
                    .text(Hex.encode(SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) })),
                    onboarding.map { .text($0) } ?? .null, serial.map { .text($0) } ?? .null, .text(group.rawValue),
                    .integer(now.sqlMilliseconds),
                ])
            return (
                (),
                "onboarding \(onboarding?.prefix(16) ?? "any"); serial \(serial?.debugDescription ?? "any"); group \(group)"
            )
        }
    }

    /// Checks a `ZRegisterMsg` as register.proto's validation rules say (pemCert 100–10,240 bytes, serial and
    /// softSerial at most 256 characters, softSerial `^[a-zA-Z0-9_-]*$`), and that the device certificate's key is
    /// one EVE's object signing uses. Returns the certificate, serial and soft serial.
    public static func validateEVERegistration(_ message: Org_Lfedge_Eve_Register_ZRegisterMsg)
        throws(ControllerError) -> (certificate: Certificate, serial: String, softSerial: String)
    {
        guard eveDeviceCertificatePEM.contains(message.pemCert.count) else {
            throw .unprocessable(
                "ZRegisterMsg.pemCert: \(message.pemCert.count) bytes (\(eveDeviceCertificatePEM.lowerBound)–\(eveDeviceCertificatePEM.upperBound))"
            )
        }
        let serial = try eveSerial(message.serial, field: "ZRegisterMsg.serial")
        let softSerial = try eveSerial(message.softSerial, field: "ZRegisterMsg.softSerial")
        guard
            softSerial.unicodeScalars.allSatisfy({
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-")
            })
        else { throw .unprocessable("ZRegisterMsg.softSerial: only letters, digits, '_' and '-'") }
        let device: Certificate
        do { device = try Certificate(pemEncoded: String(decoding: message.pemCert, as: UTF8.self)) } catch {
            throw .unprocessable("ZRegisterMsg.pemCert: not a PEM X.509 certificate (\(error))")
        }
        _ = try EVESignerKey(device, role: "device")
        return (device, serial, softSerial)
    }

    /// `vigil admin eve unregister UUID`: deletes an EVE device's registration, freeing its onboarding certificate
    /// and serial, its device certificate and its AK (a squatter's registration, or a device to onboard again). Its
    /// verdict history and audit entries stay; a device that registers again gets a new UUID.
    public func unregisterEVE(_ caller: AdminCaller, uuid text: String) async throws(ControllerError) {
        guard let uuid = EVEDeviceUUID(text) else { throw .invalid("not an EVE device UUID") }
        try await adminAction(caller, "eve.unregister", subject: uuid.rawValue) { tx, _ throws(ControllerError) in
            guard
                let row = try await tx.first(
                    "DELETE FROM eve_devices WHERE uuid = ? RETURNING device_id, serial", [.text(uuid.rawValue)])
            else { throw .notFound("no EVE device \(uuid)") }
            return (
                (),
                "device \(try row.requiredText("device_id")); serial \(try row.requiredText("serial").debugDescription)"
            )
        }
    }

    static func eveSerial(_ s: String, field: String) throws(ControllerError) -> String {
        // Bytes, not characters: one base letter with a million combining marks is one Character.
        guard s.utf8.count <= eveMaximumSerial else {
            throw .unprocessable("\(field): \(s.utf8.count) bytes (at most \(eveMaximumSerial))")
        }
        guard
            !s.unicodeScalars.contains(where: {
                $0.properties.generalCategory == .control || $0.properties.generalCategory == .format
            })
        else { throw .unprocessable("\(field): contains control or format characters") }
        return s
    }

    // MARK: register, ping, certs, uuid

    /// `POST /api/v2/edgedevice/register`: the body is signed by the onboarding certificate, sent whole in
    /// `senderCert`; the `ZRegisterMsg` carries the device certificate and serial. 201 for a new device, 200 for the
    /// same certificate again, 409 for a different one, 403 without a pre-registration.
    public func eveRegister(body: [UInt8]) async throws(ControllerError) -> EVEResponse {
        let container = try UnverifiedAuthContainer(parsing: body)
        guard let onboarding = container.senderCertificate else {
            throw .unauthenticated("register: the AuthContainer must carry the onboarding certificate in senderCert")
        }
        let verified = try container.verify(signer: onboarding, role: "onboarding")
        let onboardingFP = Hex.encode(SHA256.hash(data: verified.signerDER))
        let actor = AuditLog.Actor.eveOnboarding(onboardingFP)
        do {
            return try await registerVerified(verified, onboardingFP: onboardingFP, actor: actor)
        } catch  where error.code == "eve_not_preregistered" {
            // Anyone can make an onboarding certificate: an unknown one is logged, not written to the audit chain
            // (which would let anyone on the network grow it at will).
            logger.notice(
                "EVE registration without a pre-registration", metadata: ["onboarding": "\(onboardingFP.prefix(16))"])
            throw error
        } catch {
            await auditRefusal(
                actor: actor, action: "eve.register", subject: "onboarding:\(onboardingFP.prefix(16))", error)
            throw error
        }
    }

    private func registerVerified(_ verified: VerifiedAuthContainer, onboardingFP: String, actor: AuditLog.Actor)
        async throws(ControllerError) -> EVEResponse
    {
        let message = try verified.message(Org_Lfedge_Eve_Register_ZRegisterMsg.self)
        let (device, serial, softSerial) = try Self.validateEVERegistration(message)
        let pem = String(decoding: message.pemCert, as: UTF8.self)
        let der = try UnverifiedAuthContainer.der(device)
        guard der != verified.signerDER else {
            throw .unprocessable("ZRegisterMsg.pemCert: the device certificate is the onboarding certificate")
        }
        for own in [state.caCertificate, state.eveSigningCertificate] where own.publicKey == device.publicKey {
            throw .unprocessable("ZRegisterMsg.pemCert: the key of one of this controller's own certificates")
        }
        let certFP = Hex.encode(SHA256.hash(data: der))
        let id = DeviceID(eveDeviceKey: Array(device.publicKey.subjectPublicKeyInfoBytes))
        let now = clock()
        return try await backend.transaction { [backend] tx throws(ControllerError) in
            guard
                let pre = try await tx.first(
                    """
                    SELECT group_name FROM eve_preregistrations
                    WHERE (onboarding_sha256 = ? OR onboarding_sha256 IS NULL) AND (serial = ? OR serial IS NULL)
                    ORDER BY (CASE WHEN onboarding_sha256 IS NULL THEN 0 ELSE 2 END)
                        + (CASE WHEN serial IS NULL THEN 0 ELSE 1 END) DESC, created_at DESC LIMIT 1
                    """, [.text(onboardingFP), .text(serial)])
            else {
                throw .forbidden(
                    "eve_not_preregistered",
                    "register: neither this onboarding certificate (SHA-256 \(onboardingFP.prefix(16))…) nor serial \(serial.debugDescription) is pre-registered (vigil admin eve preregister)"
                )
            }
            guard let group = GroupName(try pre.requiredText("group_name")) else {
                throw .internalFailure("database: invalid group in a pre-registration")
            }
            if let existing = try await tx.first(
                "SELECT uuid, device_cert_sha256, status FROM eve_devices WHERE onboarding_sha256 = ? AND serial = ?",
                [.text(onboardingFP), .text(serial)])
            {
                guard try existing.requiredText("status") == "active" else {
                    throw .forbidden(
                        "device_revoked",
                        "register: the device registered with this onboarding certificate and serial is revoked (vigil admin eve unregister frees the pair)"
                    )
                }
                guard try existing.requiredText("device_cert_sha256") == certFP else {
                    throw .conflict(
                        "eve_duplicate_device",
                        "register: onboarding certificate \(onboardingFP.prefix(16))… with serial \(serial.debugDescription) is already registered with another device certificate"
                    )
                }
                try await AuditLog.append(
                    tx, backend: backend, at: now, actor: actor, action: "eve.register",
                    subject: try existing.requiredText("uuid"), outcome: "ok",
                    detail: "registered again (same device certificate)")
                return EVEResponse(status: 200)
            }
            if try await tx.first(
                "SELECT uuid FROM eve_devices WHERE device_cert_sha256 = ? OR device_id = ?",
                [.text(certFP), .text(id.rawValue)]) != nil
            {
                throw .conflict(
                    "eve_duplicate_device",
                    "register: this device certificate (or its key) is already registered with another onboarding certificate or serial"
                )
            }
            if try await tx.first("SELECT device_id FROM devices WHERE device_id = ?", [.text(id.rawValue)]) != nil {
                throw .conflict("eve_duplicate_device", "register: device id \(id) is taken")
            }
            let uuid = EVEDeviceUUID.make()
            try await tx.execute(
                """
                INSERT INTO eve_devices (uuid, device_id, device_cert_sha256, device_cert_sha256_16, device_cert,
                    onboarding_sha256, serial, soft_serial, group_name, status, registered_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)
                """,
                [
                    .text(uuid.rawValue), .text(id.rawValue), .text(certFP), .text(String(certFP.prefix(32))),
                    .text(pem),
                    .text(onboardingFP), .text(serial), .text(softSerial), .text(group.rawValue),
                    .integer(now.sqlMilliseconds),
                ])
            try await AuditLog.append(
                tx, backend: backend, at: now, actor: actor, action: "eve.register", subject: uuid.rawValue,
                outcome: "ok",
                detail:
                    "device \(id); certificate \(device.subject) (SHA-256 \(certFP.prefix(16))…); serial \(serial.debugDescription); group \(group)"
            )
            return EVEResponse(status: 201)
        }
    }

    /// `GET /api/v2/edgedevice/certs`: the object-signing certificate and the CA above it (`ZControllerCert`).
    public func eveCertificates() throws(ControllerError) -> EVEResponse {
        func zcert(_ cert: Certificate, _ type: Org_Lfedge_Eve_Certs_ZCertType) throws(ControllerError)
            -> Org_Lfedge_Eve_Certs_ZCert
        {
            var z = Org_Lfedge_Eve_Certs_ZCert()
            let der = try UnverifiedAuthContainer.der(cert)
            z.type = type
            z.hashAlgo = .sha25632Bytes
            z.certHash = Data(SHA256.hash(data: der))
            do { z.cert = Data(try cert.serializeAsPEM().pemString.utf8) } catch {
                throw .internalFailure("cannot encode a certificate as PEM: \(error)")
            }
            z.attributes.isMutable = true
            return z
        }
        var message = Org_Lfedge_Eve_Certs_ZControllerCert()
        message.certs = [
            try zcert(state.eveSigningCertificate, .certTypeControllerSigning),
            try zcert(state.caCertificate, .certTypeControllerIntermediate),
        ]
        return EVEResponse(status: 200, body: try EVEObjectSigner(state).seal(message))
    }

    /// `POST /api/v2/edgedevice/uuid`: the UUID the controller assigned at registration (`UuidResponse`).
    public func eveUUID(body: [UInt8]) async throws(ControllerError) -> EVEResponse {
        let (device, verified) = try await authenticateEVE(body)
        _ = try verified.message(Org_Lfedge_Eve_Uuid_UuidRequest.self)
        var response = Org_Lfedge_Eve_Uuid_UuidResponse()
        response.uuid = device.uuid.rawValue
        return EVEResponse(status: 200, body: try EVEObjectSigner(state).seal(response))
    }

    // MARK: Device authentication

    /// An EVE device as the controller stores it.
    struct EVEDeviceRecord: Sendable {
        let uuid: EVEDeviceUUID
        let id: DeviceID
        let certificate: Certificate
        let group: GroupName
        let revoked: Bool
        let certificates: EVEDeviceCertificates
        let previousQuote: PreviousQuote?

        static let columns =
            "uuid, device_id, device_cert, group_name, status, certs, previous_quote"

        init(row: SQLRow) throws(ControllerError) {
            guard let uuid = EVEDeviceUUID(try row.requiredText("uuid")),
                let id = DeviceID(try row.requiredText("device_id")),
                let group = GroupName(try row.requiredText("group_name"))
            else { throw .internalFailure("database: an EVE device row has an invalid uuid, id or group") }
            self.uuid = uuid
            self.id = id
            self.group = group
            do { certificate = try Certificate(pemEncoded: try row.requiredText("device_cert")) } catch {
                throw .internalFailure("database: EVE device \(uuid) has an unreadable certificate")
            }
            revoked = try row.requiredText("status") == "revoked"
            certificates = try EVEDeviceCertificates.decode(try row.text("certs"))
            previousQuote = try row.text("previous_quote").flatMap(StoredQuote.decode)
        }
    }

    /// Finds the sender by `senderCertHash` among registered EVE devices and checks its signature; refuses a revoked
    /// device (403, audited).
    func authenticateEVE(_ body: [UInt8]) async throws(ControllerError) -> (EVEDeviceRecord, VerifiedAuthContainer) {
        let container = try UnverifiedAuthContainer(parsing: body)
        let hash = container.senderCertHash
        let rows = try await backend.transaction { tx throws(ControllerError) in
            try await tx.query(
                "SELECT \(EVEDeviceRecord.columns) FROM eve_devices WHERE \(hash.bytes.count == 32 ? "device_cert_sha256" : "device_cert_sha256_16") = ? LIMIT 4",
                [.text(hash.hex)])
        }
        guard !rows.isEmpty else {
            throw .unauthenticated(
                "no registered EVE device has a certificate with senderCertHash \(hash.hex): register first")
        }
        var refusal = ControllerError.unauthenticated("AuthContainer: no matching device certificate")
        for row in rows {
            let device = try EVEDeviceRecord(row: row)
            do throws(ControllerError) {
                let verified = try container.verify(signer: device.certificate, role: "device")
                if device.revoked {
                    let error = ControllerError.forbidden(
                        "device_revoked",
                        "device \(device.id) (EVE \(device.uuid)) is revoked: the controller no longer serves it")
                    await auditRefusal(
                        actor: .device(device.id), action: "eve.request", subject: device.uuid.rawValue, error)
                    throw error
                }
                return (device, verified)
            } catch {
                if error.code == "device_revoked" { throw error }
                refusal = error
            }
        }
        throw refusal
    }

    // MARK: attest

    /// `POST /api/v2/edgedevice/id/{uuid}/attest` (`ZAttestReq` → `ZAttestResponse`, 201). A device may act only on
    /// its own UUID.
    public func eveAttest(uuid text: String, body: [UInt8]) async throws(ControllerError) -> EVEResponse {
        let (device, verified) = try await authenticateEVE(body)
        guard let uuid = EVEDeviceUUID(text) else {
            throw .invalid("the path's device UUID \(text.prefix(40).debugDescription) is not a UUID")
        }
        guard uuid == device.uuid else {
            let error = ControllerError.forbidden(
                "eve_wrong_uuid",
                "the request is signed by EVE device \(device.uuid) but names \(uuid): a device may act only on its own UUID"
            )
            await auditRefusal(actor: .device(device.id), action: "eve.attest", subject: uuid.rawValue, error)
            throw error
        }
        let request = try verified.message(Org_Lfedge_Eve_Attest_ZAttestReq.self)
        let signer = try EVEObjectSigner(state)
        switch request.reqType {
        case .attestReqCert:
            try await storeEVECertificates(device, request.certs)
            var response = Org_Lfedge_Eve_Attest_ZAttestResponse()
            response.respType = .attestRespCert
            return EVEResponse(status: 201, body: try signer.seal(response))
        case .attestReqNonce:
            let nonce = try await issueEVENonce(device)
            var response = Org_Lfedge_Eve_Attest_ZAttestResponse()
            response.respType = .attestRespNonce
            response.nonce.nonce = Data(nonce)
            return EVEResponse(status: 201, body: try signer.seal(response))
        case .attestReqQuote:
            guard request.hasQuote else { throw .unprocessable("ZAttestReq (ATTEST_REQ_QUOTE): no quote") }
            try admitEvidence(from: device.id)
            let (quoteResponse, outcome) = try await judgeEVEQuote(device, request.quote, evidence: verified.payload)
            var response = Org_Lfedge_Eve_Attest_ZAttestResponse()
            response.respType = .attestRespQuoteResp
            response.quoteResp = quoteResponse
            return EVEResponse(status: 201, body: try signer.seal(response), attestation: outcome)
        case .storeKeys:
            guard request.hasStorageKeys else {
                throw .unprocessable("ZAttestReq (Z_ATTEST_REQ_TYPE_STORE_KEYS): no storage_keys")
            }
            var response = Org_Lfedge_Eve_Attest_ZAttestResponse()
            response.respType = .storeKeys
            response.storageKeysResp.response = try await storeEVEKeys(device, request.storageKeys)
            return EVEResponse(status: 201, body: try signer.seal(response))
        default:
            throw .unprocessable(
                "ZAttestReq.reqType \(request.reqType.rawValue) is not CERT, NONCE, QUOTE or STORE_KEYS")
        }
    }

    /// `ATTEST_REQ_CERT`: checks and stores the device's AK, EK and ECDH certificates (``EVEDeviceCertificates``).
    func storeEVECertificates(_ device: EVEDeviceRecord, _ certs: [Org_Lfedge_Eve_Certs_ZCert])
        async throws(ControllerError)
    {
        let now = clock()
        do {
            try await backend.transaction { [self] tx throws(ControllerError) in
                // Re-read under the transaction: two uploads at once cannot both replace an immutable certificate.
                // The row, locked and re-read (a conditional UPDATE): a revoke or another upload that committed since
                // the request was authenticated wins.
                guard
                    let row = try await tx.first(
                        "UPDATE eve_devices SET last_seen = ? WHERE uuid = ? AND status = 'active' RETURNING \(EVEDeviceRecord.columns)",
                        [.integer(now.sqlMilliseconds), .text(device.uuid.rawValue)])
                else { throw .forbidden("device_revoked", "device \(device.id) was revoked") }
                var current = try EVEDeviceRecord(row: row).certificates
                var anchors: EKTrustAnchors?
                if let policy = try await assignedPolicy(tx, device: device.id, group: device.group) {
                    anchors = try await self.anchors(tx, for: policy.document)
                }
                try await current.apply(certs, device: device.certificate, anchors: anchors, now: now)
                // An AK belongs to one device: a certificate for a key another device attests with is refused (a
                // device copying another's public AK would otherwise share its identity in the fleet view).
                var akName: String?
                if let ak = try current.attestationKeyPublic() {
                    let name: TPMName
                    do { name = try ak.name() } catch {
                        throw .unprocessable("the AK's TPM2_PUBLIC has no Name: \(error)")
                    }
                    akName = Hex.encode(name.bytes)
                    if try await tx.first(
                        "SELECT uuid AS holder FROM eve_devices WHERE ak_name = ? AND uuid <> ? UNION ALL SELECT device_id AS holder FROM devices WHERE ak_name = ?",
                        [.text(Hex.encode(name.bytes)), .text(device.uuid.rawValue), .text(Hex.encode(name.bytes))])
                        != nil
                    {
                        throw .conflict(
                            "ak_in_use",
                            "ZAttestReq (ATTEST_REQ_CERT): AK \(name) is already another device's attestation key")
                    }
                }
                try await tx.execute(
                    "UPDATE eve_devices SET certs = ?, ak_name = ?, last_seen = ? WHERE uuid = ?",
                    [
                        .text(try current.encoded()), akName.map { .text($0) } ?? .null, .integer(now.sqlMilliseconds),
                        .text(device.uuid.rawValue),
                    ])
                try await AuditLog.append(
                    tx, backend: backend, at: now, actor: .device(device.id), action: "eve.certs",
                    subject: device.uuid.rawValue, outcome: "ok",
                    detail: certs.map { "\($0.type)\($0.attributes.isMutable ? "" : " (immutable)")" }.joined(
                        separator: ", "))
            }
        } catch {
            await auditRefusal(actor: .device(device.id), action: "eve.certs", subject: device.uuid.rawValue, error)
            throw error
        }
    }

    /// `ATTEST_REQ_NONCE`: a fresh 32-byte nonce, single-use and expiring, recorded like every other device's.
    func issueEVENonce(_ device: EVEDeviceRecord) async throws(ControllerError) -> [UInt8] {
        try await recordNonce(device: device.id, group: device.group, note: "EVE \(device.uuid); ").nonce
    }

    /// `ATTEST_REQ_QUOTE`: the quote verified and judged like any device's; the answer is EVE's response code, with
    /// the signed result as integrity token and the stored keys on a pass.
    func judgeEVEQuote(_ device: EVEDeviceRecord, _ quote: Org_Lfedge_Eve_Attest_ZAttestQuote, evidence: [UInt8])
        async throws(ControllerError) -> (Org_Lfedge_Eve_Attest_ZAttestQuoteResp, (pass: Bool, reason: String))
    {
        let evidenceDigest = Hex.encode(SHA256.hash(data: evidence))
        var response = Org_Lfedge_Eve_Attest_ZAttestQuoteResp()
        func refused(_ code: Org_Lfedge_Eve_Attest_ZAttestResponseCode, _ error: ControllerError) async
            -> (Org_Lfedge_Eve_Attest_ZAttestQuoteResp, (pass: Bool, reason: String))
        {
            await recordRefusal(device: device.id, error, evidenceDigest: evidenceDigest)
            response.response = code
            return (response, (false, error.code))
        }
        guard let ak = try device.certificates.attestationKeyPublic() else {
            return await refused(
                .noCertFound,
                .evidence(
                    "no_cert_found",
                    "no attestation key certificate (CERT_TYPE_DEVICE_RESTRICTED_SIGNING) was uploaded: send ATTEST_REQ_CERT first"
                ))
        }
        let now = clock()
        let parsed: EVEQuoteEvidence
        do {
            parsed = try EVEQuoteEvidence(
                quote, ak: ak, ekCertificate: try device.certificates.endorsementCertificateDER(), deviceID: device.id,
                now: now)
        } catch {
            return await refused(.quoteFailed, error)
        }
        // The nonce: the quote's extraData only finds the controller's record, which is spent whatever follows.
        let issued: (nonce: [UInt8], issuedAt: Date)
        do { issued = try await consumeNonce(Hex.encode(parsed.claimedNonce), device: device.id) } catch {
            if error.status >= 500 { throw error }
            // EVE's envelope has no freshness of its own: anyone who saw an old quote (a TLS-terminating proxy) can
            // replay it. The replay is refused and on record, but it does not become the device's latest
            // attestation, so it cannot withdraw the token of an honest pass.
            await recordRefusal(device: device.id, error, evidenceDigest: evidenceDigest, latest: false)
            response.response = .nonceMismatch
            return (response, (false, error.code))
        }
        do throws(ControllerError) {
            let (token, judgement, keys) = try await backend.transaction { [self] tx throws(ControllerError) in
                // The row, locked and re-read: a revoke that committed since the request was authenticated wins, and
                // the previous quote is the latest one stored.
                guard
                    let row = try await tx.first(
                        "UPDATE eve_devices SET last_seen = ? WHERE uuid = ? AND status = 'active' AND device_id = ? RETURNING storage_keys, certs, previous_quote",
                        [.integer(now.sqlMilliseconds), .text(device.uuid.rawValue), .text(device.id.rawValue)])
                else {
                    throw .forbidden(
                        "device_revoked", "\(device.id) was revoked while this attestation was in progress")
                }
                // The AK that signed must still be the one on record (a concurrent certificate upload wins).
                guard try EVEDeviceCertificates.decode(try row.text("certs")) == device.certificates else {
                    throw .conflict(
                        "eve_certificates_changed", "the device's certificates changed during this attestation")
                }
                guard let policy = try await assignedPolicy(tx, device: device.id, group: device.group) else {
                    throw .conflict(
                        "no_policy",
                        "no policy assigned to \(device.id) or its group \(device.group): there is no implicit accept")
                }
                let anchors = try await anchors(tx, for: policy.document)
                let judgement = try await judge(
                    parsed.bundle, device: device.id, nonce: issued.nonce, nonceIssuedAt: issued.issuedAt,
                    policy: policy, anchors: anchors, binding: nil,
                    previous: try row.text("previous_quote").flatMap(StoredQuote.decode), now: now,
                    deviceKeyThumbprint: try EVESignerKey(device.certificate, role: "device").thumbprint,
                    akActivated: false)
                let id = Controller.newAttestationID()
                let pass = judgement.verdict.pass
                try await tx.execute(
                    "UPDATE eve_devices SET last_attestation = ?, last_seen = ?, previous_quote = ?, integrity_token_sha256 = ? WHERE uuid = ?",
                    [
                        .text(id), .integer(now.sqlMilliseconds),
                        .text(StoredQuote.encode(judgement.verified.previousForNextAttestation)),
                        pass ? .text(Hex.encode(SHA256.hash(data: Array(judgement.token.utf8)))) : .null,
                        .text(device.uuid.rawValue),
                    ])
                // The verdict and its audit entry last: the audit chain's lock is held from there to the commit.
                _ = try await store(
                    judgement, tx, device: device.id, evidenceDigest: evidenceDigest, now: now, id: id)
                return (judgement.token, judgement, pass ? try row.text("storage_keys") : nil)
            }
            guard judgement.verdict.pass else {
                response.response = .quoteFailed
                return (response, (false, "policy"))
            }
            response.response = .success
            response.integrityToken = Data(token.utf8)
            if let keys, let stored = Data(base64Encoded: keys) {
                do { response.keys = try Org_Lfedge_Eve_Attest_AttestStorageKeys(serializedBytes: stored).keys } catch {
                    throw ControllerError.internalFailure("database: unreadable stored volume keys for \(device.id)")
                }
                logger.info(
                    "released stored volume keys",
                    metadata: ["device": "\(device.id)", "count": "\(response.keys.count)"])
            }
            return (response, (true, "pass"))
        } catch {
            if error.status >= 500 { throw error }
            return await refused(.quoteFailed, error)
        }
    }

    /// `Z_ATTEST_REQ_TYPE_STORE_KEYS`: stores the device's encrypted volume keys when `integrity_token` is its current
    /// valid token (from its latest attestation, which passed and has not expired); else ITOKEN_MISMATCH.
    func storeEVEKeys(_ device: EVEDeviceRecord, _ keys: Org_Lfedge_Eve_Attest_AttestStorageKeys)
        async throws(ControllerError) -> Org_Lfedge_Eve_Attest_AttestStorageKeysResponseCode
    {
        guard keys.keys.count <= Self.eveMaximumStoredKeys else {
            throw .unprocessable("AttestStorageKeys: \(keys.keys.count) keys (at most \(Self.eveMaximumStoredKeys))")
        }
        for (i, k) in keys.keys.enumerated() where k.key.count > Self.eveMaximumKeySize {
            throw .unprocessable(
                "AttestStorageKeys.keys[\(i)]: \(k.key.count) bytes (at most \(Self.eveMaximumKeySize))")
        }
        guard keys.integrityToken.count <= 16 * 1024 else {
            throw .unprocessable("AttestStorageKeys.integrity_token: \(keys.integrityToken.count) bytes")
        }
        let presented = Array(SHA256.hash(data: keys.integrityToken))
        let now = clock()
        // What is stored: the keys only, without fields this controller does not know and without a PCR list (the
        // PCRs a key is bound to are the controller's to choose, and Vigil chooses none: EVE's defaults apply).
        var toStore = Org_Lfedge_Eve_Attest_AttestStorageKeys()
        toStore.keys = keys.keys.map { k in
            var stored = Org_Lfedge_Eve_Attest_AttestVolumeKey()
            stored.keyType = k.keyType
            stored.key = k.key
            return stored
        }
        let serialized: [UInt8]
        do { serialized = try toStore.serializedBytes() } catch {
            throw .internalFailure("cannot serialize keys: \(error)")
        }
        let encoded = Data(serialized).base64EncodedString()
        return try await backend.transaction { [backend] tx throws(ControllerError) in
            // The row, locked (a conditional UPDATE): two stores at once are serialized, and a revoke wins.
            let row = try await tx.first(
                "UPDATE eve_devices SET last_seen = ? WHERE uuid = ? AND status = 'active' RETURNING integrity_token_sha256, keys_token_sha256, storage_keys, last_attestation",
                [.integer(now.sqlMilliseconds), .text(device.uuid.rawValue)])
            let current = try row?.text("integrity_token_sha256").flatMap { Hex.decode($0) }
            var expires: Int64 = 0
            if let last = try row?.text("last_attestation") {
                expires =
                    try await tx.first(
                        "SELECT expires_at FROM attestations WHERE id = ? AND pass = 1", [.text(last)])?.integer(
                        "expires_at") ?? 0
            }
            func mismatch(_ why: String) async throws(ControllerError)
                -> Org_Lfedge_Eve_Attest_AttestStorageKeysResponseCode
            {
                try await AuditLog.append(
                    tx, backend: backend, at: now, actor: .device(device.id), action: "eve.store-keys",
                    subject: device.uuid.rawValue, outcome: "refused:itoken_mismatch", detail: why)
                return .itokenMismatch
            }
            guard let row, let current, constantTimeEquals(current, presented), expires > now.sqlMilliseconds else {
                return try await mismatch("the integrity token is not the device's current valid one (attest again)")
            }
            // One store per token: the same keys again are a retry; other keys under a token already used would be
            // a replayed older store (EVE's envelope carries no freshness), which must not roll the keys back.
            if try row.text("keys_token_sha256") == Hex.encode(presented) {
                guard try row.text("storage_keys") == encoded else {
                    return try await mismatch(
                        "this integrity token was already used to store other keys (attest again)")
                }
                return .success
            }
            try await tx.execute(
                "UPDATE eve_devices SET storage_keys = ?, keys_token_sha256 = ? WHERE uuid = ?",
                [.text(encoded), .text(Hex.encode(presented)), .text(device.uuid.rawValue)])
            try await AuditLog.append(
                tx, backend: backend, at: now, actor: .device(device.id), action: "eve.store-keys",
                subject: device.uuid.rawValue, outcome: "ok",
                detail:
                    "\(keys.keys.count) volume key(s), \(serialized.count) bytes, SHA-256 \(Hex.encode(SHA256.hash(data: serialized)).prefix(16))…"
            )
            return .success
        }
    }
}
