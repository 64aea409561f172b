import Attest
import Crypto
public import Foundation
public import SwiftASN1
public import X509

/// A TPM-resident ECC P-256 signing key (persistent, unrestricted) as a swift-certificates private key,
/// so X.509 certificates can be signed inside the TPM: swift-certificates builds the TBSCertificate,
/// the TPM signs its SHA-256 digest with TPM2_Sign, and the private key never exists outside the TPM.
public struct TPMSigningKey: CustomPrivateKey {
    public let tpm: TPM
    public let handle: TPMHandle
    public let publicKey: Certificate.PublicKey

    public init(tpm: TPM, handle: TPMHandle, publicKey: Certificate.PublicKey) {
        self.tpm = tpm
        self.handle = handle
        self.publicKey = publicKey
    }

    public var defaultSignatureAlgorithm: Certificate.SignatureAlgorithm { .ecdsaWithSHA256 }
    public var supportedSignatureAlgorithms: [Certificate.SignatureAlgorithm] { [.ecdsaWithSHA256] }

    public func signSynchronously(bytes: some DataProtocol, signatureAlgorithm: Certificate.SignatureAlgorithm) throws
        -> Certificate.Signature
    {
        throw TPMError.invalidArgument("a TPM key signs asynchronously: use an async Certificate initializer")
    }

    public func signAsynchronously(
        bytes: some DataProtocol & Sendable, signatureAlgorithm: Certificate.SignatureAlgorithm
    ) async throws -> Certificate.Signature {
        guard signatureAlgorithm == .ecdsaWithSHA256 else {
            throw TPMError.invalidArgument("the TPM device key signs with ECDSA-SHA256 only, not \(signatureAlgorithm)")
        }
        let der = try await Self.derSignature(tpm: tpm, handle: handle, digest: Array(SHA256.hash(data: bytes)))
        return try Certificate.Signature(
            signatureAlgorithm: .ecdsaWithSHA256, signatureBytes: ASN1BitString(bytes: ArraySlice(der)))
    }

    /// Signs a SHA-256 `digest` with the P-256 key at `handle` inside the TPM (TPM2_Sign, ECDSA) and returns the
    /// signature DER-encoded, as X.509 and Vigil's request signatures carry it.
    public static func derSignature(tpm: TPM, handle: TPMHandle, digest: [UInt8]) async throws -> [UInt8] {
        let signature = try await tpm.withPersistent(handle) { tpm, key throws(TPMError) in
            try tpm.sign(key, digest: digest, scheme: .ecdsa, hashAlg: .sha256)
        }
        guard case .ecc(let r, let s) = signature.body, r.count <= 32, s.count <= 32 else {
            throw TPMError.invalidResponse("TPM2_Sign returned a signature that is not ECDSA P-256")
        }
        let raw = [UInt8](repeating: 0, count: 32 - r.count) + r + [UInt8](repeating: 0, count: 32 - s.count) + s
        return Array(try P256.Signing.ECDSASignature(rawRepresentation: raw).derRepresentation)
    }

    public static let defaultPEMDiscriminator = "TPM RESIDENT KEY"

    /// A TPM-resident key has no exportable encoding.
    public func serialize(into coder: inout DER.Serializer) throws {
        throw TPMError.invalidArgument("the private part of a TPM-resident key cannot be exported")
    }

    public static func == (a: TPMSigningKey, b: TPMSigningKey) -> Bool {
        a.tpm === b.tpm && a.handle == b.handle && a.publicKey == b.publicKey
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(tpm))
        hasher.combine(handle)
        hasher.combine(publicKey)
    }
}
