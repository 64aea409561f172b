import Attest
public import AttestTPM
import Foundation
import SwiftASN1
import X509

/// What `vigil tpm info` reports: the TPM, its banks, and the device's identity objects.
public struct TPMInfo: Sendable, Codable {
    public struct EndorsementKey: Sendable, Codable {
        public let template: EndorsementKeyTemplate
        public let algorithm: String
        public let handle: String
        public let persistent: Bool
        /// The EK's Name (from the persistent object, or derived from the template when not persistent).
        public let name: String?
        public let certificate: Certificate?
        /// Whether the EK's public key equals the certificate's.
        public let matchesCertificate: Bool?
    }

    public struct Certificate: Sendable, Codable {
        public let nvIndex: String
        public let subject: String
        public let issuer: String
        public let serialNumber: String
        public let notValidBefore: String
        public let notValidAfter: String
        public let tpmManufacturer: String?
        public let tpmModel: String?
        public let tpmVersion: String?
        public let sha256Fingerprint: String
    }

    public struct Key: Sendable, Codable {
        public let handle: String
        public let name: String
        public let algorithm: String
    }

    public struct DeviceCertificateInfo: Sendable, Codable {
        public let nvIndex: String
        public let subject: String
        public let sha256Fingerprint: String
        public let valid: Bool
    }

    public let tcti: String
    public let tpm: TPMIdentification
    public let manufacturerID: String
    public let firmwareVersion: String
    public let activeBanks: [String]
    public let endorsementKeys: [EndorsementKey]
    public let storageRootKey: Key?
    public let attestationKey: Key?
    public let deviceKey: Key?
    public let deviceCertificate: DeviceCertificateInfo?

    /// Reads everything from the TPM. Changes nothing (an EK that is not persistent is derived
    /// transiently and flushed, to report its Name).
    public static func gather(_ tpm: TPM) async throws(TPMError) -> TPMInfo {
        let identification = try await tpm.identification()
        let banks = try await tpm.activeBanks().map(\.name)
        var eks: [EndorsementKey] = []
        for template in EndorsementKeyTemplate.allCases {
            let certificate = try await IdentityProvisioner.readEKCertificate(tpm, template)
            let persistent = try await tpm.readPublic(template.persistentHandle)
            var name = persistent?.name
            var publicArea = persistent?.publicArea
            if persistent == nil && (template.isLowRange || certificate != nil) {
                let effective = try await template.effectiveTemplate(tpm)
                let derived = try await tpm.withPrimary(.endorsement, template: effective) { _, key throws(TPMError) in
                    (key.name, key.publicArea)
                }
                name = derived.0
                publicArea = derived.1
            }
            var matches: Bool?
            if let certificate, let publicArea { matches = (try? certificate.matches(publicArea)) ?? false }
            eks.append(
                EndorsementKey(
                    template: template, algorithm: template.description, handle: template.persistentHandle.description,
                    persistent: persistent != nil, name: name?.description,
                    certificate: certificate.map { describe($0, index: template.certificateNVIndex) },
                    matchesCertificate: matches))
        }
        func key(_ handle: TPMHandle) async throws(TPMError) -> Key? {
            guard let found = try await tpm.readPublic(handle) else { return nil }
            let algorithm: String =
                switch found.publicArea.parameters {
                case .rsa(let p): "RSA-\(p.keyBits)"
                case .ecc(let p): "ECC \(p.curve)"
                default: "\(found.publicArea.type)"
                }
            return Key(handle: handle.description, name: found.name.description, algorithm: algorithm)
        }
        var deviceCertificate: DeviceCertificateInfo?
        let index = IdentityKeyTemplates.deviceCertificateIndex
        if let stored = try await tpm.nvReadPublic(index), stored.attributes.contains(.written) {
            let bytes = try await tpm.nvRead(index, size: Int(stored.dataSize))
            let device = try await tpm.readPublic(IdentityKeyTemplates.deviceKeyHandle)
            let parsed = try? X509.Certificate(derEncoded: bytes)
            let valid = device.flatMap { DeviceCertificate.validStored(bytes, for: $0.publicArea) } != nil
            deviceCertificate = DeviceCertificateInfo(
                nvIndex: index.description, subject: parsed?.subject.description ?? "(unparseable)",
                sha256Fingerprint: DeviceCertificate.fingerprint(bytes), valid: valid)
        }
        return TPMInfo(
            tcti: tpm.tcti.loaderString, tpm: identification, manufacturerID: identification.manufacturerIDString,
            firmwareVersion: identification.firmwareVersionString, activeBanks: banks, endorsementKeys: eks,
            storageRootKey: try await key(IdentityKeyTemplates.srkHandle),
            attestationKey: try await key(IdentityKeyTemplates.akHandle),
            deviceKey: try await key(IdentityKeyTemplates.deviceKeyHandle),
            deviceCertificate: deviceCertificate)
    }

    static func describe(_ ek: EKCertificate, index: TPMHandle) -> Certificate {
        let formatter = ISO8601DateFormatter()
        return Certificate(
            nvIndex: index.description, subject: ek.subject, issuer: ek.issuer,
            serialNumber: ek.certificate.serialNumber.description,
            notValidBefore: formatter.string(from: ek.certificate.notValidBefore),
            notValidAfter: formatter.string(from: ek.certificate.notValidAfter),
            tpmManufacturer: ek.tpmManufacturer, tpmModel: ek.tpmModel, tpmVersion: ek.tpmVersion,
            sha256Fingerprint: DeviceCertificate.fingerprint(ek.derBytes))
    }

    /// Human-readable rendering.
    public var text: String {
        var lines: [String] = []
        lines.append(
            "TPM            \(tpm.manufacturer) (\(manufacturerID)) \(tpm.vendorString), firmware \(firmwareVersion) (\(tpm.firmwareVersionHex)), TPM \(tpm.specFamily) rev \(Double(tpm.specRevision) / 100)"
        )
        lines.append("TCTI           \(tcti)")
        lines.append("PCR banks      \(activeBanks.joined(separator: ", "))")
        lines.append("NV buffer      \(tpm.nvBufferMax) bytes")
        for ek in endorsementKeys {
            lines.append("EK \(ek.algorithm)")
            lines.append("  handle       \(ek.handle)\(ek.persistent ? "" : " (not persistent)")")
            if let name = ek.name { lines.append("  name         \(name)") }
            if let c = ek.certificate {
                lines.append("  certificate  NV \(c.nvIndex), subject \"\(c.subject)\"")
                lines.append("  issuer       \(c.issuer)")
                lines.append(
                    "  TPM (SAN)    manufacturer \(c.tpmManufacturer ?? "-"), model \(c.tpmModel ?? "-"), version \(c.tpmVersion ?? "-")"
                )
                lines.append("  valid        \(c.notValidBefore) … \(c.notValidAfter)")
                lines.append("  matches key  \(ek.matchesCertificate.map { $0 ? "yes" : "NO" } ?? "-")")
            } else {
                lines.append("  certificate  none in NV")
            }
        }
        func key(_ label: String, _ k: Key?) {
            if let k {
                lines.append("\(label) \(k.handle) \(k.algorithm), name \(k.name)")
            } else {
                lines.append("\(label) not provisioned (run `vigil tpm provision`)")
            }
        }
        key("SRK           ", storageRootKey)
        key("AK            ", attestationKey)
        key("Device key    ", deviceKey)
        if let d = deviceCertificate {
            lines.append(
                "Device cert    NV \(d.nvIndex) \"\(d.subject)\" SHA-256 \(d.sha256Fingerprint)\(d.valid ? "" : " (INVALID)")"
            )
        } else {
            lines.append("Device cert    not provisioned")
        }
        return lines.joined(separator: "\n")
    }
}
