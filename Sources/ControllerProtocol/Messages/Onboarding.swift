public import Foundation

/// Onboarding (`vigil device onboard`): two requests. The device sends its EK, AK and device key; the
/// controller admits it (allowed EK or enrollment token), checks the EK chain and the AK's attributes, and
/// answers with a credential challenge (TPM2_MakeCredential to the EK for the AK's Name) and a nonce. The
/// device answers with TPM2_ActivateCredential's secret and a TPM2_Certify of its device key by the AK over
/// the nonce, signing that request with the device key. Only then is the device bound.
public enum Onboarding {
    /// `POST /v1/onboard/begin`.
    public struct BeginRequest: Codable, Sendable, Hashable {
        /// The EK's TPM2B_PUBLIC, base64.
        public var ekPublic: String
        /// The EK certificate (DER, base64) from the TPM's NV, when it has one.
        public var ekCertificate: String?
        /// Intermediate CA certificates the device carries (DER, base64): untrusted, only for chain building.
        public var ekIntermediates: [String]?
        /// The AK's TPM2B_PUBLIC, base64.
        public var akPublic: String
        /// The device key's TPM2B_PUBLIC, base64 (an ECC P-256 signing key in the same TPM).
        public var devicePublic: String
        /// A one-time enrollment token, when the security team gave one.
        public var enrollToken: String?

        /// The fields a request may carry.
        public static let knownKeys: Set<String> = [
            "ek_public", "ek_certificate", "ek_intermediates", "ak_public", "device_public", "enroll_token",
        ]

        /// A request.
        public init(
            ekPublic: String, ekCertificate: String?, ekIntermediates: [String]?, akPublic: String,
            devicePublic: String, enrollToken: String?
        ) {
            self.ekPublic = ekPublic
            self.ekCertificate = ekCertificate
            self.ekIntermediates = ekIntermediates
            self.akPublic = akPublic
            self.devicePublic = devicePublic
            self.enrollToken = enrollToken
        }
    }

    /// The controller's answer to ``BeginRequest``.
    public struct Challenge: Codable, Sendable, Hashable {
        /// Names this onboarding attempt in ``FinishRequest``.
        public var challengeID: String
        /// The device id the controller derived from the EK.
        public var deviceID: DeviceID
        /// The credential challenge (`CredentialChallenge.json()`), base64.
        public var credential: String
        /// The nonce the AK's TPM2_Certify of the device key must carry, hex.
        public var certifyNonce: String
        /// When the challenge expires.
        public var expiresAt: Date

        /// A challenge.
        public init(challengeID: String, deviceID: DeviceID, credential: String, certifyNonce: String, expiresAt: Date)
        {
            self.challengeID = challengeID
            self.deviceID = deviceID
            self.credential = credential
            self.certifyNonce = certifyNonce
            self.expiresAt = expiresAt
        }

        enum CodingKeys: String, CodingKey {
            case challengeID = "challengeId", deviceID = "deviceId", credential, certifyNonce, expiresAt
        }
    }

    /// `POST /v1/onboard/finish`, signed by the device key (``DeviceRequestSignature``).
    public struct FinishRequest: Codable, Sendable, Hashable {
        /// The challenge answered.
        public var challengeID: String
        /// TPM2_ActivateCredential's output, base64.
        public var activatedSecret: String
        /// TPMS_ATTEST of TPM2_Certify(device key, AK, nonce), base64.
        public var certifyAttest: String
        /// Its TPMT_SIGNATURE, base64.
        public var certifySignature: String

        /// The fields a request may carry.
        public static let knownKeys: Set<String> = [
            "challenge_id", "activated_secret", "certify_attest", "certify_signature",
        ]

        /// A request.
        public init(challengeID: String, activatedSecret: String, certifyAttest: String, certifySignature: String) {
            self.challengeID = challengeID
            self.activatedSecret = activatedSecret
            self.certifyAttest = certifyAttest
            self.certifySignature = certifySignature
        }

        enum CodingKeys: String, CodingKey {
            case challengeID = "challengeId", activatedSecret, certifyAttest, certifySignature
        }
    }

    /// The outcome of onboarding.
    public struct Result: Codable, Sendable, Hashable {
        /// The device's id.
        public var deviceID: DeviceID
        /// The group it joined.
        public var group: String
        /// The AK's Name, hex.
        public var akName: String
        /// How the EK certificate was checked: the bundle it chains to, or why it was not checked.
        public var ekChain: String
        /// False when this TPM was already onboarded with the same AK (nothing changed).
        public var created: Bool

        /// A result.
        public init(deviceID: DeviceID, group: String, akName: String, ekChain: String, created: Bool) {
            self.deviceID = deviceID
            self.group = group
            self.akName = akName
            self.ekChain = ekChain
            self.created = created
        }

        enum CodingKeys: String, CodingKey {
            case deviceID = "deviceId", group, akName, ekChain, created
        }
    }
}
