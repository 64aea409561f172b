import Attest
import Crypto
import Foundation

/// Tokens (admin API tokens, enrollment tokens) are 32 random bytes, shown once; the controller stores only
/// their SHA-256, so a copy of the database does not let anyone act as a token holder.
enum TokenHash {
    /// A new token: `prefix_` and 43 base64url characters (256 bits).
    static func newToken(prefix: String) -> String {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let b64 = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return "\(prefix)_\(b64)"
    }

    /// SHA-256 of the token's UTF-8, hex.
    static func hash(_ token: String) -> String { Hex.encode(SHA256.hash(data: Array(token.utf8))) }
}
