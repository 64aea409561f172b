import Attest
public import Crypto
public import Foundation

/// How a device authenticates each request: an ECDSA P-256 signature by its TPM-resident device key
/// (TPM2_Sign, Part 3 §20.2) over the request's method, path, device id, time, a random request id and the
/// SHA-256 of the body, sent as
///
///     Authorization: Vigil-TPM device=vd-…, ts=1764567890, rid=<32 hex>, sig=<base64 DER>
///
/// Why a signature per request rather than mutual TLS with a TPM-backed private key: the key never leaves
/// the TPM either way, but a signature binds the exact body (a TLS-terminating proxy in front of the
/// controller cannot alter what it forwards), it is checked in one place in the controller rather than in
/// the TLS stack's verification callback, and the device signs with one TPM command per request instead of
/// holding a TPM session open inside NIO's handshake. Replays are refused by the controller: the time must be
/// within ``maximumClockSkew`` of its own, and a request id is accepted once per device.
public struct DeviceRequestSignature: Sendable, Hashable {
    /// The Authorization scheme.
    public static let scheme = "Vigil-TPM"
    /// The domain-separation tag that starts the signed text.
    public static let context = "VIGIL-TPM-REQUEST-V1"
    /// How far the device's clock may be from the controller's.
    public static let maximumClockSkew: TimeInterval = 300
    /// The longest Authorization header the controller reads.
    public static let maximumHeaderLength = 512

    /// The device the request is for (and whose key must have signed it).
    public let deviceID: DeviceID
    /// Seconds since 1970 when the device signed.
    public let timestamp: Int64
    /// 16 random bytes, hex: the request's single-use id.
    public let requestID: String
    /// DER ECDSA signature.
    public let signature: [UInt8]

    /// A parsed or freshly made signature.
    public init(deviceID: DeviceID, timestamp: Int64, requestID: String, signature: [UInt8]) {
        self.deviceID = deviceID
        self.timestamp = timestamp
        self.requestID = requestID
        self.signature = signature
    }

    /// The text the device key signs: the context, the upper-case method, the path (with its query), the device
    /// id, the time, the request id and the body's SHA-256, one per line.
    public static func signedText(
        method: String, path: String, deviceID: DeviceID, timestamp: Int64, requestID: String, body: some DataProtocol
    ) -> [UInt8] {
        let bodyDigest = Hex.encode(SHA256.hash(data: body))
        return Array(
            [context, method.uppercased(), path, deviceID.rawValue, String(timestamp), requestID, bodyDigest]
                .joined(separator: "\n").utf8)
    }

    /// The Authorization header value.
    public var headerValue: String {
        "\(Self.scheme) device=\(deviceID), ts=\(timestamp), rid=\(requestID), sig=\(Data(signature).base64EncodedString())"
    }

    /// Parses an Authorization header value; throws `.unauthenticated` saying which part is wrong.
    public init(headerValue: String) throws(ControllerProtocolError) {
        guard headerValue.utf8.count <= Self.maximumHeaderLength else {
            throw ControllerProtocolError(
                .unauthenticated, "Authorization: longer than \(Self.maximumHeaderLength) bytes")
        }
        guard headerValue.hasPrefix(Self.scheme + " ") else {
            throw ControllerProtocolError(.unauthenticated, "Authorization: not the \(Self.scheme) scheme")
        }
        var fields: [String: String] = [:]
        for part in headerValue.dropFirst(Self.scheme.count + 1).split(separator: ",") {
            let kv = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            guard kv.count == 2, fields[String(kv[0])] == nil else {
                throw ControllerProtocolError(.unauthenticated, "Authorization: malformed or repeated parameter")
            }
            fields[String(kv[0])] = String(kv[1])
        }
        guard fields.count == 4, let d = fields["device"], let device = DeviceID(d) else {
            throw ControllerProtocolError(
                .unauthenticated, "Authorization: needs exactly device, ts, rid and sig, with a valid device id")
        }
        guard let t = fields["ts"], let ts = Int64(t), ts > 0 else {
            throw ControllerProtocolError(.unauthenticated, "Authorization: ts is not a positive integer")
        }
        guard let rid = fields["rid"], rid.utf8.count == 32, let ridBytes = Hex.decode(rid), ridBytes.count == 16
        else {
            throw ControllerProtocolError(.unauthenticated, "Authorization: rid is not 16 bytes of hex")
        }
        guard let s = fields["sig"], let sig = Data(base64Encoded: s), (8...80).contains(sig.count) else {
            throw ControllerProtocolError(.unauthenticated, "Authorization: sig is not a base64 DER signature")
        }
        self.init(deviceID: device, timestamp: ts, requestID: rid.lowercased(), signature: Array(sig))
    }

    /// Checks the signature over the request with the device's public key and the time against `now`.
    /// Replay of the request id is the caller's to check (it needs the controller's store).
    public func verify(
        method: String, path: String, body: some DataProtocol, key: P256.Signing.PublicKey, now: Date
    ) throws(ControllerProtocolError) {
        try verify(
            signedText: Self.signedText(
                method: method, path: path, deviceID: deviceID, timestamp: timestamp, requestID: requestID, body: body),
            key: key, now: now)
    }

    /// ``verify(method:path:body:key:now:)`` with the signed text already made (``signedText(method:path:deviceID:timestamp:requestID:body:)``
    /// with this signature's device, time and request id): the body is hashed once, before any lock is taken.
    public func verify(signedText text: [UInt8], key: P256.Signing.PublicKey, now: Date) throws(ControllerProtocolError)
    {
        let skew = abs(now.timeIntervalSince1970 - Double(timestamp))
        guard skew <= Self.maximumClockSkew else {
            throw ControllerProtocolError(
                .unauthenticated,
                "request signed at \(timestamp), \(Int(skew)) s from the controller's clock (at most \(Int(Self.maximumClockSkew)) s)"
            )
        }
        guard let sig = try? P256.Signing.ECDSASignature(derRepresentation: signature),
            key.isValidSignature(sig, for: text)
        else {
            throw ControllerProtocolError(
                .unauthenticated, "the request signature does not verify with \(deviceID)'s device key")
        }
    }
}
