import Attest
public import ControllerProtocol
import Crypto
import Foundation

extension Controller {
    /// `POST /v1/secrets/{name}`: releases the latest version of the device's secret `name`, wrapped so only
    /// its TPM can open it (``SecretEnvelope``), while its latest attestation passed and its result has not
    /// expired. Otherwise refused with why (no attestation, the rules that failed, the expiry). Both audited.
    public func releaseSecret(
        _ nameText: String, authorization: String?, method: String, path: String, body: [UInt8]
    ) async throws(ControllerError) -> SecretEnvelope {
        let device = try await authenticate(authorization: authorization, method: method, path: path, body: body)
        let now = clock()
        do throws(ControllerError) {
            guard let name = SecretName(nameText) else {
                throw ControllerError.invalid("secret name \(nameText.prefix(80).debugDescription) is not a valid name")
            }
            return try await backend.transaction { [self] tx throws(ControllerError) in
                try await requireFreshPass(tx, device, now: now)
                if name.rawValue.hasPrefix(Escrow.namePrefix) {
                    try await spendPassForEscrow(tx, device, name: name, now: now)
                }
                guard
                    let row = try await tx.first(
                        "SELECT version, sealed FROM secrets WHERE name = ? AND device_id = ? ORDER BY version DESC LIMIT 1",
                        [.text(name.rawValue), .text(device.id.rawValue)])
                else { throw .notFound("no secret \(name) for \(device.id)") }
                let version = Int(try row.requiredInteger("version"))
                var plaintext = try openAtRest(
                    try row.requiredText("sealed"), name: name, device: device.id, version: version)
                defer { for i in plaintext.indices { plaintext[i] = 0 } }
                // A fresh key per release, delivered by MakeCredential to the EK for the bound AK's Name.
                var keyBytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
                defer { for i in keyBytes.indices { keyBytes[i] = 0 } }
                let credential: CredentialChallenge
                do throws(AttestError) {
                    credential = try CredentialChallenge.make(
                        ekPublic: device.ekPublic, akName: device.akName, secret: keyBytes)
                } catch { throw .internalFailure("MakeCredential for \(device.id): \(error.reason)") }
                let releaseNonce = Hex.encode(SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) })
                let sealed: [UInt8]
                do throws(ControllerProtocolError) {
                    sealed = try SecretEnvelope.seal(
                        plaintext, key: SecretEnvelope.key(activated: keyBytes, releaseNonce: releaseNonce),
                        deviceID: device.id, name: name,
                        version: version, releaseNonce: releaseNonce)
                } catch { throw .internalFailure(error.reason) }
                let credentialJSON: [UInt8]
                do { credentialJSON = try credential.json() } catch { throw .internalFailure("\(error)") }
                try await AuditLog.append(
                    tx, backend: backend, at: now, actor: .device(device.id), action: "secret.release",
                    subject: "\(name)@\(device.id)", outcome: "ok",
                    detail:
                        "version \(version); release \(releaseNonce); wrapped to EK \(device.ekFingerprint.hex.prefix(16)) for AK \(Hex.encode(device.akName.bytes).prefix(20))"
                )
                return SecretEnvelope(
                    deviceID: device.id, name: name.rawValue, version: version, releaseNonce: releaseNonce,
                    credential: Data(credentialJSON).base64EncodedString(),
                    sealed: Data(sealed).base64EncodedString())
            }
        } catch {
            await auditRefusal(
                actor: .device(device.id), action: "secret.release", subject: nameText.prefix(64) + "@\(device.id)",
                error)
            throw error
        }
    }

    /// The largest escrow deposit body: the blob's base64 and the JSON around it.
    public static let maximumEscrowBody = SecretEnvelope.maximumSecretSize * 4 / 3 + 1024

    /// `POST /v1/escrow/{name}`: the device deposits a vault escrow as a new version of its secret `name`
    /// (which must start with ``Escrow/namePrefix``, so a device never replaces a secret the team put). Only while
    /// its latest attestation passed: a device that fails attestation cannot replace its escrow. Earlier versions
    /// are kept; the release path hands back the latest. Audited, refusals too.
    public func depositEscrow(
        _ nameText: String, authorization: String?, method: String, path: String, body: [UInt8]
    ) async throws(ControllerError) -> Escrow.Receipt {
        let device = try await authenticate(authorization: authorization, method: method, path: path, body: body)
        let now = clock()
        do throws(ControllerError) {
            guard let name = SecretName(nameText), nameText.hasPrefix(Escrow.namePrefix),
                nameText.utf8.count > Escrow.namePrefix.utf8.count
            else {
                throw ControllerError.invalid(
                    "escrow name \(nameText.prefix(80).debugDescription) must be a valid name starting with \(Escrow.namePrefix)"
                )
            }
            let deposit: Escrow.Deposit
            do {
                deposit = try APIJSON.decode(
                    Escrow.Deposit.self, from: body, limit: Self.maximumEscrowBody, knownKeys: Escrow.Deposit.knownKeys)
            } catch { throw ControllerError(error) }
            var value = try Self.base64(deposit.value, "value", limit: SecretEnvelope.maximumSecretSize)
            defer { for i in value.indices { value[i] = 0 } }
            guard !value.isEmpty else { throw .invalid("value: the escrow is empty") }
            let blob = value
            return try await backend.transaction { [self] tx throws(ControllerError) in
                try await requireFreshPass(tx, device, now: now)  // a failing device cannot replace its escrow
                let last =
                    try await tx.first(
                        "SELECT MAX(version) AS v FROM secrets WHERE name = ? AND device_id = ?",
                        [.text(name.rawValue), .text(device.id.rawValue)])?.integer("v") ?? 0
                let version = Int(last + 1)
                let sealed = try sealAtRest(blob, name: name, device: device.id, version: version)
                try await tx.execute(
                    "INSERT INTO secrets (name, device_id, version, sealed, created_at) VALUES (?, ?, ?, ?, ?)",
                    [
                        .text(name.rawValue), .text(device.id.rawValue), .integer(Int64(version)), .text(sealed),
                        .integer(now.sqlMilliseconds),
                    ])
                try await AuditLog.append(
                    tx, backend: backend, at: now, actor: .device(device.id), action: "escrow.deposit",
                    subject: "\(name)@\(device.id)", outcome: "ok",
                    detail: "version \(version), \(blob.count) bytes (sealed to the device's TPM; unreadable here)")
                return Escrow.Receipt(name: name.rawValue, version: version)
            }
        } catch {
            await auditRefusal(
                actor: .device(device.id), action: "escrow.deposit", subject: nameText.prefix(64) + "@\(device.id)",
                error)
            throw error
        }
    }

    /// How recent the pass that releases an escrow must be.
    static let escrowPassWindow: TimeInterval = 60

    /// An escrow (a vault key) is released only on a pass from the last ``escrowPassWindow`` seconds, and only
    /// once per pass: the attestation is spent in the same transaction (a primary key, so two concurrent releases
    /// cannot both spend it). A thief who boots their own system cannot ride on the device's last periodic pass:
    /// it is either too old or already spent, and a new one needs a quote of the approved boot.
    func spendPassForEscrow(_ tx: any SQLTransaction, _ device: DeviceRecord, name: SecretName, now: Date)
        async throws(ControllerError)
    {
        guard
            let last = try await tx.first(
                "SELECT a.id AS id, a.at AS at FROM devices d JOIN attestations a ON a.id = d.last_attestation WHERE d.device_id = ?",
                [.text(device.id.rawValue)])
        else { throw .forbidden("not_attested", "\(device.id) has not attested: attest first") }
        let id = try last.requiredText("id")
        guard try last.requiredInteger("at") >= now.addingTimeInterval(-Self.escrowPassWindow).sqlMilliseconds else {
            throw .forbidden(
                "attestation_expired",
                "an escrow is released only on a pass from the last \(Int(Self.escrowPassWindow)) s: attest again")
        }
        guard
            try await tx.first("SELECT attestation_id FROM escrow_releases WHERE attestation_id = ?", [.text(id)])
                == nil
        else {
            throw .forbidden("attestation_spent", "this pass already released an escrow: attest again")
        }
        try await tx.execute(
            "INSERT INTO escrow_releases (attestation_id, device_id, name, at) VALUES (?, ?, ?, ?)",
            [.text(id), .text(device.id.rawValue), .text(name.rawValue), .integer(now.sqlMilliseconds)])
    }

    /// Refuses unless the device's latest attestation passed and its result has not expired.
    func requireFreshPass(_ tx: any SQLTransaction, _ device: DeviceRecord, now: Date) async throws(ControllerError) {
        // Re-read inside the release's own transaction: an attestation that failed, a revoke or a rebind committed
        // since the request was authenticated decides.
        guard
            let current = try await tx.first(
                "SELECT status, ak_name, last_attestation FROM devices WHERE device_id = ?", [.text(device.id.rawValue)]
            ),
            try current.requiredText("status") == "active",
            try current.requiredText("ak_name") == Hex.encode(device.akName.bytes)
        else {
            throw .forbidden("device_revoked", "\(device.id) was revoked or rebound: no secret is released")
        }
        guard let last = try current.text("last_attestation"),
            let row = try await tx.first(
                "SELECT at, pass, policy, verdict, refusal, expires_at FROM attestations WHERE id = ?", [.text(last)])
        else { throw .forbidden("not_attested", "\(device.id) has not attested: attest first") }
        guard try row.requiredInteger("pass") == 1 else {
            let why: String
            if let refusal = try row.text("refusal") {
                why = "its latest evidence was refused (\(refusal))"
            } else {
                let rules = (try? Self.failedRules(row.text("verdict") ?? "")) ?? []
                why =
                    "its latest attestation failed policy \(try row.text("policy") ?? "?")\(rules.isEmpty ? "" : ": " + rules.joined(separator: ", "))"
            }
            throw .forbidden("not_attested", "\(device.id) may not receive secrets: \(why)")
        }
        guard let expires = try row.integer("expires_at"), expires > now.sqlMilliseconds else {
            throw .forbidden(
                "attestation_expired", "\(device.id)'s latest pass has expired: attest again for a fresh result")
        }
    }

    static func failedRules(_ verdictJSON: String) throws -> [String] {
        guard let object = try JSONSerialization.jsonObject(with: Data(verdictJSON.utf8)) as? [String: Any],
            let results = object["results"] as? [[String: Any]]
        else { return [] }
        return results.compactMap { r in
            guard r["status"] as? String == "failed", r["enforced"] as? Bool ?? true else { return nil }
            var s = r["rule"] as? String ?? "?"
            if let pcr = r["pcr"] as? Int { s += " (PCR \(pcr))" }
            return s
        }
    }

    /// Secrets at rest: AES-256-GCM under `storage.key`, bound to name, device and version.
    func sealAtRest(_ plaintext: [UInt8], name: SecretName, device: DeviceID, version: Int) throws(ControllerError)
        -> String
    {
        do {
            let box = try AES.GCM.seal(
                plaintext, using: state.storageKey,
                authenticating: Self.atRestAAD(name: name, device: device, version: version))
            guard let combined = box.combined else { throw ControllerError.internalFailure("AES-GCM: no output") }
            return combined.base64EncodedString()
        } catch let e as ControllerError { throw e } catch { throw .internalFailure("AES-GCM: \(error)") }
    }

    func openAtRest(_ text: String, name: SecretName, device: DeviceID, version: Int) throws(ControllerError) -> [UInt8]
    {
        guard let data = Data(base64Encoded: text), let box = try? AES.GCM.SealedBox(combined: data),
            let plain = try? AES.GCM.open(
                box, using: state.storageKey,
                authenticating: Self.atRestAAD(name: name, device: device, version: version))
        else {
            throw .internalFailure(
                "secret \(name)@\(device) v\(version) does not open with storage.key (edited in the database, or another controller's key)"
            )
        }
        return Array(plain)
    }

    static func atRestAAD(name: SecretName, device: DeviceID, version: Int) -> [UInt8] {
        Array(
            ["vigil-secret-at-rest", name.rawValue, device.rawValue, String(version)].joined(separator: "\u{0}").utf8)
    }
}
