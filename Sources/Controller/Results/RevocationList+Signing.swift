import ControllerProtocol
import Crypto
import Foundation
import JWTKit

extension Controller {
    /// `GET /v1/revocations`: every revoked device with when it was revoked, signed with the result key (ES256), valid
    /// for ``Configuration/revocationListLifetime``. Read from the database on each request: every instance answers
    /// the same list as soon as a revocation commits.
    public func revocationList() async throws(ControllerError) -> String {
        let now = clock()
        let rows = try await backend.transaction { tx throws(ControllerError) in
            try await tx.query("SELECT device_id, revoked_at FROM revocations ORDER BY device_id", [])
        }
        var entries: [RevocationList.Entry] = []
        for row in rows {
            entries.append(
                .init(
                    device: try row.requiredText("device_id"),
                    revokedAt: Date(sqlMilliseconds: try row.requiredInteger("revoked_at"))))
        }
        let list = RevocationList(
            issuer: "vigil-controller:\(state.caFingerprint.prefix(16))", issuedAt: now,
            expires: now.addingTimeInterval(configuration.revocationListLifetime), revoked: entries)
        do {
            let keys = JWTKeyCollection()
            await keys.add(ecdsa: try ES256PrivateKey(backing: state.resultSigningKey))
            return try await keys.sign(list)
        } catch {
            throw .internalFailure("cannot sign the revocation list: \(error)")
        }
    }
}
