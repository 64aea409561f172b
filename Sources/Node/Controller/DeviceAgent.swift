public import Attest
public import AttestTPM
public import ControllerClient
public import ControllerProtocol
import Crypto
import Foundation

/// The device's side of the controller protocol (`vigil device onboard | attest | fetch-secret`): every key
/// operation happens in the TPM (credential activation, TPM2_Certify, the quote, the request signatures by
/// the device key), and the device never decides anything the controller must check.
public struct DeviceAgent: Sendable {
    /// The TPM.
    public let tpm: TPM
    /// The controller.
    public let connection: ControllerConnection
    /// The device id, when the caller already derived it from this TPM's EK (saves reading the EK and its
    /// certificate from NV for every request).
    let knownID: DeviceID?

    /// An agent for `tpm` talking to `connection`; `deviceID`, if given, must be the one derived from this TPM's
    /// EK (``deviceID()``).
    public init(tpm: TPM, connection: ControllerConnection, deviceID: DeviceID? = nil) {
        self.tpm = tpm
        self.connection = connection
        self.knownID = deviceID
    }

    /// The device's EK (one with a certificate in NV when there is one), its certificate, and the device id.
    func endorsementKey() async throws -> (public: TPMTPublic, certificate: EKCertificate?, id: DeviceID) {
        try await Self.endorsementKey(of: tpm)
    }

    /// The EK of `tpm` that onboarding uses (one with a certificate in NV when there is one), its certificate,
    /// and the device id derived from it.
    public static func endorsementKey(of tpm: TPM) async throws -> (
        public: TPMTPublic, certificate: EKCertificate?, id: DeviceID
    ) {
        var fallback: TPMTPublic?
        for template in EndorsementKeyTemplate.allCases {
            guard let ek = try await tpm.readPublic(template.persistentHandle) else { continue }
            if let cert = try await IdentityProvisioner.readEKCertificate(tpm, template),
                (try? cert.matches(ek.publicArea)) == true
            {
                return (ek.publicArea, cert, DeviceID(ekFingerprint: try EKFingerprint(ek: ek.publicArea)))
            }
            if fallback == nil { fallback = ek.publicArea }
        }
        guard let fallback else {
            throw TPMError.invalidArgument("the TPM has no EK at Vigil's handles: run `vigil tpm provision` first")
        }
        return (fallback, nil, DeviceID(ekFingerprint: try EKFingerprint(ek: fallback)))
    }

    /// This device's id (derived from its EK, as the controller derives it).
    public func deviceID() async throws -> DeviceID {
        if let knownID { return knownID }
        return try await endorsementKey().id
    }

    /// Onboards: sends the EK, AK and device key; answers the credential challenge with
    /// TPM2_ActivateCredential and proves the device key with the AK's TPM2_Certify.
    public func onboard(enrollToken: String?) async throws -> Onboarding.Result {
        let ek = try await endorsementKey()
        guard let ak = try await tpm.readPublic(IdentityKeyTemplates.akHandle),
            let device = try await tpm.readPublic(IdentityKeyTemplates.deviceKeyHandle)
        else { throw TPMError.invalidArgument("the TPM has no AK or device key: run `vigil tpm provision` first") }
        let begin = Onboarding.BeginRequest(
            ekPublic: Data(ek.public.marshalTPM2B()).base64EncodedString(),
            ekCertificate: ek.certificate.map { Data($0.derBytes).base64EncodedString() }, ekIntermediates: nil,
            akPublic: Data(ak.publicArea.marshalTPM2B()).base64EncodedString(),
            devicePublic: Data(device.publicArea.marshalTPM2B()).base64EncodedString(), enrollToken: enrollToken)
        let challenge = try await connection.call(
            Onboarding.Challenge.self, method: "POST", path: Self.path("onboardBegin"),
            body: try APIJSON.encode(begin))
        guard challenge.deviceID == ek.id else {
            throw ControllerClientError(
                status: nil, code: "bad_response",
                reason: "the controller named this device \(challenge.deviceID), not \(ek.id) (its EK's id)")
        }
        let credential = try CredentialChallenge(
            json: try APIJSON.base64(challenge.credential, field: "credential", limit: 64 * 1024))
        let secret = try await CredentialActivation.answer(credential, tpm: tpm)
        guard let nonce = Hex.decode(challenge.certifyNonce), nonce.count <= 64 else {
            throw ControllerClientError(status: nil, code: "bad_response", reason: "certify_nonce is not hex")
        }
        let certified = try await tpm.withPersistent(IdentityKeyTemplates.deviceKeyHandle) {
            tpm, deviceKey throws(TPMError) in
            try tpm.withPersistent(IdentityKeyTemplates.akHandle) { tpm, akKey throws(TPMError) in
                try tpm.certify(deviceKey, signingKey: akKey, qualifyingData: nonce)
            }
        }
        let finish = Onboarding.FinishRequest(
            challengeID: challenge.challengeID,
            activatedSecret: secret.withUnsafeBytes {
                Data(OnboardingProof.expected(secret: Array($0), challengeID: challenge.challengeID))
                    .base64EncodedString()
            },
            certifyAttest: Data(certified.attest).base64EncodedString(),
            certifySignature: Data(certified.signature).base64EncodedString())
        return try await signedCall(
            Onboarding.Result.self, operation: "onboardFinish", device: ek.id, body: try APIJSON.encode(finish))
    }

    /// Attests: asks for a nonce, quotes the PCRs the controller names over it, sends the evidence with the
    /// event log, and returns the controller's verdict and signed result.
    public func attest(eventLog: [UInt8]?) async throws -> Attestation.Outcome {
        try await attestReturningNonce(eventLog: eventLog).outcome
    }

    /// ``attest(eventLog:)``, also returning the nonce the controller granted (hex), so the caller can hold the
    /// signed result to it.
    public func attestReturningNonce(eventLog: [UInt8]?) async throws -> (outcome: Attestation.Outcome, nonce: String) {
        let id = try await deviceID()
        let grant = try await signedCall(Attestation.NonceGrant.self, operation: "attestNonce", device: id, body: [])
        guard let nonce = Hex.decode(grant.nonce), nonce.count == 32,
            let selection = TPMLPCRSelection(parsingSpec: grant.pcrSelection)
        else {
            throw ControllerClientError(status: nil, code: "bad_response", reason: "the nonce grant is malformed")
        }
        let bundle = try await EvidenceCollector.collect(
            tpm: tpm, nonce: nonce, selection: selection, eventLog: eventLog)
        let outcome = try await signedCall(
            Attestation.Outcome.self, operation: "attest", device: id, body: try bundle.json())
        return (outcome, Hex.encode(nonce))
    }

    /// Fetches secret `name`: the controller wraps it to this TPM; the TPM recovers the key with
    /// TPM2_ActivateCredential and the envelope opens only for this device, name and release.
    public func fetchSecret(_ name: SecretName) async throws -> SecretBytes {
        let id = try await deviceID()
        let envelope = try await signedCall(
            SecretEnvelope.self, operation: "secretRelease", device: id, body: [], path: "/v1/secrets/\(name)")
        let credential = try CredentialChallenge(
            json: try APIJSON.base64(envelope.credential, field: "credential", limit: 64 * 1024))
        let key = try await CredentialActivation.answer(credential, tpm: tpm)
        let plaintext = try key.withUnsafeBytes { raw in
            try envelope.open(
                key: SecretEnvelope.key(activated: raw, releaseNonce: envelope.releaseNonce), expectedDevice: id,
                expectedName: name)
        }
        return SecretBytes(plaintext)
    }

    /// Deposits a vault escrow as this device's secret `name` (`escrow.…`); the controller accepts it only while
    /// the device's latest attestation passed. Returns the version stored.
    public func depositEscrow(name: String, blob: [UInt8]) async throws -> Int {
        let id = try await deviceID()
        let body = try APIJSON.encode(Escrow.Deposit(value: Data(blob).base64EncodedString()))
        let receipt = try await signedCall(
            Escrow.Receipt.self, operation: "escrowDeposit", device: id, body: body, path: "/v1/escrow/\(name)")
        return receipt.version
    }

    /// Reports the node agent's state (`POST /v1/node/report`); the answer says whether the controller's latest
    /// verdict for this device is an unexpired pass. A revoked device gets `device_revoked`.
    public func report(_ state: NodeReport.State) async throws -> NodeReport.Directive {
        let id = try await deviceID()
        return try await signedCall(
            NodeReport.Directive.self, operation: "nodeReport", device: id, body: try APIJSON.encode(state))
    }

    /// A request signed by the TPM device key (``DeviceRequestSignature``).
    func signedCall<T: Decodable>(
        _ type: T.Type, operation: String, device: DeviceID, body: [UInt8], path: String? = nil
    ) async throws -> T {
        let path = path ?? Self.path(operation)
        let header = try await signedAuthorization(path: path, device: device, body: body)
        return try await connection.call(
            type, method: "POST", path: path, body: body, headers: [("Authorization", header)])
    }

    /// The `Authorization` value for a `POST path` with `body`: a fresh request id and the time, signed by the TPM
    /// device key (TPM2_Sign, ``DeviceRequestSignature``).
    func signedAuthorization(path: String, device: DeviceID, body: [UInt8]) async throws -> String {
        let timestamp = Int64(Date().timeIntervalSince1970)
        let requestID = Hex.encode(SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) })
        let text = DeviceRequestSignature.signedText(
            method: "POST", path: path, deviceID: device, timestamp: timestamp, requestID: requestID, body: body)
        let der = try await TPMSigningKey.derSignature(
            tpm: tpm, handle: IdentityKeyTemplates.deviceKeyHandle, digest: Array(SHA256.hash(data: text)))
        return DeviceRequestSignature(
            deviceID: device, timestamp: timestamp, requestID: requestID, signature: der
        ).headerValue
    }

    static func path(_ operation: String) -> String { APIOperation.named(operation)?.path ?? "/" }
}
