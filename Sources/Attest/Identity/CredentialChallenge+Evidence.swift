import Foundation

extension CredentialChallenge {
    /// A challenge for the AK and EK of an evidence bundle (TPM2_MakeCredential, Part 3 §12.6): the EK public
    /// area the device sent must carry its EK certificate's key (a public area is a claim; the certificate is
    /// what the chain anchors), and the AK must be a restricted, TPM-resident signing key (``AKPublic``).
    /// The EK certificate's chain is checked where the binding is used (``EvidenceVerifier``).
    public static func make(for bundle: EvidenceBundle, secret: [UInt8]) throws(AttestError) -> CredentialChallenge {
        let d = try bundle.decoded()
        guard let ek = d.ek else {
            throw AttestError.invalid("credential activation: the evidence has no EK certificate")
        }
        guard let encoded = bundle.ekPublic else {
            throw AttestError.invalid("credential activation: the evidence has no EK public area (ek_public)")
        }
        let ekPublic = try TPMTPublic(tpmPublicBytes: try EvidenceBundle.base64(encoded, "ek_public"))
        guard try ek.matches(ekPublic) else {
            throw AttestError(
                code: .akNotBound, reason: "credential activation: ek_public is not the key of the EK certificate")
        }
        let ak = try AKPublic(d.ak)
        guard let akName = ak.name else { throw AttestError.invalid("credential activation: the AK has no Name") }
        return try make(ekPublic: ekPublic, akName: akName, secret: secret)
    }

    /// The challenge as the device receives it (JSON: AK Name, EK public area, credential blob, encrypted secret).
    public func json() throws(AttestError) -> [UInt8] {
        let file = File(
            version: 1, akName: akName, ekPublic: Data(ekPublic.marshalTPM2B()).base64EncodedString(),
            credentialBlob: Data(credentialBlob).base64EncodedString(),
            encryptedSecret: Data(encryptedSecret).base64EncodedString())
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            return Array(try encoder.encode(file))
        } catch {
            throw AttestError.invalid("credential challenge: \(error)")
        }
    }

    /// The largest challenge file accepted.
    public static let maxJSONSize = 64 * 1024

    /// Decodes a challenge file (bounded in size; every field checked).
    public init(json: [UInt8]) throws(AttestError) {
        guard json.count <= Self.maxJSONSize else {
            throw .tooLarge("credential challenge", size: json.count, limit: Self.maxJSONSize, at: 0)
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: Data(json))
        } catch {
            throw AttestError.invalid("credential challenge: not a challenge file: \(error)")
        }
        guard file.version == 1 else {
            throw AttestError.invalid("credential challenge: version \(file.version) is not supported")
        }
        self.init(
            credentialBlob: try EvidenceBundle.base64(file.credentialBlob, "credential_blob"),
            encryptedSecret: try EvidenceBundle.base64(file.encryptedSecret, "encrypted_secret"),
            akName: file.akName,
            ekPublic: try TPMTPublic(tpmPublicBytes: try EvidenceBundle.base64(file.ekPublic, "ek_public")))
    }

    struct File: Codable {
        let version: Int
        let akName: TPMName
        let ekPublic: String
        let credentialBlob: String
        let encryptedSecret: String

        enum CodingKeys: String, CodingKey {
            case version, akName = "ak_name", ekPublic = "ek_public", credentialBlob = "credential_blob",
                encryptedSecret = "encrypted_secret"
        }
    }
}
