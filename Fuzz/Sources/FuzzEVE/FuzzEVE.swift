import Attest
import Controller
import ControllerProtocol
import Crypto
import EVEAPI
import Foundation
import X509

/// EVE's device API as the controller reads it: the body as an `AuthContainer` (``UnverifiedAuthContainer``) and
/// its signature check, then the payload as each message an EVE device sends — `ZAttestReq` (its quote converted
/// to evidence with ``EVEQuoteEvidence``: PCR values, DER signature, gzip event log; its certificates checked as an
/// AK certificate), `ZRegisterMsg` (``Controller/validateEVERegistration(_:)``) and `UuidRequest`.
/// Seeds: Fuzz/seeds/FuzzEVE (made by the EVE tests' client).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let fixed = Fixed() else { return 0 }
    if let container = try? UnverifiedAuthContainer(parsing: bytes) {
        if let verified = try? container.verify(signer: fixed.device, role: "device") {
            read(verified.payload, fixed)
        }
        if let sender = container.senderCertificate {
            _ = try? container.verify(signer: sender, role: "onboarding")
        }
    }
    read(bytes, fixed)
    return 0
}

/// The payload as each message a device sends.
func read(_ payload: [UInt8], _ fixed: Fixed) {
    if let request = try? Org_Lfedge_Eve_Attest_ZAttestReq(serializedBytes: payload) {
        if request.hasQuote {
            _ = try? EVEQuoteEvidence(
                request.quote, ak: fixed.ak, ekCertificate: nil, deviceID: fixed.id, now: Date(timeIntervalSince1970: 0)
            )
        }
        for (i, z) in request.certs.prefix(8).enumerated() {
            if let cert = try? Certificate(pemEncoded: String(decoding: z.cert.prefix(16 * 1024), as: UTF8.self)) {
                _ = try? EVEDeviceCertificates.checkAttestationKey(z, cert, device: fixed.device, field: "certs[\(i)]")
            }
        }
    }
    if let register = try? Org_Lfedge_Eve_Register_ZRegisterMsg(serializedBytes: payload) {
        _ = try? Controller.validateEVERegistration(register)
    }
    _ = try? Org_Lfedge_Eve_Uuid_UuidRequest(serializedBytes: payload)
}

/// A device certificate and an AK to check against, made from a fixed key for each input (so runs are reproducible,
/// and no lazily built global outlives the run for the leak checker).
struct Fixed {
    let device: Certificate
    let ak: TPMTPublic
    let id: DeviceID

    init?() {
        guard let key = try? P256.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: 7, count: 32)),
            let name = try? DistinguishedName(builder: { CommonName("fuzz device") }),
            let device = try? Certificate(
                version: .v3, serialNumber: .init(bytes: [1]), publicKey: .init(key.publicKey),
                notValidBefore: Date(timeIntervalSince1970: 0), notValidAfter: Date(timeIntervalSince1970: 4e9),
                issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: .init(),
                issuerPrivateKey: .init(key))
        else { return nil }
        let raw = Array(key.publicKey.rawRepresentation)
        self.device = device
        ak = TPMTPublic(
            nameAlg: .sha256,
            objectAttributes: [.fixedTPM, .fixedParent, .sensitiveDataOrigin, .userWithAuth, .restricted, .sign],
            parameters: .ecc(
                .init(
                    symmetric: .null, scheme: TPMTScheme(.ecdsa, hashAlg: .sha256), curve: .nistP256, kdf: .null,
                    x: Array(raw.prefix(32)), y: Array(raw.suffix(32)))))
        id = DeviceID(eveDeviceKey: Array(device.publicKey.subjectPublicKeyInfoBytes))
    }
}
