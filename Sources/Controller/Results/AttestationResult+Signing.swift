import ControllerProtocol
import Crypto
import JWTKit

extension AttestationResult {
    /// Signs `result` with `key` (ES256).
    static func sign(_ result: AttestationResult, key: P256.Signing.PrivateKey) async throws(ControllerError)
        -> String
    {
        do {
            let keys = JWTKeyCollection()
            await keys.add(ecdsa: try ES256PrivateKey(backing: key))
            return try await keys.sign(result)
        } catch {
            throw .internalFailure("cannot sign the attestation result: \(error)")
        }
    }
}
