public import Crypto
public import Foundation
public import JWTKit

/// A signed attestation result: an EAR-style JWT (IETF RATS "EAT Attestation Results", profile
/// `tag:github.com,2023:veraison/ear`) signed ES256 by the controller's result-signing key, so a relying
/// party decides offline, with only `result-signing.pub.pem`, whether a device passed, under which policy,
/// over which PCRs and nonce, and until when (`vigil result verify TOKEN --key result-signing.pub.pem`).
public struct AttestationResult: JWTPayload, Sendable {
    /// The EAR profile.
    public static let profile = "tag:github.com,2023:veraison/ear"

    /// `eat_profile`.
    public var profile: String
    /// `iss`: the controller (its CA fingerprint's first 16 hex digits).
    public var issuer: IssuerClaim
    /// `sub`: the device id.
    public var subject: SubjectClaim
    /// `iat`.
    public var issuedAt: IssuedAtClaim
    /// `exp`: after this the result is not to be relied on (nor does the controller release secrets on it).
    public var expires: ExpirationClaim
    /// `eat_nonce`: the controller's nonce the quote was made over, hex.
    public var nonce: String
    /// `ear.verifier-id`.
    public var verifierID: VerifierID
    /// `submods`: one appraisal, `vigil`.
    public var submods: [String: Appraisal]
    /// `vigil.verdict`: `pass` or `fail`.
    public var verdict: String
    /// `vigil.policy`: the controller's policy name and version that judged, `name@version`.
    public var policy: String
    /// `vigil.pcr-digest`: the quote's PCR digest, hex.
    public var pcrDigest: String
    /// `vigil.failed-rules`: the enforced rules that failed (empty on a pass).
    public var failedRules: [String]
    /// `cnf`: the device key the result is about (RFC 7800 with an RFC 7638 JWK thumbprint, `jkt`), so a
    /// relying party can require the presenter to prove that key rather than accept a copied token.
    public var confirmation: Confirmation
    /// `vigil.offline-grace`: seconds after `iat` (never past `exp`) for which the device's policy lets a node keep
    /// its gate open while the controller cannot be reached; absent or 0: none.
    public var offlineGrace: Int?
    /// `vigil.ak-activated`: false when no credential activation bound the AK to the EK (a device attesting through
    /// EVE's API, whose AK only its device certificate vouches for); absent for Vigil's own devices, which are
    /// always activated at onboarding.
    public var akActivated: Bool?

    /// `cnf`.
    public struct Confirmation: Codable, Sendable, Hashable {
        /// `jkt`: the SHA-256 JWK thumbprint of the device key, base64url.
        public var jkt: String
    }

    /// The RFC 7638 thumbprint of a P-256 public key: SHA-256 over `{"crv":"P-256","kty":"EC","x":…,"y":…}`.
    public static func thumbprint(_ key: P256.Signing.PublicKey) -> String {
        let raw = Array(key.rawRepresentation)
        let jwk =
            "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\(base64url(raw.prefix(32)))\",\"y\":\"\(base64url(raw.suffix(32)))\"}"
        return base64url(Array(SHA256.hash(data: Array(jwk.utf8))))
    }

    /// The RFC 7638 thumbprint of a P-384 public key.
    public static func thumbprint(_ key: P384.Signing.PublicKey) -> String {
        let raw = Array(key.rawRepresentation)
        let jwk =
            "{\"crv\":\"P-384\",\"kty\":\"EC\",\"x\":\"\(base64url(raw.prefix(48)))\",\"y\":\"\(base64url(raw.suffix(48)))\"}"
        return base64url(Array(SHA256.hash(data: Array(jwk.utf8))))
    }

    /// The RFC 7638 thumbprint of an RSA public key: SHA-256 over `{"e":…,"kty":"RSA","n":…}` (big-endian, no
    /// leading zeros).
    public static func thumbprint(rsaModulus n: [UInt8], exponent e: [UInt8]) -> String {
        func trimmed(_ b: [UInt8]) -> [UInt8] { Array(b.drop { $0 == 0 }) }
        let jwk = "{\"e\":\"\(base64url(trimmed(e)))\",\"kty\":\"RSA\",\"n\":\"\(base64url(trimmed(n)))\"}"
        return base64url(Array(SHA256.hash(data: Array(jwk.utf8))))
    }

    static func base64url(_ bytes: some Collection<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// `ear.verifier-id`.
    public struct VerifierID: Codable, Sendable, Hashable {
        /// `developer`.
        public var developer: String
        /// `build`.
        public var build: String
    }

    /// One EAR appraisal.
    public struct Appraisal: Codable, Sendable, Hashable {
        /// `ear.status`: affirming, warning or contraindicated.
        public var status: String
        /// `ear.trustworthiness-vector` (AR4SI).
        public var trustVector: [String: Int]
        /// `ear.appraisal-policy-id`.
        public var policyID: String

        /// An appraisal.
        public init(status: String, trustVector: [String: Int], policyID: String) {
            self.status = status
            self.trustVector = trustVector
            self.policyID = policyID
        }

        enum CodingKeys: String, CodingKey {
            case status = "ear.status", trustVector = "ear.trustworthiness-vector",
                policyID = "ear.appraisal-policy-id"
        }
    }

    enum CodingKeys: String, CodingKey {
        case profile = "eat_profile", issuer = "iss", subject = "sub", issuedAt = "iat", expires = "exp"
        case nonce = "eat_nonce", verifierID = "ear.verifier-id", submods, verdict = "vigil.verdict"
        case policy = "vigil.policy", pcrDigest = "vigil.pcr-digest", failedRules = "vigil.failed-rules"
        case confirmation = "cnf", offlineGrace = "vigil.offline-grace", akActivated = "vigil.ak-activated"
    }

    /// A result to sign.
    public init(
        issuer: String, device: DeviceID, issuedAt: Date, expires: Date, nonce: String, pass: Bool,
        appraisal: Appraisal, policy: String, pcrDigest: String, failedRules: [String],
        deviceKey: P256.Signing.PublicKey, offlineGrace: Int? = nil
    ) {
        self.init(
            issuer: issuer, device: device, issuedAt: issuedAt, expires: expires, nonce: nonce, pass: pass,
            appraisal: appraisal, policy: policy, pcrDigest: pcrDigest, failedRules: failedRules,
            deviceKeyThumbprint: Self.thumbprint(deviceKey), offlineGrace: offlineGrace, akActivated: nil)
    }

    /// A result to sign, with the device key's RFC 7638 thumbprint computed by the caller (an EVE device's key may
    /// be RSA: ``thumbprint(rsaModulus:exponent:)``).
    public init(
        issuer: String, device: DeviceID, issuedAt: Date, expires: Date, nonce: String, pass: Bool,
        appraisal: Appraisal, policy: String, pcrDigest: String, failedRules: [String],
        deviceKeyThumbprint: String, offlineGrace: Int?, akActivated: Bool?
    ) {
        self.profile = Self.profile
        self.issuer = IssuerClaim(value: issuer)
        self.subject = SubjectClaim(value: device.rawValue)
        self.issuedAt = IssuedAtClaim(value: issuedAt)
        self.expires = ExpirationClaim(value: expires)
        self.nonce = nonce
        self.verifierID = VerifierID(developer: "vigil", build: "vigil-controller/1")
        self.submods = ["vigil": appraisal]
        self.verdict = pass ? "pass" : "fail"
        self.policy = policy
        self.pcrDigest = pcrDigest
        self.failedRules = failedRules
        self.confirmation = Confirmation(jkt: deviceKeyThumbprint)
        self.offlineGrace = offlineGrace
        self.akActivated = akActivated
    }

    /// Checks the claims a relying party relies on: not expired, the EAR profile, a verdict.
    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try expires.verifyNotExpired()
        guard profile == Self.profile, verdict == "pass" || verdict == "fail", DeviceID(subject.value) != nil else {
            throw JWTError.claimVerificationFailure(failedClaim: nil, reason: "not a Vigil attestation result")
        }
    }

    /// Whether the device passed.
    public var passed: Bool { verdict == "pass" }
    /// The device (`sub`).
    public var device: String { subject.value }
    /// When it was issued (`iat`).
    public var issuedAtDate: Date { issuedAt.value }
    /// When it expires (`exp`).
    public var expiresDate: Date { expires.value }

    /// Verifies `token` with the controller's public key (PEM) and returns its claims; throws when the signature,
    /// the algorithm, the expiry or the claims do not hold.
    public static func verify(_ token: String, publicKeyPEM: String) async throws -> AttestationResult {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: try ES256PublicKey(pem: publicKeyPEM))
        return try await keys.verify(token, as: AttestationResult.self)
    }
}
