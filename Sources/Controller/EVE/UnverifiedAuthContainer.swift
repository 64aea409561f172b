import EVEAPI
import Foundation
import SwiftASN1
public import SwiftProtobuf
public import X509

/// An `AuthContainer` (EVE `auth.proto`; OBJECT-SIGNING.md) as it arrived: decoded and bounded, nothing believed.
/// Only ``verify(signer:)`` turns it into a ``VerifiedAuthContainer``, the one form whose payload the controller
/// reads.
///
/// Refused before any signature is checked: a body over ``maximumSize``, bytes that are not a protobuf message, an
/// encrypted envelope (`cipherData`: no EVE device encrypts requests to a controller, and accepting one would mean
/// trusting whatever the decryption yields), a missing `protectedPayload`, an unknown `algo`, a `senderCertHash`
/// whose length does not match its `algo`, and a `senderCert` that is not base64 of a PEM certificate.
public struct UnverifiedAuthContainer: Sendable {
    /// The largest body accepted: an attestation with a gzip-compressed event log and PCRs 0–23 is tens of KiB (EVE
    /// itself drops event logs above about 62 KB), and a smaller cap bounds what decoding a hostile body costs.
    public static let maximumSize = 1 << 20
    /// The largest `senderCert` accepted (base64 of a PEM certificate).
    public static let maximumSenderCertificateSize = 32 * 1024

    /// `protectedPayload.payload`: a serialized protobuf message, unread until verified.
    let payload: [UInt8]
    /// `algo` and `senderCertHash`: which certificate the sender says it signed with.
    public let senderCertHash: EVESenderCertHash
    /// `signatureHash`: the sender's signature over SHA-256 of the payload.
    let signature: [UInt8]
    /// `senderCert`, decoded (base64 of PEM): present on `register`, where the controller cannot know the
    /// onboarding certificate by its hash alone.
    public let senderCertificate: Certificate?

    /// Decodes `bytes` (protobuf binary); throws naming what is wrong and where.
    public init(parsing bytes: [UInt8]) throws(ControllerError) {
        guard bytes.count <= Self.maximumSize else {
            throw .tooLarge("AuthContainer: \(bytes.count) bytes, more than \(Self.maximumSize)")
        }
        guard !bytes.isEmpty else { throw .unprocessable("AuthContainer: the body is empty") }
        let container: Org_Lfedge_Eve_Auth_AuthContainer
        do { container = try Org_Lfedge_Eve_Auth_AuthContainer(serializedBytes: bytes) } catch {
            throw .unprocessable("AuthContainer: not a protobuf AuthContainer (\(error))")
        }
        guard !container.hasCipherData, !container.hasCipherContext else {
            throw .unprocessable(
                "AuthContainer: an encrypted payload (cipherData/cipherContext) is not accepted: sign the payload in protectedPayload"
            )
        }
        guard container.hasProtectedPayload else {
            throw .unprocessable("AuthContainer: no protectedPayload")
        }
        senderCertHash = try EVESenderCertHash(algo: container.algo, bytes: Array(container.senderCertHash))
        guard !container.signatureHash.isEmpty, container.signatureHash.count <= 1024 else {
            throw .unauthenticated(
                "AuthContainer: signatureHash is \(container.signatureHash.count) bytes (a signature is 1 to 1024)")
        }
        signature = Array(container.signatureHash)
        payload = Array(container.protectedPayload.payload)
        if container.senderCert.isEmpty {
            senderCertificate = nil
        } else {
            senderCertificate = try Self.certificate(fromBase64PEM: Array(container.senderCert))
        }
    }

    /// `senderCert`: "the base64 standard encoding of the PEM format of the certificate" (OBJECT-SIGNING.md).
    static func certificate(fromBase64PEM bytes: [UInt8]) throws(ControllerError) -> Certificate {
        guard bytes.count <= maximumSenderCertificateSize else {
            throw .tooLarge(
                "AuthContainer: senderCert is \(bytes.count) bytes (at most \(maximumSenderCertificateSize))")
        }
        guard let pem = Data(base64Encoded: Data(bytes)) else {
            throw .unauthenticated("AuthContainer: senderCert is not base64")
        }
        do {
            return try Certificate(pemEncoded: String(decoding: pem, as: UTF8.self))
        } catch {
            throw .unauthenticated("AuthContainer: senderCert is not a PEM X.509 certificate (\(error))")
        }
    }

    /// Checks that `signer` is the certificate `senderCertHash` names and that its key signed the payload.
    /// `role` names it in refusals ("onboarding", "device").
    public func verify(signer: Certificate, role: String) throws(ControllerError) -> VerifiedAuthContainer {
        let der = try Self.der(signer)
        guard senderCertHash.matches(certificateDER: der) else {
            throw .unauthenticated(
                "AuthContainer: senderCertHash \(senderCertHash.hex) is not the hash of the \(role) certificate (\(signer.subject))"
            )
        }
        let key: EVESignerKey
        do { key = try EVESignerKey(signer, role: role) } catch { throw .unauthenticated(error.reason) }
        guard key.isValidSignature(signature, over: payload) else {
            throw .unauthenticated(
                "AuthContainer: signatureHash does not verify over SHA-256 of the payload with the \(role) certificate's key (\(signer.subject)): a forged or altered message"
            )
        }
        return VerifiedAuthContainer(payload: payload, signer: signer, signerKey: key, signerDER: der)
    }

    static func der(_ certificate: Certificate) throws(ControllerError) -> [UInt8] {
        var serializer = DER.Serializer()
        do { try serializer.serialize(certificate) } catch {
            throw .internalFailure("cannot encode a certificate: \(error)")
        }
        return serializer.serializedBytes
    }
}

/// An `AuthContainer` whose signature verified with a certificate the controller chose: its payload may be read.
/// Only ``UnverifiedAuthContainer/verify(signer:role:)`` makes one.
public struct VerifiedAuthContainer: Sendable {
    /// The payload, signed by ``signer``.
    public let payload: [UInt8]
    /// The certificate whose key signed it.
    public let signer: Certificate
    /// Its key.
    let signerKey: EVESignerKey
    /// Its DER.
    let signerDER: [UInt8]

    /// Decodes the payload as `M`; a truncated or malformed message is refused (422) naming the type.
    public func message<M: SwiftProtobuf.Message>(_ type: M.Type) throws(ControllerError) -> M {
        do { return try M(serializedBytes: payload) } catch {
            throw .unprocessable("\(M.protoMessageName): the signed payload is not a valid message (\(error))")
        }
    }
}
