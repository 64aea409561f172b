public import Foundation

/// What a device sends to be attested (JSON; schema: `policies/schema/evidence-bundle.schema.json`):
/// a quote over the verifier's nonce with the PCR values, the keys and certificates that identify the
/// TPM, and the TCG event log. Nothing in it is trusted until ``EvidenceVerifier`` has checked it; its `nonce` field is informational only.
public struct EvidenceBundle: Codable, Sendable, Hashable {
    /// The bundle format version this build writes and accepts (`version` in the JSON).
    public static let currentVersion = 1
    /// Largest bundle accepted (an event log is at most a few hundred KiB).
    public static let maxSize = 8 << 20

    /// The bundle format version; only ``currentVersion`` is accepted.
    public var version: Int
    /// The device id the device claims (`device_id`): a label, proved by nothing.
    public var deviceID: String
    /// Hex.
    public var nonce: String
    /// The TPM2_Quote result: signed attest bytes and signature.
    public var quote: Quote
    /// bank → PCR index (decimal string) → hex value.
    public var pcrs: [String: [String: String]]
    /// Base64 TPM2B_PUBLIC of the attestation key.
    public var akPublic: String
    /// Base64 DER.
    public var ekCertificate: String?
    /// Base64 TPM2B_PUBLIC of the EK whose certificate is sent: what a verifier encrypts a credential to
    /// (TPM2_MakeCredential). Trusted only as far as its key equals the certificate's.
    public var ekPublic: String?
    /// Base64 DER certificates offered to build the EK chain: only ever used as untrusted intermediates.
    public var ekIntermediates: [String]?
    /// Base64 DER device certificate (read from the TPM's NV storage); not checked by ``EvidenceVerifier``.
    public var deviceCertificate: String?
    /// Base64 TCG event log.
    public var eventLog: String?
    /// RFC 3339.
    public var collectedAt: String

    /// The TPM2_Quote output, as base64 strings.
    public struct Quote: Codable, Sendable, Hashable {
        /// Base64 TPMS_ATTEST.
        public var attest: String
        /// Base64 TPMT_SIGNATURE.
        public var signature: String
    }

    enum CodingKeys: String, CodingKey {
        case version, deviceID = "device_id", nonce, quote, pcrs, akPublic = "ak_public", ekCertificate =
            "ek_certificate", ekPublic = "ek_public"
        case ekIntermediates = "ek_intermediates", deviceCertificate = "device_certificate", eventLog = "event_log",
            collectedAt = "collected_at"
    }

    /// Builds a bundle on the device from raw TPM outputs (base64 and hex encoding them); `ekIntermediates` is
    /// left empty.
    public init(
        deviceID: String, nonce: [UInt8], attest: [UInt8], signature: [UInt8], pcrs: PCRValues, akPublic: TPMTPublic,
        ekCertificate: [UInt8]?, deviceCertificate: [UInt8]?, eventLog: [UInt8]?, collectedAt: Date,
        ekPublic: TPMTPublic? = nil
    ) {
        version = Self.currentVersion
        self.deviceID = deviceID
        self.nonce = Hex.encode(nonce)
        quote = Quote(attest: Data(attest).base64EncodedString(), signature: Data(signature).base64EncodedString())
        self.pcrs = pcrs.jsonObject
        self.akPublic = Data(akPublic.marshalTPM2B()).base64EncodedString()
        self.ekCertificate = ekCertificate.map { Data($0).base64EncodedString() }
        self.ekPublic = ekPublic.map { Data($0.marshalTPM2B()).base64EncodedString() }
        ekIntermediates = nil
        self.deviceCertificate = deviceCertificate.map { Data($0).base64EncodedString() }
        self.eventLog = eventLog.map { Data($0).base64EncodedString() }
        self.collectedAt = collectedAt.formatted(.iso8601)
    }

    /// Decodes JSON, bounded in size.
    public init(json: [UInt8]) throws(AttestError) {
        guard json.count <= Self.maxSize else {
            throw .tooLarge("evidence bundle", size: json.count, limit: Self.maxSize, at: 0)
        }
        do {
            self = try JSONDecoder().decode(EvidenceBundle.self, from: Data(json))
        } catch let DecodingError.keyNotFound(key, _) {
            throw AttestError.invalid("evidence bundle: missing \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(_, context) {
            throw AttestError.invalid(
                "evidence bundle: wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))")
        } catch {
            throw AttestError.invalid("evidence bundle: not valid JSON: \(error)")
        }
        guard version == Self.currentVersion else {
            throw AttestError.invalid(
                "evidence bundle: version \(version) is not supported (expected \(Self.currentVersion))")
        }
    }

    /// The bundle as pretty-printed JSON with sorted keys.
    public func json() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }

    static func base64(_ text: String, _ field: String) throws(AttestError) -> [UInt8] {
        guard let data = Data(base64Encoded: text) else {
            throw AttestError.invalid("evidence bundle: \(field) is not base64")
        }
        return Array(data)
    }

    /// The decoded, still unverified parts.
    public func decoded() throws(AttestError) -> (
        nonce: [UInt8], attest: [UInt8], signature: [UInt8], pcrs: PCRValues, ak: TPMTPublic,
        ek: EKCertificate?, eventLog: UnverifiedEventLog?, collectedAt: Date?
    ) {
        guard let nonceBytes = Hex.decode(nonce) else { throw AttestError.invalid("evidence bundle: nonce is not hex") }
        let ek = try ekCertificate.map { (s: String) throws(AttestError) in
            try EKCertificate(bytes: try Self.base64(s, "ek_certificate"))
        }
        let log = try eventLog.map { (s: String) throws(AttestError) in
            try UnverifiedEventLog(bytes: try Self.base64(s, "event_log"))
        }
        return (
            nonceBytes, try Self.base64(quote.attest, "quote.attest"),
            try Self.base64(quote.signature, "quote.signature"),
            try PCRValues(jsonObject: pcrs), try TPMTPublic(tpmPublicBytes: try Self.base64(akPublic, "ak_public")), ek,
            log,
            try? Date(collectedAt, strategy: .iso8601)
        )
    }
}
