import Attest
import Crypto
import EVEAPI

/// An `AuthContainer`'s `senderCertHash` with its `algo` (OBJECT-SIGNING.md "Signing and verification"): SHA-256
/// over the sender certificate's DER, all 32 bytes (`HASH_ALGORITHM_SHA256_32BYTES`) or the first 16
/// (`HASH_ALGORITHM_SHA256_16BYTES`), as EVE's devices and Adam compute it.
///
/// It only finds a certificate: what authenticates the sender is the signature, checked with the certificate the
/// controller holds (or was sent), never with anything this hash says.
public struct EVESenderCertHash: Hashable, Sendable, CustomStringConvertible {
    /// The hash bytes, 16 or 32.
    public let bytes: [UInt8]

    /// Reads a hash and its algorithm from a container; refuses an unknown algorithm or a length that does not
    /// match it (APIv2.md: "if the length of senderCertHash received is not N bytes … the protobuf message either
    /// is not AuthContainer type, or is corrupted").
    init(algo: Org_Lfedge_Eve_Common_HashAlgorithm, bytes: [UInt8]) throws(ControllerError) {
        let expected: Int
        switch algo {
        case .sha25616Bytes: expected = 16
        case .sha25632Bytes: expected = 32
        default:
            throw .unauthenticated(
                "AuthContainer: algo \(algo.rawValue) is not HASH_ALGORITHM_SHA256_16BYTES (1) or HASH_ALGORITHM_SHA256_32BYTES (2)"
            )
        }
        guard bytes.count == expected else {
            throw .unauthenticated(
                "AuthContainer: senderCertHash is \(bytes.count) bytes, but algo \(expected == 16 ? "SHA256_16BYTES" : "SHA256_32BYTES") says \(expected)"
            )
        }
        self.bytes = bytes
    }

    /// The full (32-byte) hash of a certificate's DER.
    public init(certificateDER der: [UInt8]) {
        bytes = Array(SHA256.hash(data: der))
    }

    /// Whether this (possibly truncated) hash is that of `der`.
    public func matches(certificateDER der: [UInt8]) -> Bool {
        constantTimeEquals(Array(SHA256.hash(data: der).prefix(bytes.count)), bytes)
    }

    /// `HASH_ALGORITHM_SHA256_32BYTES` or `_16BYTES`.
    var algorithm: Org_Lfedge_Eve_Common_HashAlgorithm { bytes.count == 16 ? .sha25616Bytes : .sha25632Bytes }

    /// Hex.
    public var hex: String { Hex.encode(bytes) }

    /// Hex, with its length.
    public var description: String { "\(hex) (\(bytes.count) bytes)" }
}
