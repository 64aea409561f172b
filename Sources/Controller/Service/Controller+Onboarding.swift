import Attest
public import ControllerProtocol
import Crypto
import Foundation
import Logging
import SwiftASN1
import X509

extension Controller {
    /// Limits on what onboarding reads.
    static let maximumPublicArea = 2048
    static let maximumCertificate = 16 * 1024
    static let maximumIntermediates = 8
    /// The largest onboarding or attestation request body.
    public static let maximumOnboardingBody = 256 * 1024

    /// `POST /v1/onboard/begin`: admits the device (known, allowed EK or enrollment token), checks its EK
    /// (certificate matches the public area, chain to the bundle its policy names), AK (a restricted,
    /// fixedTPM signing key) and device key, and answers with a credential challenge and a certify nonce.
    public func beginOnboarding(_ request: Onboarding.BeginRequest) async throws(ControllerError)
        -> Onboarding.Challenge
    {
        let now = clock()
        let parsed = try ParsedBegin(request)
        let fingerprint = parsed.fingerprint
        do throws(ControllerError) {
            return try await backend.transaction { [self] tx throws(ControllerError) in
                let existing = try await tx.first(
                    "SELECT device_id, group_name, status FROM devices WHERE ek_fingerprint = ?",
                    [.text(fingerprint.hex)])
                var group: GroupName
                var tokenHash: String?
                if let existing {
                    guard try existing.requiredText("status") != "revoked" else {
                        throw .forbidden(
                            "device_revoked", "device \(parsed.deviceID) is revoked: it cannot be onboarded again")
                    }
                    group = GroupName(try existing.requiredText("group_name")) ?? .default
                } else if let allowed = try await tx.first(
                    "SELECT group_name FROM allowed_eks WHERE ek_fingerprint = ?", [.text(fingerprint.hex)])
                {
                    group = GroupName(try allowed.requiredText("group_name")) ?? .default
                } else if let token = request.enrollToken {
                    let hash = TokenHash.hash(token)
                    guard
                        let row = try await tx.first(
                            "SELECT group_name, expires_at, used_at, used_by FROM enroll_tokens WHERE token_sha256 = ?",
                            [.text(hash)])
                    else {
                        throw .forbidden(
                            "enroll_token_unknown", "the enrollment token is not one this controller issued")
                    }
                    guard try row.integer("used_at") == nil else {
                        if try row.text("used_by") == "revoked" {
                            throw .forbidden("enroll_token_revoked", "the enrollment token was revoked")
                        }
                        throw .forbidden("enroll_token_used", "the enrollment token was already used")
                    }
                    guard try row.requiredInteger("expires_at") > now.sqlMilliseconds else {
                        throw .forbidden("enroll_token_expired", "the enrollment token has expired")
                    }
                    group = GroupName(try row.requiredText("group_name")) ?? .default
                    tokenHash = hash
                } else {
                    throw .forbidden(
                        "unknown_device",
                        "unknown device: EK \(fingerprint.hex) is not allowed (vigil admin device allow) and no enrollment token was given"
                    )
                }
                let (chain, chainVerified) = try await checkEKChain(tx, parsed, group: group, now: now)
                // A token proves who was invited, not that the keys are in a TPM: the keys' fixedTPM and
                // restricted bits are only what the request says until a manufacturer's certificate vouches for
                // the EK. So a token admits only a TPM whose EK chains to a bundle the group's policy names; a TPM
                // without one is admitted by its EK fingerprint (`device allow`), the team's explicit decision.
                if tokenHash != nil, !chainVerified {
                    throw .forbidden(
                        "ek_chain_required",
                        "an enrollment token admits only a TPM whose EK certificate chains to an EK CA bundle named by its group's policy (\(chain)); assign group \(group) a policy with identity.ek_ca, or admit this EK by fingerprint (vigil admin device allow --ek-fingerprint \(fingerprint.hex))"
                    )
                }

                let digestSize = parsed.ekPublic.nameAlg.digestSize ?? 32
                let secret = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0.prefix(min(32, digestSize))) }
                let credential: CredentialChallenge
                do throws(AttestError) {
                    credential = try CredentialChallenge.make(
                        ekPublic: parsed.ekPublic, akName: parsed.ak.name ?? TPMName(bytes: []), secret: secret)
                } catch {
                    throw .invalid("ek_public: credential activation cannot be made for this EK: \(error.reason)")
                }
                let challengeID = Hex.encode(SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) })
                let certifyNonce = Hex.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
                let expires = now.addingTimeInterval(configuration.challengeLifetime)
                // The token is stored only as its hash (token_sha256), never in the saved request.
                var stored = request
                stored.enrollToken = nil
                let requestJSON = String(decoding: try Self.encode(stored), as: UTF8.self)
                try await tx.execute(
                    "DELETE FROM onboard_challenges WHERE expires_at < ?", [.integer(now.sqlMilliseconds - 86_400_000)])
                try await tx.execute(
                    "INSERT INTO onboard_challenges (challenge_id, device_id, request, activation_secret, certify_nonce, group_name, token_sha256, ek_chain, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                    [
                        .text(challengeID), .text(parsed.deviceID.rawValue), .text(requestJSON),
                        .text(Hex.encode(secret)), .text(certifyNonce), .text(group.rawValue),
                        tokenHash.map { .text($0) } ?? .null, .text(chain), .integer(expires.sqlMilliseconds),
                    ])
                try await AuditLog.append(
                    tx, backend: backend, at: now, actor: .enrolling(fingerprint), action: "onboard.begin",
                    subject: parsed.deviceID.rawValue, outcome: "ok",
                    detail:
                        "group \(group); EK chain: \(chain); admitted by \(existing != nil ? "existing record" : tokenHash != nil ? "enrollment token" : "allowed EK")"
                )
                let credentialJSON: [UInt8]
                do { credentialJSON = try credential.json() } catch {
                    throw .internalFailure("credential challenge: \(error)")
                }
                return Onboarding.Challenge(
                    challengeID: challengeID, deviceID: parsed.deviceID,
                    credential: Data(credentialJSON).base64EncodedString(), certifyNonce: certifyNonce,
                    expiresAt: expires)
            }
        } catch {
            await auditRefusal(
                actor: .enrolling(fingerprint), action: "onboard.begin", subject: parsed.deviceID.rawValue, error)
            throw error
        }
    }

    /// Decodes and checks an onboarding request as ``beginOnboarding(_:)`` does before it touches the database
    /// (every key is a TPM key of the right kind, the EK certificate is the EK's), and returns the device id.
    /// For fuzzing and for tools that pre-check a request.
    public static func validateOnboarding(_ request: Onboarding.BeginRequest) throws(ControllerError) -> DeviceID {
        try ParsedBegin(request).deviceID
    }

    /// Checks the EK certificate against the bundle the device's policy names; returns how it was checked.
    func checkEKChain(_ tx: any SQLTransaction, _ parsed: ParsedBegin, group: GroupName, now: Date)
        async throws(ControllerError) -> (String, Bool)
    {
        guard let policy = try await assignedPolicy(tx, device: parsed.deviceID, group: group),
            let anchors = try await anchors(tx, for: policy.document)
        else {
            return (
                parsed.ekCertificate == nil
                    ? "not checked: no EK certificate, and no assigned policy names an EK CA bundle"
                    : "not checked: no assigned policy names an EK CA bundle", false
            )
        }
        guard let certificate = parsed.ekCertificate else {
            throw .forbidden(
                "ek_certificate_missing",
                "policy \(policy.label) requires an EK certificate chaining to \(anchors.source), and the device sent none"
            )
        }
        let verifier = EKCertificateVerifier(anchors: anchors, untrustedIntermediates: parsed.intermediates)
        switch await verifier.validate(certificate, at: now) {
        case .valid(let chain):
            return (
                "chains to \(anchors.source) (\(chain.map { $0.subject.description }.joined(separator: " → ")))", true
            )
        case .invalid(let reason):
            throw .forbidden(
                "ek_chain_invalid",
                "the EK certificate does not chain to \(anchors.source) (policy \(policy.label)): \(reason)")
        }
    }

    /// `POST /v1/onboard/finish`: the device proves its TPM holds the EK and the AK (the activated secret), that
    /// the device key is in the same TPM (the AK's TPM2_Certify over the nonce), and that it holds the device
    /// key (the request signature). Only then is the AK bound and the device recorded.
    public func finishOnboarding(
        _ request: Onboarding.FinishRequest, authorization: String?, method: String, path: String, body: [UInt8]
    ) async throws(ControllerError) -> Onboarding.Result {
        let now = clock()
        guard let authorization else {
            throw .unauthenticated("no Authorization header: onboarding is finished with the device key's signature")
        }
        let signature: DeviceRequestSignature
        do { signature = try DeviceRequestSignature(headerValue: authorization) } catch {
            throw ControllerError(error)
        }
        do throws(ControllerError) {
            return try await backend.transaction { [self] tx throws(ControllerError) in
                guard request.challengeID.utf8.count == 32, Hex.decode(request.challengeID) != nil,
                    let row = try await tx.first(
                        "SELECT device_id, request, activation_secret, certify_nonce, group_name, token_sha256, ek_chain, expires_at, used_at FROM onboard_challenges WHERE challenge_id = ?",
                        [.text(request.challengeID)])
                else { throw .notFound("no onboarding challenge \(request.challengeID.prefix(64).debugDescription)") }
                guard try row.requiredText("device_id") == signature.deviceID.rawValue else {
                    throw .forbidden("challenge_foreign", "the challenge was issued to another device")
                }
                guard try row.integer("used_at") == nil else {
                    throw .conflict("challenge_used", "the onboarding challenge was already answered")
                }
                guard try row.requiredInteger("expires_at") > now.sqlMilliseconds else {
                    throw .conflict("challenge_expired", "the onboarding challenge has expired: begin again")
                }
                let begin = try Self.decode(
                    Onboarding.BeginRequest.self, Array(try row.requiredText("request").utf8),
                    limit: Self.maximumOnboardingBody)
                let parsed = try ParsedBegin(begin)
                // The device key signed this request.
                do throws(ControllerProtocolError) {
                    try signature.verify(
                        method: method, path: path, body: body, key: parsed.deviceKey, now: now)
                } catch { throw ControllerError(error) }
                try await Self.claimRequestID(tx, signature, now: now)
                // One answer per challenge (also when two arrive at once on two controller instances).
                let marked = try await tx.query(
                    "UPDATE onboard_challenges SET used_at = ?, activation_secret = '' WHERE challenge_id = ? AND used_at IS NULL RETURNING challenge_id",
                    [.integer(now.sqlMilliseconds), .text(request.challengeID)])
                guard !marked.isEmpty else {
                    throw .conflict("challenge_used", "the onboarding challenge was already answered")
                }

                // 1. Credential activation: only the TPM holding this EK and an object with the AK's Name could
                // recover the secret.
                // The device answers HMAC-SHA256(activated secret, context ‖ challenge id), never the secret
                // itself: the TPM's answer to one MakeCredential can then not be replayed as another's (a secret
                // envelope's key presented as an onboarding challenge, say).
                let answer = try Self.base64(request.activatedSecret, "activated_secret", limit: 64)
                let stored = Hex.decode(try row.requiredText("activation_secret")) ?? []
                guard stored.count == 32 else { throw .internalFailure("database: a challenge without its secret") }
                let expected = OnboardingProof.expected(secret: stored, challengeID: request.challengeID)
                guard constantTimeEquals(answer, expected) else {
                    throw .forbidden(
                        "activation_failed",
                        "credential activation failed: the answer is not the secret sent to the EK for the AK's Name (the AK is not in the TPM holding this EK)"
                    )
                }
                // 2. The device key is in the same TPM: the bound AK certified it over the nonce.
                try Self.checkCertify(
                    request, ak: parsed.ak, devicePublic: parsed.devicePublic,
                    nonce: Hex.decode(try row.requiredText("certify_nonce")) ?? [])

                // 3. The enrollment token, if one admitted it, is used up now.
                if let tokenHash = try row.text("token_sha256") {
                    let used = try await tx.query(
                        "UPDATE enroll_tokens SET used_at = ?, used_by = ? WHERE token_sha256 = ? AND used_at IS NULL AND expires_at > ? RETURNING token_sha256",
                        [
                            .integer(now.sqlMilliseconds), .text(parsed.deviceID.rawValue), .text(tokenHash),
                            .integer(now.sqlMilliseconds),
                        ])
                    guard !used.isEmpty else {
                        throw .forbidden("enroll_token_used", "the enrollment token was used or expired meanwhile")
                    }
                }
                let group = GroupName(try row.requiredText("group_name")) ?? .default
                let chain = try row.requiredText("ek_chain")
                let akName = parsed.ak.name ?? TPMName(bytes: [])
                let created = try await recordDevice(tx, parsed, group: group, chain: chain, now: now)
                try await AuditLog.append(
                    tx, backend: backend, at: now, actor: .device(parsed.deviceID), action: "onboard",
                    subject: parsed.deviceID.rawValue, outcome: "ok",
                    detail:
                        "\(created ? "bound" : "already bound, unchanged"): AK \(Hex.encode(akName.bytes)) by credential activation to EK \(parsed.fingerprint.hex); group \(group)"
                )
                return Onboarding.Result(
                    deviceID: parsed.deviceID, group: group.rawValue, akName: Hex.encode(akName.bytes), ekChain: chain,
                    created: created)
            }
        } catch {
            // One answer per challenge, even a wrong one (the refused transaction rolled back its own mark).
            _ = try? await backend.transaction { tx throws(ControllerError) in
                try await tx.execute(
                    "UPDATE onboard_challenges SET used_at = ?, activation_secret = '' WHERE challenge_id = ? AND device_id = ? AND used_at IS NULL",
                    [.integer(now.sqlMilliseconds), .text(request.challengeID), .text(signature.deviceID.rawValue)])
            }
            // Until the device key's signature verified, the id in the header is only a claim.
            let actor: AuditLog.Actor = error.status == 401 ? .anonymous : .device(signature.deviceID)
            await auditRefusal(actor: actor, action: "onboard", subject: signature.deviceID.rawValue, error)
            throw error
        }
    }

    /// Writes the device (new, or rebound after its TPM made a new AK); false when nothing changed.
    func recordDevice(_ tx: any SQLTransaction, _ p: ParsedBegin, group: GroupName, chain: String, now: Date)
        async throws(ControllerError) -> Bool
    {
        let akName = Hex.encode((p.ak.name ?? TPMName(bytes: [])).bytes)
        let ekB64 = Data(p.ekPublic.marshalTPM2B()).base64EncodedString()
        let akB64 = Data(p.ak.publicArea.marshalTPM2B()).base64EncodedString()
        let devB64 = Data(p.devicePublic.marshalTPM2B()).base64EncodedString()
        let certB64: SQLValue = p.ekCertificate.map { .text(Data($0.derBytes).base64EncodedString()) } ?? .null
        if let row = try await tx.first(
            "SELECT ek_fingerprint, ak_name, device_public FROM devices WHERE device_id = ?",
            [.text(p.deviceID.rawValue)])
        {
            guard try row.requiredText("ek_fingerprint") == p.fingerprint.hex else {
                throw .conflict("device_id_collision", "device id \(p.deviceID) belongs to another EK")
            }
            if try row.requiredText("ak_name") == akName, try row.requiredText("device_public") == devB64 {
                return false
            }
            // A new AK or device key (a cleared or re-provisioned TPM): nothing attested under the old keys
            // counts any more, and the last quote's clock stays to compare the next one with.
            try await tx.execute(
                "UPDATE attestations SET expires_at = 0 WHERE device_id = ?", [.text(p.deviceID.rawValue)])
            try await tx.execute(
                "UPDATE devices SET ak_public = ?, ak_name = ?, device_public = ?, ek_certificate = ?, ek_chain = ?, activated_at = ?, last_attestation = NULL WHERE device_id = ?",
                [
                    .text(akB64), .text(akName), .text(devB64), certB64, .text(chain), .integer(now.sqlMilliseconds),
                    .text(p.deviceID.rawValue),
                ])
            return true
        }
        try await tx.execute(
            "INSERT INTO devices (device_id, ek_fingerprint, ek_public, ek_certificate, ak_public, ak_name, device_public, group_name, status, ek_chain, onboarded_at, activated_at, previous_quote, last_attestation, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, NULL, NULL, ?)",
            [
                .text(p.deviceID.rawValue), .text(p.fingerprint.hex), .text(ekB64), certB64, .text(akB64),
                .text(akName), .text(devB64), .text(group.rawValue), .text(chain), .integer(now.sqlMilliseconds),
                .integer(now.sqlMilliseconds), .integer(now.sqlMilliseconds),
            ])
        return true
    }

    /// TPM2_Certify (Part 3 §18.2) of the device key by the AK: signed by the AK in its scheme, a TPM-generated
    /// TPMS_ATTEST of type certify, naming the device key, over the controller's nonce.
    static func checkCertify(
        _ request: Onboarding.FinishRequest, ak: AKPublic, devicePublic: TPMTPublic, nonce: [UInt8]
    ) throws(ControllerError) {
        let attestBytes = try base64(request.certifyAttest, "certify_attest", limit: TPMSAttest.maxSize)
        let sigBytes = try base64(request.certifySignature, "certify_signature", limit: TPMTSignature.maxSize)
        do {
            let sig = try TPMTSignature(bytes: sigBytes)
            try ak.checkScheme(of: sig)
            guard ak.isValidSignature(sig, for: attestBytes) else {
                throw ControllerError.forbidden(
                    "certify_invalid", "the device key's certification is not signed by the AK")
            }
            let attest = try TPMSAttest(bytes: attestBytes)
            guard case .certify(let name, _) = attest.attested else {
                throw ControllerError.forbidden("certify_invalid", "the AK signed something other than TPM2_Certify")
            }
            guard name == (try devicePublic.name()) else {
                throw ControllerError.forbidden(
                    "certify_invalid", "the AK certified another object than the device key (its Name differs)")
            }
            guard constantTimeEquals(attest.extraData, nonce) else {
                throw ControllerError.forbidden(
                    "certify_invalid", "the certification is not over this challenge's nonce (a replayed certification)"
                )
            }
        } catch let e as ControllerError {
            throw e
        } catch let e as AttestError {
            throw .invalid("certify: \(e.reason)")
        } catch {
            throw .invalid("certify: \(error)")
        }
    }

    /// The begin request, decoded and checked: every key in it is one a TPM made and keeps.
    struct ParsedBegin: Sendable {
        let ekPublic: TPMTPublic
        let ekCertificate: EKCertificate?
        let intermediates: [Certificate]
        let ak: AKPublic
        let devicePublic: TPMTPublic
        let deviceKey: P256.Signing.PublicKey
        let fingerprint: EKFingerprint
        let deviceID: DeviceID

        init(_ r: Onboarding.BeginRequest) throws(ControllerError) {
            do {
                ekPublic = try TPMTPublic(
                    tpmPublicBytes: try Controller.base64(r.ekPublic, "ek_public", limit: Controller.maximumPublicArea))
            } catch let e as ControllerError { throw e } catch { throw .invalid("ek_public: \(error)") }
            if let c = r.ekCertificate {
                let der = try Controller.base64(c, "ek_certificate", limit: Controller.maximumCertificate)
                do { ekCertificate = try EKCertificate(bytes: der) } catch {
                    throw .invalid("ek_certificate: \(error.reason)")
                }
            } else {
                ekCertificate = nil
            }
            let list = r.ekIntermediates ?? []
            guard list.count <= Controller.maximumIntermediates else {
                throw .invalid("ek_intermediates: more than \(Controller.maximumIntermediates) certificates")
            }
            var intermediates: [Certificate] = []
            for (i, c) in list.enumerated() {
                let der = try Controller.base64(c, "ek_intermediates[\(i)]", limit: Controller.maximumCertificate)
                guard let cert = try? Certificate(derEncoded: der) else {
                    throw .invalid("ek_intermediates[\(i)]: not a DER X.509 certificate")
                }
                intermediates.append(cert)
            }
            self.intermediates = intermediates
            do {
                ak = try AKPublic(
                    try TPMTPublic(
                        tpmPublicBytes: try Controller.base64(
                            r.akPublic, "ak_public", limit: Controller.maximumPublicArea)))
                devicePublic = try TPMTPublic(
                    tpmPublicBytes: try Controller.base64(
                        r.devicePublic, "device_public", limit: Controller.maximumPublicArea))
            } catch let e as ControllerError { throw e } catch let e as AttestError {
                throw .invalid("ak_public: \(e.reason)")
            } catch { throw .invalid("\(error)") }
            deviceKey = try Controller.deviceSigningKey(devicePublic)
            if let cert = ekCertificate {
                guard (try? cert.matches(ekPublic)) == true else {
                    throw .invalid(
                        "ek_certificate: its public key is not the EK's (ek_public): a certificate of another TPM")
                }
            }
            do { fingerprint = try EKFingerprint(ek: ekPublic) } catch { throw .invalid("ek_public: \(error.reason)") }
            deviceID = DeviceID(ekFingerprint: fingerprint)
            guard (try? devicePublic.name()) != ak.name else {
                throw .invalid("device_public: the device key must not be the AK")
            }
        }
    }

    // MARK: Helpers shared by the services

    static func base64(_ text: String, _ field: String, limit: Int) throws(ControllerError) -> [UInt8] {
        do { return try APIJSON.base64(text, field: field, limit: limit) } catch { throw ControllerError(error) }
    }

    static func encode(_ value: some Encodable) throws(ControllerError) -> [UInt8] {
        do { return try APIJSON.encode(value) } catch { throw .internalFailure(error.reason) }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], limit: Int, knownKeys: Set<String>? = nil)
        throws(ControllerError) -> T
    {
        do { return try APIJSON.decode(type, from: bytes, limit: limit, knownKeys: knownKeys) } catch {
            throw ControllerError(error)
        }
    }

    /// Records a refusal in the audit log, in its own transaction (the refused one rolled back).
    func auditRefusal(actor: AuditLog.Actor, action: String, subject: String, _ error: ControllerError) async {
        let now = clock()
        if error.status >= 500 {
            logger.error("internal failure", metadata: ["action": "\(action)", "error": "\(error.reason)"])
        }
        do {
            _ = try await backend.transaction { [backend] tx throws(ControllerError) in
                try await AuditLog.append(
                    tx, backend: backend, at: now, actor: actor, action: action, subject: subject,
                    outcome: "refused:\(error.code)", detail: error.status >= 500 ? "internal error" : error.reason)
            }
        } catch {
            logger.error("audit: could not record a refusal", metadata: ["error": "\(error)"])
        }
        logger.notice(
            "refused", metadata: ["action": "\(action)", "subject": "\(subject)", "code": "\(error.code)"])
    }
}
