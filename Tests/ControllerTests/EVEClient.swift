import AsyncHTTPClient
import Attest
import AttestTPM
import CompressNIO
import Crypto
import EVEAPI
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Node
import SwiftASN1
import SwiftProtobuf
import X509
import _CryptoExtras

/// The device side of EVE's API (lf-edge/eve-api APIv2.md, OBJECT-SIGNING.md), built on swift-protobuf's generated
/// types and written the way EVE's Go code behaves (`pkg/pillar/zedcloud/authen.go` signs `AuthContainer`s;
/// `cmd/zedagent/attesttask.go` and `cmd/tpmmgr` send certificates and quotes): what the EVE tests drive Vigil's
/// controller with, over HTTPS.
final class EVEClient: Sendable {
    let http: HTTPClient
    let base: String

    init(url: String, caPEM: String) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        base = url + "/api/v2/edgedevice"
    }

    func shutdown() async { try? await http.shutdown() }

    /// An HTTP answer.
    struct Answer {
        let status: Int
        let body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// With `VIGIL_EVE_FUZZ_SEEDS=DIR`, every request body is also written there (how Fuzz/seeds/FuzzEVE was made).
    static func recordSeed(_ path: String, _ body: [UInt8]) {
        guard let dir = ProcessInfo.processInfo.environment["VIGIL_EVE_FUZZ_SEEDS"] else { return }
        let name = path.split(separator: "/").last.map(String.init) ?? "body"
        let digest = SHA256.hash(data: body).prefix(4).map { String(format: "%02x", $0) }.joined()
        try? Data(body).write(to: URL(fileURLWithPath: dir).appendingPathComponent("\(name)-\(digest).bin"))
    }

    func post(_ path: String, _ body: [UInt8]) async throws -> Answer {
        Self.recordSeed(path, body)
        var request = HTTPClientRequest(url: base + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-proto-binary")
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await http.execute(request, timeout: .seconds(60))
        return Answer(
            status: Int(response.status.code),
            body: Array(try await response.body.collect(upTo: 8 << 20).readableBytesView))
    }

    func get(_ path: String) async throws -> Answer {
        let response = try await http.execute(HTTPClientRequest(url: base + path), timeout: .seconds(60))
        return Answer(
            status: Int(response.status.code),
            body: Array(try await response.body.collect(upTo: 8 << 20).readableBytesView))
    }

    // MARK: Identities (software keys; the AK and the quotes come from the TPM)

    /// How a sender encodes its ECDSA signature: raw r‖s (OBJECT-SIGNING.md) or ASN.1 DER (Go's `ecdsa.SignASN1`).
    enum SignatureForm { case raw, der }

    /// A key and its certificate: an onboarding or device identity.
    struct Identity: @unchecked Sendable {
        enum Key {
            case p256(P256.Signing.PrivateKey)
            case rsa(_RSA.Signing.PrivateKey)
            /// The TPM-resident device key (`IdentityKeyTemplates.deviceKeyHandle`), as EVE keeps its device key in
            /// the TPM: every signature is a TPM2_Sign.
            case tpm(TPM, Certificate.PublicKey)
        }
        let key: Key
        let certificate: Certificate

        var der: [UInt8] {
            var s = DER.Serializer()
            try? s.serialize(certificate)
            return s.serializedBytes
        }
        var pem: String { (try? certificate.serializeAsPEM().pemString) ?? "" }
        var certificateKey: Certificate.PrivateKey {
            switch key {
            case .p256(let k): Certificate.PrivateKey(k)
            case .rsa(let k): Certificate.PrivateKey(k)
            case .tpm(let tpm, let publicKey):
                Certificate.PrivateKey(
                    TPMSigningKey(tpm: tpm, handle: IdentityKeyTemplates.deviceKeyHandle, publicKey: publicKey))
            }
        }
        var signatureAlgorithm: Certificate.SignatureAlgorithm {
            switch key {
            case .p256, .tpm: .ecdsaWithSHA256
            case .rsa: .sha256WithRSAEncryption
            }
        }

        /// The device identity `vigil tpm provision` made: the TPM-resident device key and its certificate, self-signed
        /// inside the TPM and stored in NV (what EVE does with its device key).
        static func tpmResident(_ tpm: TPM) async throws -> Identity {
            let index = IdentityKeyTemplates.deviceCertificateIndex
            guard let stored = try await tpm.nvReadPublic(index) else {
                throw EVETestError("no device certificate in NV")
            }
            let certificate = try Certificate(derEncoded: try await tpm.nvRead(index, size: Int(stored.dataSize)))
            return Identity(key: .tpm(tpm, certificate.publicKey), certificate: certificate)
        }

        /// The signature over SHA-256 of `payload`, as EVE puts it in `signatureHash`.
        func sign(_ payload: [UInt8], form: SignatureForm) async throws -> [UInt8] {
            let digest = SHA256.hash(data: payload)
            switch key {
            case .tpm(let tpm, _):
                // TPM2_Sign gives r and s; go-tpm hands them to EVE, which concatenates them (raw) for the envelope.
                let der = try await TPMSigningKey.derSignature(
                    tpm: tpm, handle: IdentityKeyTemplates.deviceKeyHandle, digest: Array(digest))
                return form == .der
                    ? der : Array(try P256.Signing.ECDSASignature(derRepresentation: der).rawRepresentation)
            case .p256(let k):
                let s = try k.signature(for: digest)
                return form == .raw ? Array(s.rawRepresentation) : Array(s.derRepresentation)
            case .rsa(let k):
                return Array(try k.signature(for: digest, padding: .insecurePKCS1v1_5).rawRepresentation)
            }
        }

        /// A self-signed identity (EVE's device certificate is self-signed by the device key).
        static func selfSigned(_ key: Key, commonName: String) throws -> Identity {
            let name = try DistinguishedName { CommonName(commonName) }
            let publicKey: Certificate.PublicKey
            let privateKey: Certificate.PrivateKey
            switch key {
            case .p256(let k):
                publicKey = .init(k.publicKey)
                privateKey = .init(k)
            case .rsa(let k):
                publicKey = .init(k.publicKey)
                privateKey = .init(k)
            case .tpm:
                throw EVETestError("a TPM-resident identity comes from the TPM: tpmResident(_:)")
            }
            let cert = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: publicKey,
                notValidBefore: Date().addingTimeInterval(-60),
                notValidAfter: Date().addingTimeInterval(86400 * 365), issuer: name, subject: name,
                signatureAlgorithm: {
                    if case .rsa = key { return .sha256WithRSAEncryption }
                    return .ecdsaWithSHA256
                }(),
                extensions: try Certificate.Extensions { Critical(KeyUsage(digitalSignature: true)) },
                issuerPrivateKey: privateKey)
            return Identity(key: key, certificate: cert)
        }

        /// A certificate for `publicKey` issued by this identity (EVE's AK and ECDH certificates).
        func issue(_ publicKey: Certificate.PublicKey, commonName: String) async throws -> Certificate {
            try await Certificate(
                version: .v3, serialNumber: .init(), publicKey: publicKey,
                notValidBefore: Date().addingTimeInterval(-60),
                notValidAfter: Date().addingTimeInterval(86400 * 365), issuer: certificate.subject,
                subject: try DistinguishedName { CommonName(commonName) }, signatureAlgorithm: signatureAlgorithm,
                extensions: try Certificate.Extensions { Critical(KeyUsage(digitalSignature: true)) },
                issuerAsyncPrivateKey: certificateKey)
        }
    }

    // MARK: AuthContainer

    /// Wraps `message` as EVE does: payload, SHA-256 hash of the sender certificate (32 or 16 bytes), signature;
    /// `includeCertificate` puts the whole certificate in `senderCert` (base64 of its PEM), as `register` needs.
    static func seal(
        _ message: some SwiftProtobuf.Message, as sender: Identity, form: SignatureForm = .raw,
        algo: Org_Lfedge_Eve_Common_HashAlgorithm = .sha25632Bytes, includeCertificate: Bool = false
    ) async throws -> [UInt8] {
        let payload: [UInt8] = try message.serializedBytes()
        return try await sealPayload(
            payload, as: sender, form: form, algo: algo, includeCertificate: includeCertificate)
    }

    static func sealPayload(
        _ payload: [UInt8], as sender: Identity, form: SignatureForm = .raw,
        algo: Org_Lfedge_Eve_Common_HashAlgorithm = .sha25632Bytes, includeCertificate: Bool = false
    ) async throws -> [UInt8] {
        var c = Org_Lfedge_Eve_Auth_AuthContainer()
        c.protectedPayload.payload = Data(payload)
        c.algo = algo
        let hash = Array(SHA256.hash(data: sender.der))
        c.senderCertHash = Data(algo == .sha25616Bytes ? Array(hash.prefix(16)) : hash)
        c.signatureHash = Data(try await sender.sign(payload, form: form))
        if includeCertificate { c.senderCert = Data(sender.pem.utf8).base64EncodedData() }
        return try c.serializedBytes()
    }

    /// Opens the controller's answer: checks its `AuthContainer` signature (raw r‖s over SHA-256 of the payload)
    /// with the signing certificate, which must chain to `ca`, and returns the payload.
    static func open(_ body: [UInt8], signing: Certificate, ca: Certificate) throws -> [UInt8] {
        let c = try Org_Lfedge_Eve_Auth_AuthContainer(serializedBytes: body)
        var s = DER.Serializer()
        try s.serialize(signing)
        guard c.algo == .sha25632Bytes, Array(c.senderCertHash) == Array(SHA256.hash(data: s.serializedBytes)) else {
            throw EVETestError("the answer names another signing certificate")
        }
        guard signing.issuer == ca.subject, ca.publicKey.isValidSignature(signing.signature, for: signing) else {
            throw EVETestError("the signing certificate is not issued by the controller's CA")
        }
        guard let key = P256.Signing.PublicKey(signing.publicKey),
            let sig = try? P256.Signing.ECDSASignature(rawRepresentation: c.signatureHash),
            key.isValidSignature(sig, for: SHA256.hash(data: c.protectedPayload.payload))
        else { throw EVETestError("the controller's answer does not verify") }
        return Array(c.protectedPayload.payload)
    }

    // MARK: What EVE's tpmmgr and zedagent send

    /// The AK certificate EVE uploads: the TPM's AK, certified by the device key, with its TPMT_PUBLIC as
    /// `Z_CERT_META_DATA_TYPE_TPM2_PUBLIC` (go-tpm's `Public.Encode`).
    static func akCertificate(_ ak: TPMTPublic, by device: Identity, mutable: Bool = false) async throws
        -> Org_Lfedge_Eve_Certs_ZCert
    {
        let cert = try await device.issue(try ak.certificatePublicKey(), commonName: "EVE attestation key")
        var z = zcert(cert, .certTypeDeviceRestrictedSigning, mutable: mutable)
        var meta = Org_Lfedge_Eve_Certs_ZCertMetaData()
        meta.type = .tpm2Public
        meta.metaData = Data(ak.marshal())
        z.metaDataItems = [meta]
        return z
    }

    static func zcert(_ cert: Certificate, _ type: Org_Lfedge_Eve_Certs_ZCertType, mutable: Bool = false)
        -> Org_Lfedge_Eve_Certs_ZCert
    {
        var z = Org_Lfedge_Eve_Certs_ZCert()
        var s = DER.Serializer()
        try? s.serialize(cert)
        z.type = type
        z.hashAlgo = .sha25632Bytes
        z.certHash = Data(SHA256.hash(data: s.serializedBytes))
        z.cert = Data(((try? cert.serializeAsPEM().pemString) ?? "").utf8)
        z.attributes.isMutable = mutable
        z.attributes.isTpm = true
        return z
    }

    /// A quote as EVE's tpmmgr makes it: SHA-256 PCRs 0–15, the signature as ASN.1 DER of r and s, the PCR values,
    /// and the binary event log gzip-compressed.
    static func quote(_ tpm: TPM, nonce: [UInt8], eventLog: [UInt8]?) async throws -> Org_Lfedge_Eve_Attest_ZAttestQuote
    {
        let q = try await QuoteExport.make(
            tpm: tpm, selection: TPMLPCRSelection(parsingSpec: "sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15")!,
            nonce: nonce)
        var z = Org_Lfedge_Eve_Attest_ZAttestQuote()
        z.attestData = Data(q.attest)
        let tpmt = try TPMTSignature(bytes: q.signature)
        guard case .ecc(let r, let s) = tpmt.body else { throw EVETestError("the AK is not an ECC key") }
        z.signature = try P256.Signing.ECDSASignature(rawRepresentation: r + s).derRepresentation
        for index in 0..<16 {
            var v = Org_Lfedge_Eve_Attest_TpmPCRValue()
            v.index = UInt32(index)
            v.hashAlgo = .sha256
            v.value = Data(q.values[.sha256, index] ?? [])
            z.pcrValues.append(v)
        }
        if let eventLog {
            var buffer = ByteBuffer(bytes: eventLog)
            z.tpmBinaryEventLog = Data(try buffer.compress(with: .gzip()).readableBytesView)
        }
        var version = Org_Lfedge_Eve_Attest_AttestVersionInfo()
        version.versionType = .eve
        version.version = "14.5.0-kvm-amd64"
        z.versions = [version]
        return z
    }
}

struct EVETestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
