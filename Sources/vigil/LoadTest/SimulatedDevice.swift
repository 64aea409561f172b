import Attest
import AttestTPM
import ControllerProtocol
import Crypto
import Foundation
import Synchronization
import _CryptoExtras

/// **A simulated device for load tests — not a TPM and proof of nothing.** Its EK, AK and device key are software
/// P-256 keys in this process, and it answers the controller the way a TPM would: TPM2_ActivateCredential (Part 3
/// §12.5) done in software with the EK's private key, TPMS_ATTEST structures for TPM2_Certify and TPM2_Quote (Part 2
/// §10.12) built and signed here, PCRs equal to the replay of a real event log from the fixtures. The controller
/// cannot tell it from a TPM whose EK it admits by fingerprint (no manufacturer certificate), which is exactly what
/// a load test needs: the controller's full path (request signatures, credential activation, certify, nonce, quote
/// signature, log replay, policy, verdict, audit, signed result) without swtpm's CPU in the measurement.
/// `vigil loadtest` says so in its output; nothing else in Vigil uses it.
final class SimulatedDevice: Sendable {
    let ek: P256.KeyAgreement.PrivateKey
    let ak: P256.Signing.PrivateKey
    let deviceKey: P256.Signing.PrivateKey
    let ekPublic: TPMTPublic
    let akPublic: TPMTPublic
    let devicePublic: TPMTPublic
    let akName: TPMName
    let id: DeviceID
    let eventLog: [UInt8]
    let replayed: EventLogReplay
    /// TPMS_CLOCK_INFO.clock: milliseconds since this simulated TPM started, always increasing.
    private let started = ContinuousClock.now
    private let lastClock = Mutex<UInt64>(0)

    /// A fresh simulated TPM that booted the machine `eventLog` describes (already parsed and replayed).
    init(eventLog: [UInt8], replayed: EventLogReplay) throws {
        ek = P256.KeyAgreement.PrivateKey()
        ak = P256.Signing.PrivateKey()
        deviceKey = P256.Signing.PrivateKey()
        ekPublic = Self.filling(EndorsementKeyTemplate.eccNISTP256.template, with: ek.publicKey.rawRepresentation)
        akPublic = Self.filling(IdentityKeyTemplates.attestationKey(.eccP256), with: ak.publicKey.rawRepresentation)
        devicePublic = Self.filling(IdentityKeyTemplates.deviceKey, with: deviceKey.publicKey.rawRepresentation)
        akName = try akPublic.name()
        id = DeviceID(ekFingerprint: try EKFingerprint(ek: ekPublic))
        self.eventLog = eventLog
        self.replayed = replayed
    }

    /// `template` with the ECC point `xy` (x ‖ y, 32 bytes each) as its unique field.
    static func filling(_ template: TPMTPublic, with xy: Data) -> TPMTPublic {
        var filled = template
        if case .ecc(var p) = template.parameters {
            p.x = Array(xy.prefix(32))
            p.y = Array(xy.suffix(32))
            filled.parameters = .ecc(p)
        }
        return filled
    }

    // MARK: Onboarding

    /// `POST /v1/onboard/begin`'s body.
    var beginRequest: Onboarding.BeginRequest {
        Onboarding.BeginRequest(
            ekPublic: Data(ekPublic.marshalTPM2B()).base64EncodedString(), ekCertificate: nil, ekIntermediates: nil,
            akPublic: Data(akPublic.marshalTPM2B()).base64EncodedString(),
            devicePublic: Data(devicePublic.marshalTPM2B()).base64EncodedString(), enrollToken: nil)
    }

    /// `POST /v1/onboard/finish`'s body: the activated credential and the AK's certification of the device key.
    func finish(_ challenge: Onboarding.Challenge) throws -> Onboarding.FinishRequest {
        guard let json = Data(base64Encoded: challenge.credential), json.count <= 64 * 1024,
            let nonce = Hex.decode(challenge.certifyNonce), nonce.count <= 64
        else { throw SimulationError("the onboarding challenge is malformed") }
        let credential = try CredentialChallenge(json: Array(json))
        let secret = try activateCredential(credential)
        var certified = ByteWriter()  // TPMS_CERTIFY_INFO, Part 2 §10.12.3
        let deviceName = try devicePublic.name().bytes
        certified.appendTPM2B(deviceName)
        certified.appendTPM2B(deviceName)
        let attest = attestStructure(type: TPMSAttest.typeCertify, extraData: nonce, attested: certified.bytes)
        return Onboarding.FinishRequest(
            challengeID: challenge.challengeID,
            activatedSecret: Data(OnboardingProof.expected(secret: secret, challengeID: challenge.challengeID))
                .base64EncodedString(),
            certifyAttest: Data(attest).base64EncodedString(),
            certifySignature: Data(try sign(attest)).base64EncodedString())
    }

    /// TPM2_ActivateCredential (Part 3 §12.5) in software for the ECC EK: Z = ECDH(EK, ephemeral point),
    /// seed = KDFe(SHA-256, Z, "IDENTITY", ephemeral.x, EK.x); the outer HMAC (KDFa "INTEGRITY") over encIdentity ‖
    /// AK Name is checked before encIdentity is decrypted with AES-128-CFB (KDFa "STORAGE", AK Name), IV 0.
    func activateCredential(_ credential: CredentialChallenge) throws -> [UInt8] {
        guard credential.akName == akName else { throw SimulationError("the credential is for another AK") }
        var point = ByteReader(credential.encryptedSecret)
        let x = try point.readTPM2B("TPMS_ECC_POINT.x", maxSize: 32)
        let y = try point.readTPM2B("TPMS_ECC_POINT.y", maxSize: 32)
        let ephemeral = try P256.KeyAgreement.PublicKey(rawRepresentation: x + y)
        let z = try ek.sharedSecretFromKeyAgreement(with: ephemeral).withUnsafeBytes { Array($0) }
        guard case .ecc(let ekParameters) = ekPublic.parameters else { throw SimulationError("the EK is not ECC") }
        let seed = try TPMKDF.kdfe(
            .sha256, z: z, label: "IDENTITY", partyUInfo: x, partyVInfo: ekParameters.x, bits: 256)
        var blob = ByteReader(credential.credentialBlob)
        let integrity = try blob.readTPM2B("TPM2B_ID_OBJECT.integrityHMAC", maxSize: 32)
        let encIdentity = Array(credential.credentialBlob.dropFirst(2 + integrity.count))
        let hmacKey = try TPMKDF.kdfa(.sha256, key: seed, label: "INTEGRITY", contextU: [], contextV: [], bits: 256)
        guard constantTimeEquals(try TPMKDF.hmac(.sha256, key: hmacKey, [encIdentity, akName.bytes]), integrity) else {
            throw SimulationError("the credential's integrity HMAC does not verify (TPM_RC_INTEGRITY)")
        }
        let symKey = try TPMKDF.kdfa(
            .sha256, key: seed, label: "STORAGE", contextU: akName.bytes, contextV: [], bits: 128)
        let plain = try AES._CFB.decrypt(
            encIdentity, using: SymmetricKey(data: symKey), iv: AES._CFB.IV(ivBytes: [UInt8](repeating: 0, count: 16)))
        var digest = ByteReader(Array(plain))
        return try digest.readTPM2B("TPM2B_DIGEST", maxSize: 64)
    }

    // MARK: Attestation

    /// The `Authorization` header of a device request (``DeviceRequestSignature``, signed by the device key).
    func authorization(path: String, body: [UInt8]) throws -> String {
        let timestamp = Int64(Date().timeIntervalSince1970)
        let requestID = Hex.encode(SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) })
        let text = DeviceRequestSignature.signedText(
            method: "POST", path: path, deviceID: id, timestamp: timestamp, requestID: requestID, body: body)
        let signature = try deviceKey.signature(for: text).derRepresentation
        return DeviceRequestSignature(
            deviceID: id, timestamp: timestamp, requestID: requestID, signature: Array(signature)
        ).headerValue
    }

    /// The evidence for `nonce`: a TPM2_Quote of `selection` (SHA-256 bank only) over the replayed PCRs, signed by
    /// the AK, with the event log.
    func evidence(nonce: [UInt8], selection: TPMLPCRSelection) throws -> EvidenceBundle {
        var banks: [TPMAlgorithmID: [Int: [UInt8]]] = [:]
        for s in selection.nonEmpty {
            guard s.hash == .sha256 else { throw SimulationError("the simulation quotes only the SHA-256 bank") }
            for pcr in s.pcrs {
                banks[.sha256, default: [:]][pcr] =
                    replayed.value(.sha256, pcr) ?? [UInt8](repeating: 0, count: 32)
            }
        }
        let values = PCRValues(banks: banks)
        var quoted = ByteWriter()  // TPMS_QUOTE_INFO, Part 2 §10.12.1
        selection.marshal(into: &quoted)
        quoted.appendTPM2B(try values.digest(for: selection, hashAlg: .sha256))
        let attest = attestStructure(type: TPMSAttest.typeQuote, extraData: nonce, attested: quoted.bytes)
        return EvidenceBundle(
            deviceID: id.rawValue, nonce: nonce, attest: attest, signature: try sign(attest), pcrs: values,
            akPublic: akPublic, ekCertificate: nil, deviceCertificate: nil, eventLog: eventLog, collectedAt: Date(),
            ekPublic: ekPublic)
    }

    /// TPMS_ATTEST (Part 2 §10.12.12): magic, type, the AK's Name as signer, `extraData`, the clock (this simulated
    /// TPM never resets or restarts), firmware version, then the type's structure.
    private func attestStructure(type: UInt16, extraData: [UInt8], attested: [UInt8]) -> [UInt8] {
        let elapsed = ContinuousClock.now - started
        let now = UInt64(max(0, elapsed.components.seconds)) * 1000 + 1000
        let clock = lastClock.withLock { last -> UInt64 in
            last = max(last + 1, now)
            return last
        }
        var w = ByteWriter()
        w.append(TPMSAttest.generatedValue)
        w.append(type)
        w.appendTPM2B(akName.bytes)
        w.appendTPM2B(extraData)
        w.append(clock)
        w.append(UInt32(0))  // resetCount
        w.append(UInt32(0))  // restartCount
        w.append(UInt8(1))  // safe
        w.append(UInt64(0x2023_0601_0000_0000))  // firmwareVersion
        w.append(bytes: attested)
        return w.bytes
    }

    /// TPMT_SIGNATURE (ECDSA, SHA-256) by the AK over `attest`.
    private func sign(_ attest: [UInt8]) throws -> [UInt8] {
        let raw = Array(try ak.signature(for: attest).rawRepresentation)
        return TPMTSignature(
            algorithm: .ecdsa, hashAlg: .sha256, body: .ecc(r: Array(raw.prefix(32)), s: Array(raw.suffix(32)))
        ).marshal()
    }
}

/// A simulated device could not do what the controller asked.
struct SimulationError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
