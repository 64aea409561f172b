import Crypto
import EVEAPI
import Foundation
import SwiftProtobuf
import X509

/// Seals the EVE API's answers: every response body is an `AuthContainer` whose payload the controller signed with
/// its object-signing key (``ControllerState/eveSigningCertificate``), `senderCertHash` the full SHA-256 of that
/// certificate, and `signatureHash` the raw r‖s ECDSA P-256 signature over SHA-256 of the payload
/// (OBJECT-SIGNING.md). A device fetches the certificate and its chain from `GET /api/v2/edgedevice/certs` and
/// checks them up to the root it was born with (this controller's CA).
struct EVEObjectSigner: Sendable {
    let key: P256.Signing.PrivateKey
    let certificateDER: [UInt8]

    init(_ state: ControllerState) throws(ControllerError) {
        key = state.eveSigningKey
        certificateDER = try UnverifiedAuthContainer.der(state.eveSigningCertificate)
    }

    /// `message` serialized, signed and wrapped.
    func seal(_ message: some SwiftProtobuf.Message) throws(ControllerError) -> [UInt8] {
        let payload: [UInt8]
        do { payload = try message.serializedBytes() } catch {
            throw .internalFailure("cannot serialize \(type(of: message)): \(error)")
        }
        let signature: P256.Signing.ECDSASignature
        do { signature = try key.signature(for: payload) } catch {
            throw .internalFailure("cannot sign an EVE response: \(error)")
        }
        var container = Org_Lfedge_Eve_Auth_AuthContainer()
        container.protectedPayload.payload = Data(payload)
        container.algo = .sha25632Bytes
        container.senderCertHash = Data(EVESenderCertHash(certificateDER: certificateDER).bytes)
        container.signatureHash = signature.rawRepresentation
        do { return try container.serializedBytes() } catch {
            throw .internalFailure("cannot serialize an AuthContainer: \(error)")
        }
    }
}
