import Attest
import ControllerProtocol
public import EVEAPI
import Foundation
import SwiftASN1
public import X509

/// The certificates an EVE device uploaded with `ATTEST_REQ_CERT` (`ZCert`, certs.proto), as the controller keeps
/// them (JSON in `eve_devices.certs`), after checking each:
///
/// | type | what | checked |
/// |---|---|---|
/// | `CERT_TYPE_DEVICE_RESTRICTED_SIGNING` (11) | the attestation key | signed by the registered device certificate; its `Z_CERT_META_DATA_TYPE_TPM2_PUBLIC` is a restricted, fixedTPM, fixedParent, sensitiveDataOrigin signing key (``AKPublic``) whose key is the certificate's |
/// | `CERT_TYPE_DEVICE_ENDORSEMENT_RSA` (12) | the EK | an EK certificate; chains to the group policy's EK CA bundle when the policy names one |
/// | `CERT_TYPE_DEVICE_ECDH_EXCHANGE` (13) | the ECDH key | signed by the registered device certificate |
///
/// A certificate uploaded with `is_mutable` false can never be replaced by a different one (APIv2.md: this stops a
/// compromised device from swapping its TPM-rooted certificates for software ones).
public struct EVEDeviceCertificates: Codable, Sendable, Hashable {
    /// One stored certificate.
    struct Stored: Codable, Sendable, Hashable {
        /// PEM.
        var pem: String
        /// `ZCertAttr.is_mutable`.
        var mutable: Bool
        /// `ZCertAttr.is_tpm`.
        var tpm: Bool
        /// The AK's TPMT_PUBLIC (base64), for type 11.
        var tpm2Public: String?
    }

    /// `ZCertType` raw value (decimal text) → certificate.
    var byType: [String: Stored] = [:]
    /// The TPMT_PUBLIC (base64) of every AK a later upload replaced: never accepted again.
    var retiredAttestationKeys: [String] = []

    init() {}

    /// Decodes a stored record (records written before AKs were retired have no list).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        byType = try c.decode([String: Stored].self, forKey: .byType)
        retiredAttestationKeys = try c.decodeIfPresent([String].self, forKey: .retiredAttestationKeys) ?? []
    }

    enum CodingKeys: String, CodingKey { case byType, retiredAttestationKeys }

    static let attestationKey = Org_Lfedge_Eve_Certs_ZCertType.certTypeDeviceRestrictedSigning
    static let endorsementKey = Org_Lfedge_Eve_Certs_ZCertType.certTypeDeviceEndorsementRsa
    static let ecdhKey = Org_Lfedge_Eve_Certs_ZCertType.certTypeDeviceEcdhExchange

    subscript(_ type: Org_Lfedge_Eve_Certs_ZCertType) -> Stored? {
        get { byType[String(type.rawValue)] }
        set { byType[String(type.rawValue)] = newValue }
    }

    /// The stored AK public area, if an AK certificate was uploaded.
    func attestationKeyPublic() throws(ControllerError) -> TPMTPublic? {
        guard let text = self[Self.attestationKey]?.tpm2Public else { return nil }
        guard let bytes = Data(base64Encoded: text) else {
            throw .internalFailure("database: AK public area not base64")
        }
        do { return try TPMTPublic(tpmtPublicBytes: Array(bytes)) } catch {
            throw .internalFailure("database: unreadable AK public area: \(error)")
        }
    }

    /// The stored EK certificate's DER, if one was uploaded.
    func endorsementCertificateDER() throws(ControllerError) -> [UInt8]? {
        guard let pem = self[Self.endorsementKey]?.pem else { return nil }
        do { return try UnverifiedAuthContainer.der(Certificate(pemEncoded: pem)) } catch let e as ControllerError {
            throw e
        } catch { throw .internalFailure("database: unreadable EK certificate: \(error)") }
    }

    /// type → subject, for `device show`.
    var subjects: [String: String] {
        var out: [String: String] = [:]
        for (type, stored) in byType {
            let name = Org_Lfedge_Eve_Certs_ZCertType(rawValue: Int(type) ?? 0).map { "\($0)" } ?? type
            out[name] = (try? Certificate(pemEncoded: stored.pem)).map { "\($0.subject)" } ?? "?"
        }
        return out
    }

    static func decode(_ text: String?) throws(ControllerError) -> EVEDeviceCertificates {
        guard let text, !text.isEmpty else { return EVEDeviceCertificates() }
        do { return try JSONDecoder().decode(EVEDeviceCertificates.self, from: Data(text.utf8)) } catch {
            throw .internalFailure("database: unreadable EVE certificates: \(error)")
        }
    }

    func encoded() throws(ControllerError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { return String(decoding: try encoder.encode(self), as: UTF8.self) } catch {
            throw .internalFailure("cannot encode EVE certificates: \(error)")
        }
    }

    // MARK: Checking an upload

    /// The most certificates one `ATTEST_REQ_CERT` may carry.
    static let maximumCount = 8
    /// The largest PEM accepted per certificate.
    static let maximumPEM = 16 * 1024

    /// Checks `certs` from a device whose registered certificate is `device` and applies them to `self`.
    /// `anchors`: the EK CA bundle the device's policy names (nil: the EK chain is judged at attestation only).
    mutating func apply(
        _ certs: [Org_Lfedge_Eve_Certs_ZCert], device: Certificate, anchors: EKTrustAnchors?, now: Date
    ) async throws(ControllerError) {
        guard !certs.isEmpty else { throw .unprocessable("ZAttestReq (ATTEST_REQ_CERT): no certificates") }
        guard certs.count <= Self.maximumCount else {
            throw .unprocessable(
                "ZAttestReq (ATTEST_REQ_CERT): \(certs.count) certificates (at most \(Self.maximumCount))")
        }
        var seen: Set<Int> = []
        var updated = self
        for (i, z) in certs.enumerated() {
            let field = "certs[\(i)] (\(z.type))"
            guard seen.insert(z.type.rawValue).inserted else {
                throw .unprocessable("ZAttestReq.\(field): a second certificate of the same type")
            }
            guard z.cert.count <= Self.maximumPEM else {
                throw .tooLarge("ZAttestReq.\(field): \(z.cert.count) bytes (at most \(Self.maximumPEM))")
            }
            let pem = String(decoding: z.cert, as: UTF8.self)
            let cert: Certificate
            do { cert = try Certificate(pemEncoded: pem) } catch {
                throw .unprocessable("ZAttestReq.\(field): not a PEM X.509 certificate (\(error))")
            }
            let der = try UnverifiedAuthContainer.der(cert)
            if !z.certHash.isEmpty {
                let hash = try EVESenderCertHash(algo: z.hashAlgo, bytes: Array(z.certHash))
                guard hash.matches(certificateDER: der) else {
                    throw .unprocessable("ZAttestReq.\(field): certHash is not the certificate's SHA-256")
                }
            }
            var stored = Stored(pem: pem, mutable: z.attributes.isMutable, tpm: z.attributes.isTpm, tpm2Public: nil)
            switch z.type {
            case Self.attestationKey:
                stored.tpm2Public = try Self.checkAttestationKey(z, cert, device: device, field: field)
            case Self.endorsementKey:
                try await Self.checkEndorsementKey(cert, der: der, anchors: anchors, now: now, field: field)
            case Self.ecdhKey:
                try Self.checkSignedByDevice(cert, device: device, field: field)
            default:
                throw .unprocessable(
                    "ZAttestReq.\(field): a device uploads only CERT_TYPE_DEVICE_RESTRICTED_SIGNING, _ENDORSEMENT_RSA and _ECDH_EXCHANGE certificates"
                )
            }
            if let existing = updated[z.type], !existing.mutable {
                // Immutable stays immutable: the same certificate again changes nothing (not even its attributes or
                // its TPM2_PUBLIC), anything else is refused.
                guard (try? Certificate(pemEncoded: existing.pem)) == cert, existing.tpm2Public == stored.tpm2Public
                else {
                    throw .forbidden(
                        "eve_certificate_immutable",
                        "ZAttestReq.\(field): the stored \(z.type) certificate was uploaded as immutable (is_mutable false) and cannot be replaced"
                    )
                }
                continue
            }
            if z.type == Self.attestationKey, let old = updated[z.type]?.tpm2Public, old != stored.tpm2Public {
                // A replaced AK is retired for good: a replayed upload (EVE's envelope carries no freshness) cannot
                // bring it back.
                updated.retiredAttestationKeys.append(old)
            }
            if z.type == Self.attestationKey, let new = stored.tpm2Public, updated.retiredAttestationKeys.contains(new)
            {
                throw .forbidden(
                    "eve_ak_retired",
                    "ZAttestReq.\(field): this AK was replaced earlier and cannot be brought back (a replayed upload?)")
            }
            updated[z.type] = stored
        }
        self = updated
    }

    /// The AK certificate: signed by the device certificate, for the TPM key its TPM2_PUBLIC describes.
    /// Checks an uploaded AK certificate (type 11) against the registered device certificate; returns its
    /// TPMT_PUBLIC, base64.
    public static func checkAttestationKey(
        _ z: Org_Lfedge_Eve_Certs_ZCert, _ cert: Certificate, device: Certificate, field: String
    ) throws(ControllerError) -> String {
        try checkSignedByDevice(cert, device: device, field: field)
        let items = z.metaDataItems.filter { $0.type == .tpm2Public }
        guard items.count == 1, let blob = items.first?.metaData, !blob.isEmpty, blob.count <= 4096 else {
            throw .unprocessable(
                "ZAttestReq.\(field): needs exactly one Z_CERT_META_DATA_TYPE_TPM2_PUBLIC item (the AK's TPM2_PUBLIC)")
        }
        let publicArea: TPMTPublic
        do { publicArea = try parsePublic(Array(blob)) } catch {
            throw .unprocessable("ZAttestReq.\(field): TPM2_PUBLIC metadata: \(error.reason)")
        }
        do { _ = try AKPublic(publicArea) } catch {
            throw .unprocessable("ZAttestReq.\(field): the AK's TPM2_PUBLIC is not an attestation key: \(error.reason)")
        }
        let key: Certificate.PublicKey
        do { key = try publicArea.certificatePublicKey() } catch {
            throw .unprocessable("ZAttestReq.\(field): the AK's TPM2_PUBLIC has no usable key: \(error.reason)")
        }
        guard key == cert.publicKey else {
            throw .unprocessable(
                "ZAttestReq.\(field): the certificate's key is not the key in its TPM2_PUBLIC metadata (a certificate for another key)"
            )
        }
        return Data(publicArea.marshal()).base64EncodedString()
    }

    /// TPM2_PUBLIC as EVE sends it: a TPMT_PUBLIC (go-tpm's `Public.Encode`), or a TPM2B_PUBLIC.
    static func parsePublic(_ bytes: [UInt8]) throws(AttestError) -> TPMTPublic {
        if bytes.count >= 2, Int(bytes[0]) << 8 | Int(bytes[1]) == bytes.count - 2,
            let p = try? TPMTPublic(tpmPublicBytes: bytes)
        {
            return p
        }
        return try TPMTPublic(tpmtPublicBytes: bytes)
    }

    /// The EK certificate: an EK certificate (TCG EK Credential Profile), chaining to the policy's anchors if any.
    static func checkEndorsementKey(
        _ cert: Certificate, der: [UInt8], anchors: EKTrustAnchors?, now: Date, field: String
    ) async throws(ControllerError) {
        let ek: EKCertificate
        do { ek = try EKCertificate(bytes: der) } catch {
            throw .unprocessable("ZAttestReq.\(field): not an EK certificate: \(error.reason)")
        }
        guard let anchors else { return }
        switch await EKCertificateVerifier(anchors: anchors).validate(ek, at: now) {
        case .valid: return
        case .invalid(let reason):
            throw .forbidden(
                "ek_chain_invalid",
                "ZAttestReq.\(field): the EK certificate does not chain to \(anchors.source), which the device's policy names: \(reason)"
            )
        }
    }

    /// A certificate issued by the device certificate (the AK and ECDH certificates EVE makes with its device key).
    static func checkSignedByDevice(_ cert: Certificate, device: Certificate, field: String) throws(ControllerError) {
        guard cert.issuer == device.subject, device.publicKey.isValidSignature(cert.signature, for: cert) else {
            throw .forbidden(
                "eve_certificate_not_device_signed",
                "ZAttestReq.\(field): not signed by the registered device certificate (\(device.subject)); issuer \(cert.issuer)"
            )
        }
    }
}
