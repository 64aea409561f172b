public import Foundation
public import JWTKit

/// `GET /v1/revocations`: the devices the controller has revoked, signed with the result-signing key (ES256 JWT), so
/// a relying party that holds attestation results offline can refuse those of a revoked device
/// (`vigil result verify … --revocations FILE`).
///
/// A list is short-lived (``Controller.Configuration``'s `revocationListLifetime`, 5 minutes by default): an old list
/// cannot hide a later revocation. Its `vigil.type` keeps it from being taken for an attestation result, which is
/// signed with the same key.
public struct RevocationList: JWTPayload, Sendable {
    /// The `vigil.type` of a revocation list.
    public static let typeName = "vigil-revocation-list"

    /// `vigil.type`.
    public var type: String
    /// `iss`: the controller.
    public var issuer: IssuerClaim
    /// `iat`.
    public var issuedAt: IssuedAtClaim
    /// `exp`: a relying party refuses a list after this.
    public var expires: ExpirationClaim
    /// `vigil.revoked`: every revoked device, with when it was revoked.
    public var revoked: [Entry]

    /// One revoked device.
    public struct Entry: Codable, Sendable, Hashable {
        /// The device (`vd-…`).
        public var device: String
        /// When it was revoked (0 when revoked before the controller kept the time).
        public var revokedAt: Date

        /// An entry.
        public init(device: String, revokedAt: Date) {
            self.device = device
            self.revokedAt = revokedAt
        }

        enum CodingKeys: String, CodingKey { case device, revokedAt = "revoked_at" }
    }

    enum CodingKeys: String, CodingKey {
        case type = "vigil.type", issuer = "iss", issuedAt = "iat", expires = "exp", revoked = "vigil.revoked"
    }

    /// A list to sign.
    public init(issuer: String, issuedAt: Date, expires: Date, revoked: [Entry]) {
        type = Self.typeName
        self.issuer = IssuerClaim(value: issuer)
        self.issuedAt = IssuedAtClaim(value: issuedAt)
        self.expires = ExpirationClaim(value: expires)
        self.revoked = revoked
    }

    /// Checks what a relying party relies on: a revocation list, not expired.
    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try expires.verifyNotExpired()
        guard type == Self.typeName else {
            throw JWTError.claimVerificationFailure(failedClaim: nil, reason: "not a Vigil revocation list")
        }
    }

    /// When it was issued (`iat`).
    public var issuedAtDate: Date { issuedAt.value }

    /// The entry revoking `device`, if any.
    public func entry(for device: String) -> Entry? { revoked.first { $0.device == device } }

    /// Verifies `token` with the controller's result key (PEM) and returns the list; throws when the signature, the
    /// type or the expiry do not hold.
    public static func verify(_ token: String, publicKeyPEM: String) async throws -> RevocationList {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: try ES256PublicKey(pem: publicKeyPEM))
        return try await keys.verify(token, as: RevocationList.self)
    }
}
