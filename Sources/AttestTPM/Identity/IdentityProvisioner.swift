public import Attest
public import Foundation
public import Logging
import X509

/// What `vigil tpm provision` did to each identity object.
public struct ProvisioningReport: Sendable, Codable, Hashable {
    public enum State: String, Sendable, Codable {
        /// Already there and checked: nothing was changed.
        case present
        /// Made by this run.
        case created
        /// Replaced by this run because what was stored was unusable (e.g. a torn NV write).
        case replaced
        /// Deliberately not provisioned (e.g. a high-range EK without a manufacturer certificate).
        case skipped
    }

    public struct Item: Sendable, Codable, Hashable {
        public let object: String
        public let handle: String
        public let state: State
        public let detail: String
    }

    public internal(set) var items: [Item] = []

    /// True when anything was created or replaced.
    public var changed: Bool { items.contains { $0.state == .created || $0.state == .replaced } }
}

/// Creates or loads the device's TPM-rooted identity, idempotently, at the handles documented in
/// ``IdentityKeyTemplates``: the endorsement keys (checked against their manufacturer certificates),
/// the SRK, the attestation key, the device identity key and its TPM-signed certificate.
///
/// Never falls back to software keys: every failure is a ``TPMError`` naming what is wrong.
/// Crash safety: each object is persisted with a single TPM2_EvictControl after it is complete, and the
/// device certificate is checked on every run, so an interrupted run is completed by the next one.
public struct IdentityProvisioner: Sendable {
    public let tpm: TPM
    public let akAlgorithm: IdentityKeyTemplates.AKAlgorithm
    let logger: Logger

    public init(
        tpm: TPM, akAlgorithm: IdentityKeyTemplates.AKAlgorithm = .eccP256,
        logger: Logger = Logger(label: "vigil.identity")
    ) {
        self.tpm = tpm
        self.akAlgorithm = akAlgorithm
        self.logger = logger
    }

    public func provision(now: Date = Date()) async throws(TPMError) -> ProvisioningReport {
        var report = ProvisioningReport()
        for ek in EndorsementKeyTemplate.allCases {
            report.items.append(try await provisionEK(ek))
        }
        report.items.append(try await provisionSRK())
        report.items.append(try await provisionAK())
        report.items.append(
            try await provisionChild(
                name: "device identity key", handle: IdentityKeyTemplates.deviceKeyHandle,
                template: IdentityKeyTemplates.deviceKey
            ) { publicArea in
                sameShape(publicArea, IdentityKeyTemplates.deviceKey)
            })
        report.items.append(try await provisionDeviceCertificate(now: now))
        return report
    }

    // MARK: Endorsement keys

    func provisionEK(_ ek: EndorsementKeyTemplate) async throws(TPMError) -> ProvisioningReport.Item {
        let certificate = try await Self.readEKCertificate(tpm, ek)
        if !ek.isLowRange && certificate == nil {
            return .init(
                object: "EK \(ek)", handle: ek.persistentHandle.description, state: .skipped,
                detail: "no manufacturer certificate at NV \(ek.certificateNVIndex)")
        }
        let template = try await ek.effectiveTemplate(tpm)
        let handle = ek.persistentHandle
        // Fast path: a persisted fixedTPM key of the template's shape whose public key is the one the
        // manufacturer certified can only be the EK (its private key exists nowhere else, and fixedTPM keys
        // cannot be imported or loaded from outside) — no need to re-derive an RSA key on every run.
        if let certificate, let existing = try await tpm.readPublic(handle), sameShape(existing.publicArea, template),
            existing.publicArea.objectAttributes.contains(.fixedTPM),
            (try? certificate.matches(existing.publicArea)) == true
        {
            return .init(
                object: "EK \(ek)", handle: handle.description, state: .present,
                detail: "Name \(existing.name), certificate issued by \(certificate.issuer)")
        }
        // Otherwise the real EK is whatever the endorsement hierarchy derives from the template: recreate it
        // and compare, so an owner-hierarchy key with the same template cannot pass for the EK.
        let derived = try await tpm.withPrimary(.endorsement, template: template) {
            tpm, key throws(TPMError) -> (TPMName, TPMTPublic, Bool) in
            guard let publicArea = key.publicArea else {
                throw TPMError.invalidResponse("CreatePrimary returned no public area")
            }
            if let existing = try tpm.readPublic(handle) {
                guard existing.name == key.name else {
                    throw TPMError(
                        code: .handleOccupied,
                        reason:
                            "\(handle) holds an object that is not the endorsement key \(ek) (Name \(existing.name), expected \(key.name)); remove it with tpm2_evictcontrol -C o -c \(handle)"
                    )
                }
                return (key.name, publicArea, false)
            }
            try tpm.evictControl(key, persistentHandle: handle)
            return (key.name, publicArea, true)
        }
        var detail = "Name \(derived.0)"
        if let certificate {
            let matches: Bool
            do { matches = try certificate.matches(derived.1) } catch {
                throw TPMError(code: .certificate, reason: "EK \(ek): \(error)")
            }
            guard matches else {
                throw TPMError(
                    code: .identityMismatch,
                    reason:
                        "EK \(ek): the key in the TPM does not match the certificate at NV \(ek.certificateNVIndex) (issuer \(certificate.issuer))"
                )
            }
            detail += ", certificate issued by \(certificate.issuer)"
        } else {
            detail += ", no certificate at NV \(ek.certificateNVIndex)"
        }
        return .init(
            object: "EK \(ek)", handle: handle.description, state: derived.2 ? .created : .present, detail: detail)
    }

    /// The manufacturer's certificate for `ek` from NV, or nil when the index is not defined.
    public static func readEKCertificate(_ tpm: TPM, _ ek: EndorsementKeyTemplate) async throws(TPMError)
        -> EKCertificate?
    {
        guard let nvPublic = try await tpm.nvReadPublic(ek.certificateNVIndex) else { return nil }
        let authorization: NVAuthorization = nvPublic.attributes.contains(.ownerRead) ? .owner : .index(nil)
        let bytes = try await tpm.nvRead(
            ek.certificateNVIndex, size: Int(nvPublic.dataSize), authorization: authorization)
        do {
            return try EKCertificate(bytes: bytes)
        } catch {
            throw TPMError(code: .certificate, reason: "EK certificate at NV \(ek.certificateNVIndex): \(error)")
        }
    }

    // MARK: Owner-hierarchy keys

    func provisionSRK() async throws(TPMError) -> ProvisioningReport.Item {
        let handle = IdentityKeyTemplates.srkHandle
        if let existing = try await tpm.readPublic(handle) {
            let storage: TPMAObject = [.fixedTPM, .fixedParent, .restricted, .decrypt]
            guard existing.publicArea.objectAttributes.isSuperset(of: storage) else {
                throw TPMError(
                    code: .handleOccupied,
                    reason:
                        "\(handle) holds an object that is not a storage key (attributes \(existing.publicArea.objectAttributes))"
                )
            }
            let kind =
                sameShape(existing.publicArea, IdentityKeyTemplates.srk) ? "ECC P-256 SRK" : "existing storage key kept"
            return .init(
                object: "storage root key", handle: handle.description, state: .present,
                detail: "\(kind), Name \(existing.name)")
        }
        let name = try await tpm.withPrimary(.owner, template: IdentityKeyTemplates.srk) { tpm, key throws(TPMError) in
            try tpm.evictControl(key, persistentHandle: handle)
            return key.name
        }
        return .init(
            object: "storage root key", handle: handle.description, state: .created,
            detail: "ECC P-256 SRK, Name \(name)")
    }

    func provisionAK() async throws(TPMError) -> ProvisioningReport.Item {
        let handle = IdentityKeyTemplates.akHandle
        let name = "attestation key"
        if let existing = try await tpm.readPublic(handle) {
            guard let algorithm = IdentityKeyTemplates.isAttestationKey(existing.publicArea) else {
                throw TPMError(
                    code: .handleOccupied,
                    reason:
                        "\(handle) holds an object that is not a Vigil \(name) (type \(existing.publicArea.type), attributes \(existing.publicArea.objectAttributes))"
                )
            }
            return .init(
                object: "\(name) (\(algorithm.rawValue))", handle: handle.description, state: .present,
                detail: "Name \(existing.name)")
        }
        let created = try await tpm.withPrimary(
            .endorsement, template: IdentityKeyTemplates.attestationKey(akAlgorithm)
        ) { tpm, key throws(TPMError) in
            try tpm.evictControl(key, persistentHandle: handle)
            return key.name
        }
        logger.info("attestation key created", metadata: ["tpm.handle": "\(handle)", "key.name": "\(created)"])
        return .init(
            object: "\(name) (\(akAlgorithm.rawValue))", handle: handle.description, state: .created,
            detail: "Name \(created)")
    }

    func provisionChild(
        name: String, handle: TPMHandle, template: TPMTPublic,
        accept: (TPMTPublic) -> Bool
    ) async throws(TPMError) -> ProvisioningReport.Item {
        if let existing = try await tpm.readPublic(handle) {
            guard accept(existing.publicArea) else {
                throw TPMError(
                    code: .handleOccupied,
                    reason:
                        "\(handle) holds an object that is not a Vigil \(name) (type \(existing.publicArea.type), attributes \(existing.publicArea.objectAttributes))"
                )
            }
            return .init(object: name, handle: handle.description, state: .present, detail: "Name \(existing.name)")
        }
        let srk = IdentityKeyTemplates.srkHandle
        let created = try await tpm.withPersistent(srk) { tpm, parent throws(TPMError) in
            let blob = try tpm.create(parent: parent, template: template)
            return try tpm.withLoaded(parent: parent, blob) { tpm, key throws(TPMError) in
                try tpm.evictControl(key, persistentHandle: handle)
                return key.name
            }
        }
        logger.info("identity key created", metadata: ["tpm.handle": "\(handle)", "key.name": "\(created)"])
        return .init(object: name, handle: handle.description, state: .created, detail: "Name \(created)")
    }

    // MARK: Device certificate

    func provisionDeviceCertificate(now: Date) async throws(TPMError) -> ProvisioningReport.Item {
        let index = IdentityKeyTemplates.deviceCertificateIndex
        let keyHandle = IdentityKeyTemplates.deviceKeyHandle
        guard let key = try await tpm.readPublic(keyHandle) else {
            throw TPMError(code: .notProvisioned, reason: "the device identity key at \(keyHandle) is missing")
        }
        var state = ProvisioningReport.State.created
        if let stored = try await tpm.nvReadPublic(index) {
            if stored.attributes.contains(.written),
                let bytes = try? await tpm.nvRead(index, size: Int(stored.dataSize)),
                DeviceCertificate.validStored(bytes, for: key.publicArea) != nil
            {
                return .init(
                    object: "device certificate", handle: index.description, state: .present,
                    detail: "SHA-256 fingerprint \(DeviceCertificate.fingerprint(bytes))")
            }
            // Torn write, a certificate for another key, or garbage: replace it.
            try await tpm.nvUndefineSpace(index)
            state = .replaced
        }
        let certificate = try await DeviceCertificate.make(
            tpm: tpm, handle: keyHandle, publicArea: key.publicArea, name: key.name, now: now)
        let der = try DeviceCertificate.serialize(certificate)
        guard der.count <= 2048 else {
            throw TPMError(code: .certificate, reason: "device certificate of \(der.count) bytes is too large for NV")
        }
        let nvPublic = TPMSNVPublic(
            nvIndex: index.rawValue, nameAlg: .sha256,
            attributes: [.ownerWrite, .ownerRead, .authRead, .noDA], dataSize: UInt16(der.count))
        try await tpm.nvDefineSpace(nvPublic)
        try await tpm.nvWrite(index, data: der)
        return .init(
            object: "device certificate", handle: index.description, state: state,
            detail: "SHA-256 fingerprint \(DeviceCertificate.fingerprint(der))")
    }
}
